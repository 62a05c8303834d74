/* What the storage modules share: query helpers, column lists and report lines. */
#ifndef ACE_STORAGE_PRIVATE_H
#define ACE_STORAGE_PRIVATE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "ace/config.h"
#include "ace/error.h"
#include "ace/storage.h"

#define STORAGE_TABLE "performance_metrics"
#define STORAGE_DEFAULT_PARTITION "performance_metrics_default"
#define STORAGE_MAX_COLUMNS 32

/* One column of a compress_segmentby or compress_orderby list. */
struct storage_column {
	char name[64];		/* NAMEDATALEN - 1 bytes at most */
	bool descending;
	bool nulls_first;	/* PostgreSQL's default: true for DESC, false for ASC */
};

struct storage_columns {
	struct storage_column items[STORAGE_MAX_COLUMNS];
	int count;
};

/* Everything the storage functions need, read from the configuration once. */
struct storage_ctx {
	PGconn *pg;
	const struct ace_config *cfg;
	const struct ace_storage_report *report;
	long long chunk;		/* chunk interval in whole seconds */
	long long compress_after;	/* seconds; 0: no compression policy */
	long long retention;		/* seconds; 0: no retention */
	struct storage_columns segmentby;
	struct storage_columns orderby;
	int changes;			/* ACE_STORAGE_CHANGED lines so far */
	int differences;		/* ACE_STORAGE_DIFFERS lines so far */
};

/*
 * Parses a comma-separated column list.  With ordering set, each name may be
 * followed by ASC or DESC and NULLS FIRST or NULLS LAST.  key names the
 * setting in the error.
 */
int storage_parse_columns(const char *text, bool ordering, const char *key,
    struct storage_columns *out, struct ace_error *err);

/* Writes a column list as ace.yaml spells it ("recorded_at DESC") into buf. */
void storage_format_columns(const struct storage_columns *cols, bool ordering,
    char *buf, size_t len);

/* Writes seconds as "90 days", "6 hours" or "90 seconds", a text that PostgreSQL reads as an interval. */
void storage_format_interval(long long seconds, char *buf, size_t len);

/* Writes an epoch second as "2026-12-04 00:00:00+00". */
void storage_format_time(long long epoch, char *buf, size_t len);

/*
 * Runs a query with text parameters and returns its result, or NULL with err
 * filled and prefixed by what.  The caller clears the result.
 */
PGresult *storage_query(PGconn *pg, const char *sql, int nparams, const char *const *params,
    const char *what, struct ace_error *err);

/* Runs SQL that returns nothing worth reading. */
int storage_exec(PGconn *pg, const char *sql, const char *what, struct ace_error *err);

/* Rolls back an open transaction, if any, after a failure. */
void storage_rollback(PGconn *pg);

/* Sends one report line and counts it. */
void storage_say(struct storage_ctx *ctx, int kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Reports whether each index of the first migration exists on performance_metrics and is valid. */
int storage_verify_indexes(struct storage_ctx *ctx, struct ace_error *err);

/* The hypertable path, in storage_timescale.c. */
int storage_timescale_apply(struct storage_ctx *ctx, struct ace_error *err);
int storage_timescale_verify(struct storage_ctx *ctx, struct ace_error *err);
int storage_timescale_maintain(struct storage_ctx *ctx, struct ace_error *err);

/* The partitioned path, in storage_partition.c; maintain with drop set also applies retention. */
int storage_partition_apply(struct storage_ctx *ctx, bool drop, struct ace_error *err);
int storage_partition_verify(struct storage_ctx *ctx, struct ace_error *err);

#endif
