/* Parsing and validation of one NDJSON metric record, and its COPY row. */
#ifndef ACE_METRIC_H
#define ACE_METRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ace/buf.h"

enum ace_stage {
	ACE_STAGE_PLANNING,
	ACE_STAGE_EXECUTION,
	ACE_STAGE_REFLECTION,
	ACE_STAGE_VERIFICATION,
};

/* The numeric fields of a record, in table column order. */
enum ace_metric_number {
	ACE_M_SUCCESS_RATE,		/* stage_success_rate, 0..1 */
	ACE_M_ERROR_RATE,		/* stage_error_rate, 0..1 */
	ACE_M_DURATION_MS,		/* stage_duration_ms, integer >= 0 */
	ACE_M_ACTION_COUNT,		/* stage_action_count, integer >= 0 */
	ACE_M_VELOCITY,			/* overall_progress_velocity, >= 0 */
	ACE_M_ERROR_ACCUMULATION,	/* error_accumulation_rate, >= 0 */
	ACE_M_STALENESS,		/* context_staleness_score, 0..1 */
	ACE_M_INTERVENTION,		/* intervention_effectiveness, 0..1 */
	ACE_M_NUMBERS
};

/*
 * One validated record.  Strings point into memory the record owns; free it
 * with ace_metric_release().  A numeric field absent or null in the input
 * has its bit clear in `present` and is stored as SQL NULL.
 */
struct ace_metric {
	char metric_id[37];		/* lower-case 8-4-4-4-12 hex */
	bool metric_id_generated;	/* made by ace-ingest, not given */
	int64_t recorded_at_us;		/* microseconds since 1970-01-01 UTC */
	const char *agent_id;
	const char *task_id;
	const char *task_type;		/* NULL when absent */
	int stage;			/* enum ace_stage */
	unsigned present;		/* bit i set: numbers[i] is given */
	double numbers[ACE_M_NUMBERS];
	char *baseline_delta;		/* JSON object text, or NULL when absent */
	char *attributes;		/* JSON object text of every other field, "{}" when none */
	void *json;			/* the parsed document, less the known fields */
	void *ids;			/* the id strings that agent_id, task_id and task_type point into */
};

/* Why a record was rejected: the field at fault ("" for the whole line) and the reason. */
struct ace_metric_error {
	char field[64];
	char reason[256];
};

/* Bounds of the data model, shared with the schema's CHECK constraints. */
#define ACE_ID_MAX_CHARS 255
#define ACE_TASK_TYPE_MAX_CHARS 100
#define ACE_RATE_SUM_TOLERANCE 1e-6

/*
 * Parses and validates one line of len bytes (no trailing newline; it must
 * be NUL-terminated at line[len]).  now_us becomes recorded_at when the
 * record has none.  Returns 0, or -1 with e filled; on -1 nothing needs to be
 * released.  Thread-safe.
 */
int ace_metric_parse(const char *line, size_t len, int64_t now_us,
    struct ace_metric *m, struct ace_metric_error *e);

void ace_metric_release(struct ace_metric *m);

/*
 * Appends m as one row of PostgreSQL's COPY text format, ending in a newline,
 * with the columns of ACE_METRIC_COPY_COLUMNS.  Returns 0, or -1 when memory
 * runs out.
 */
int ace_metric_copy_row(const struct ace_metric *m, struct ace_buf *row);

#define ACE_METRIC_COPY_COLUMNS \
	"metric_id, recorded_at, agent_id, task_id, task_type, stage, " \
	"stage_success_rate, stage_error_rate, stage_duration_ms, " \
	"stage_action_count, overall_progress_velocity, error_accumulation_rate, " \
	"context_staleness_score, intervention_effectiveness, baseline_delta, attributes"

/* Parses, validates and appends the COPY row in one step. */
int ace_metric_line_to_row(const char *line, size_t len, int64_t now_us,
    struct ace_buf *row, struct ace_metric_error *e);

const char *ace_stage_name(int stage);

/*
 * Parses an RFC 3339 timestamp with a UTC offset ("2025-08-01T16:20:44.3Z",
 * "2025-08-01 16:20:44+02:00") into microseconds since the epoch.  Digits
 * past microseconds are truncated.  Returns 0, or -1 with a reason in why.
 */
int ace_parse_rfc3339(const char *s, int64_t *us, const char **why);

/* Writes us as "YYYY-MM-DD HH:MM:SS.ffffff+00" into out (at least 64 bytes). */
void ace_format_timestamp(int64_t us, char *out);

/*
 * Returns the byte offset of the first invalid UTF-8 sequence in s, or -1
 * when all len bytes are valid.  Overlong forms, surrogates and code points
 * above U+10FFFF are invalid.
 */
long ace_utf8_invalid_at(const char *s, size_t len);

/* Writes a new time-ordered UUID (version 7) into out (37 bytes). */
void ace_uuid_v7(int64_t now_us, char *out);

/* Microseconds since the epoch, from the realtime clock. */
int64_t ace_now_us(void);

#endif
