/* The cache handle, SQL fragments and Redis helpers that the cache modules share. */
#ifndef ACE_CACHE_PRIVATE_H
#define ACE_CACHE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "ace/cache.h"
#include "ace/error.h"
#include "ace/redis.h"

#define UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

#define PLAYBOOK_JSON \
	"jsonb_build_object('playbook_id', playbook_id, 'agent_id', agent_id, 'version', version, " \
	"'context', context, 'metadata', metadata, 'created_at', " UTC("created_at") ", " \
	"'updated_at', " UTC("updated_at") ")::text"

#define BASELINE_ROW \
	"(to_jsonb(b) - 'agent_id' - 'task_type' - 'stage') || jsonb_build_object(" \
	"'window_start', " UTC("b.window_start") ", 'window_end', " UTC("b.window_end") ", " \
	"'computed_at', " UTC("b.computed_at") ")"

/* Every stage is present in a baseline value, null when it has no row. */
#define BASELINE_STAGES \
	"'{\"planning\":null,\"execution\":null,\"reflection\":null,\"verification\":null}'::jsonb"

/* Most commands queued on a connection before their replies are read. */
#define PIPELINE_MAX 1000

struct ace_cache {
	struct ace_redis *redis;
	struct ace_pool *pool;
	int playbook_ttl;
	int baseline_ttl;
	int negative_ttl;
	int jitter_percent;
	double lock_timeout;
	unsigned long long rng;		/* xorshift state for TTL jitter and lock tokens */
	bool redis_failing;		/* a Redis failure was logged and no success came since */
};

/* Formats a jittered TTL in ms for a value ("null" gets the negative TTL) into buf. */
void cache_format_ttl(struct ace_cache *cache, int kind, const char *value, char *buf, size_t len);

/* Logs a Redis failure once per outage, as msg; the breaker logs its own changes. */
void cache_note_failure_as(struct ace_cache *cache, const struct ace_error *err, const char *msg);

/* Logs a Redis failure of a lookup, which is then served from PostgreSQL. */
void cache_note_failure(struct ace_cache *cache, const struct ace_error *err);

/* Records a successful Redis round trip, so that the next failure is logged again. */
void cache_note_success(struct ace_cache *cache);

/* Checks out a connection for a command that has no PostgreSQL fallback; NULL with err set. */
struct ace_redis_conn *cache_redis_required(struct ace_cache *cache, struct ace_error *err);

/* Reads count replies whose content does not matter; false when the connection failed. */
bool cache_drain_replies(struct ace_redis_conn *conn, size_t count, struct ace_error *err);

void cache_sleep(double seconds);

/*
 * Walks the keys matching pattern with SCAN and calls fn with each batch of
 * playbook and baseline keys found.  Stops at the first failure of fn.
 */
int cache_scan_keys(struct ace_redis_conn *conn, const char *pattern,
    int (*fn)(void *ctx, struct ace_redis_conn *conn, char **keys, size_t n, struct ace_error *err),
    void *ctx, struct ace_error *err);

/* Sends UNLINK for keys[0..n) and their locks, and adds the data keys that existed to *removed. */
int cache_unlink_keys(struct ace_redis_conn *conn, char **keys, size_t n, long long *removed,
    struct ace_error *err);

/* A cache_scan_keys() callback that unlinks each batch; ctx is the long long count of removed keys. */
int cache_unlink_batch(void *ctx, struct ace_redis_conn *conn, char **keys, size_t n,
    struct ace_error *err);

#endif
