/* The query suite: latency of the queries behind a playbook, a baseline and an agent's recent metrics. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_private.h"

/*
 * NOTE: no ace tool reads one agent's recent metrics yet.  This is the query
 * that the index performance_metrics_agent_stage_time_idx serves, as a
 * dashboard or a drift check would run it.
 */
static const char recent_sql[] =
	"SELECT recorded_at, task_id, stage, stage_success_rate, stage_error_rate, stage_duration_ms "
	"FROM performance_metrics WHERE agent_id = $1 AND recorded_at >= now() - interval '1 hour' "
	"ORDER BY recorded_at DESC LIMIT 100";

enum { Q_PLAYBOOK, Q_BASELINE, Q_RECENT, QUERIES };

static const char *const query_names[QUERIES] = {
	"latest playbook query", "baseline lookup query", "recent metrics query",
};

static const char *const row_names[QUERIES] = {
	"Latest playbook p95", "Baseline lookup p95", "Recent metrics of an agent p95",
};

/*
 * Playbooks and baselines go through ace_cache_get() without Redis, which
 * runs the very SQL that ace-cache runs on a miss, checkout included.
 */
static int
run_lookup(struct ace_cache *cache, int kind, const char *agent, const char *task_type,
    struct ace_error *err)
{
	struct ace_cache_request req = { kind, agent, task_type };
	struct ace_cache_result res;
	int rc;

	ace_cache_get(cache, &req, 1, &res);
	rc = res.status;
	if (rc != ACE_OK)
		*err = res.err;
	ace_cache_result_release(&res);
	return rc;
}

static int
run_recent(struct ace_pool *pool, const char *agent, struct ace_error *err)
{
	const char *params[1] = { agent };
	struct ace_conn *conn = ace_pool_checkout(pool, err);
	PGresult *res;
	int rc = ACE_OK;

	if (conn == NULL)
		return err->code;
	res = PQexecParams(ace_conn_pg(conn), recent_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = ace_pg_error(err, ace_conn_pg(conn), res, "recent metrics query failed");
	PQclear(res);
	ace_pool_checkin(pool, conn, rc != ACE_OK);
	return rc;
}

/* Runs each query in turn for random agents, bounded by query_runs and bench.duration. */
static int
run_queries(struct bench *b, struct ace_pool *pool, struct ace_cache *cache,
    struct ace_bench_series **series, struct ace_error *err)
{
	double start = ace_monotonic();
	int rc = ACE_OK;

	for (int i = 0; i < b->query_runs && rc == ACE_OK && !bench_cancelled(b); i++) {
		char agent[96];

		if (i > 0 && ace_monotonic() - start > b->duration)
			break;
		for (int q = 0; q < QUERIES && rc == ACE_OK; q++) {
			double t0;

			bench_agent_id(b, 1 + (long)(bench_uniform(b) * b->agents), agent, sizeof(agent));
			t0 = ace_monotonic();
			if (q == Q_RECENT)
				rc = run_recent(pool, agent, err);
			else
				rc = run_lookup(cache, q == Q_PLAYBOOK ? ACE_CACHE_PLAYBOOK : ACE_CACHE_BASELINE,
				    agent, bench_task_types[bench_random(b) % BENCH_TASK_TYPES], err);
			if (rc == ACE_OK &&
			    ace_bench_samples_add(&series[q]->samples, (ace_monotonic() - t0) * 1000) < 0)
				rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		}
		if ((i & 15) == 0)
			bench_progress(b, fmax((double)i / b->query_runs, (ace_monotonic() - start) / b->duration));
	}
	return rc;
}

int
bench_query(struct bench *b, struct ace_error *err)
{
	struct ace_bench_series *series[QUERIES];
	struct ace_cache *cache = NULL;
	struct ace_pool *pool;
	size_t first = b->report->nseries;
	int rc;

	rc = bench_load_data(b, err);
	if (rc != ACE_OK)
		return rc;
	for (int q = 0; q < QUERIES; q++)
		if (bench_series(b, query_names[q], "ms", err) == NULL)
			return err->code;
	for (int q = 0; q < QUERIES; q++)
		series[q] = &b->report->series[first + (size_t)q];

	/* One connection: each query's own time, without waits for a free connection. */
	pool = bench_pool_new(b, 1, 0, err);
	if (pool != NULL)
		cache = bench_cache_new(b, pool, NULL, err);
	if (cache == NULL) {
		rc = err->code;
		goto out;
	}
	rc = run_queries(b, pool, cache, series, err);
	for (int q = 0; q < QUERIES && rc == ACE_OK && !bench_cancelled(b); q++) {
		char note[96];

		ace_bench_summarize(&series[q]->samples, &series[q]->summary);
		snprintf(note, sizeof(note), "p50 %.2f ms over %zu runs", series[q]->summary.median,
		    series[q]->summary.count);
		rc = bench_row(b, row_names[q], "ms", ACE_BENCH_LT, b->cfg->bench_max_query_latency * 1000, 0,
		    series[q]->summary.count ? series[q]->summary.p95 : NAN, note, err);
	}
out:
	ace_cache_free(cache);
	ace_pool_free(pool);
	return rc;
}
