/* Read-through lookups, playbook writes, invalidation, warming, statistics and LISTEN-driven invalidation. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "ace/breaker.h"
#include "ace/buf.h"
#include "ace/cache.h"
#include "ace/log.h"

/* Timestamps as RFC 3339 in UTC with microseconds, whatever the session's TimeZone. */
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

static const char playbook_sql[] =
	"SELECT " PLAYBOOK_JSON " FROM context_playbooks WHERE agent_id = $1 "
	"ORDER BY version DESC LIMIT 1";

static const char baseline_sql[] =
	"SELECT jsonb_build_object('agent_id', $1::text, 'task_type', $2::text, 'stages', "
	BASELINE_STAGES " || jsonb_object_agg(stage, row))::text "
	"FROM (SELECT DISTINCT ON (stage) stage, " BASELINE_ROW " AS row "
	"FROM performance_baselines b WHERE agent_id = $1 AND task_type = $2 "
	"ORDER BY stage, version DESC) s HAVING count(*) > 0";

static const char warm_playbooks_sql[] =
	"SELECT DISTINCT ON (agent_id) agent_id, '', " PLAYBOOK_JSON
	" FROM context_playbooks ORDER BY agent_id, version DESC";

static const char warm_baselines_sql[] =
	"SELECT agent_id, task_type, jsonb_build_object('agent_id', agent_id, 'task_type', task_type, "
	"'stages', " BASELINE_STAGES " || jsonb_object_agg(stage, row))::text "
	"FROM (SELECT DISTINCT ON (agent_id, task_type, stage) agent_id, task_type, stage, "
	BASELINE_ROW " AS row FROM performance_baselines b "
	"ORDER BY agent_id, task_type, stage, version DESC) s GROUP BY agent_id, task_type";

/*
 * Stores a loaded value only while the caller still holds the load lock.  A
 * writer (ace-cache set, invalidate, listen) deletes the lock, so a load
 * that read PostgreSQL before the change cannot put the old value back.
 * KEYS: key, lock, stats.  ARGV: token, value, ttl in ms.
 */
static const char fill_script[] =
	"redis.call('HINCRBY', KEYS[3], 'loads', 1) "
	"if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end "
	"redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) "
	"redis.call('DEL', KEYS[2]) return 1";

/* Deletes the lock if the caller still holds it.  KEYS: lock.  ARGV: token. */
static const char unlock_script[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

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

/* --- Small helpers ------------------------------------------------------- */

static unsigned long long
next_random(struct ace_cache *cache)
{
	unsigned long long x = cache->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	cache->rng = x;
	return x;
}

static double
random_unit(struct ace_cache *cache)
{
	return (double)(next_random(cache) >> 11) / 9007199254740992.0;	/* 2^53 */
}

long long
ace_cache_ttl_ms(int ttl_seconds, int jitter_percent, double u)
{
	long long full = (long long)ttl_seconds * 1000;
	long long cut = (long long)(u * (double)full * jitter_percent / 100.0);
	long long ttl = full - cut;

	return ttl < 1 ? 1 : ttl;
}

/* Returns the number of characters of a UTF-8 string, or -1 when it contains a control character. */
static long
count_characters(const char *s)
{
	long n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return -1;
		if ((*p & 0xc0) != 0x80)
			n++;
	}
	return n;
}

int
ace_cache_key(const struct ace_cache_request *req, char *out, size_t len, struct ace_error *err)
{
	const char *task = req->task_type ? req->task_type : "";
	long agent_chars, task_chars;
	int n;

	if (req->agent_id == NULL || *req->agent_id == '\0')
		return ace_error_set(err, ACE_ERR_INVALID, "agent_id is empty");
	agent_chars = count_characters(req->agent_id);
	if (agent_chars < 0)
		return ace_error_set(err, ACE_ERR_INVALID, "agent_id contains a control character");
	if (agent_chars > 255)
		return ace_error_set(err, ACE_ERR_INVALID, "agent_id is longer than 255 characters");
	if (req->kind == ACE_CACHE_PLAYBOOK) {
		n = snprintf(out, len, "%s%s", ACE_CACHE_PLAYBOOK_PREFIX, req->agent_id);
	} else if (req->kind == ACE_CACHE_BASELINE) {
		task_chars = count_characters(task);
		if (task_chars < 0)
			return ace_error_set(err, ACE_ERR_INVALID, "task_type contains a control character");
		if (task_chars > 100)
			return ace_error_set(err, ACE_ERR_INVALID, "task_type is longer than 100 characters");
		n = snprintf(out, len, "%s%s:%s", ACE_CACHE_BASELINE_PREFIX, req->agent_id, task);
	} else {
		return ace_error_set(err, ACE_ERR_INVALID, "unknown kind %d", req->kind);
	}
	if (n < 0 || (size_t)n >= len)
		return ace_error_set(err, ACE_ERR_INVALID, "key longer than %zu bytes", len - 1);
	return ACE_OK;
}

int
ace_cache_escape_glob(const char *text, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = text; *p; p++) {
		if (strchr("*?[]\\", *p) != NULL) {
			if (n + 1 >= len)
				return -1;
			out[n++] = '\\';
		}
		if (n + 1 >= len)
			return -1;
		out[n++] = *p;
	}
	if (len == 0)
		return -1;
	out[n] = '\0';
	return 0;
}

static int
ttl_seconds(const struct ace_cache *cache, int kind)
{
	return kind == ACE_CACHE_PLAYBOOK ? cache->playbook_ttl : cache->baseline_ttl;
}

/* Formats a jittered TTL for a value ("null" gets the negative TTL) into buf. */
static void
format_ttl(struct ace_cache *cache, int kind, const char *value, char *buf, size_t len)
{
	int ttl = strcmp(value, "null") == 0 ? cache->negative_ttl : ttl_seconds(cache, kind);

	snprintf(buf, len, "%lld", ace_cache_ttl_ms(ttl, cache->jitter_percent, random_unit(cache)));
}

/* Logs a Redis failure once per outage, as msg; the breaker logs its own changes. */
static void
note_redis_failure_as(struct ace_cache *cache, const struct ace_error *err, const char *msg)
{
	if (cache->redis_failing || strncmp(err->message, "circuit breaker", 15) == 0) {
		ace_log(ACE_LOG_DEBUG, "redis unavailable", "error", err->message, NULL);
		return;
	}
	cache->redis_failing = true;
	ace_log(ACE_LOG_WARNING, msg, "redis", ace_redis_shown_url(cache->redis),
	    "error", err->message, NULL);
}

