/* Read-through caching of playbooks and baselines in Redis, loaded from PostgreSQL. */
#ifndef ACE_CACHE_H
#define ACE_CACHE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "ace/error.h"
#include "ace/pool.h"
#include "ace/redis.h"

/*
 * Keys and values are a public contract, read directly by other programs:
 *
 *   ace:playbook:<agent_id>              the agent's newest context_playbooks row
 *   ace:baseline:<agent_id>:<task_type>  the newest baseline of each of the four stages
 *
 * A value is JSON text.  The JSON literal null means that PostgreSQL has no
 * row: it is cached for negative_ttl seconds so that lookups of unknown
 * agents do not all reach PostgreSQL.
 *
 * ace's own bookkeeping lives beside them and is not part of the contract:
 * the hash ace:stats (fields gets, misses, loads, counted by every process)
 * and short-lived load locks ace:lock:<key>.
 */
#define ACE_CACHE_PLAYBOOK_PREFIX "ace:playbook:"
#define ACE_CACHE_BASELINE_PREFIX "ace:baseline:"
#define ACE_CACHE_LOCK_PREFIX "ace:lock:"
#define ACE_CACHE_STATS_KEY "ace:stats"

/* The channel that migration 0004's trigger notifies, with the agent id as payload. */
#define ACE_CACHE_CHANNEL "ace_playbook_changed"

/* Room for the longest key: 255 characters of agent id and 100 of task type, 4 bytes each. */
#define ACE_CACHE_KEY_MAX 1536

enum ace_cache_kind {
	ACE_CACHE_PLAYBOOK,
	ACE_CACHE_BASELINE,
};

enum ace_cache_source {
	ACE_CACHE_FROM_REDIS,
	ACE_CACHE_FROM_POSTGRESQL,
};

struct ace_cache_request {
	int kind;		/* enum ace_cache_kind */
	const char *agent_id;	/* 1 to 255 characters, no control characters */
	const char *task_type;	/* baselines: 0 to 100 characters; NULL means "" */
};

/* The outcome of one lookup. */
struct ace_cache_result {
	int status;		/* ACE_OK, ACE_ERR_NOT_FOUND, or why the lookup failed */
	int source;		/* enum ace_cache_source: where the answer came from */
	char *value;		/* JSON text when status is ACE_OK; the caller frees it */
	struct ace_error err;	/* the reason when status is a failure */
};

struct ace_cache_options {
	struct ace_redis *redis;	/* NULL: every lookup goes to PostgreSQL */
	struct ace_pool *pool;		/* PostgreSQL; owned by the caller */
	int playbook_ttl;		/* seconds */
	int baseline_ttl;		/* seconds */
	int negative_ttl;		/* seconds a "not in PostgreSQL" answer is cached */
	int jitter_percent;		/* each TTL is shortened by a random 0 to this percent */
	double lock_timeout;		/* seconds a load lock lives, and a waiter waits for it */
};

struct ace_cache;

/*
 * Creates a cache over the caller's Redis client and PostgreSQL pool, which
 * must outlive it.  Returns NULL with ACE_ERR_INVALID or ACE_ERR_SYSTEM.
 * One ace_cache is for one thread at a time.
 */
struct ace_cache *ace_cache_new(const struct ace_cache_options *opts, struct ace_error *err);

void ace_cache_free(struct ace_cache *cache);

/*
 * Writes the Redis key of req into out (of size len).  Fails with
 * ACE_ERR_INVALID when the agent id or task type is empty where it may not
 * be, too long, or contains control characters.
 */
int ace_cache_key(const struct ace_cache_request *req, char *out, size_t len, struct ace_error *err);

/*
 * Returns a TTL in milliseconds: ttl_seconds shortened by u * jitter_percent
 * percent, where u is a random number in [0, 1).  The result lies between
 * (100 - jitter_percent)% of the TTL and the TTL itself, and is at least 1.
 */
long long ace_cache_ttl_ms(int ttl_seconds, int jitter_percent, double u);

/*
 * Looks up n requests and fills results[i] for requests[i].  Keys are read
 * from Redis in one pipeline.  A missing key is loaded from PostgreSQL
 * under a load lock (SET NX PX).  The caller that takes the lock loads and
 * stores the value.  Other callers, in this process or any other, poll for
 * it for at most lock_timeout, then load it themselves.  While
 * Redis fails or the breaker is open, every value comes from PostgreSQL and
 * no Redis wait exceeds the command timeout.  A result fails with
 * ACE_ERR_INVALID (bad request), ACE_ERR_RETRY or ACE_ERR_TIMEOUT
 * (PostgreSQL unreachable) or ACE_ERR_SERVER (PostgreSQL refused the query).
 * The caller frees each result with ace_cache_result_release().
 */
void ace_cache_get(struct ace_cache *cache, const struct ace_cache_request *requests, size_t n,
    struct ace_cache_result *results);

void ace_cache_result_release(struct ace_cache_result *result);

/* A new playbook version, as parsed by ace_cache_parse_playbook(). */
struct ace_cache_playbook {
	char *context;		/* JSON text, not null */
	char *metadata;		/* JSON object text */
};

