/* The table of settings and the readers of ace.yaml, environment and flags. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "ace/config.h"
#include "ace/log.h"
#include "ace/storage.h"

#define KEY(name, type, field, min, max, def, unit, env, help) \
	{ name, type, offsetof(struct ace_config, field), min, max, def, unit, env, help }

static const struct ace_config_key keys[] = {
	KEY("database.url", ACE_CONFIG_STRING, database_url, 0, 0, "",
	    "", "DATABASE_URL", "PostgreSQL connection URI or key/value string"),
	KEY("database.pool_size", ACE_CONFIG_INT, pool_size, 1, 1000, "10",
	    "connections", "DATABASE_POOL_SIZE", "connections the pool keeps open"),
	KEY("database.max_overflow", ACE_CONFIG_INT, pool_max_overflow, 0, 1000, "40",
	    "connections", "DATABASE_MAX_OVERFLOW", "extra connections allowed under load"),
	KEY("database.pool_recycle", ACE_CONFIG_SECONDS, pool_recycle, 0, 1e9, "3600",
	    "seconds", "DATABASE_POOL_RECYCLE", "replace a connection older than this at checkout (0: never)"),
	KEY("database.pool_timeout", ACE_CONFIG_SECONDS, pool_timeout, 0, 86400, "30",
	    "seconds", "DATABASE_POOL_TIMEOUT", "how long a checkout waits for a free connection"),
	KEY("database.connect_timeout", ACE_CONFIG_SECONDS, connect_timeout, 1, 3600, "10",
	    "seconds", "ACE_DATABASE_CONNECT_TIMEOUT", "how long one connection attempt may take"),
	KEY("database.migrations_dir", ACE_CONFIG_STRING, migrations_dir, 0, 0, "",
	    "", "ACE_DATABASE_MIGRATIONS_DIR", "folder of migration files (empty: those built in)"),
	KEY("ingest.batch_size", ACE_CONFIG_INT, batch_size, 1, 1000000, "100",
	    "records", "ACE_INGEST_BATCH_SIZE", "records buffered before a flush"),
	KEY("ingest.batch_timeout", ACE_CONFIG_SECONDS, batch_timeout, 0.001, 3600, "1.0",
	    "seconds", "ACE_INGEST_BATCH_TIMEOUT", "flush at most this long after a batch's first record"),
	KEY("ingest.workers", ACE_CONFIG_INT, workers, 1, 64, "1",
	    "connections", "ACE_INGEST_WORKERS", "batches written at once"),
	KEY("ingest.retry_timeout", ACE_CONFIG_SECONDS, retry_timeout, 0, 86400 * 7, "300",
	    "seconds", "ACE_INGEST_RETRY_TIMEOUT", "how long to retry a batch while the database is unreachable"),
	KEY("ingest.retry_initial_delay", ACE_CONFIG_SECONDS, retry_initial_delay, 0.001, 60, "0.1",
	    "seconds", "ACE_INGEST_RETRY_INITIAL_DELAY", "first retry delay; doubles per attempt"),
	KEY("ingest.retry_max_delay", ACE_CONFIG_SECONDS, retry_max_delay, 0.001, 3600, "10",
	    "seconds", "ACE_INGEST_RETRY_MAX_DELAY", "retry delays stop growing here"),
	KEY("ingest.max_line_bytes", ACE_CONFIG_BYTES, max_line_bytes, 64, 1 << 30, "1048576",
	    "bytes", "ACE_INGEST_MAX_LINE_BYTES", "longer input lines are rejected"),
	KEY("stats.dir", ACE_CONFIG_STRING, stats_dir, 0, 0, "",
	    "", "ACE_STATS_DIR", "folder where each running ace process writes its counters (empty: none)"),
	KEY("stats.baseline_window", ACE_CONFIG_SECONDS, baseline_window, 60, 31536000, "604800",
	    "seconds", "ACE_STATS_BASELINE_WINDOW", "metrics of this last stretch of time make a baseline"),
	KEY("stats.min_samples", ACE_CONFIG_INT, min_samples, 2, 1000000000, "30",
	    "records", "ACE_STATS_MIN_SAMPLES", "groups with fewer records get no baseline"),
	KEY("stats.drift_velocity_ratio", ACE_CONFIG_NUMBER, drift_velocity_ratio, 0, 1, "0.5",
	    "", "ACE_STATS_DRIFT_VELOCITY_RATIO", "velocity below this fraction of its baseline mean is drift"),
	KEY("stats.drift_error_ratio", ACE_CONFIG_NUMBER, drift_error_rate_ratio, 1, 1000, "2",
	    "", "ACE_STATS_DRIFT_ERROR_RATIO", "error rate above this multiple of its baseline mean is drift"),
	KEY("stats.drift_success_rate", ACE_CONFIG_NUMBER, drift_min_success_rate, 0, 1, "0.7",
	    "", "ACE_STATS_DRIFT_SUCCESS_RATE", "success rate below this is drift"),
	KEY("stats.health_min_hit_rate", ACE_CONFIG_NUMBER, health_min_hit_rate, 0, 1, "0.8",
	    "", "ACE_STATS_HEALTH_MIN_HIT_RATE", "health fails below this cache hit rate"),
	KEY("stats.health_max_lag", ACE_CONFIG_SECONDS, health_max_lag, 1, 31536000, "300",
	    "seconds", "ACE_STATS_HEALTH_MAX_LAG", "health fails when the newest metric is older than this"),
	KEY("bench.seed", ACE_CONFIG_INT, bench_seed, 0, 2147483647, "1",
	    "", "ACE_BENCH_SEED", "seed of the generated workloads; the same seed generates the same data"),
	KEY("bench.duration", ACE_CONFIG_SECONDS, bench_duration, 0.1, 86400, "10",
	    "seconds", "ACE_BENCH_DURATION", "longest run of each timed benchmark loop"),
	KEY("bench.task_work", ACE_CONFIG_SECONDS, bench_task_work, 0.001, 60, "50ms",
	    "seconds", "ACE_BENCH_TASK_WORK", "work of one simulated agent task in the overhead suite"),
	KEY("bench.agents", ACE_CONFIG_INT, bench_agents, 1, 1000000, "1000",
	    "agents", "ACE_BENCH_AGENTS", "agents with playbooks, baselines and metrics in the workloads"),
	KEY("bench.flush_tolerance", ACE_CONFIG_SECONDS, bench_flush_tolerance, 0.001, 60, "100ms",
	    "seconds", "ACE_BENCH_FLUSH_TOLERANCE", "how late after batch_timeout a partial batch may flush"),
	KEY("bench.max_overhead_percent", ACE_CONFIG_NUMBER, bench_max_overhead_percent, 0, 1000, "5",
	    "percent", "ACE_BENCH_MAX_OVERHEAD_PERCENT", "target: instrumentation adds less than this to a task"),
	KEY("bench.min_hit_rate_percent", ACE_CONFIG_NUMBER, bench_min_hit_rate_percent, 0, 100, "80",
	    "percent", "ACE_BENCH_MIN_HIT_RATE_PERCENT", "target: cache hit rate above this"),
	KEY("bench.min_records_per_hour", ACE_CONFIG_INT, bench_min_records_per_hour, 1, 2000000000, "10000",
	    "records", "ACE_BENCH_MIN_RECORDS_PER_HOUR", "target: sustained ingest rate of at least this"),
	KEY("bench.max_cache_latency", ACE_CONFIG_SECONDS, bench_max_cache_latency, 1e-6, 3600, "10ms",
	    "seconds", "ACE_BENCH_MAX_CACHE_LATENCY", "target: cache hit latency p50 and p95 below this"),
	KEY("bench.max_write_latency", ACE_CONFIG_SECONDS, bench_max_write_latency, 1e-6, 3600, "50ms",
	    "seconds", "ACE_BENCH_MAX_WRITE_LATENCY", "target: record-to-commit latency p95 below this"),
	KEY("bench.max_query_latency", ACE_CONFIG_SECONDS, bench_max_query_latency, 1e-6, 3600, "100ms",
	    "seconds", "ACE_BENCH_MAX_QUERY_LATENCY", "target: query and read-through latency p95 below this"),
	KEY("bench.min_concurrent_agents", ACE_CONFIG_INT, bench_min_concurrent_agents, 1, 10000, "100",
	    "agents", "ACE_BENCH_MIN_CONCURRENT_AGENTS", "target: pool threads served at once without a timeout"),
	KEY("redis.url", ACE_CONFIG_STRING, redis_url, 0, 0, "redis://127.0.0.1:6379/0",
	    "", "REDIS_URL", "Redis URL"),
	KEY("redis.max_connections", ACE_CONFIG_INT, redis_max_connections, 1, 10000, "50",
	    "connections", "ACE_REDIS_MAX_CONNECTIONS", "Redis connections per process"),
	KEY("cache.playbook_ttl_seconds", ACE_CONFIG_INT, playbook_ttl, 1, 31536000, "600",
	    "seconds", "ACE_CACHE_PLAYBOOK_TTL_SECONDS", "Redis TTL of a playbook"),
	KEY("cache.baseline_ttl_seconds", ACE_CONFIG_INT, baseline_ttl, 1, 31536000, "3600",
	    "seconds", "ACE_CACHE_BASELINE_TTL_SECONDS", "Redis TTL of a baseline"),
	KEY("redis.connect_timeout", ACE_CONFIG_SECONDS, redis_connect_timeout, 0.001, 3600, "1",
	    "seconds", "ACE_REDIS_CONNECT_TIMEOUT", "how long one Redis connection attempt may take"),
	KEY("redis.command_timeout", ACE_CONFIG_SECONDS, redis_command_timeout, 0.001, 3600, "0.5",
	    "seconds", "ACE_REDIS_COMMAND_TIMEOUT", "how long a Redis reply or a free connection is waited for"),
	KEY("redis.breaker_failures", ACE_CONFIG_INT, redis_breaker_failures, 1, 1000, "5",
	    "failures", "ACE_REDIS_BREAKER_FAILURES", "consecutive Redis failures that open the circuit breaker"),
	KEY("redis.breaker_cooldown", ACE_CONFIG_SECONDS, redis_breaker_cooldown, 0, 3600, "5",
	    "seconds", "ACE_REDIS_BREAKER_COOLDOWN", "how long an open breaker waits before it probes Redis"),
	KEY("cache.negative_ttl_seconds", ACE_CONFIG_INT, negative_ttl, 1, 31536000, "30",
	    "seconds", "ACE_CACHE_NEGATIVE_TTL_SECONDS", "Redis TTL of a value absent from PostgreSQL"),
	KEY("cache.ttl_jitter_percent", ACE_CONFIG_INT, ttl_jitter_percent, 0, 90, "10",
	    "percent", "ACE_CACHE_TTL_JITTER_PERCENT", "each TTL is shortened by a random 0 to this percent"),
	KEY("cache.lock_timeout", ACE_CONFIG_SECONDS, cache_lock_timeout, 0.01, 600, "5",
	    "seconds", "ACE_CACHE_LOCK_TIMEOUT", "lifetime of a load lock, and the longest wait for it"),
	KEY("cache.pipeline_size", ACE_CONFIG_INT, cache_pipeline_size, 1, 10000, "256",
	    "requests", "ACE_CACHE_PIPELINE_SIZE", "filter-mode requests sent to Redis in one pipeline"),
	KEY("storage", ACE_CONFIG_STORAGE, storage, 0, 0, "auto",
	    "", "ACE_STORAGE", "auto, timescaledb or partitioned"),
	KEY("timeseries.chunk_interval", ACE_CONFIG_SECONDS, chunk_interval, 3600, 31622400, "1d",
	    "seconds", "ACE_TIMESERIES_CHUNK_INTERVAL", "time range of one chunk or partition"),
	KEY("timeseries.compress_after", ACE_CONFIG_SECONDS, compress_after, 0, 315360000, "7d",
	    "seconds", "ACE_TIMESERIES_COMPRESS_AFTER", "compress chunks older than this (0: no policy)"),
	KEY("timeseries.compress_segmentby", ACE_CONFIG_STRING, compress_segmentby, 0, 0,
	    "agent_id,task_id", "", "ACE_TIMESERIES_COMPRESS_SEGMENTBY",
	    "columns that group rows in compressed chunks"),
	KEY("timeseries.compress_orderby", ACE_CONFIG_STRING, compress_orderby, 0, 0,
	    "recorded_at DESC", "", "ACE_TIMESERIES_COMPRESS_ORDERBY",
	    "order of rows in compressed chunks"),
	KEY("timeseries.retention", ACE_CONFIG_SECONDS, retention, 0, 315360000, "90d",
	    "seconds", "ACE_TIMESERIES_RETENTION", "drop chunks or partitions older than this (0: never)"),
	KEY("timeseries.premake", ACE_CONFIG_INT, premake, 1, 1000, "7",
	    "partitions", "ACE_TIMESERIES_PREMAKE", "partitions created ahead of now"),
	KEY("log.level", ACE_CONFIG_LOG_LEVEL, log_level, 0, 0, "info",
	    "", "ACE_LOG_LEVEL", "error, warning, notice, info or debug"),
	KEY("log.format", ACE_CONFIG_LOG_FORMAT, log_format, 0, 0, "logfmt",
	    "", "ACE_LOG_FORMAT", "logfmt or json"),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

const struct ace_config_key *
ace_config_keys(size_t *count)
{
	*count = NKEYS;
	return keys;
}

static const struct ace_config_key *
find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

int
ace_parse_seconds(const char *text, double *seconds)
{
	char *end;
	double v, scale = 1;

	errno = 0;
	v = strtod(text, &end);
	if (end == text || errno != 0 || !isfinite(v))
		return -1;
	while (*end == ' ')
		end++;
	if (strcmp(end, "ms") == 0)
		scale = 0.001;
	else if (strcmp(end, "m") == 0)
		scale = 60;
	else if (strcmp(end, "h") == 0)
		scale = 3600;
	else if (strcmp(end, "d") == 0)
		scale = 86400;
	else if (*end != '\0' && strcmp(end, "s") != 0)
		return -1;
	*seconds = v * scale;
	return 0;
}

/* Parses a finite decimal number with nothing after it. */
static int
parse_number(const char *text, double *value)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (end == text || *end != '\0' || errno != 0 || !isfinite(v))
		return -1;
	*value = v;
	return 0;
}

