/* Baselines: the aggregate SQL, the t values it needs, the versioned insert, publishing and parsing values. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ace/baseline.h"
#include "ace/buf.h"
#include "ace/log.h"
#include "ace/metric.h"
#include "ace/pool.h"

/* Key of the transaction-level advisory lock: the bytes "ace-base" read as an integer. */
#define BASELINE_LOCK_KEY "7017563889971852133"

/* Sample sizes fetched, and t values sent back, per round trip. */
#define T_BATCH "1000"

/* Keys written to Redis per pipeline. */
#define PUBLISH_BATCH 256

#define UTC(expr) "to_char((" expr ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* Count, mean and sample standard deviation of one column, named with prefix p. */
#define MOMENTS(col, p) \
	"count(" col ") AS " p "_n, avg(" col ")::float8 AS " p "_mean, " \
	"stddev_samp(" col ")::float8 AS " p "_sd, "

/*
 * One row per agent, task type and stage of the window.  Rates and velocity
 * are real, and as numeric they keep the decimal value they print as.  The
 * aggregates of numeric are exact before the cast to double.  The caller
 * formats the window in as a number of seconds.
 */
static const char groups_sql[] =
	"CREATE TEMP TABLE ace_baseline_groups AS "
	"SELECT agent_id, coalesce(task_type, '') AS task_type, stage, count(*) AS n, "
	MOMENTS("stage_success_rate::numeric", "sr")
	MOMENTS("stage_error_rate::numeric", "er")
	MOMENTS("stage_duration_ms", "du")
	"percentile_cont(0.5) WITHIN GROUP (ORDER BY stage_duration_ms) AS du_p50, "
	"percentile_cont(0.95) WITHIN GROUP (ORDER BY stage_duration_ms) AS du_p95, "
	"percentile_cont(0.99) WITHIN GROUP (ORDER BY stage_duration_ms) AS du_p99, "
	MOMENTS("stage_action_count", "ac")
	MOMENTS("overall_progress_velocity::numeric", "ve")
	"now() - make_interval(secs => %.6f) AS window_start, now() AS window_end "
	"FROM performance_metrics "
	"WHERE recorded_at >= now() - make_interval(secs => %.6f) AND recorded_at < now() "
	"GROUP BY 1, 2, 3";

/* The degrees of freedom that some confidence interval needs. */
static const char dfs_sql[] =
	"DECLARE ace_baseline_dfs NO SCROLL CURSOR FOR "
	"SELECT DISTINCT k - 1 FROM ace_baseline_groups, "
	"unnest(ARRAY[sr_n, er_n, du_n, ac_n, ve_n]) AS k WHERE k >= 2";

/* Mean, standard deviation and confidence interval of prefix p, from the t value of its sample size. */
#define ESTIMATE(p) \
	"g." p "_mean, g." p "_sd, " \
	"g." p "_mean - t_" p ".t * g." p "_sd / sqrt(g." p "_n), " \
	"g." p "_mean + t_" p ".t * g." p "_sd / sqrt(g." p "_n), "

#define T_JOIN(p) "LEFT JOIN ace_baseline_t t_" p " ON t_" p ".df = g." p "_n - 1 "

static const char insert_sql[] =
	"INSERT INTO performance_baselines (agent_id, task_type, stage, version, "
	"window_start, window_end, sample_size, "
	"success_rate_mean, success_rate_stddev, success_rate_ci_low, success_rate_ci_high, "
	"error_rate_mean, error_rate_stddev, error_rate_ci_low, error_rate_ci_high, "
	"duration_ms_mean, duration_ms_stddev, duration_ms_ci_low, duration_ms_ci_high, "
	"duration_ms_p50, duration_ms_p95, duration_ms_p99, "
	"action_count_mean, action_count_stddev, action_count_ci_low, action_count_ci_high, "
	"velocity_mean, velocity_stddev, velocity_ci_low, velocity_ci_high) "
	"SELECT g.agent_id, g.task_type, g.stage, "
	"coalesce((SELECT max(b.version) FROM performance_baselines b WHERE b.agent_id = g.agent_id "
	"AND b.task_type = g.task_type AND b.stage = g.stage), 0) + 1, "
	"g.window_start, g.window_end, g.n, "
	ESTIMATE("sr") ESTIMATE("er") ESTIMATE("du")
	"g.du_p50, g.du_p95, g.du_p99, "
	ESTIMATE("ac")
	"g.ve_mean, g.ve_sd, "
	"g.ve_mean - t_ve.t * g.ve_sd / sqrt(g.ve_n), g.ve_mean + t_ve.t * g.ve_sd / sqrt(g.ve_n) "
	"FROM ace_baseline_groups g "
	T_JOIN("sr") T_JOIN("er") T_JOIN("du") T_JOIN("ac") T_JOIN("ve")
	"ORDER BY 1, 2, 3";