static void
note_redis_failure(struct ace_cache *cache, const struct ace_error *err)
{
	note_redis_failure_as(cache, err, "redis unavailable: serving from postgresql");
}

static void
note_redis_success(struct ace_cache *cache)
{
	cache->redis_failing = false;
}

/* Checks out a Redis connection, or returns NULL (logged) when Redis is not usable now. */
static struct ace_redis_conn *
redis_checkout(struct ace_cache *cache)
{
	struct ace_redis_conn *conn;
	struct ace_error err;

	if (cache->redis == NULL)
		return NULL;
	conn = ace_redis_checkout(cache->redis, &err);
	if (conn == NULL)
		note_redis_failure(cache, &err);
	return conn;
}

/* Checks out a connection for a command that has no PostgreSQL fallback. */
static struct ace_redis_conn *
redis_required(struct ace_cache *cache, struct ace_error *err)
{
	struct ace_redis_conn *conn;

	if (cache->redis == NULL) {
		ace_error_set(err, ACE_ERR_INVALID, "no Redis configured");
		return NULL;
	}
	conn = ace_redis_checkout(cache->redis, err);
	if (conn == NULL)
		ace_error_prefix(err, "redis %s", ace_redis_shown_url(cache->redis));
	return conn;
}

struct ace_cache *
ace_cache_new(const struct ace_cache_options *opts, struct ace_error *err)
{
	struct ace_cache *cache;

	if (opts->pool == NULL || opts->playbook_ttl < 1 || opts->baseline_ttl < 1 ||
	    opts->negative_ttl < 1 || opts->jitter_percent < 0 || opts->jitter_percent > 90 ||
	    opts->lock_timeout <= 0) {
		ace_error_set(err, ACE_ERR_INVALID,
		    "invalid cache settings: TTLs must be at least 1 s, jitter 0 to 90%%, lock timeout above 0");
		return NULL;
	}
	cache = calloc(1, sizeof(*cache));
	if (cache == NULL) {
		ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		return NULL;
	}
	cache->redis = opts->redis;
	cache->pool = opts->pool;
	cache->playbook_ttl = opts->playbook_ttl;
	cache->baseline_ttl = opts->baseline_ttl;
	cache->negative_ttl = opts->negative_ttl;
	cache->jitter_percent = opts->jitter_percent;
	cache->lock_timeout = opts->lock_timeout;
	if (getrandom(&cache->rng, sizeof(cache->rng), 0) != (ssize_t)sizeof(cache->rng))
		cache->rng = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
	cache->rng |= 1;	/* xorshift never leaves 0 */
	return cache;
}

void
ace_cache_free(struct ace_cache *cache)
{
	free(cache);
}

void
ace_cache_result_release(struct ace_cache_result *result)
{
	free(result->value);
	result->value = NULL;
}

/* --- PostgreSQL ------------------------------------------------------------ */

/*
 * Loads one value from PostgreSQL into *value (malloc'd JSON text).
 * Returns ACE_OK, ACE_ERR_NOT_FOUND when there is no row, or the failure.
 */
static int
load_value(struct ace_cache *cache, const struct ace_cache_request *req, const char *key,
    char **value, struct ace_error *err)
{
	const char *params[2] = { req->agent_id, req->task_type ? req->task_type : "" };
	const char *sql = req->kind == ACE_CACHE_PLAYBOOK ? playbook_sql : baseline_sql;
	int nparams = req->kind == ACE_CACHE_PLAYBOOK ? 1 : 2;
	struct ace_conn *conn;
	PGresult *res;
	int rc = ACE_OK;

	*value = NULL;
	conn = ace_pool_checkout(cache->pool, err);
	if (conn == NULL)
		return ace_error_prefix(err, "postgresql");
	res = PQexecParams(ace_conn_pg(conn), sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ace_pg_error(err, ace_conn_pg(conn), res, "postgresql: loading a value");
		goto out;
	}
	if (PQntuples(res) == 0) {
		rc = ace_error_set(err, ACE_ERR_NOT_FOUND, "%s: not found in postgresql", key);
		goto out;
	}
	*value = strdup(PQgetvalue(res, 0, 0));
	if (*value == NULL)
		rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
out:
	ace_log(ACE_LOG_DEBUG, "postgresql load", "key", key, "status", ace_status_name(rc), NULL);
	PQclear(res);
	ace_pool_checkin(cache->pool, conn, rc == ACE_ERR_RETRY || rc == ACE_ERR_TIMEOUT);
	return rc;
}

/* --- Lookups ----------------------------------------------------------------- */

/* The state of one request inside ace_cache_get(). */
enum {
	LOOKUP_INVALID,		/* answered: bad request */
	LOOKUP_ASK,		/* not answered yet */
	LOOKUP_DUPLICATE,	/* same key as an earlier request; copies its result */
	LOOKUP_DONE,
};

struct lookup {
	const struct ace_cache_request *req;
	struct ace_cache_result *res;
	char key[ACE_CACHE_KEY_MAX];
	char lock[ACE_CACHE_KEY_MAX + sizeof(ACE_CACHE_LOCK_PREFIX)];
	char token[40];
	int state;
	size_t same_as;		/* LOOKUP_DUPLICATE: index of the first request with this key */
};

static void
answer(struct lookup *l, int status, int source, char *value)
{
	l->res->status = status;
	l->res->source = source;
	l->res->value = value;
	l->state = LOOKUP_DONE;
}

/*
 * Takes a value read from Redis.  Returns false when it is not JSON, which
 * no ace writer stores, so the caller reloads it from PostgreSQL.
 */
static bool
take_cached(struct lookup *l, const char *data, size_t len)
{
	cJSON *json = cJSON_ParseWithLength(data, len);
	char *copy;

	if (json == NULL || memchr(data, '\n', len) != NULL) {
		cJSON_Delete(json);
		ace_log(ACE_LOG_WARNING, "cached value is not JSON on one line; reloading it",
		    "key", l->key, NULL);
		return false;
	}
	cJSON_Delete(json);
	if (len == 4 && memcmp(data, "null", 4) == 0) {
		ace_error_set(&l->res->err, ACE_ERR_NOT_FOUND, "%s: not found (cached)", l->key);
		answer(l, ACE_ERR_NOT_FOUND, ACE_CACHE_FROM_REDIS, NULL);
		return true;
	}
	copy = malloc(len + 1);
	if (copy == NULL) {
		ace_error_set(&l->res->err, ACE_ERR_SYSTEM, "out of memory");
		answer(l, ACE_ERR_SYSTEM, ACE_CACHE_FROM_REDIS, NULL);
		return true;
	}
	memcpy(copy, data, len);
	copy[len] = '\0';
	answer(l, ACE_OK, ACE_CACHE_FROM_REDIS, copy);
	return true;
}

