/* The cache suite: TTLs as Redis stores them, and hit rate and latency of lookups skewed over many agents. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_private.h"

/*
 * Agent k (from 1) is requested with a probability proportional to
 * 1 / k^ZIPF_EXPONENT: a few agents take most lookups, as in a fleet where
 * some agents run far more tasks than others.
 */
#define ZIPF_EXPONENT 1.0

/* Share of lookups that ask for a playbook; the rest ask for a baseline. */
#define PLAYBOOK_SHARE 0.8

/* Builds the cumulative distribution of the Zipf law over n agents. */
static double *
zipf_table(int n)
{
	double *cdf = malloc((size_t)n * sizeof(*cdf)), sum = 0;

	if (cdf == NULL)
		return NULL;
	for (int k = 0; k < n; k++) {
		sum += 1 / pow(k + 1, ZIPF_EXPONENT);
		cdf[k] = sum;
	}
	for (int k = 0; k < n; k++)
		cdf[k] /= sum;
	return cdf;
}

/* Draws an agent number from 1 to n by binary search in the table. */
static int
zipf_draw(struct bench *b, const double *cdf, int n)
{
	double u = bench_uniform(b);
	int lo = 0, hi = n - 1;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo + 1;
}

/* Reads the remaining TTL of a key in seconds, or NaN when it has none. */
static int
read_ttl(struct bench *b, const char *key, double *seconds, struct ace_error *err)
{
	const char *argv[] = { "PTTL", key };
	struct ace_redis_conn *conn = ace_redis_checkout(b->redis, err);
	redisReply *reply = NULL;
	int rc;

	if (conn == NULL)
		return err->code;
	rc = ace_redis_command(conn, &reply, err, 2, argv, NULL);
	*seconds = rc == ACE_OK && reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0 ?
	    (double)reply->integer / 1000 : NAN;
	if (reply != NULL)
		freeReplyObject(reply);
	ace_redis_checkin(b->redis, conn);
	return rc;
}

/*
 * Removes the key of req, looks it up so that it is loaded and stored
 * afresh, and reads its TTL back from Redis.  The range allows the jitter
 * and 1 s for the time between the write and the read.
 */
static int
check_ttl(struct bench *b, struct ace_cache *cache, const struct ace_cache_request *req,
    const char *metric, int ttl, struct ace_error *err)
{
	struct ace_cache_result res;
	char key[ACE_CACHE_KEY_MAX], note[128];
	double lower = ttl * (100.0 - b->cfg->ttl_jitter_percent) / 100 - 1, seconds = NAN;
	long long removed;
	int rc;

	rc = ace_cache_key(req, key, sizeof(key), err);
	if (rc == ACE_OK)
		rc = ace_cache_invalidate(cache, req, &removed, err);
	if (rc != ACE_OK)
		return rc;
	ace_cache_get(cache, req, 1, &res);
	rc = res.status;
	if (rc != ACE_OK)
		*err = res.err;
	ace_cache_result_release(&res);
	if (rc == ACE_OK)
		rc = read_ttl(b, key, &seconds, err);
	if (rc != ACE_OK)
		return rc;
	snprintf(note, sizeof(note), "configured %d s, jitter up to %d%%", ttl, b->cfg->ttl_jitter_percent);
	return bench_row(b, metric, "s", ACE_BENCH_BETWEEN, floor(lower), ttl, seconds, note, err);
}

struct lookups {
	long hits, misses;
	struct ace_bench_series *hit, *miss;
};

/*
 * Runs the skewed lookups from an empty cache, bounded by count and by
 * bench.duration.  The hit rate is counted here, from the source of each result.
 * NOTE: ace_cache_get() also counts these lookups in the shared ace:stats
 * hash, so hit rates that ace-cache and ace-stats report include the run's.
 */