/* Parses a byte count with an optional k, M or G suffix (powers of 1024). */
static int
parse_bytes(const char *text, double *bytes)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (end == text || errno != 0 || !isfinite(v))
		return -1;
	if (*end == 'k' || *end == 'K')
		v *= 1024, end++;
	else if (*end == 'M')
		v *= 1024 * 1024, end++;
	else if (*end == 'G')
		v *= 1024.0 * 1024 * 1024, end++;
	if (*end == 'B')
		end++;
	if (*end != '\0' || v != floor(v))
		return -1;
	*bytes = v;
	return 0;
}

static int
parse_int(const char *text, double *value)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (end == text || *end != '\0' || errno != 0)
		return -1;
	*value = (double)v;
	return 0;
}

static int
set_string(char **slot, const char *text)
{
	char *copy = NULL;

	if (*text != '\0') {
		copy = strdup(text);
		if (copy == NULL)
			return -1;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

static int
set_value(struct ace_config *cfg, const struct ace_config_key *key,
    const char *text, const char *source, struct ace_error *err)
{
	char *field = (char *)cfg + key->offset;
	double v = 0;
	int rc = 0;

	switch (key->type) {
	case ACE_CONFIG_STRING:
		if (set_string((char **)field, text) < 0)
			return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		return ACE_OK;
	case ACE_CONFIG_LOG_LEVEL:
		if (ace_log_level_parse(text, (int *)field) < 0)
			return ace_error_set(err, ACE_ERR_INVALID,
			    "%s: %s: invalid log level '%s' (expected error, warning, notice, info or debug)",
			    source, key->name, text);
		return ACE_OK;
	case ACE_CONFIG_LOG_FORMAT:
		if (ace_log_format_parse(text, (int *)field) < 0)
			return ace_error_set(err, ACE_ERR_INVALID,
			    "%s: %s: invalid log format '%s' (expected logfmt or json)",
			    source, key->name, text);
		return ACE_OK;
	case ACE_CONFIG_STORAGE:
		if (ace_storage_mode_parse(text, (int *)field) < 0)
			return ace_error_set(err, ACE_ERR_INVALID,
			    "%s: %s: invalid storage '%s' (expected auto, timescaledb or partitioned)",
			    source, key->name, text);
		return ACE_OK;
	case ACE_CONFIG_INT:
		rc = parse_int(text, &v);
		break;
	case ACE_CONFIG_SECONDS:
		rc = ace_parse_seconds(text, &v);
		break;
	case ACE_CONFIG_BYTES:
		rc = parse_bytes(text, &v);
		break;
	case ACE_CONFIG_NUMBER:
		rc = parse_number(text, &v);
		break;
	}
	if (rc < 0 && key->type == ACE_CONFIG_SECONDS)
		return ace_error_set(err, ACE_ERR_INVALID,
		    "%s: %s: invalid duration '%s' (seconds, or a number with ms, s, m, h or d)",
		    source, key->name, text);
	if (rc < 0)
		return ace_error_set(err, ACE_ERR_INVALID, "%s: %s: invalid %s '%s'",
		    source, key->name,
		    key->type == ACE_CONFIG_INT ? "integer" :
		    key->type == ACE_CONFIG_NUMBER ? "number" : "size", text);
	if (v < key->min || v > key->max)
		return ace_error_set(err, ACE_ERR_INVALID,
		    "%s: %s: %s is out of range (%.15g to %.15g%s%s)", source, key->name,
		    text, key->min, key->max, *key->unit ? " " : "", key->unit);

	switch (key->type) {
	case ACE_CONFIG_INT:
		*(int *)field = (int)v;
		break;
	case ACE_CONFIG_SECONDS:
	case ACE_CONFIG_NUMBER:
		*(double *)field = v;
		break;
	case ACE_CONFIG_BYTES:
		*(long *)field = (long)v;
		break;
	}
	return ACE_OK;
}

int
ace_config_set(struct ace_config *cfg, const char *key, const char *text,
    const char *source, struct ace_error *err)
{
	const struct ace_config_key *k = find_key(key);

	if (k == NULL)
		return ace_error_set(err, ACE_ERR_INVALID, "%s: unknown key '%s'", source, key);
	return set_value(cfg, k, text, source, err);
}

int
ace_config_init(struct ace_config *cfg)
{
	struct ace_error err;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NKEYS; i++)
		if (set_value(cfg, &keys[i], keys[i].default_value, "default", &err) != ACE_OK)
			return err.code;
	return ACE_OK;
}

void
ace_config_release(struct ace_config *cfg)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].type == ACE_CONFIG_STRING) {
			char **slot = (char **)((char *)cfg + keys[i].offset);

			free(*slot);
			*slot = NULL;
		}
	}
}