/*
 * Loads the value straight from PostgreSQL into the request's result.  With
 * fill_value, a copy of a loaded value goes there for the caller to store
 * (NULL when there is none).
 */
static void
answer_from_postgresql(struct ace_cache *cache, struct lookup *l, char **fill_value)
{
	char *value = NULL;
	int rc = load_value(cache, l->req, l->key, &value, &l->res->err);

	if (fill_value != NULL)
		*fill_value = rc == ACE_OK ? strdup(value) : NULL;
	answer(l, rc, ACE_CACHE_FROM_POSTGRESQL, value);
}

/*
 * Sends GET for every request still asking, and HINCRBY gets, counting the
 * duplicates too, which are served by the same reply.  Returns false when
 * Redis failed.
 */
static bool
read_keys(struct ace_cache *cache, struct ace_redis_conn *conn, struct lookup *ls, size_t n,
    size_t duplicates)
{
	struct ace_error err;
	redisReply *reply;
	char count[24];
	size_t asked = 0;

	for (size_t i = 0; i < n; i++) {
		const char *argv[] = { "GET", ls[i].key };

		if (ls[i].state != LOOKUP_ASK)
			continue;
		if (ace_redis_append(conn, 2, argv, NULL, &err) != ACE_OK)
			goto failed;
		asked++;
	}
	if (asked > 0) {
		const char *argv[] = { "HINCRBY", ACE_CACHE_STATS_KEY, "gets", count };

		snprintf(count, sizeof(count), "%zu", asked + duplicates);
		if (ace_redis_append(conn, 4, argv, NULL, &err) != ACE_OK)
			goto failed;
	}
	for (size_t i = 0; i < n; i++) {
		int rc;

		if (ls[i].state != LOOKUP_ASK)
			continue;
		rc = ace_redis_read(conn, &reply, &err);
		if (rc == ACE_ERR_SERVER)
			continue;	/* WRONGTYPE and the like: treat as a miss and overwrite */
		if (rc != ACE_OK)
			goto failed;
		if (reply->type == REDIS_REPLY_STRING)
			take_cached(&ls[i], reply->str, reply->len);
		freeReplyObject(reply);
	}
	if (asked > 0) {
		if (ace_redis_read(conn, &reply, &err) != ACE_OK)
			goto failed;
		freeReplyObject(reply);
	}
	note_redis_success(cache);
	return true;
failed:
	note_redis_failure(cache, &err);
	return false;
}

static void
make_token(struct ace_cache *cache, char *out, size_t len)
{
	snprintf(out, len, "%d-%016llx", (int)getpid(), next_random(cache));
}

/* Reads count replies whose content does not matter; a script error only loses one fill. */
static bool
drain_replies(struct ace_redis_conn *conn, size_t count, struct ace_error *err)
{
	redisReply *reply;

	for (size_t k = 0; k < count; k++) {
		int rc = ace_redis_read(conn, &reply, err);

		if (rc != ACE_OK && rc != ACE_ERR_SERVER)
			return false;
		freeReplyObject(reply);
	}
	return true;
}

/*
 * Sends SET lock NX PX, then GET key, for every request still asking, and
 * sets owner[i] for the locks taken.  The GET in the same pipeline closes a
 * race: a value stored (and its lock deleted) just before our SET NX is
 * read here instead of being loaded a second time.  A lock taken for a key
 * that turned out to be stored is released.  Returns false when Redis failed.
 */
static bool
take_locks(struct ace_cache *cache, struct ace_redis_conn *conn, struct lookup *ls, size_t n,
    bool *owner, long long misses)
{
	char ms[24], count[24];
	struct ace_error err;
	redisReply *reply;
	size_t released = 0;

	snprintf(ms, sizeof(ms), "%lld", (long long)(cache->lock_timeout * 1000 + 0.5));
	for (size_t i = 0; i < n; i++) {
		const char *set[] = { "SET", ls[i].lock, ls[i].token, "NX", "PX", ms };
		const char *get[] = { "GET", ls[i].key };

		owner[i] = false;
		if (ls[i].state != LOOKUP_ASK)
			continue;
		make_token(cache, ls[i].token, sizeof(ls[i].token));
		if (ace_redis_append(conn, 6, set, NULL, &err) != ACE_OK ||
		    ace_redis_append(conn, 2, get, NULL, &err) != ACE_OK)
			goto failed;
	}
	if (misses > 0) {
		const char *argv[] = { "HINCRBY", ACE_CACHE_STATS_KEY, "misses", count };

		snprintf(count, sizeof(count), "%lld", misses);
		if (ace_redis_append(conn, 4, argv, NULL, &err) != ACE_OK)
			goto failed;
	}
	for (size_t i = 0; i < n; i++) {
		if (ls[i].state != LOOKUP_ASK)
			continue;
		if (ace_redis_read(conn, &reply, &err) != ACE_OK)
			goto failed;
		owner[i] = reply->type == REDIS_REPLY_STATUS;
		freeReplyObject(reply);
		if (ace_redis_read(conn, &reply, &err) != ACE_OK)
			goto failed;
		if (reply->type == REDIS_REPLY_STRING && take_cached(&ls[i], reply->str, reply->len) &&
		    owner[i]) {
			const char *unlock[] = { "EVAL", unlock_script, "1", ls[i].lock, ls[i].token };

			owner[i] = false;
			if (ace_redis_append(conn, 5, unlock, NULL, &err) != ACE_OK) {
				freeReplyObject(reply);
				goto failed;
			}
			released++;
		}
		freeReplyObject(reply);
	}
	if (misses > 0) {
		if (ace_redis_read(conn, &reply, &err) != ACE_OK)
			goto failed;
		freeReplyObject(reply);
	}
	if (!drain_replies(conn, released, &err))
		goto failed;
	return true;
failed:
	note_redis_failure(cache, &err);
	return false;
}

/*
 * Loads the value of every request whose lock this caller owns, then stores
 * them with the fill script, or releases the lock when the load failed.
 * Returns false when Redis failed.  The loaded results stand either way.
 */
