/* Settings of every ace tool: one table of keys, read from YAML, environment and flags. */
#ifndef ACE_CONFIG_H
#define ACE_CONFIG_H

#include <stddef.h>

#include "ace/error.h"

/*
 * Every setting, with its default from ace_config_init().  Sources are
 * applied in order (ace.yaml, then environment, then command-line flags), so
 * a later source wins.  Durations are in seconds.  Strings are owned by the
 * struct and freed by ace_config_release().
 */
struct ace_config {
	char *database_url;		/* libpq URI or key/value string; NULL: libpq's PG* defaults */
	char *redis_url;		/* redis://[user:password@]host:port/db or unix:///path?db=N */

	int pool_size;			/* connections the pool keeps open */
	int pool_max_overflow;		/* extra connections allowed under load */
	double pool_recycle;		/* a connection older than this is replaced at checkout */
	double pool_timeout;		/* how long a checkout waits for a free connection */
	double connect_timeout;		/* how long one connection attempt may take */

	int batch_size;			/* records buffered before a flush */
	double batch_timeout;		/* a batch is flushed at most this long after its first record */
	int workers;			/* batches written at once, each on its own connection */
	double retry_timeout;		/* how long a batch is retried while the database is unreachable */
	double retry_initial_delay;	/* first backoff delay; doubles per attempt */
	double retry_max_delay;		/* backoff delays stop growing here */
	long max_line_bytes;		/* longer input lines are rejected */

	char *stats_dir;		/* folder of per-process counter files; NULL: none written */
	double baseline_window;		/* seconds of metrics, back from now, that make a baseline */
	int min_samples;		/* groups with fewer records get no baseline */
	double drift_velocity_ratio;	/* velocity below this fraction of its baseline mean is drift */
	double drift_error_rate_ratio;	/* error rate above this multiple of its baseline mean is drift */
	double drift_min_success_rate;	/* success rate below this is drift */
	double health_min_hit_rate;	/* health fails below this cache hit rate */
	double health_max_lag;		/* health fails when the newest metric is older than this */

	char *migrations_dir;		/* NULL: the migrations built into the binary */

	int storage;			/* enum ace_storage_mode of ace/storage.h */
	double chunk_interval;		/* time range of one chunk or partition */
	double compress_after;		/* chunks older than this are compressed; 0: no policy */
	char *compress_segmentby;	/* columns, comma-separated; NULL: no segmenting */
	char *compress_orderby;		/* columns with ASC or DESC, comma-separated */
	double retention;		/* chunks or partitions older than this are dropped; 0: never */
	int premake;			/* partitions kept ready ahead of now */

	int playbook_ttl;		/* Redis TTL of a playbook */
	int baseline_ttl;		/* Redis TTL of a baseline */
	int redis_max_connections;	/* Redis connections per process */
	double redis_connect_timeout;	/* how long one Redis connection attempt may take */
	double redis_command_timeout;	/* how long a Redis reply or a free connection is waited for */
	int redis_breaker_failures;	/* consecutive Redis failures that open the circuit breaker */
	double redis_breaker_cooldown;	/* how long an open breaker waits before it probes Redis */
	int negative_ttl;		/* Redis TTL of a value absent from PostgreSQL */
	int ttl_jitter_percent;		/* each TTL is shortened by a random 0 to this percent */
	double cache_lock_timeout;	/* lifetime of a load lock, and the longest wait for it */
	int cache_pipeline_size;	/* filter-mode requests sent to Redis in one pipeline */

	int bench_seed;			/* seed of ace-bench's generated workloads */
	double bench_duration;		/* longest run of each timed ace-bench loop */
	double bench_task_work;		/* work of one simulated agent task in the overhead suite */
	int bench_agents;		/* agents in ace-bench's generated workloads */
	double bench_flush_tolerance;	/* how late after batch_timeout a partial batch may flush */
	double bench_max_overhead_percent;	/* target: instrumentation adds less than this */
	double bench_min_hit_rate_percent;	/* target: cache hit rate above this */
	int bench_min_records_per_hour;	/* target: sustained ingest rate of at least this */
	double bench_max_cache_latency;	/* target: cache hit latency p50 and p95 below this */
	double bench_max_write_latency;	/* target: record-to-commit latency p95 below this */
	double bench_max_query_latency;	/* target: query and read-through latency p95 below this */
	int bench_min_concurrent_agents;	/* target: pool threads served at once, at least this */

	int log_level;			/* enum ace_log_level */
	int log_format;			/* enum ace_log_format */
};

enum ace_config_type {
	ACE_CONFIG_STRING,
	ACE_CONFIG_INT,
	ACE_CONFIG_SECONDS,
	ACE_CONFIG_BYTES,
	ACE_CONFIG_NUMBER,	/* a decimal number without a unit */
	ACE_CONFIG_LOG_LEVEL,
	ACE_CONFIG_LOG_FORMAT,
	ACE_CONFIG_STORAGE,	/* auto, timescaledb or partitioned */
};

/* One row of the table of settings; ace.yaml(5) documents the same rows. */
struct ace_config_key {
	const char *name;	/* dotted path in ace.yaml, e.g. "ingest.batch_size" */
	int type;		/* enum ace_config_type */
	size_t offset;		/* where the value lives in struct ace_config */
	double min, max;	/* inclusive range of numeric values */
	const char *default_value;
	const char *unit;	/* "", "seconds", "bytes", "records", ... */
	const char *env;	/* environment variable that sets it */
	const char *help;
};

/* Returns the table of keys and stores its length in *count. */
const struct ace_config_key *ace_config_keys(size_t *count);

/* Fills cfg with the defaults.  Cannot fail except on out of memory (returns -5). */
int ace_config_init(struct ace_config *cfg);

/* Frees the strings cfg owns; cfg can be initialized again after. */
void ace_config_release(struct ace_config *cfg);

/*
 * Reads a YAML file of sections and keys ("ingest:\n  batch_size: 500").
 * Fails with ACE_ERR_INVALID on a syntax error, an unknown key, a wrong type
 * or an out-of-range value; the message names the file, the line and the
 * key.  ACE_ERR_NOT_FOUND when the file cannot be opened.
 */
int ace_config_load_file(struct ace_config *cfg, const char *path, struct ace_error *err);

/*
 * Applies environment variables: DATABASE_URL, REDIS_URL,
 * DATABASE_POOL_SIZE, DATABASE_MAX_OVERFLOW, DATABASE_POOL_RECYCLE,
 * DATABASE_POOL_TIMEOUT, and ACE_<SECTION>_<KEY> for every other key.  Empty
 * variables are ignored.  Fails with ACE_ERR_INVALID naming the variable.
 */
int ace_config_load_env(struct ace_config *cfg, struct ace_error *err);

/*
 * Sets key (a dotted name from the table) from text.  source names where the
 * text came from ("--batch-size", "ace.yaml:12") for the error message.
 */
int ace_config_set(struct ace_config *cfg, const char *key, const char *text,
    const char *source, struct ace_error *err);

/*
 * The usual sequence: defaults, then the file named by path, or by
 * ACE_CONFIG when path is NULL (no file when neither is set), then the
 * environment.  Flags are applied by the caller afterwards.
 */
int ace_config_load(struct ace_config *cfg, const char *path, struct ace_error *err);

/* Parses a duration: a number of seconds, or a number with ms, s, m, h or d. */
int ace_parse_seconds(const char *text, double *seconds);

#endif
