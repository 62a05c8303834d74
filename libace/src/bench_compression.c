/*
 * The compression suite: storage before and after TimescaleDB compresses
 * the chunks older than the policy age.  Range partitions have no
 * compression, so there it measures what retention removes instead.  Both
 * paths run ace_storage_maintain(), as "ace-migrate maintain" does.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/storage.h"
#include "bench_private.h"

#define MIB (1024.0 * 1024.0)

/*
 * Older metrics, spread evenly over the last `span` seconds, with the same
 * columns and value ranges as the recent ones.  Each task has one row per
 * stage, as the producers write them.
 */
static const char history_sql[] =
	"SELECT setseed(%.17g);\n"
	"INSERT INTO performance_metrics (metric_id, recorded_at, agent_id, task_id, task_type, stage,\n"
	"    stage_success_rate, stage_error_rate, stage_duration_ms, stage_action_count,\n"
	"    overall_progress_velocity, error_accumulation_rate, context_staleness_score,\n"
	"    intervention_effectiveness, baseline_delta, attributes)\n"
	"SELECT md5('history-%llu-' || i)::uuid,\n"
	"       now() - make_interval(secs => %.0f * (i::float8 / %ld)),\n"
	"       '%s' || 'agent-' || (1 + i %% %d), '%s' || 'task-history-' || (i / 4),\n"
	"       (ARRAY['refund', 'lookup', 'triage'])[1 + i %% 3],\n"
	"       (ARRAY['planning', 'execution', 'reflection', 'verification'])[1 + i %% 4],\n"
	"       r.success, (1 - r.success) * random(), (random() * 5000)::int, (random() * 20)::int,\n"
	"       random() * 10, random(), random(), random(),\n"
	"       jsonb_build_object('stage_duration_ms', round((random() - 0.5)::numeric * 100, 1)),\n"
	"       jsonb_build_object('model', 'gpt-4.1', 'prompt_tokens', (random() * 4000)::int,\n"
	"           'completion_tokens', (random() * 800)::int)\n"
	"FROM generate_series(1, %ld) i, LATERAL (SELECT random() + 0 * i AS success) r";

static int
load_history(struct bench *b, double span, struct ace_error *err)
{
	char *sql;
	int rc;

	if (asprintf(&sql, history_sql, (double)((b->cfg->bench_seed + 1) % 1000003) / 1000003.0,
	    (unsigned long long)b->cfg->bench_seed, span, b->history_rows, b->agent_prefix, b->agents,
	    b->agent_prefix, b->history_rows) < 0)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	rc = bench_exec(b->pg, sql, err);
	free(sql);
	if (rc != ACE_OK)
		return ace_error_prefix(err, "cannot generate the older metrics");
	return ACE_OK;
}

/* Reads three numbers from the first row of a query. */
static int
query_three(PGconn *pg, const char *sql, double *a, double *b, double *c, struct ace_error *err)
{
	PGresult *res = PQexec(pg, sql);
	int rc = ACE_OK;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) < 3)
		rc = ace_pg_error(err, pg, res, "query failed");
	else if (PQntuples(res) < 1)
		*a = *b = *c = 0;
	else {
		*a = strtod(PQgetvalue(res, 0, 0), NULL);
		*b = strtod(PQgetvalue(res, 0, 1), NULL);
		*c = strtod(PQgetvalue(res, 0, 2), NULL);
	}
	PQclear(res);
	return rc;
}

static int
maintain(struct bench *b, struct ace_error *err)
{
	int changes = 0;

	return ace_storage_maintain(b->pg, b->cfg, NULL, &changes, err);
}

/* --- Hypertable ------------------------------------------------------------------ */

