/*
 * The overhead suite: a simulated agent runs tasks of a fixed duration,
 * alternately bare and instrumented (four metric records into the ingest
 * pipeline and a playbook read through the cache), and the difference is
 * the overhead of ace.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ace/buf.h"
#include "ace/ingest.h"
#include "bench_private.h"

/* Sleeps for the task's work: an agent mostly waits on a model call, and a sleep leaves the CPUs to ace's threads. */
static void
do_work(double seconds)
{
	struct timespec ts;

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The instrumentation of one task: one record per stage, then the agent's playbook. */
static int
instrument(struct bench *b, struct ace_ingest *ing, struct ace_cache *cache, const char *agent,
    long task, struct ace_buf *line, struct ace_error *err)
{
	static const char *const stages[] = { "planning", "execution", "reflection", "verification" };
	struct ace_cache_request req = { ACE_CACHE_PLAYBOOK, agent, NULL };
	struct ace_cache_result res;
	int rc = ACE_OK;

	for (int s = 0; s < 4 && rc == ACE_OK; s++) {
		ace_buf_reset(line);
		if (ace_buf_printf(line,
		    "{\"agent_id\":\"%s\",\"task_id\":\"%stask-overhead-%ld\",\"task_type\":\"refund\","
		    "\"stage\":\"%s\",\"stage_success_rate\":0.9,\"stage_error_rate\":0.05,"
		    "\"stage_duration_ms\":%d,\"stage_action_count\":3,\"model\":\"gpt-4.1\"}",
		    agent, b->agent_prefix, task, stages[s], (int)(b->cfg->bench_task_work * 250)) < 0)
			return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		rc = ace_ingest_add(ing, "bench", (uint64_t)task * 4 + (uint64_t)s + 1, line->data, line->len, err);
	}
	if (rc != ACE_OK)
		return rc;
	ace_cache_get(cache, &req, 1, &res);
	rc = res.status;
	if (rc != ACE_OK)
		*err = res.err;
	ace_cache_result_release(&res);
	return rc;
}

struct overhead {
	struct ace_bench_series *bare, *instrumented, *cost;
};

/* Runs pairs of tasks, bare then instrumented, bounded by count and by bench.duration. */
static int
run_tasks(struct bench *b, struct ace_ingest *ing, struct ace_cache *cache, struct overhead *o,
    struct ace_error *err)
{
	struct ace_buf line = ACE_BUF_INIT;
	double start = ace_monotonic(), work = b->cfg->bench_task_work;
	char agent[96];
	int rc = ACE_OK;

	bench_agent_id(b, 1, agent, sizeof(agent));
	/* The first read loads the playbook into Redis; tasks then read it as a running agent does. */
	rc = instrument(b, ing, cache, agent, 0, &line, err);
	for (long task = 1; task <= b->tasks && rc == ACE_OK && !bench_cancelled(b); task++) {
		double t0, t1, t2;

		if (task > 1 && ace_monotonic() - start + 2 * work > b->duration)
			break;
		t0 = ace_monotonic();
		do_work(work);
		t1 = ace_monotonic();
		do_work(work);
		t2 = ace_monotonic();
		rc = instrument(b, ing, cache, agent, task, &line, err);
		if (rc != ACE_OK)
			break;
		if (ace_bench_samples_add(&o->bare->samples, (t1 - t0) * 1000) < 0 ||
		    ace_bench_samples_add(&o->instrumented->samples, (ace_monotonic() - t1) * 1000) < 0 ||
		    ace_bench_samples_add(&o->cost->samples, (ace_monotonic() - t2) * 1000) < 0)
			rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		bench_progress(b, fmax((double)task / b->tasks, (ace_monotonic() - start) / b->duration));
	}
	ace_buf_release(&line);
	return rc;
}

static int
report_overhead(struct bench *b, struct overhead *o, struct ace_error *err)
{
	struct ace_bench_summary bare, instr, cost;
	char note[200];
	int rc;

	ace_bench_summarize(&o->bare->samples, &bare);
	ace_bench_summarize(&o->instrumented->samples, &instr);
	ace_bench_summarize(&o->cost->samples, &cost);
	if (bare.count == 0)
		return ACE_OK;
	snprintf(note, sizeof(note), "p95 %.3f ms; 4 records and 1 playbook read", cost.p95);
	rc = bench_row(b, "Instrumentation time per task", "ms", ACE_BENCH_NO_TARGET, 0, 0, cost.mean,
	    note, err);
	if (rc != ACE_OK)
		return rc;
	snprintf(note, sizeof(note), "%zu task pairs of %.0f ms: %.3f ms bare, %.3f ms instrumented (means)",
	    bare.count, b->cfg->bench_task_work * 1000, bare.mean, instr.mean);
	return bench_row(b, "End-to-end overhead", "%", ACE_BENCH_LT, b->cfg->bench_max_overhead_percent, 0,
	    (instr.mean - bare.mean) / bare.mean * 100, note, err);
}

int
bench_overhead(struct bench *b, struct ace_error *err)
{
	struct ace_ingest_options io = {
		.batch_size = b->cfg->batch_size,
		.batch_timeout = b->cfg->batch_timeout,
		.workers = b->cfg->workers,
		.retry_timeout = b->cfg->retry_timeout,
		.retry_initial_delay = b->cfg->retry_initial_delay,
		.retry_max_delay = b->cfg->retry_max_delay,
		.cancel = b->o->cancel,
	};
	struct overhead o = { 0 };
	struct ace_cache *cache = NULL;
	struct ace_ingest *ing = NULL;
	struct ace_pool *pool;
	size_t first = b->report->nseries;
	int rc, frc;

	rc = bench_load_data(b, err);
	if (rc != ACE_OK)
		return rc;
	if (bench_series(b, "bare task", "ms", err) == NULL ||
	    bench_series(b, "instrumented task", "ms", err) == NULL ||
	    bench_series(b, "instrumentation alone", "ms", err) == NULL)
		return err->code;
	o.bare = &b->report->series[first];
	o.instrumented = &b->report->series[first + 1];
	o.cost = &b->report->series[first + 2];

	pool = bench_pool_new(b, b->cfg->pool_size, b->cfg->pool_max_overflow, err);
	if (pool == NULL)
		return err->code;
	io.pool = pool;
	cache = bench_cache_new(b, pool, b->redis, err);
	if (cache != NULL)
		ing = ace_ingest_new(&io, err);
	if (ing == NULL) {
		rc = err->code;
		goto out;
	}
	rc = run_tasks(b, ing, cache, &o, err);
	frc = ace_ingest_finish(ing, rc == ACE_OK ? err : NULL);
	if (rc == ACE_OK)
		rc = frc;
	if (rc == ACE_OK && !bench_cancelled(b))
		rc = report_overhead(b, &o, err);
out:
	ace_ingest_free(ing);
	ace_cache_free(cache);
	ace_pool_free(pool);
	return rc;
}