static bool
load_and_fill(struct ace_cache *cache, struct ace_redis_conn *conn, struct lookup *ls, size_t n,
    const bool *owner)
{
	char **values = calloc(n, sizeof(*values));
	struct ace_error err;
	size_t queued = 0;
	bool ok = true;

	if (values == NULL) {
		ace_error_set(&err, ACE_ERR_SYSTEM, "out of memory");
		note_redis_failure(cache, &err);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (owner[i] && ls[i].state == LOOKUP_ASK)
			answer_from_postgresql(cache, &ls[i], &values[i]);
	}
	for (size_t i = 0; i < n && ok; i++) {
		const char *stored = NULL;
		char ttl[24];

		if (!owner[i])
			continue;
		if (ls[i].res->status == ACE_OK)
			stored = values[i];	/* NULL when the copy ran out of memory */
		else if (ls[i].res->status == ACE_ERR_NOT_FOUND)
			stored = "null";
		if (stored != NULL) {
			const char *argv[] = { "EVAL", fill_script, "3", ls[i].key, ls[i].lock,
			    ACE_CACHE_STATS_KEY, ls[i].token, stored, ttl };

			format_ttl(cache, ls[i].req->kind, stored, ttl, sizeof(ttl));
			ok = ace_redis_append(conn, 9, argv, NULL, &err) == ACE_OK;
		} else {
			/* The load failed: release the lock so that waiters need not wait it out. */
			const char *argv[] = { "EVAL", unlock_script, "1", ls[i].lock, ls[i].token };

			ok = ace_redis_append(conn, 5, argv, NULL, &err) == ACE_OK;
		}
		if (ok && ++queued == PIPELINE_MAX) {
			ok = drain_replies(conn, queued, &err);
			queued = 0;
		}
	}
	if (ok)
		ok = drain_replies(conn, queued, &err);
	for (size_t i = 0; i < n; i++)
		free(values[i]);
	free(values);
	if (!ok)
		note_redis_failure(cache, &err);
	return ok;
}

static void
sleep_seconds(double seconds)
{
	struct timespec ts;

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/*
 * Resolves every request still asking through Redis: counts the misses,
 * takes load locks, loads what it locked, and polls (lock attempt and GET,
 * every 2 to 64 ms) for the values that others load.  Returns false when
 * Redis failed, leaving the rest asking.
 */
static bool
resolve_misses(struct ace_cache *cache, struct ace_redis_conn *conn, struct lookup *ls, size_t n)
{
	double deadline = ace_monotonic() + cache->lock_timeout;
	double delay = 0.002;
	long long misses = 0;
	bool *owner = calloc(n, sizeof(*owner));
	bool ok = true, first = true;

	if (owner == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ls[i].state == LOOKUP_ASK)
			misses++;
	while (ok && misses > 0) {
		size_t asking = 0;

		ok = take_locks(cache, conn, ls, n, owner, first ? misses : 0) &&
		    load_and_fill(cache, conn, ls, n, owner);
		first = false;
		for (size_t i = 0; i < n; i++)
			if (ls[i].state == LOOKUP_ASK)
				asking++;
		if (!ok || asking == 0)
			break;
		if (ace_monotonic() + delay > deadline) {
			/* NOTE: the lock holder is slow or gone; loading without the lock may load twice. */
			ace_log(ACE_LOG_DEBUG, "load lock wait ran out; loading without the lock",
			    "waiting", ACE_LOG_INT(asking), NULL);
			break;
		}
		sleep_seconds(delay);
		if (delay < 0.05)
			delay *= 2;
	}
	free(owner);
	return ok;
}

static unsigned long
hash_key(const char *key)
{
	unsigned long h = 14695981039346656037UL;	/* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211UL;
	return h;
}

/*
 * Marks each request whose key an earlier request has as LOOKUP_DUPLICATE,
 * so a key is loaded once per call: a second lock request would wait on our
 * own lock.  Returns how many were marked.  Uses a hash table, because a
 * skewed workload repeats keys within one pipeline.
 */
static size_t
mark_duplicates(struct lookup *ls, size_t n)
{
	size_t size = 16, marked = 0;
	size_t *slots;

	while (size < 2 * n)
		size *= 2;
	slots = malloc(size * sizeof(*slots));
	if (slots == NULL)
		return 0;	/* out of memory: duplicates wait out the lock, but stay correct */
	for (size_t i = 0; i < size; i++)
		slots[i] = (size_t)-1;
	for (size_t i = 0; i < n; i++) {
		size_t at;

		if (ls[i].state != LOOKUP_ASK)
			continue;
		for (at = hash_key(ls[i].key) & (size - 1); slots[at] != (size_t)-1; at = (at + 1) & (size - 1))
			if (strcmp(ls[slots[at]].key, ls[i].key) == 0)
				break;
		if (slots[at] == (size_t)-1) {
			slots[at] = i;
		} else {
			ls[i].state = LOOKUP_DUPLICATE;
			ls[i].same_as = slots[at];
			marked++;
		}
	}
	free(slots);
	return marked;
}

void
ace_cache_get(struct ace_cache *cache, const struct ace_cache_request *requests, size_t n,
    struct ace_cache_result *results)
{
	struct lookup *ls = malloc((n ? n : 1) * sizeof(*ls));
	struct ace_redis_conn *conn = NULL;
	size_t duplicates;

	for (size_t i = 0; i < n; i++) {
		memset(&results[i], 0, sizeof(results[i]));
		if (ls == NULL) {
			ace_error_set(&results[i].err, ACE_ERR_SYSTEM, "out of memory");
			results[i].status = ACE_ERR_SYSTEM;
		}
	}
	if (ls == NULL)
		return;

	for (size_t i = 0; i < n; i++) {
		struct lookup *l = &ls[i];

		/* Not calloc: zeroing the key buffers of a whole pipeline costs more than the lookups. */
		l->key[0] = l->lock[0] = l->token[0] = '\0';
		l->same_as = 0;
		l->req = &requests[i];
		l->res = &results[i];
		l->state = LOOKUP_ASK;
		if (ace_cache_key(l->req, l->key, sizeof(l->key), &l->res->err) != ACE_OK) {
			l->res->status = ACE_ERR_INVALID;
			l->state = LOOKUP_INVALID;
			continue;
		}
		memcpy(l->lock, ACE_CACHE_LOCK_PREFIX, sizeof(ACE_CACHE_LOCK_PREFIX) - 1);
		strcpy(l->lock + sizeof(ACE_CACHE_LOCK_PREFIX) - 1, l->key);
	}
	duplicates = mark_duplicates(ls, n);

	conn = redis_checkout(cache);
	if (conn != NULL && read_keys(cache, conn, ls, n, duplicates))
		resolve_misses(cache, conn, ls, n);
	if (conn != NULL)
		ace_redis_checkin(cache->redis, conn);

	for (size_t i = 0; i < n; i++)
		if (ls[i].state == LOOKUP_ASK)
			answer_from_postgresql(cache, &ls[i], NULL);
	for (size_t i = 0; i < n; i++) {
		struct ace_cache_result *first = &results[ls[i].same_as];

		if (ls[i].state != LOOKUP_DUPLICATE)
			continue;
		results[i] = *first;
		results[i].value = first->value ? strdup(first->value) : NULL;
		if (first->value != NULL && results[i].value == NULL) {
			ace_error_set(&results[i].err, ACE_ERR_SYSTEM, "out of memory");
			results[i].status = ACE_ERR_SYSTEM;
		}
	}
	free(ls);
}

/* --- Writing playbooks --------------------------------------------------------- */

int
ace_cache_parse_playbook(const char *json, size_t len, const char *agent_id,
    struct ace_cache_playbook *out, struct ace_error *err)
{
	static const char *ignored[] = { "playbook_id", "version", "created_at", "updated_at" };
	cJSON *doc = cJSON_ParseWithLength(json, len);
	cJSON *item;
	int rc = ACE_OK;

	memset(out, 0, sizeof(*out));
	if (doc == NULL)
		return ace_error_set(err, ACE_ERR_INVALID, "invalid JSON");
	if (!cJSON_IsObject(doc)) {
		rc = ace_error_set(err, ACE_ERR_INVALID, "expected a JSON object with \"context\"");
		goto out;
	}
	cJSON_ArrayForEach(item, doc) {
		bool known = false;

		for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
			known = known || strcmp(item->string, ignored[i]) == 0;
		if (known)
			continue;
		if (strcmp(item->string, "agent_id") == 0) {
			if (!cJSON_IsString(item) || strcmp(item->valuestring, agent_id) != 0) {
				rc = ace_error_set(err, ACE_ERR_INVALID,
				    "field \"agent_id\" differs from the agent being written, '%s'", agent_id);
				goto out;
			}
		} else if (strcmp(item->string, "context") == 0) {
			if (cJSON_IsNull(item)) {
				rc = ace_error_set(err, ACE_ERR_INVALID, "field \"context\" is null");
				goto out;
			}
			if (out->context != NULL) {
				rc = ace_error_set(err, ACE_ERR_INVALID, "field \"context\" appears twice");
				goto out;
			}
			out->context = cJSON_PrintUnformatted(item);
		} else if (strcmp(item->string, "metadata") == 0) {
			if (!cJSON_IsObject(item)) {
				rc = ace_error_set(err, ACE_ERR_INVALID, "field \"metadata\" is not an object");
				goto out;
			}
			if (out->metadata != NULL) {
				rc = ace_error_set(err, ACE_ERR_INVALID, "field \"metadata\" appears twice");
				goto out;
			}
			out->metadata = cJSON_PrintUnformatted(item);
		} else {
			rc = ace_error_set(err, ACE_ERR_INVALID,
			    "unknown field \"%.100s\" (expected context and metadata)", item->string);
			goto out;
		}
	}
	if (out->context == NULL) {
		rc = ace_error_set(err, ACE_ERR_INVALID, "missing field \"context\"");
		goto out;
	}
	if (out->metadata == NULL)
		out->metadata = strdup("{}");
	if (out->metadata == NULL)
		rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
out:
	cJSON_Delete(doc);
	if (rc != ACE_OK)
		ace_cache_playbook_release(out);
	return rc;
}

void
ace_cache_playbook_release(struct ace_cache_playbook *playbook)
{
	free(playbook->context);
	free(playbook->metadata);
	playbook->context = NULL;
	playbook->metadata = NULL;
}

/* Runs one statement of the playbook transaction; returns the result or NULL with err set. */
static PGresult *
run(PGconn *pg, const char *sql, int nparams, const char *const *params, ExecStatusType want,
    const char *what, struct ace_error *err)
{
	PGresult *res = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) == want)
		return res;
	ace_pg_error(err, pg, res, what);
	PQclear(res);
	return NULL;
}