/* Runs sql and returns its result, or NULL with err set when its status is not want. */
static PGresult *
run(PGconn *pg, const char *sql, int nparams, const char *const *params, ExecStatusType want,
    const char *what, struct ace_error *err)
{
	PGresult *res = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != want) {
		ace_pg_error(err, pg, res, what);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Runs a statement that returns no rows. */
static int
run_command(PGconn *pg, const char *sql, const char *what, struct ace_error *err)
{
	PGresult *res = run(pg, sql, 0, NULL, PGRES_COMMAND_OK, what, err);

	if (res == NULL)
		return err->code;
	PQclear(res);
	return ACE_OK;
}

static long long
count_of(PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/*
 * Computes the t value of every sample size that the groups need and
 * stores them in ace_baseline_t, T_BATCH at a time through a cursor.
 */
static int
fill_t_values(PGconn *pg, struct ace_error *err)
{
	struct ace_buf dfs = ACE_BUF_INIT, ts = ACE_BUF_INIT;
	PGresult *res = NULL;
	int rc;

	rc = run_command(pg, "CREATE TEMP TABLE ace_baseline_t (df bigint PRIMARY KEY, t float8 NOT NULL) "
	    "ON COMMIT DROP", "creating the table of t values", err);
	if (rc == ACE_OK)
		rc = run_command(pg, dfs_sql, "listing sample sizes", err);
	while (rc == ACE_OK) {
		const char *params[2];
		int n;

		res = run(pg, "FETCH " T_BATCH " FROM ace_baseline_dfs", 0, NULL, PGRES_TUPLES_OK,
		    "listing sample sizes", err);
		if (res == NULL) {
			rc = err->code;
			break;
		}
		n = PQntuples(res);
		if (n == 0) {
			PQclear(res);
			break;
		}
		ace_buf_reset(&dfs);
		ace_buf_reset(&ts);
		for (int i = 0; i < n; i++) {
			long long df = count_of(res, i, 0);
			int failed = ace_buf_printf(&dfs, "%s%lld", i ? "," : "{", df) |
			    ace_buf_printf(&ts, "%s%.17g", i ? "," : "{", ace_stats_t_critical95((long)df));

			if (failed) {
				rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
				break;
			}
		}
		PQclear(res);
		res = NULL;
		if (rc != ACE_OK || ace_buf_putc(&dfs, '}') < 0 || ace_buf_putc(&ts, '}') < 0) {
			rc = rc != ACE_OK ? rc : ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
			break;
		}
		params[0] = dfs.data;
		params[1] = ts.data;
		res = run(pg, "INSERT INTO ace_baseline_t SELECT * FROM unnest($1::bigint[], $2::float8[])",
		    2, params, PGRES_COMMAND_OK, "storing t values", err);
		if (res == NULL)
			rc = err->code;
		PQclear(res);
		res = NULL;
	}
	if (rc == ACE_OK)
		rc = run_command(pg, "CLOSE ace_baseline_dfs", "listing sample sizes", err);
	ace_buf_release(&dfs);
	ace_buf_release(&ts);
	return rc;
}

/* Counts the groups and keeps those with enough records. */
static int
count_groups(PGconn *pg, long min_samples, struct ace_baseline_summary *out, struct ace_error *err)
{
	char min[24];
	const char *params[1] = { min };
	PGresult *res;

	snprintf(min, sizeof(min), "%ld", min_samples);
	res = run(pg, "SELECT count(*), count(*) FILTER (WHERE n < $1::bigint) FROM ace_baseline_groups",
	    1, params, PGRES_TUPLES_OK, "counting groups", err);
	if (res == NULL)
		return err->code;
	out->groups = count_of(res, 0, 0);
	out->too_small = count_of(res, 0, 1);
	PQclear(res);
	res = run(pg, "DELETE FROM ace_baseline_groups WHERE n < $1::bigint", 1, params,
	    PGRES_COMMAND_OK, "dropping small groups", err);
	if (res == NULL)
		return err->code;
	PQclear(res);
	return ACE_OK;
}

/* Formats the window bounds the groups were cut from. */
static int
read_window(PGconn *pg, double window, struct ace_baseline_summary *out, struct ace_error *err)
{
	char secs[64];
	const char *params[1] = { secs };
	PGresult *res;

	snprintf(secs, sizeof(secs), "%.6f", window);
	res = run(pg, "SELECT " UTC("now() - make_interval(secs => $1::float8)") ", " UTC("now()"),
	    1, params, PGRES_TUPLES_OK, "reading the window", err);
	if (res == NULL)
		return err->code;
	snprintf(out->window_start, sizeof(out->window_start), "%s", PQgetvalue(res, 0, 0));
	snprintf(out->window_end, sizeof(out->window_end), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return ACE_OK;
}

int
ace_baseline_compute(PGconn *pg, const struct ace_baseline_options *o,
    struct ace_baseline_summary *out, struct ace_error *err)
{
	char sql[sizeof(groups_sql) + 64];
	PGresult *res;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!(o->window > 0) || o->min_samples < 2)
		return ace_error_set(err, ACE_ERR_INVALID,
		    "invalid baseline settings: window %g s (above 0), min_samples %ld (at least 2)",
		    o->window, o->min_samples);
	snprintf(sql, sizeof(sql), groups_sql, o->window, o->window);

	rc = run_command(pg, "BEGIN", "starting the transaction", err);
	if (rc != ACE_OK)
		return rc;
	rc = run_command(pg, "SET LOCAL client_min_messages = warning", "setting up", err);
	if (rc == ACE_OK) {
		res = run(pg, "SELECT pg_advisory_xact_lock(" BASELINE_LOCK_KEY ")", 0, NULL,
		    PGRES_TUPLES_OK, "taking the baseline lock", err);
		rc = res != NULL ? ACE_OK : err->code;
		PQclear(res);
	}
	if (rc == ACE_OK)
		rc = run_command(pg, "DROP TABLE IF EXISTS pg_temp.ace_baseline_groups",
		    "dropping old groups", err);
	if (rc == ACE_OK)
		rc = run_command(pg, sql, "aggregating performance_metrics", err);
	if (rc == ACE_OK)
		rc = read_window(pg, o->window, out, err);
	if (rc == ACE_OK)
		rc = count_groups(pg, o->min_samples, out, err);
	if (rc == ACE_OK)
		rc = fill_t_values(pg, err);
	if (rc != ACE_OK)
		goto out;

	res = run(pg, insert_sql, 0, NULL, PGRES_COMMAND_OK, "inserting into performance_baselines", err);
	if (res == NULL) {
		rc = err->code;
		goto out;
	}
	out->stored = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	rc = run_command(pg, "COMMIT", "committing the baselines", err);
out:
	if (rc != ACE_OK && PQtransactionStatus(pg) != PQTRANS_IDLE) {
		res = PQexec(pg, "ROLLBACK");
		PQclear(res);
		out->stored = 0;
	}
	return rc;
}

/* Agents and task types read from the groups, waiting to be published. */
struct pairs {
	char *agent[PUBLISH_BATCH];
	char *task[PUBLISH_BATCH];
	size_t n;
	unsigned long long rng;	/* xorshift state for TTL jitter */
};

static void
pairs_clear(struct pairs *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->agent[i]);
		free(p->task[i]);
	}
	p->n = 0;
}