static int
measure_compression(struct bench *b, struct ace_error *err)
{
	const double after_age = b->cfg->compress_after;
	double total_before, total_after, before, after, chunks, unused;
	char note[240];
	int rc;

	if (after_age <= 0)
		return bench_skip(b, "Storage reduction by compression", "%", ACE_BENCH_NO_TARGET, 0, 0,
		    "timeseries.compress_after is 0, so no chunk is compressed", err);
	/* Data over three chunk intervals past the policy age, so that whole chunks qualify. */
	rc = load_history(b, after_age + 3 * b->cfg->chunk_interval, err);
	bench_progress(b, 0.4);
	if (rc == ACE_OK)
		rc = query_three(b->pg, "SELECT hypertable_size('performance_metrics'), 0, 0",
		    &total_before, &unused, &unused, err);
	if (rc == ACE_OK)
		rc = maintain(b, err);
	bench_progress(b, 0.8);
	if (rc == ACE_OK)
		rc = query_three(b->pg,
		    "SELECT coalesce(sum(before_compression_total_bytes), 0), "
		    "       coalesce(sum(after_compression_total_bytes), 0), count(*) "
		    "FROM chunk_compression_stats('performance_metrics') "
		    "WHERE compression_status = 'Compressed'", &before, &after, &chunks, err);
	if (rc == ACE_OK)
		rc = query_three(b->pg, "SELECT hypertable_size('performance_metrics'), 0, 0",
		    &total_after, &unused, &unused, err);
	if (rc != ACE_OK)
		return rc;

	if (chunks == 0)
		return bench_skip(b, "Storage reduction by compression", "%", ACE_BENCH_NO_TARGET, 0, 0,
		    "the compression job compressed no chunk", err);
	snprintf(note, sizeof(note), "%.0f chunks older than %.0f h, segmented by %s",
	    chunks, after_age / 3600, b->cfg->compress_segmentby ? b->cfg->compress_segmentby : "nothing");
	rc = bench_row(b, "Compressed chunks before compression", "MiB", ACE_BENCH_NO_TARGET, 0, 0,
	    before / MIB, note, err);
	if (rc == ACE_OK)
		rc = bench_row(b, "Compressed chunks after compression", "MiB", ACE_BENCH_NO_TARGET, 0, 0,
		    after / MIB, NULL, err);
	if (rc == ACE_OK)
		rc = bench_row(b, "Storage reduction by compression", "%", ACE_BENCH_NO_TARGET, 0, 0,
		    before > 0 ? (before - after) / before * 100 : NAN, NULL, err);
	if (rc == ACE_OK) {
		snprintf(note, sizeof(note), "%.2f MiB before, %.2f MiB after, with indexes",
		    total_before / MIB, total_after / MIB);
		rc = bench_row(b, "Whole table reduction", "%", ACE_BENCH_NO_TARGET, 0, 0,
		    total_before > 0 ? (total_before - total_after) / total_before * 100 : NAN, note, err);
	}
	return rc;
}

/* --- Range partitions --------------------------------------------------------------- */

/*
 * Rows past the retention age, and rows past it by a whole chunk interval
 * more.  A partition is dropped only once all of it is past the age, so the
 * partition that straddles the cutoff keeps its older rows until it ends.
 * Only the second count must reach 0.
 */
static const char expired_sql[] =
	"SELECT count(*) FILTER (WHERE recorded_at < now() - make_interval(secs => %.0f)), "
	"       count(*) FILTER (WHERE recorded_at < now() - make_interval(secs => %.0f)), "
	"       (SELECT count(*) FROM pg_partition_tree('performance_metrics') WHERE isleaf) "
	"FROM performance_metrics";

static int
measure_retention(struct bench *b, struct ace_error *err)
{
	const double retention = b->cfg->retention, chunk = b->cfg->chunk_interval;
	double old_before, gone_before, parts_before, old_after, gone_after, parts_after;
	char sql[sizeof(expired_sql) + 64], note[240];
	int rc;

	if (retention <= 0)
		return bench_skip(b, "Rows a chunk past retention after maintenance", "rows", ACE_BENCH_EQ,
		    0, 0, "timeseries.retention is 0, so nothing expires", err);
	snprintf(sql, sizeof(sql), expired_sql, retention, retention + chunk);
	/* Data reaching three chunk intervals past the retention age. */
	rc = load_history(b, retention + 3 * chunk, err);
	bench_progress(b, 0.3);
	if (rc == ACE_OK)
		rc = query_three(b->pg, sql, &old_before, &gone_before, &parts_before, err);
	if (rc == ACE_OK)
		rc = maintain(b, err);
	bench_progress(b, 0.8);
	if (rc == ACE_OK)
		rc = query_three(b->pg, sql, &old_after, &gone_after, &parts_after, err);
	if (rc != ACE_OK)
		return rc;

	snprintf(note, sizeof(note), "%.0f before; retention %.0f d, chunks of %.0f h; %.0f partitions after",
	    gone_before, retention / 86400, chunk / 3600, parts_after);
	rc = bench_row(b, "Rows a chunk past retention after maintenance", "rows", ACE_BENCH_EQ, 0, 0,
	    gone_after, note, err);
	if (rc == ACE_OK) {
		snprintf(note, sizeof(note), "%.0f of %.0f; the rest wait in the partition that spans the cutoff",
		    old_before - old_after, old_before);
		rc = bench_row(b, "Rows past retention removed", "%", ACE_BENCH_NO_TARGET, 0, 0,
		    old_before > 0 ? (old_before - old_after) / old_before * 100 : NAN, note, err);
	}
	return rc;
}

int
bench_compression(struct bench *b, struct ace_error *err)
{
	char reason[sizeof(b->storage_note) + 64];
	int rc;

	switch (b->layout) {
	case ACE_LAYOUT_HYPERTABLE:
		return measure_compression(b, err);
	case ACE_LAYOUT_PARTITIONED:
		if (*b->storage_note != '\0')
			snprintf(reason, sizeof(reason), "TimescaleDB is absent (%s)", b->storage_note);
		else
			snprintf(reason, sizeof(reason), "storage is partitioned, which has no compression");
		rc = bench_skip(b, "Storage reduction by compression", "%", ACE_BENCH_NO_TARGET, 0, 0,
		    reason, err);
		return rc == ACE_OK ? measure_retention(b, err) : rc;
	}
	return bench_skip(b, "Storage reduction by compression", "%", ACE_BENCH_NO_TARGET, 0, 0,
	    "performance_metrics is an ordinary table: the storage migration did not convert it", err);
}
