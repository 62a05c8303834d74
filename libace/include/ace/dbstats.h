/* Figures of the ace tables read from PostgreSQL: size, rows per stage, lag, compression, baselines, and the report. */
#ifndef ACE_DBSTATS_H
#define ACE_DBSTATS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "ace/error.h"

struct ace_dbstats {
	bool has_table;			/* performance_metrics exists */
	char layout[16];		/* "plain", "hypertable" or "partitioned" */
	bool timescaledb;		/* the extension is installed in the database */
	double bytes;			/* table, indexes and TOAST of every chunk or partition */
	long long rows;
	long long stage_rows[4];	/* indexed by enum ace_stage */
	bool has_lag;			/* the table has rows */
	double lag_seconds;		/* now() minus the newest recorded_at */
	bool has_compression;		/* some chunk is compressed */
	double compression_ratio;	/* bytes before compression / bytes after */
	bool has_baselines_table;
	long long baselines;		/* agent, task type and stage groups with a baseline */
	bool has_baseline_age;
	double baseline_age_seconds;	/* now() minus the newest computed_at */
	int compression_policies;	/* scheduled TimescaleDB jobs on performance_metrics; -1: no TimescaleDB */
	int retention_policies;
	int max_connections;		/* max_connections less superuser_reserved_connections */
};

/*
 * Reads the figures with one statement per figure.  Rows are counted
 * exactly, which scans the table: on a large table this takes as long as
 * count(*) does.  Fails with ACE_ERR_RETRY when the connection was lost and
 * ACE_ERR_SERVER when a statement was refused.
 */
int ace_dbstats_read(PGconn *pg, struct ace_dbstats *out, struct ace_error *err);

/* One row of the report: one agent and stage over a time range. */
struct ace_report_row {
	const char *agent_id;
	const char *stage;
	long long count;
	bool has_duration;		/* some record carries stage_duration_ms */
	double duration_p50;		/* milliseconds, percentile_cont */
	double duration_p95;
	bool has_success_rate;
	double success_rate;		/* mean of stage_success_rate */
	int agent_width;		/* characters of the longest agent id in the report */
};

/*
 * Streams the report of [since_us, until_us) (microseconds since the
 * epoch), ordered by agent and stage in pipeline order, calling row for
 * each.  The strings are valid during the call only.  A non-zero return of
 * row stops the report with ACE_ERR_SYSTEM.  Memory stays bounded: rows are
 * read one at a time.
 */
int ace_dbstats_report(PGconn *pg, int64_t since_us, int64_t until_us,
    int (*row)(void *ctx, const struct ace_report_row *r), void *ctx, struct ace_error *err);

#endif
