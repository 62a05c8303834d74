/* Helpers of the benchmark suites: the seeded sequence, rows, pools, Redis and the generated data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_private.h"

const char *const bench_task_types[BENCH_TASK_TYPES] = { "refund", "lookup", "triage" };

uint64_t
bench_random(struct bench *b)
{
	uint64_t z = (b->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

double
bench_uniform(struct bench *b)
{
	return (double)(bench_random(b) >> 11) / 9007199254740992.0;	/* 2^53 */
}

bool
bench_cancelled(const struct bench *b)
{
	return b->o->cancel != NULL && *b->o->cancel != 0;
}

void
bench_progress(struct bench *b, double fraction)
{
	if (b->o->progress == NULL)
		return;
	if (fraction < 0)
		fraction = 0;
	if (fraction > 1)
		fraction = 1;
	b->o->progress(b->o->ctx, b->suite, fraction);
}

void
bench_agent_id(const struct bench *b, long n, char *out, size_t len)
{
	snprintf(out, len, "%sagent-%ld", b->agent_prefix, n);
}

int
bench_exec(PGconn *pg, const char *sql, struct ace_error *err)
{
	PGresult *res = PQexec(pg, sql);
	int rc = ACE_OK;

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = ace_pg_error(err, pg, res, "statement failed");
	PQclear(res);
	return rc;
}

int
bench_query_number(PGconn *pg, const char *sql, double *value, struct ace_error *err)
{
	PGresult *res = PQexec(pg, sql);
	int rc = ACE_OK;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = ace_pg_error(err, pg, res, "query failed");
	else if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0))
		*value = NAN;
	else
		*value = strtod(PQgetvalue(res, 0, 0), NULL);
	PQclear(res);
	return rc;
}

struct ace_pool *
bench_pool_new(struct bench *b, int size, int max_overflow, struct ace_error *err)
{
	struct ace_pool_options po = {
		.conninfo = b->conninfo,
		.application_name = "ace-bench",
		.size = size,
		.max_overflow = max_overflow,
		.recycle = b->cfg->pool_recycle,
		.timeout = b->cfg->pool_timeout,
		.connect_timeout = b->cfg->connect_timeout,
	};

	return ace_pool_new(&po, err);
}

int
bench_redis_open(struct bench *b, struct ace_error *err)
{
	struct ace_redis_options ro = {
		.url = b->cfg->redis_url,
		.max_connections = b->cfg->redis_max_connections,
		.connect_timeout = b->cfg->redis_connect_timeout,
		.command_timeout = b->cfg->redis_command_timeout,
		.breaker_failures = b->cfg->redis_breaker_failures,
		.breaker_cooldown = b->cfg->redis_breaker_cooldown,
	};
	struct ace_redis_conn *conn;
	redisReply *reply = NULL;
	const char *argv[] = { "INFO", "server" };
	int rc;

	if (b->redis != NULL)
		return ACE_OK;
	b->redis = ace_redis_new(&ro, err);
	if (b->redis == NULL)
		return err->code;

	/* INFO server is read for the version only; hit rates come from the run's own counts. */
	conn = ace_redis_checkout(b->redis, err);
	if (conn == NULL) {
		ace_error_prefix(err, "redis %s", ace_redis_shown_url(b->redis));
		/* Nothing was written, so the cleanup has no key to remove. */
		ace_redis_free(b->redis);
		b->redis = NULL;
		return err->code;
	}
	rc = ace_redis_command(conn, &reply, err, 2, argv, NULL);
	if (rc == ACE_OK && reply->type == REDIS_REPLY_STRING) {
		const char *v = strstr(reply->str, "redis_version:");

		if (v != NULL)
			snprintf(b->report->machine.redis, sizeof(b->report->machine.redis), "%.*s",
			    (int)strcspn(v + 14, "\r\n"), v + 14);
	}
	if (reply != NULL)
		freeReplyObject(reply);
	ace_redis_checkin(b->redis, conn);
	if (rc != ACE_OK)
		return ace_error_prefix(err, "redis %s", ace_redis_shown_url(b->redis));
	return ACE_OK;
}

struct ace_cache *
bench_cache_new(struct bench *b, struct ace_pool *pool, struct ace_redis *redis, struct ace_error *err)
{
	struct ace_cache_options co = {
		.redis = redis,
		.pool = pool,
		.playbook_ttl = b->cfg->playbook_ttl,
		.baseline_ttl = b->cfg->baseline_ttl,
		.negative_ttl = b->cfg->negative_ttl,
		.jitter_percent = b->cfg->ttl_jitter_percent,
		.lock_timeout = b->cfg->cache_lock_timeout,
	};

	return ace_cache_new(&co, err);
}