/*
 * Parses a playbook document: an object with "context" (required, any JSON
 * value but null) and "metadata" (an object, default {}).  The fields that
 * ace-cache get prints (playbook_id, version, created_at, updated_at, and
 * agent_id when it equals agent_id) are accepted and ignored, so a value
 * that was read can be edited and written back.  Any other field fails with
 * ACE_ERR_INVALID naming it.  Release the result with
 * ace_cache_playbook_release().
 */
int ace_cache_parse_playbook(const char *json, size_t len, const char *agent_id,
    struct ace_cache_playbook *out, struct ace_error *err);

void ace_cache_playbook_release(struct ace_cache_playbook *playbook);

/*
 * Inserts a new playbook version (the current version + 1, or 1) in one
 * transaction, serialized per agent by an advisory lock, then stores the new
 * value under the agent's key.  With expect_version >= 0, fails with
 * ACE_ERR_CONFLICT when the current version differs (0 means "no playbook
 * yet").  *value gets the stored playbook as JSON, freed by the caller.
 * When the row is committed but Redis could not be updated, returns ACE_OK
 * and sets cache_err to the Redis failure (cache_err->code is ACE_OK
 * otherwise): the old value may then be served until its TTL runs out or
 * ace-cache listen removes it.  Blocks for the PostgreSQL round trips and
 * at most the Redis command timeout.
 */
int ace_cache_set_playbook(struct ace_cache *cache, const char *agent_id,
    const struct ace_cache_playbook *playbook, long expect_version, char **value,
    struct ace_error *cache_err, struct ace_error *err);

/*
 * Removes the key of req, with UNLINK, and its load lock, so that a load in
 * progress does not store its value.  A baseline request with a NULL
 * task_type removes every task type of the agent.  *removed counts the keys
 * that existed.  Fails with ACE_ERR_RETRY or ACE_ERR_TIMEOUT when Redis is
 * unavailable.
 */
int ace_cache_invalidate(struct ace_cache *cache, const struct ace_cache_request *req,
    long long *removed, struct ace_error *err);

/*
 * Removes every playbook and baseline key that matches a Redis glob
 * pattern, walking the key space with SCAN (never KEYS).  The pattern must
 * start with "ace:"; ace:stats and the load locks are never removed, except
 * the lock of a removed key.  Keys written during the walk may be missed.
 */
int ace_cache_invalidate_pattern(struct ace_cache *cache, const char *pattern,
    long long *removed, struct ace_error *err);

/* Backslash-escapes the glob characters *?[]\ of text into out (of size len). */
int ace_cache_escape_glob(const char *text, char *out, size_t len);

struct ace_cache_warm_result {
	long long playbooks;	/* keys written */
	long long baselines;
	double seconds;
};

/*
 * Loads the newest playbook of every agent and the newest baselines of every
 * agent and task type from PostgreSQL, streaming the rows, and stores them
 * with SET ... PX in pipelines of up to 1000 commands.  Fails with the
 * PostgreSQL or Redis failure; keys stored before it stay.
 */
int ace_cache_warm(struct ace_cache *cache, struct ace_cache_warm_result *out, struct ace_error *err);

struct ace_cache_stats {
	long long gets;		/* lookups that reached Redis */
	long long hits;		/* gets - misses */
	long long misses;
	long long loads;	/* values loaded from PostgreSQL and offered to Redis */
	long long playbook_keys;
	long long baseline_keys;
};

/*
 * Reads the shared counters of ace:stats and counts ace's playbook and
 * baseline keys with SCAN MATCH ace:* (never INFO or DBSIZE, which count
 * the whole server).  Fails with ACE_ERR_RETRY or ACE_ERR_TIMEOUT when
 * Redis is unavailable.
 */
int ace_cache_stats(struct ace_cache *cache, struct ace_cache_stats *out, struct ace_error *err);

struct ace_cache_listen_options {
	const char *conninfo;			/* PostgreSQL; NULL: libpq defaults */
	double connect_timeout;			/* seconds per connection attempt */
	volatile sig_atomic_t *stop;		/* the loop ends when this becomes non-zero */
	int wake_fd;				/* readable when *stop changed; -1: none */
	/* Called for each key removed, and with NULL once LISTEN is active. */
	void (*on_key)(void *ctx, const char *key);
	void *ctx;
};

/*
 * Runs LISTEN on ACE_CACHE_CHANNEL and removes the playbook key of every
 * agent notified, within the poll interval of 0.2 s while Redis answers.
 * Removals that fail are kept (up to 10000, then all playbook keys are
 * removed once Redis is back) and retried.  A lost PostgreSQL connection is
 * reopened with a backoff of 0.1 s doubling to 5 s; after a reconnect every
 * playbook key is removed, since notifications sent meanwhile were lost.
 * Returns ACE_OK when *stop is set, or ACE_ERR_INVALID for a malformed
 * connection string.  Blocks until then.
 */
int ace_cache_listen(struct ace_cache *cache, const struct ace_cache_listen_options *opts,
    struct ace_error *err);

#endif
