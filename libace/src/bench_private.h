/* The state of one benchmark run, shared by the runner and the suites, and their helpers. */
#ifndef ACE_BENCH_PRIVATE_H
#define ACE_BENCH_PRIVATE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "ace/bench.h"
#include "ace/cache.h"
#include "ace/pool.h"
#include "ace/redis.h"

/* Task types and stages of the generated workloads. */
#define BENCH_TASK_TYPES 3
extern const char *const bench_task_types[BENCH_TASK_TYPES];

struct bench {
	const struct ace_bench_options *o;
	const struct ace_config *cfg;
	struct ace_bench_report *report;

	char schema[64];		/* ace_bench_<pid>_<hex>, where every table of the run lives */
	char search_path[160];		/* the schema, then TimescaleDB's schema when it is elsewhere */
	char agent_prefix[64];		/* "ace-bench-<pid>-<hex>-": every agent id starts with it */
	char *conninfo;			/* database.url plus the schema's search_path; owned */
	PGconn *pg;			/* setup, generated data, probes and cleanup */
	struct ace_redis *redis;	/* opened by the first suite that needs Redis */
	uint64_t rng;			/* splitmix64 state, from bench.seed */
	int suite;			/* the suite running, for progress */

	/* Workload sizes: from the settings, or small ones with quick. */
	double duration;		/* the longest any timed loop runs */
	int agents;
	int requests;			/* cache lookups */
	int flush_repeats;		/* partial batches timed through ace-ingest */
	int pool_cycles;		/* checkouts per pool thread, at most */
	int tasks;			/* simulated tasks per overhead variant, at most */
	int query_runs;			/* runs of each query, at most */
	long metric_rows;		/* recent metrics for the query suite */
	long history_rows;		/* older metrics for the compression suite */
	bool data_loaded;

	int layout;			/* enum ace_storage_layout of the schema's performance_metrics */
	char storage_note[400];		/* why migration 0005 did not take TimescaleDB, or "" */
};

/* Returns the next pseudo-random 64-bit number of the run's seeded sequence (splitmix64). */
uint64_t bench_random(struct bench *b);

/* Returns a pseudo-random number in [0, 1) from the same sequence. */
double bench_uniform(struct bench *b);

/* Whether the caller's cancel flag is set. */
bool bench_cancelled(const struct bench *b);

/* Reports progress of the running suite, fraction from 0 to 1. */
void bench_progress(struct bench *b, double fraction);

/* Writes the agent id of agent number n (from 1) into out. */
void bench_agent_id(const struct bench *b, long n, char *out, size_t len);

/* Runs one statement that returns no rows; fails with the server's error. */
int bench_exec(PGconn *pg, const char *sql, struct ace_error *err);

/* Runs a query whose first row and column is a number, stored in *value. */
int bench_query_number(PGconn *pg, const char *sql, double *value, struct ace_error *err);

/* Creates a pool on the run's schema; opens no connection yet. */
struct ace_pool *bench_pool_new(struct bench *b, int size, int max_overflow, struct ace_error *err);

/* Opens the run's Redis client when it is not open yet. */
int bench_redis_open(struct bench *b, struct ace_error *err);

/* Creates a cache over pool and the run's Redis (NULL: PostgreSQL only), with the configured TTLs. */
struct ace_cache *bench_cache_new(struct bench *b, struct ace_pool *pool, struct ace_redis *redis,
    struct ace_error *err);

/*
 * Loads the playbooks, baselines and recent metrics of the generated agents
 * into the run's schema, once per run.  Seeded, so every run with the same
 * seed and sizes writes the same values.
 */
int bench_load_data(struct bench *b, struct ace_error *err);

/*
 * Adds a measured row to the report.  note may be NULL.  Fails only with
 * ACE_ERR_SYSTEM when memory runs out.
 */
int bench_row(struct bench *b, const char *metric, const char *unit, int op, double value,
    double upper, double actual, const char *note, struct ace_error *err);

/* Adds a row that was not measured, with the reason. */
int bench_skip(struct bench *b, const char *metric, const char *unit, int op, double value,
    double upper, const char *reason, struct ace_error *err);

/*
 * Adds an empty series of the running suite; NULL with err set when memory
 * runs out.  The pointer is valid until the next series is added.
 */
struct ace_bench_series *bench_series(struct bench *b, const char *name, const char *unit,
    struct ace_error *err);

/* The suites.  Each adds its rows; a failure of a server ends the run. */
int bench_batching(struct bench *b, struct ace_error *err);
int bench_cache(struct bench *b, struct ace_error *err);
int bench_pool(struct bench *b, struct ace_error *err);
int bench_overhead(struct bench *b, struct ace_error *err);
int bench_compression(struct bench *b, struct ace_error *err);
int bench_query(struct bench *b, struct ace_error *err);

#endif