/* Returns whether name is the section part of some key ("ingest" of "ingest.workers"). */
static bool
is_section(const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < NKEYS; i++)
		if (strncmp(keys[i].name, name, n) == 0 && keys[i].name[n] == '.')
			return true;
	return false;
}

/* Applies one scalar found in the YAML tree under the dotted name. */
static int
load_scalar(struct ace_config *cfg, const char *path, yaml_node_t *node,
    const char *name, struct ace_error *err)
{
	char source[512];

	snprintf(source, sizeof(source), "%s:%lu", path,
	    (unsigned long)node->start_mark.line + 1);
	if (node->type != YAML_SCALAR_NODE)
		return ace_error_set(err, ACE_ERR_INVALID,
		    "%s: %s: expected a single value, found a %s", source, name,
		    node->type == YAML_MAPPING_NODE ? "mapping" : "list");
	if (find_key(name) == NULL)
		return ace_error_set(err, ACE_ERR_INVALID, "%s: unknown key '%s'", source, name);
	return ace_config_set(cfg, name, (const char *)node->data.scalar.value, source, err);
}

static int
load_mapping(struct ace_config *cfg, const char *path, yaml_document_t *doc,
    yaml_node_t *map, const char *prefix, struct ace_error *err)
{
	for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
	    pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(doc, pair->value);
		char name[256];
		int rc;

		if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
			return ace_error_set(err, ACE_ERR_INVALID, "%s:%lu: keys must be plain names",
			    path, k ? (unsigned long)k->start_mark.line + 1 : 0UL);
		snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "",
		    (const char *)k->data.scalar.value);
		if (v->type == YAML_MAPPING_NODE && *prefix == '\0')
			rc = load_mapping(cfg, path, doc, v, name, err);
		else if (*prefix == '\0' && is_section(name) && v->type == YAML_SCALAR_NODE &&
		    v->data.scalar.length == 0)
			rc = ACE_OK;	/* a section whose keys are all commented out */
		else
			rc = load_scalar(cfg, path, v, name, err);
		if (rc != ACE_OK)
			return rc;
	}
	return ACE_OK;
}