/* Inserts the new version; returns its JSON in *value. */
static int
insert_playbook(PGconn *pg, const char *agent_id, const struct ace_cache_playbook *playbook,
    long expect_version, char **value, struct ace_error *err)
{
	const char *lock_params[] = { agent_id };
	char version[24];
	const char *insert_params[] = { agent_id, playbook->context, version, playbook->metadata };
	PGresult *res;
	long current;

	res = run(pg, "BEGIN", 0, NULL, PGRES_COMMAND_OK, "postgresql: BEGIN", err);
	if (res == NULL)
		return err->code;
	PQclear(res);
	/* Writers of one agent queue here, so max + 1 cannot be taken twice by ace-cache. */
	res = run(pg, "SELECT pg_advisory_xact_lock(hashtextextended('ace:playbook:' || $1, 0))",
	    1, lock_params, PGRES_TUPLES_OK, "postgresql: locking the agent's playbooks", err);
	if (res == NULL)
		return err->code;
	PQclear(res);
	res = run(pg, "SELECT coalesce(max(version), 0) FROM context_playbooks WHERE agent_id = $1",
	    1, lock_params, PGRES_TUPLES_OK, "postgresql: reading the current version", err);
	if (res == NULL)
		return err->code;
	current = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (expect_version >= 0 && current != expect_version)
		return ace_error_set(err, ACE_ERR_CONFLICT,
		    "current version is %ld, not the expected %ld", current,
		    expect_version);
	snprintf(version, sizeof(version), "%ld", current + 1);
	res = run(pg, "INSERT INTO context_playbooks (agent_id, context, version, metadata) "
	    "VALUES ($1, $2::jsonb, $3, $4::jsonb) RETURNING " PLAYBOOK_JSON,
	    4, insert_params, PGRES_TUPLES_OK, "postgresql: inserting the playbook", err);
	if (res == NULL) {
		/* A program other than ace-cache inserted the same version first. */
		if (strstr(err->message, "SQLSTATE 23505") != NULL)
			err->code = ACE_ERR_CONFLICT;
		return err->code;
	}
	*value = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (*value == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	res = run(pg, "COMMIT", 0, NULL, PGRES_COMMAND_OK, "postgresql: COMMIT", err);
	if (res == NULL) {
		free(*value);
		*value = NULL;
		return err->code;
	}
	PQclear(res);
	return ACE_OK;
}

/* Stores a value written by this process, dropping any load in progress for the key. */
static int
store_written(struct ace_cache *cache, const char *key, int kind, const char *value,
    struct ace_error *err)
{
	char lock[ACE_CACHE_KEY_MAX + sizeof(ACE_CACHE_LOCK_PREFIX)];
	char ttl[24];
	const char *del[] = { "DEL", lock };
	const char *set[] = { "SET", key, value, "PX", ttl };
	struct ace_redis_conn *conn;
	redisReply *reply;
	int rc;

	conn = redis_required(cache, err);
	if (conn == NULL)
		return err->code;
	snprintf(lock, sizeof(lock), "%s%s", ACE_CACHE_LOCK_PREFIX, key);
	format_ttl(cache, kind, value, ttl, sizeof(ttl));
	rc = ace_redis_append(conn, 2, del, NULL, err);
	if (rc == ACE_OK)
		rc = ace_redis_append(conn, 5, set, NULL, err);
	for (int i = 0; i < 2 && rc == ACE_OK; i++) {
		rc = ace_redis_read(conn, &reply, err);
		if (rc == ACE_OK)
			freeReplyObject(reply);
	}
	ace_redis_checkin(cache->redis, conn);
	return rc;
}

int
ace_cache_set_playbook(struct ace_cache *cache, const char *agent_id,
    const struct ace_cache_playbook *playbook, long expect_version, char **value,
    struct ace_error *cache_err, struct ace_error *err)
{
	struct ace_cache_request req = { ACE_CACHE_PLAYBOOK, agent_id, NULL };
	char key[ACE_CACHE_KEY_MAX];
	struct ace_conn *conn;
	int rc;

	*value = NULL;
	ace_error_set(cache_err, ACE_OK, "%s", "");
	rc = ace_cache_key(&req, key, sizeof(key), err);
	if (rc != ACE_OK)
		return rc;
	conn = ace_pool_checkout(cache->pool, err);
	if (conn == NULL)
		return ace_error_prefix(err, "postgresql");
	rc = insert_playbook(ace_conn_pg(conn), agent_id, playbook, expect_version, value, err);
	if (rc != ACE_OK && PQtransactionStatus(ace_conn_pg(conn)) != PQTRANS_IDLE) {
		PGresult *res = PQexec(ace_conn_pg(conn), "ROLLBACK");

		PQclear(res);
	}
	ace_pool_checkin(cache->pool, conn, rc == ACE_ERR_RETRY || rc == ACE_ERR_TIMEOUT);
	if (rc != ACE_OK)
		return rc;
	if (cache->redis != NULL && store_written(cache, key, ACE_CACHE_PLAYBOOK, *value, cache_err) != ACE_OK)
		ace_log(ACE_LOG_WARNING, "playbook stored in postgresql, but its redis key was not updated",
		    "key", key, "error", cache_err->message, NULL);
	return ACE_OK;
}

/* --- Invalidation ---------------------------------------------------------------- */

/* Sends UNLINK for keys[0..n) and their locks, and adds the data keys that existed to *removed. */
static int
unlink_keys(struct ace_redis_conn *conn, char **keys, size_t n, long long *removed,
    struct ace_error *err)
{
	const char **argv = calloc(n + 1, sizeof(*argv));
	char **locks = calloc(n, sizeof(*locks));
	redisReply *reply;
	int rc = ACE_OK;

	if (argv == NULL || locks == NULL) {
		rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n && rc == ACE_OK; i++) {
		size_t len = strlen(ACE_CACHE_LOCK_PREFIX) + strlen(keys[i]) + 1;

		locks[i] = malloc(len);
		if (locks[i] == NULL)
			rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		else
			snprintf(locks[i], len, "%s%s", ACE_CACHE_LOCK_PREFIX, keys[i]);
	}
	if (rc != ACE_OK || n == 0)
		goto out;
	argv[0] = "UNLINK";
	memcpy(argv + 1, keys, n * sizeof(*keys));
	rc = ace_redis_append(conn, (int)n + 1, argv, NULL, err);
	memcpy(argv + 1, locks, n * sizeof(*locks));
	if (rc == ACE_OK)
		rc = ace_redis_append(conn, (int)n + 1, argv, NULL, err);
	if (rc == ACE_OK)
		rc = ace_redis_read(conn, &reply, err);
	if (rc == ACE_OK) {
		*removed += reply->integer;
		freeReplyObject(reply);
		rc = ace_redis_read(conn, &reply, err);
		if (rc == ACE_OK)
			freeReplyObject(reply);
	}
out:
	for (size_t i = 0; locks != NULL && i < n; i++)
		free(locks[i]);
	free(locks);
	free(argv);
	return rc;
}

static bool
is_data_key(const char *key, size_t len)
{
	size_t p = strlen(ACE_CACHE_PLAYBOOK_PREFIX), b = strlen(ACE_CACHE_BASELINE_PREFIX);

	return (len > p && memcmp(key, ACE_CACHE_PLAYBOOK_PREFIX, p) == 0) ||
	    (len > b && memcmp(key, ACE_CACHE_BASELINE_PREFIX, b) == 0);
}

/*
 * Walks the keys matching pattern with SCAN and calls fn with each batch of
 * playbook and baseline keys found.  Stops at the first failure of fn.
 */
static int
scan_keys(struct ace_redis_conn *conn, const char *pattern,
    int (*fn)(void *ctx, struct ace_redis_conn *conn, char **keys, size_t n, struct ace_error *err),
    void *ctx, struct ace_error *err)
{
	char cursor[32] = "0";
	int rc = ACE_OK;

	do {
		const char *argv[] = { "SCAN", cursor, "MATCH", pattern, "COUNT", "1000" };
		redisReply *reply;
		char **keys;
		size_t n = 0;

		rc = ace_redis_command(conn, &reply, err, 6, argv, NULL);
		if (rc != ACE_OK)
			break;
		if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
		    reply->element[0]->type != REDIS_REPLY_STRING ||
		    reply->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(reply);
			rc = ace_error_set(err, ACE_ERR_SERVER, "unexpected reply to SCAN");
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
		keys = calloc(reply->element[1]->elements + 1, sizeof(*keys));
		if (keys == NULL) {
			freeReplyObject(reply);
			rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
			break;
		}
		for (size_t i = 0; i < reply->element[1]->elements; i++) {
			redisReply *k = reply->element[1]->element[i];

			if (k->type == REDIS_REPLY_STRING && is_data_key(k->str, k->len))
				keys[n++] = k->str;
		}
		rc = fn(ctx, conn, keys, n, err);
		free(keys);
		freeReplyObject(reply);
	} while (rc == ACE_OK && strcmp(cursor, "0") != 0);
	return rc;
}

static int
unlink_batch(void *ctx, struct ace_redis_conn *conn, char **keys, size_t n, struct ace_error *err)
{
	return unlink_keys(conn, keys, n, ctx, err);
}

int
ace_cache_invalidate_pattern(struct ace_cache *cache, const char *pattern,
    long long *removed, struct ace_error *err)
{
	struct ace_redis_conn *conn;
	int rc;

	*removed = 0;
	if (strncmp(pattern, "ace:", 4) != 0)
		return ace_error_set(err, ACE_ERR_INVALID,
		    "pattern '%s' does not start with 'ace:', so it could match keys of other programs", pattern);
	conn = redis_required(cache, err);
	if (conn == NULL)
		return err->code;
	rc = scan_keys(conn, pattern, unlink_batch, removed, err);
	ace_redis_checkin(cache->redis, conn);
	return rc;
}

int
ace_cache_invalidate(struct ace_cache *cache, const struct ace_cache_request *req,
    long long *removed, struct ace_error *err)
{
	char key[ACE_CACHE_KEY_MAX];
	char *keys[1] = { key };
	struct ace_redis_conn *conn;
	int rc;

	*removed = 0;
	if (req->kind == ACE_CACHE_BASELINE && req->task_type == NULL) {
		char escaped[ACE_CACHE_KEY_MAX], pattern[2 * ACE_CACHE_KEY_MAX];
		struct ace_cache_request probe = { ACE_CACHE_BASELINE, req->agent_id, "" };

		rc = ace_cache_key(&probe, key, sizeof(key), err);
		if (rc != ACE_OK)
			return rc;
		if (ace_cache_escape_glob(req->agent_id, escaped, sizeof(escaped)) < 0)
			return ace_error_set(err, ACE_ERR_INVALID, "agent_id too long");
		/* NOTE: with ':' inside agent ids, agent "a" also matches agent "a:b"; the key format allows no fix. */
		snprintf(pattern, sizeof(pattern), "%s%s:*", ACE_CACHE_BASELINE_PREFIX, escaped);
		return ace_cache_invalidate_pattern(cache, pattern, removed, err);
	}
	rc = ace_cache_key(req, key, sizeof(key), err);
	if (rc != ACE_OK)
		return rc;
	conn = redis_required(cache, err);
	if (conn == NULL)
		return err->code;
	rc = unlink_keys(conn, keys, 1, removed, err);
	ace_redis_checkin(cache->redis, conn);
	return rc;
}

/* --- Warming ------------------------------------------------------------------------ */

/* Streams the rows of sql (agent_id, task_type, value) into SET commands, pipelined. */
static int
warm_query(struct ace_cache *cache, PGconn *pg, struct ace_redis_conn *conn, const char *sql,
    int kind, long long *count, struct ace_error *err)
{
	PGresult *res;
	size_t queued = 0;
	int rc = ACE_OK;

	if (!PQsendQuery(pg, sql) || !PQsetSingleRowMode(pg))
		return ace_pg_error(err, pg, NULL, "postgresql: warm query");
	while ((res = PQgetResult(pg)) != NULL) {
		ExecStatusType st = PQresultStatus(res);

		if (rc == ACE_OK && st == PGRES_SINGLE_TUPLE) {
			struct ace_cache_request req = { kind, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1) };
			char key[ACE_CACHE_KEY_MAX], ttl[24];
			const char *value = PQgetvalue(res, 0, 2);
			const char *argv[] = { "SET", key, value, "PX", ttl };

			/* A row whose id makes no valid key is skipped, not fatal. */
			if (ace_cache_key(&req, key, sizeof(key), err) == ACE_OK) {
				format_ttl(cache, kind, value, ttl, sizeof(ttl));
				rc = ace_redis_append(conn, 5, argv, NULL, err);
				if (rc == ACE_OK && ++queued == PIPELINE_MAX) {
					rc = drain_replies(conn, queued, err) ? ACE_OK : err->code;
					queued = 0;
				}
				(*count)++;
			}
		} else if (rc == ACE_OK && st != PGRES_TUPLES_OK) {
			rc = ace_pg_error(err, pg, res, "postgresql: warm query");
		}
		PQclear(res);	/* results are read to the end, even after a failure */
	}
	if (rc == ACE_OK && !drain_replies(conn, queued, err))
		rc = err->code;
	return rc;
}