static double
random_unit(struct pairs *p)
{
	unsigned long long x = p->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	p->rng = x;
	return (double)(x >> 11) / 9007199254740992.0;	/* 2^53 */
}

/* Queues DEL of the load lock and SET of the value for one key. */
static int
queue_store(struct ace_redis_conn *conn, const char *key, const char *value, long long ttl_ms,
    struct ace_error *err)
{
	char lock[ACE_CACHE_KEY_MAX + sizeof(ACE_CACHE_LOCK_PREFIX)];
	char ttl[24];
	const char *del[] = { "DEL", lock };
	const char *set[] = { "SET", key, value, "PX", ttl };
	int rc;

	snprintf(lock, sizeof(lock), "%s%s", ACE_CACHE_LOCK_PREFIX, key);
	snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
	rc = ace_redis_append(conn, 2, del, NULL, err);
	if (rc == ACE_OK)
		rc = ace_redis_append(conn, 5, set, NULL, err);
	return rc;
}

/* Loads the values of the pairs from PostgreSQL and writes them to Redis in one pipeline. */
static int
publish_pairs(const struct ace_baseline_publish_options *o, struct pairs *p, long long *keys,
    struct ace_error *err)
{
	struct ace_cache_request reqs[PUBLISH_BATCH];
	struct ace_cache_result results[PUBLISH_BATCH];
	struct ace_redis_conn *conn;
	size_t queued = 0;
	int rc = ACE_OK;