int
ace_config_load_file(struct ace_config *cfg, const char *path, struct ace_error *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	FILE *fp;
	int rc = ACE_OK;

	fp = fopen(path, "r");
	if (fp == NULL)
		return ace_error_set(err, ACE_ERR_NOT_FOUND, "cannot open '%s': %s",
		    path, strerror(errno));
	if (!yaml_parser_initialize(&parser)) {
		fclose(fp);
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	}
	yaml_parser_set_input_file(&parser, fp);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = ace_error_set(err, ACE_ERR_INVALID, "%s:%lu: invalid YAML: %s",
		    path, (unsigned long)parser.problem_mark.line + 1,
		    parser.problem ? parser.problem : "syntax error");
		goto out_parser;
	}
	root = yaml_document_get_root_node(&doc);
	if (root == NULL)
		goto out_doc;	/* an empty file sets nothing */
	if (root->type != YAML_MAPPING_NODE) {
		rc = ace_error_set(err, ACE_ERR_INVALID,
		    "%s:%lu: expected a mapping of sections and keys", path,
		    (unsigned long)root->start_mark.line + 1);
		goto out_doc;
	}
	rc = load_mapping(cfg, path, &doc, root, "", err);
out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	fclose(fp);
	return rc;
}

int
ace_config_load_env(struct ace_config *cfg, struct ace_error *err)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const char *value = getenv(keys[i].env);
		int rc;

		if (value == NULL || *value == '\0')
			continue;
		rc = set_value(cfg, &keys[i], value, keys[i].env, err);
		if (rc != ACE_OK)
			return rc;
	}
	return ACE_OK;
}

int
ace_config_load(struct ace_config *cfg, const char *path, struct ace_error *err)
{
	int rc = ace_config_init(cfg);

	if (rc != ACE_OK)
		return ace_error_set(err, rc, "out of memory");
	if (path == NULL) {
		path = getenv("ACE_CONFIG");
		if (path != NULL && *path == '\0')
			path = NULL;
	}
	if (path != NULL) {
		rc = ace_config_load_file(cfg, path, err);
		if (rc != ACE_OK)
			return rc;
	}
	return ace_config_load_env(cfg, err);
}