static int
run_lookups(struct bench *b, struct ace_cache *cache, struct lookups *l, struct ace_error *err)
{
	double *cdf = zipf_table(b->agents), start = ace_monotonic();
	int rc = ACE_OK;

	if (cdf == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	for (int i = 0; i < b->requests && rc == ACE_OK && !bench_cancelled(b); i++) {
		struct ace_cache_request req = { 0 };
		struct ace_cache_result res;
		char agent[96];
		double t0, ms;

		if (ace_monotonic() - start > b->duration)
			break;
		bench_agent_id(b, zipf_draw(b, cdf, b->agents), agent, sizeof(agent));
		req.agent_id = agent;
		if (bench_uniform(b) < PLAYBOOK_SHARE) {
			req.kind = ACE_CACHE_PLAYBOOK;
		} else {
			req.kind = ACE_CACHE_BASELINE;
			req.task_type = bench_task_types[bench_random(b) % BENCH_TASK_TYPES];
		}
		t0 = ace_monotonic();
		ace_cache_get(cache, &req, 1, &res);
		ms = (ace_monotonic() - t0) * 1000;
		if (res.status != ACE_OK && res.status != ACE_ERR_NOT_FOUND) {
			*err = res.err;
			rc = res.status;
		} else if (res.source == ACE_CACHE_FROM_REDIS) {
			l->hits++;
			if (ace_bench_samples_add(&l->hit->samples, ms) < 0)
				rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		} else {
			l->misses++;
			if (ace_bench_samples_add(&l->miss->samples, ms) < 0)
				rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		}
		ace_cache_result_release(&res);
		if ((i & 63) == 0)
			bench_progress(b, 0.9 * fmax((double)i / b->requests, (ace_monotonic() - start) / b->duration));
	}
	free(cdf);
	return rc;
}

static int
report_lookups(struct bench *b, struct lookups *l, struct ace_error *err)
{
	const double max_ms = b->cfg->bench_max_cache_latency * 1000;
	long total = l->hits + l->misses;
	char note[200];
	int rc;

	ace_bench_summarize(&l->hit->samples, &l->hit->summary);
	ace_bench_summarize(&l->miss->samples, &l->miss->summary);
	snprintf(note, sizeof(note), "%ld lookups from an empty cache, %ld misses, Zipf exponent %.1f",
	    total, l->misses, ZIPF_EXPONENT);
	rc = bench_row(b, "Hit rate, skewed over agents", "%", ACE_BENCH_GT,
	    b->cfg->bench_min_hit_rate_percent, 0, total > 0 ? 100.0 * l->hits / total : NAN, note, err);
	if (rc == ACE_OK)
		rc = bench_row(b, "Hit latency p50", "ms", ACE_BENCH_LT, max_ms, 0,
		    l->hits > 0 ? l->hit->summary.median : NAN, NULL, err);
	if (rc == ACE_OK)
		rc = bench_row(b, "Hit latency p95", "ms", ACE_BENCH_LT, max_ms, 0,
		    l->hits > 0 ? l->hit->summary.p95 : NAN, NULL, err);
	if (rc == ACE_OK)
		rc = bench_row(b, "Miss latency p95, read through", "ms", ACE_BENCH_LT,
		    b->cfg->bench_max_query_latency * 1000, 0, l->misses > 0 ? l->miss->summary.p95 : NAN,
		    "Redis miss, PostgreSQL query, Redis write", err);
	return rc;
}

int
bench_cache(struct bench *b, struct ace_error *err)
{
	struct ace_cache_request playbook = { ACE_CACHE_PLAYBOOK, NULL, NULL };
	struct ace_cache_request baseline = { ACE_CACHE_BASELINE, NULL, "refund" };
	struct lookups l = { 0 };
	struct ace_cache *cache = NULL;
	struct ace_pool *pool;
	char agent[96];
	int rc;

	rc = bench_load_data(b, err);
	if (rc != ACE_OK)
		return rc;
	if (bench_series(b, "cache hit latency", "ms", err) == NULL ||
	    bench_series(b, "cache miss latency, read through", "ms", err) == NULL)
		return err->code;
	/* Taken after both appends, which may move the array. */
	l.hit = &b->report->series[b->report->nseries - 2];
	l.miss = &b->report->series[b->report->nseries - 1];
	pool = bench_pool_new(b, b->cfg->pool_size, b->cfg->pool_max_overflow, err);
	if (pool != NULL)
		cache = bench_cache_new(b, pool, b->redis, err);
	if (cache == NULL) {
		rc = err->code;
		goto out;
	}

	rc = run_lookups(b, cache, &l, err);
	if (rc == ACE_OK && !bench_cancelled(b))
		rc = report_lookups(b, &l, err);

	bench_agent_id(b, 1, agent, sizeof(agent));
	playbook.agent_id = baseline.agent_id = agent;
	if (rc == ACE_OK && !bench_cancelled(b))
		rc = check_ttl(b, cache, &playbook, "Playbook TTL as stored", b->cfg->playbook_ttl, err);
	if (rc == ACE_OK && !bench_cancelled(b))
		rc = check_ttl(b, cache, &baseline, "Baseline TTL as stored", b->cfg->baseline_ttl, err);
out:
	ace_cache_free(cache);
	ace_pool_free(pool);
	return rc;
}