	for (size_t i = 0; i < p->n; i++)
		reqs[i] = (struct ace_cache_request){ ACE_CACHE_BASELINE, p->agent[i], p->task[i] };
	ace_cache_get(o->loader, reqs, p->n, results);

	conn = ace_redis_checkout(o->redis, err);
	if (conn == NULL) {
		rc = ace_error_prefix(err, "redis %s", ace_redis_shown_url(o->redis));
		goto out;
	}
	for (size_t i = 0; i < p->n && rc == ACE_OK; i++) {
		char key[ACE_CACHE_KEY_MAX];

		/* A baseline deleted since it was computed has nothing to publish. */
		if (results[i].status == ACE_ERR_NOT_FOUND)
			continue;
		if (results[i].status != ACE_OK) {
			*err = results[i].err;
			rc = results[i].status;
			break;
		}
		/* An id that makes no valid key (a control character, say) is skipped, as ace-cache warm does. */
		if (ace_cache_key(&reqs[i], key, sizeof(key), err) != ACE_OK) {
			ace_log(ACE_LOG_WARNING, "baseline not published: its key is invalid",
			    "agent_id", reqs[i].agent_id, "task_type", reqs[i].task_type,
			    "error", err->message, NULL);
			continue;
		}
		rc = queue_store(conn, key, results[i].value,
		    ace_cache_ttl_ms(o->ttl, o->jitter_percent, random_unit(p)), err);
		if (rc == ACE_OK) {
			queued += 2;
			(*keys)++;
		}
	}
	for (size_t i = 0; i < queued && rc == ACE_OK; i++) {
		redisReply *reply;

		rc = ace_redis_read(conn, &reply, err);
		if (rc == ACE_OK)
			freeReplyObject(reply);
	}
	if (rc != ACE_OK && queued > 0)
		ace_error_prefix(err, "redis %s", ace_redis_shown_url(o->redis));
	ace_redis_checkin(o->redis, conn);
out:
	for (size_t i = 0; i < p->n; i++)
		ace_cache_result_release(&results[i]);
	pairs_clear(p);
	return rc;
}