int
ace_cache_warm(struct ace_cache *cache, struct ace_cache_warm_result *out, struct ace_error *err)
{
	double started = ace_monotonic();
	struct ace_redis_conn *conn;
	struct ace_conn *pg;
	int rc;

	memset(out, 0, sizeof(*out));
	conn = redis_required(cache, err);
	if (conn == NULL)
		return err->code;
	pg = ace_pool_checkout(cache->pool, err);
	if (pg == NULL) {
		ace_redis_checkin(cache->redis, conn);
		return ace_error_prefix(err, "postgresql");
	}
	rc = warm_query(cache, ace_conn_pg(pg), conn, warm_playbooks_sql, ACE_CACHE_PLAYBOOK,
	    &out->playbooks, err);
	if (rc == ACE_OK)
		rc = warm_query(cache, ace_conn_pg(pg), conn, warm_baselines_sql, ACE_CACHE_BASELINE,
		    &out->baselines, err);
	ace_pool_checkin(cache->pool, pg, rc == ACE_ERR_RETRY || rc == ACE_ERR_TIMEOUT);
	ace_redis_checkin(cache->redis, conn);
	out->seconds = ace_monotonic() - started;
	return rc;
}

/* --- Statistics ------------------------------------------------------------------------ */

static int
count_batch(void *ctx, struct ace_redis_conn *conn, char **keys, size_t n, struct ace_error *err)
{
	struct ace_cache_stats *st = ctx;

	(void)conn;
	(void)err;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(keys[i], ACE_CACHE_PLAYBOOK_PREFIX, strlen(ACE_CACHE_PLAYBOOK_PREFIX)) == 0)
			st->playbook_keys++;
		else
			st->baseline_keys++;
	}
	return ACE_OK;
}

