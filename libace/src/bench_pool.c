/* The pool suite: many agent threads checking out, querying and returning connections at once. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_private.h"

/* Each agent waits a random 0 to THINK_MAX seconds between its queries, so that checkouts overlap unevenly. */
#define THINK_MAX 0.005

/*
 * Stack of each agent thread.  A checkout and a query need little, and
 * bench.min_concurrent_agents allows 10000 threads, which the default of
 * 8 MiB each would reserve 80 GiB of address space for.
 */
#define AGENT_STACK (256 * 1024)

static const char playbook_query[] =
	"SELECT version, context FROM context_playbooks WHERE agent_id = $1 ORDER BY version DESC LIMIT 1";

/* Holds the agents until all are created, so that they start together; or sends them home. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t opened;
	int state;			/* 0: closed, 1: go, 2: abort */
};

struct agent {
	struct bench *b;
	struct ace_pool *pool;
	struct gate *gate;
	double deadline;
	uint64_t rng;			/* the thread's own splitmix64 state */
	struct ace_bench_samples waits;	/* checkout waits in ms */
	bool served;			/* every cycle got a connection and an answer */
	bool out_of_memory;
	struct ace_error err;		/* the first failure */
};

static double
agent_uniform(struct agent *a)
{
	uint64_t z = (a->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static void
think(double seconds)
{
	struct timespec ts = { 0, (long)(seconds * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One cycle: check out, read a playbook, check in.  Returns false after a failure, recorded in a->err. */
static bool
agent_cycle(struct agent *a)
{
	char agent_id[96];
	const char *params[1] = { agent_id };
	struct ace_conn *conn;
	PGresult *res;
	double t0 = ace_monotonic();
	bool ok;

	conn = ace_pool_checkout(a->pool, &a->err);
	if (conn == NULL)
		return false;
	if (ace_bench_samples_add(&a->waits, (ace_monotonic() - t0) * 1000) < 0)
		a->out_of_memory = true;
	bench_agent_id(a->b, 1 + (long)(agent_uniform(a) * a->b->agents), agent_id, sizeof(agent_id));
	res = PQexecParams(ace_conn_pg(conn), playbook_query, 1, NULL, params, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		ace_pg_error(&a->err, ace_conn_pg(conn), res, "playbook query failed");
	PQclear(res);
	ace_pool_checkin(a->pool, conn, !ok);
	return ok;
}

static void *
agent_main(void *arg)
{
	struct agent *a = arg;
	bool ok = true;
	int state;

	pthread_mutex_lock(&a->gate->lock);
	while ((state = a->gate->state) == 0)
		pthread_cond_wait(&a->gate->opened, &a->gate->lock);
	pthread_mutex_unlock(&a->gate->lock);
	if (state != 1)
		return NULL;
	for (int i = 0; ok && i < a->b->pool_cycles && !bench_cancelled(a->b); i++) {
		if (i > 0 && ace_monotonic() > a->deadline)
			break;
		think(agent_uniform(a) * THINK_MAX);
		ok = agent_cycle(a);
	}
	a->served = ok && !a->out_of_memory;
	return NULL;
}

/* Starts n agent threads together and waits for all; *started counts those created. */
static int
run_agents(struct bench *b, struct ace_pool *pool, struct agent *agents, int n, int *started,
    struct ace_error *err)
{
	struct gate gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	pthread_t *threads = calloc((size_t)n, sizeof(*threads));
	pthread_attr_t attr;
	int rc = ACE_OK;

	if (threads == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, AGENT_STACK);
	*started = 0;
	for (int i = 0; i < n; i++) {
		agents[i].b = b;
		agents[i].pool = pool;
		agents[i].gate = &gate;
		agents[i].deadline = ace_monotonic() + b->duration;
		agents[i].rng = bench_random(b);
		if (pthread_create(&threads[i], &attr, agent_main, &agents[i]) != 0) {
			rc = ace_error_set(err, ACE_ERR_SYSTEM, "cannot start agent thread %d of %d", i + 1, n);
			break;
		}
		(*started)++;
	}
	pthread_mutex_lock(&gate.lock);
	gate.state = rc == ACE_OK ? 1 : 2;
	pthread_cond_broadcast(&gate.opened);
	pthread_mutex_unlock(&gate.lock);
	for (int i = 0; i < *started; i++)
		pthread_join(threads[i], NULL);
	pthread_attr_destroy(&attr);
	free(threads);
	return rc;
}

static int
report_pool(struct bench *b, struct agent *agents, int n, struct ace_pool *pool,
    struct ace_bench_series *waits, struct ace_error *err)
{
	const int size = b->cfg->pool_size, most = size + b->cfg->pool_max_overflow;
	struct ace_pool_stats st;
	const char *first_error = NULL;
	char note[320];
	int served = 0, rc;

	for (int i = 0; i < n; i++) {
		served += agents[i].served;
		if (!agents[i].served && first_error == NULL)
			first_error = agents[i].out_of_memory ? "out of memory" : agents[i].err.message;
		for (size_t j = 0; j < agents[i].waits.count; j++)
			if (ace_bench_samples_add(&waits->samples, agents[i].waits.values[j]) < 0)
				return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	}
	ace_pool_stats(pool, &st);
	ace_bench_summarize(&waits->samples, &waits->summary);

	if (first_error != NULL)
		snprintf(note, sizeof(note), "%d threads; first failure: %.240s", n, first_error);
	else
		snprintf(note, sizeof(note), "%d threads, %lu checkouts", n, st.checkouts);
	rc = bench_row(b, "Concurrent agents served", "agents", ACE_BENCH_GE,
	    b->cfg->bench_min_concurrent_agents, 0, served, note, err);
	if (rc == ACE_OK)
		rc = bench_row(b, "Checkout timeouts", "checkouts", ACE_BENCH_EQ, 0, 0, (double)st.timeouts,
		    NULL, err);
	if (rc == ACE_OK) {
		snprintf(note, sizeof(note), "%lu opened in all", st.opened);
		rc = bench_row(b, "Connections open at peak", "connections", ACE_BENCH_BETWEEN,
		    size < n ? size : n, most, st.max_open, note, err);
	}
	if (rc == ACE_OK)
		rc = bench_row(b, "Connections kept idle after the load", "connections", ACE_BENCH_EQ,
		    size < st.max_open ? size : st.max_open, 0, st.idle, NULL, err);
	if (rc == ACE_OK) {
		snprintf(note, sizeof(note), "p50 %.2f ms, max %.1f ms", waits->summary.median, waits->summary.max);
		rc = bench_row(b, "Checkout wait p95", "ms", ACE_BENCH_NO_TARGET, 0, 0,
		    waits->summary.count ? waits->summary.p95 : NAN, note, err);
	}
	return rc;
}

int
bench_pool(struct bench *b, struct ace_error *err)
{
	const int n = b->cfg->bench_min_concurrent_agents;
	struct ace_bench_series *waits;
	struct ace_pool *pool;
	struct agent *agents;
	int started = 0, rc;

	rc = bench_load_data(b, err);
	if (rc != ACE_OK)
		return rc;
	waits = bench_series(b, "pool checkout wait", "ms", err);
	if (waits == NULL)
		return err->code;
	agents = calloc((size_t)n, sizeof(*agents));
	if (agents == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	pool = bench_pool_new(b, b->cfg->pool_size, b->cfg->pool_max_overflow, err);
	if (pool == NULL) {
		rc = err->code;
		goto out;
	}
	bench_progress(b, 0.1);
	rc = run_agents(b, pool, agents, n, &started, err);
	bench_progress(b, 0.9);
	if (rc == ACE_OK && !bench_cancelled(b))
		rc = report_pool(b, agents, n, pool, waits, err);
out:
	for (int i = 0; i < n; i++)
		ace_bench_samples_release(&agents[i].waits);
	free(agents);
	ace_pool_free(pool);
	return rc;
}