int
ace_baseline_publish(PGconn *pg, const struct ace_baseline_publish_options *o,
    long long *keys, struct ace_error *err)
{
	struct pairs *p = calloc(1, sizeof(*p));
	PGresult *res;
	int rc = ACE_OK;

	*keys = 0;
	if (p == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	if (getrandom(&p->rng, sizeof(p->rng), 0) != (ssize_t)sizeof(p->rng))
		p->rng = (unsigned long long)(ace_monotonic() * 1e9);
	p->rng |= 1;	/* xorshift never leaves 0 */

	if (!PQsendQuery(pg, "SELECT agent_id, task_type FROM ace_baseline_groups GROUP BY 1, 2 ORDER BY 1, 2") ||
	    !PQsetSingleRowMode(pg)) {
		free(p);
		return ace_pg_error(err, pg, NULL, "listing the new baselines");
	}
	/* Results are read to the end even after a failure, so the connection stays usable. */
	while ((res = PQgetResult(pg)) != NULL) {
		ExecStatusType st = PQresultStatus(res);

		if (rc == ACE_OK && st == PGRES_SINGLE_TUPLE) {
			p->agent[p->n] = strdup(PQgetvalue(res, 0, 0));
			p->task[p->n] = strdup(PQgetvalue(res, 0, 1));
			p->n++;
			if (p->agent[p->n - 1] == NULL || p->task[p->n - 1] == NULL)
				rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
			else if (p->n == PUBLISH_BATCH)
				rc = publish_pairs(o, p, keys, err);
		} else if (rc == ACE_OK && st != PGRES_TUPLES_OK) {
			rc = ace_pg_error(err, pg, res, "listing the new baselines");
		}
		PQclear(res);
	}
	if (rc == ACE_OK && p->n > 0)
		rc = publish_pairs(o, p, keys, err);
	pairs_clear(p);
	free(p);
	return rc;
}

/* The column prefixes of the metrics in a baseline row, indexed by enum ace_drift_metric. */
static const char *const column_prefixes[ACE_DRIFT_METRICS] = {
	[ACE_DRIFT_SUCCESS_RATE] = "success_rate",
	[ACE_DRIFT_ERROR_RATE] = "error_rate",
	[ACE_DRIFT_DURATION_MS] = "duration_ms",
	[ACE_DRIFT_ACTION_COUNT] = "action_count",
	[ACE_DRIFT_VELOCITY] = "velocity",
};

/* Reads a number member; returns false when it is absent, null or not a number. */
static bool
number_member(const cJSON *row, const char *prefix, const char *suffix, double *value)
{
	char name[64];
	const cJSON *item;

	snprintf(name, sizeof(name), "%s%s", prefix, suffix);
	item = cJSON_GetObjectItemCaseSensitive(row, name);
	if (!cJSON_IsNumber(item))
		return false;
	*value = item->valuedouble;
	return true;
}

static int
parse_row(const cJSON *row, struct ace_baseline_stage *s, struct ace_error *err)
{
	double v;

	s->present = true;
	if (number_member(row, "version", "", &v))
		s->version = (long)v;
	if (number_member(row, "sample_size", "", &v))
		s->sample_size = (long)v;
	for (int m = 0; m < ACE_DRIFT_METRICS; m++) {
		struct ace_drift_baseline *b = &s->metrics[m];

		b->present = number_member(row, column_prefixes[m], "_mean", &b->mean);
		b->has_stddev = number_member(row, column_prefixes[m], "_stddev", &b->stddev);
	}
	s->json = cJSON_PrintUnformatted(row);
	if (s->json == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	return ACE_OK;
}

int
ace_baseline_parse(const char *value, struct ace_baseline_stage stages[ACE_BASELINE_STAGES],
    struct ace_error *err)
{
	cJSON *root = cJSON_Parse(value);
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(root, "stages");
	int rc = ACE_OK;

	memset(stages, 0, ACE_BASELINE_STAGES * sizeof(stages[0]));
	if (!cJSON_IsObject(root) || !cJSON_IsObject(rows)) {
		rc = ace_error_set(err, ACE_ERR_INVALID, "a baseline value is not an object with \"stages\"");
		goto out;
	}
	for (int i = 0; i < ACE_BASELINE_STAGES && rc == ACE_OK; i++) {
		const cJSON *row = cJSON_GetObjectItemCaseSensitive(rows, ace_stage_name(i));

		if (row == NULL || cJSON_IsNull(row))
			continue;
		if (!cJSON_IsObject(row))
			rc = ace_error_set(err, ACE_ERR_INVALID, "the baseline of stage %s is not an object",
			    ace_stage_name(i));
		else
			rc = parse_row(row, &stages[i], err);
	}
	if (rc != ACE_OK)
		ace_baseline_release(stages);
out:
	cJSON_Delete(root);
	return rc;
}

void
ace_baseline_release(struct ace_baseline_stage stages[ACE_BASELINE_STAGES])
{
	for (int i = 0; i < ACE_BASELINE_STAGES; i++) {
		free(stages[i].json);
		stages[i].json = NULL;
		stages[i].present = false;
	}
}