static long long
reply_number(const redisReply *r)
{
	if (r->type == REDIS_REPLY_STRING)
		return strtoll(r->str, NULL, 10);
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	return 0;
}

int
ace_cache_stats(struct ace_cache *cache, struct ace_cache_stats *out, struct ace_error *err)
{
	const char *argv[] = { "HMGET", ACE_CACHE_STATS_KEY, "gets", "misses", "loads" };
	struct ace_redis_conn *conn;
	redisReply *reply;
	int rc;

	memset(out, 0, sizeof(*out));
	conn = redis_required(cache, err);
	if (conn == NULL)
		return err->code;
	rc = ace_redis_command(conn, &reply, err, 5, argv, NULL);
	if (rc == ACE_OK) {
		if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3) {
			out->gets = reply_number(reply->element[0]);
			out->misses = reply_number(reply->element[1]);
			out->loads = reply_number(reply->element[2]);
			out->hits = out->gets > out->misses ? out->gets - out->misses : 0;
		}
		freeReplyObject(reply);
		rc = scan_keys(conn, "ace:*", count_batch, out, err);
	}
	ace_redis_checkin(cache->redis, conn);
	return rc;
}

/* --- LISTEN-driven invalidation -------------------------------------------------------- */

#define LISTEN_PENDING_MAX 10000