int
bench_row(struct bench *b, const char *metric, const char *unit, int op, double value,
    double upper, double actual, const char *note, struct ace_error *err)
{
	struct ace_bench_row row = {
		.suite = b->suite,
		.target = { op, value, upper },
		.actual = actual,
	};

	snprintf(row.metric, sizeof(row.metric), "%s", metric);
	snprintf(row.unit, sizeof(row.unit), "%s", unit);
	snprintf(row.note, sizeof(row.note), "%s", note ? note : "");
	if (ace_bench_report_add_row(b->report, &row) == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	return ACE_OK;
}

int
bench_skip(struct bench *b, const char *metric, const char *unit, int op, double value,
    double upper, const char *reason, struct ace_error *err)
{
	struct ace_bench_row row = {
		.suite = b->suite,
		.target = { op, value, upper },
		.actual = NAN,
		.status = ACE_BENCH_SKIPPED,
	};

	snprintf(row.metric, sizeof(row.metric), "%s", metric);
	snprintf(row.unit, sizeof(row.unit), "%s", unit);
	snprintf(row.note, sizeof(row.note), "%s", reason);
	if (ace_bench_report_add_row(b->report, &row) == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	return ACE_OK;
}

struct ace_bench_series *
bench_series(struct bench *b, const char *name, const char *unit, struct ace_error *err)
{
	struct ace_bench_series *s = ace_bench_report_add_series(b->report, b->suite, name, unit);

	if (s == NULL)
		ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	return s;
}

/*
 * Playbooks: three versions per agent, the newest about 1 KiB of JSON.
 * Baselines: one version per agent, task type and stage.  Metrics: spread
 * over the last 24 hours across agents, task types and stages.  random()
 * follows setseed() within this session, and metric ids come from an MD5 of
 * the seed and the row number, so the same seed writes the same rows.
 */
static const char load_sql[] =
	"SELECT setseed(%.17g);\n"
	"INSERT INTO context_playbooks (agent_id, context, version, metadata)\n"
	"SELECT '%s' || 'agent-' || a,\n"
	"       jsonb_build_object('instructions', repeat(md5(a::text || '-' || v), 8 * v),\n"
	"           'tools', jsonb_build_array('search', 'refund', 'escalate'),\n"
	"           'temperature', round(random()::numeric, 2)),\n"
	"       v, jsonb_build_object('source', 'ace-bench')\n"
	"FROM generate_series(1, %d) a, generate_series(1, 3) v;\n"
	"INSERT INTO performance_baselines (agent_id, task_type, stage, version, window_start,\n"
	"    window_end, sample_size, success_rate_mean, success_rate_stddev, error_rate_mean,\n"
	"    duration_ms_mean, duration_ms_p50, duration_ms_p95, duration_ms_p99, action_count_mean)\n"
	"SELECT '%s' || 'agent-' || a, t, s, 1, now() - interval '7 days', now(),\n"
	"       100 + (random() * 900)::int, 0.7 + random() * 0.3, random() * 0.1, random() * 0.2,\n"
	"       500 + random() * 2000, 400 + random() * 1000, 2000 + random() * 3000,\n"
	"       5000 + random() * 5000, 1 + random() * 9\n"
	"FROM generate_series(1, %d) a,\n"
	"     unnest(ARRAY['refund', 'lookup', 'triage']) t,\n"
	"     unnest(ARRAY['planning', 'execution', 'reflection', 'verification']) s;\n"
	"INSERT INTO performance_metrics (metric_id, recorded_at, agent_id, task_id, task_type, stage,\n"
	"    stage_success_rate, stage_error_rate, stage_duration_ms, stage_action_count,\n"
	"    overall_progress_velocity, error_accumulation_rate, context_staleness_score,\n"
	"    intervention_effectiveness, baseline_delta, attributes)\n"
	"SELECT md5('%llu-' || i)::uuid, now() - random() * interval '1 day',\n"
	"       '%s' || 'agent-' || (1 + i %% %d), '%s' || 'task-' || (i / 4),\n"
	"       (ARRAY['refund', 'lookup', 'triage'])[1 + i %% 3],\n"
	"       (ARRAY['planning', 'execution', 'reflection', 'verification'])[1 + i %% 4],\n"
	"       r.success, (1 - r.success) * random(), (random() * 5000)::int, (random() * 20)::int,\n"
	"       random() * 10, random(), random(), random(),\n"
	"       jsonb_build_object('stage_duration_ms', round((random() - 0.5)::numeric * 100, 1)),\n"
	"       jsonb_build_object('model', 'gpt-4.1', 'prompt_tokens', (random() * 4000)::int,\n"
	"           'completion_tokens', (random() * 800)::int)\n"
	"FROM generate_series(1, %ld) i, LATERAL (SELECT random() + 0 * i AS success) r;\n"
	"ANALYZE context_playbooks, performance_baselines, performance_metrics";

int
bench_load_data(struct bench *b, struct ace_error *err)
{
	char *sql;
	int rc;

	if (b->data_loaded)
		return ACE_OK;
	/* setseed() takes a number from -1 to 1. */
	if (asprintf(&sql, load_sql, (double)(b->cfg->bench_seed % 1000003) / 1000003.0,
	    b->agent_prefix, b->agents, b->agent_prefix, b->agents,
	    (unsigned long long)b->cfg->bench_seed, b->agent_prefix, b->agents, b->agent_prefix,
	    b->metric_rows) < 0)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	rc = bench_exec(b->pg, sql, err);
	free(sql);
	if (rc != ACE_OK)
		return ace_error_prefix(err, "cannot generate the workload data");
	b->data_loaded = true;
	return ACE_OK;
}