/* Agents whose playbook key still has to be removed. */
struct pending {
	char **agents;
	size_t n;
	bool flush_all;		/* too many to keep, or notifications were lost: remove every playbook key */
};

static void
pending_add(struct pending *p, const char *agent)
{
	if (p->flush_all)
		return;
	/* The TRUNCATE trigger sends an empty agent id: every playbook is gone. */
	if (*agent == '\0' || p->n == LISTEN_PENDING_MAX) {
		p->flush_all = true;
		return;
	}
	p->agents[p->n] = strdup(agent);
	if (p->agents[p->n] == NULL)
		p->flush_all = true;	/* out of memory: the coarse removal still covers it */
	else
		p->n++;
}

static void
pending_clear(struct pending *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->agents[i]);
	p->n = 0;
	p->flush_all = false;
}

/* Removes the pending keys; keeps them for the next try when Redis fails. */
static void
pending_flush(struct ace_cache *cache, struct pending *p, const struct ace_cache_listen_options *o)
{
	struct ace_redis_conn *conn;
	struct ace_error err;
	long long removed = 0;
	int rc = ACE_OK;

	if (p->n == 0 && !p->flush_all)
		return;
	if (cache->redis == NULL)
		return;
	conn = ace_redis_checkout(cache->redis, &err);
	if (conn == NULL) {
		note_redis_failure_as(cache, &err, "redis unavailable: keys are removed once it answers");
		return;
	}
	if (p->flush_all) {
		rc = scan_keys(conn, ACE_CACHE_PLAYBOOK_PREFIX "*", unlink_batch, &removed, &err);
		if (rc == ACE_OK) {
			ace_log(ACE_LOG_NOTICE, "removed every playbook key", "keys", ACE_LOG_INT(removed), NULL);
			if (o->on_key)
				o->on_key(o->ctx, ACE_CACHE_PLAYBOOK_PREFIX "*");
		}
	} else {
		for (size_t i = 0; i < p->n && rc == ACE_OK; i++) {
			struct ace_cache_request req = { ACE_CACHE_PLAYBOOK, p->agents[i], NULL };
			char key[ACE_CACHE_KEY_MAX];
			char *keys[1] = { key };

			if (ace_cache_key(&req, key, sizeof(key), &err) != ACE_OK) {
				ace_log(ACE_LOG_WARNING, "notification names an invalid agent id; ignored",
				    "error", err.message, NULL);
				continue;
			}
			rc = unlink_keys(conn, keys, 1, &removed, &err);
			if (rc == ACE_OK) {
				ace_log(ACE_LOG_DEBUG, "key invalidated", "key", key, NULL);
				if (o->on_key)
					o->on_key(o->ctx, key);
			}
		}
	}
	ace_redis_checkin(cache->redis, conn);
	if (rc == ACE_OK) {
		note_redis_success(cache);
		pending_clear(p);
	} else {
		note_redis_failure_as(cache, &err, "redis unavailable: keys are removed once it answers");
	}
}

/* Waits up to seconds for the socket (or -1: none) or the wake descriptor. */
static void
wait_input(int fd, int wake_fd, double seconds)
{
	struct pollfd pfd[2] = {
		{ .fd = fd, .events = POLLIN, .revents = 0 },
		{ .fd = wake_fd, .events = POLLIN, .revents = 0 },
	};

	if (poll(pfd, 2, (int)(seconds * 1000)) < 0 && errno != EINTR)
		sleep_seconds(seconds);
}

/* Opens the listening connection; returns NULL (logged once per outage) when PostgreSQL is unreachable. */
static PGconn *
listen_connect(const struct ace_cache_listen_options *o, bool *warned, struct ace_error *err)
{
	PGconn *pg = ace_pg_connect(o->conninfo, "ace-cache listen", o->connect_timeout, err);
	PGresult *res;

	if (pg == NULL)
		goto failed;
	res = PQexec(pg, "LISTEN " ACE_CACHE_CHANNEL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		ace_pg_error(err, pg, res, "LISTEN " ACE_CACHE_CHANNEL);
		PQclear(res);
		PQfinish(pg);
		goto failed;
	}
	PQclear(res);
	*warned = false;
	return pg;
failed:
	if (!*warned)
		ace_log(ACE_LOG_WARNING, "cannot listen for playbook changes; retrying",
		    "error", err->message, NULL);
	*warned = true;
	return NULL;
}

int
ace_cache_listen(struct ace_cache *cache, const struct ace_cache_listen_options *o,
    struct ace_error *err)
{
	struct pending p = { calloc(LISTEN_PENDING_MAX, sizeof(char *)), 0, false };
	double backoff = 0.1;
	bool listened = false, warned = false;
	PGconn *pg = NULL;

	if (p.agents == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	while (!*o->stop) {
		PGnotify *note;

		if (pg == NULL) {
			pg = listen_connect(o, &warned, err);
			if (pg == NULL && err->code == ACE_ERR_INVALID)
				break;
			if (pg == NULL) {
				wait_input(-1, o->wake_fd, backoff);
				backoff = backoff * 2 > 5 ? 5 : backoff * 2;
				continue;
			}
			backoff = 0.1;
			ace_log(ACE_LOG_INFO, "listening for playbook changes", "channel", ACE_CACHE_CHANNEL, NULL);
			if (listened) {
				ace_log(ACE_LOG_NOTICE, "reconnected to postgresql: removing every playbook key, "
				    "as changes made meanwhile were not notified", NULL);
				p.flush_all = true;
			}
			if (!listened && o->on_key)
				o->on_key(o->ctx, NULL);
			listened = true;
		}
		pending_flush(cache, &p, o);
		wait_input(PQsocket(pg), o->wake_fd, p.n > 0 || p.flush_all ? 0.2 : 1.0);
		if (!PQconsumeInput(pg) || PQstatus(pg) != CONNECTION_OK) {
			ace_log(ACE_LOG_WARNING, "postgresql connection lost; reconnecting",
			    "error", PQerrorMessage(pg), NULL);
			PQfinish(pg);
			pg = NULL;
			continue;
		}
		while ((note = PQnotifies(pg)) != NULL) {
			pending_add(&p, note->extra);
			PQfreemem(note);
		}
		pending_flush(cache, &p, o);
	}
	PQfinish(pg);
	pending_clear(&p);
	free(p.agents);
	return *o->stop ? ACE_OK : err->code;
}
