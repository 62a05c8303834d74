/* Read-through lookups: key formats, TTL jitter, load locks and loads from PostgreSQL. */
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
#include "cache_private.h"

static const char playbook_sql[] =
	"SELECT " PLAYBOOK_JSON " FROM context_playbooks WHERE agent_id = $1 "
	"ORDER BY version DESC LIMIT 1";

static const char baseline_sql[] =
	"SELECT jsonb_build_object('agent_id', $1::text, 'task_type', $2::text, 'stages', "
	BASELINE_STAGES " || jsonb_object_agg(stage, row))::text "
	"FROM (SELECT DISTINCT ON (stage) stage, " BASELINE_ROW " AS row "
	"FROM performance_baselines b WHERE agent_id = $1 AND task_type = $2 "
	"ORDER BY stage, version DESC) s HAVING count(*) > 0";

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
void
cache_format_ttl(struct ace_cache *cache, int kind, const char *value, char *buf, size_t len)
{
	int ttl = strcmp(value, "null") == 0 ? cache->negative_ttl : ttl_seconds(cache, kind);

	snprintf(buf, len, "%lld", ace_cache_ttl_ms(ttl, cache->jitter_percent, random_unit(cache)));
}

/* Logs a Redis failure once per outage, as msg; the breaker logs its own changes. */
void
cache_note_failure_as(struct ace_cache *cache, const struct ace_error *err, const char *msg)
{
	if (cache->redis_failing || strncmp(err->message, "circuit breaker", 15) == 0) {
		ace_log(ACE_LOG_DEBUG, "redis unavailable", "error", err->message, NULL);
		return;
	}
	cache->redis_failing = true;
	ace_log(ACE_LOG_WARNING, msg, "redis", ace_redis_shown_url(cache->redis),
	    "error", err->message, NULL);
}

void
cache_note_failure(struct ace_cache *cache, const struct ace_error *err)
{
	cache_note_failure_as(cache, err, "redis unavailable: serving from postgresql");
}

void
cache_note_success(struct ace_cache *cache)
{
	cache->redis_failing = false;
}

/* Checks out a Redis connection, or returns NULL (logged) when Redis is not usable now. */
static struct ace_redis_conn *
cache_redis_checkout(struct ace_cache *cache)
{
	struct ace_redis_conn *conn;
	struct ace_error err;

	if (cache->redis == NULL)
		return NULL;
	conn = ace_redis_checkout(cache->redis, &err);
	if (conn == NULL)
		cache_note_failure(cache, &err);
	return conn;
}

/* Checks out a connection for a command that has no PostgreSQL fallback. */
struct ace_redis_conn *
cache_redis_required(struct ace_cache *cache, struct ace_error *err)
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
 * NOTE: no statement_timeout is set, so a server that hangs mid-query holds
 * the lookup for as long as it hangs; only Redis waits are bounded.
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
	cache_note_success(cache);
	return true;
failed:
	cache_note_failure(cache, &err);
	return false;
}

static void
make_token(struct ace_cache *cache, char *out, size_t len)
{
	snprintf(out, len, "%d-%016llx", (int)getpid(), next_random(cache));
}

/* Reads count replies whose content does not matter; a script error only loses one fill. */
bool
cache_drain_replies(struct ace_redis_conn *conn, size_t count, struct ace_error *err)
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
	if (!cache_drain_replies(conn, released, &err))
		goto failed;
	return true;
failed:
	cache_note_failure(cache, &err);
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
		cache_note_failure(cache, &err);
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

			cache_format_ttl(cache, ls[i].req->kind, stored, ttl, sizeof(ttl));
			ok = ace_redis_append(conn, 9, argv, NULL, &err) == ACE_OK;
		} else {
			/* The load failed: release the lock so that waiters need not wait it out. */
			const char *argv[] = { "EVAL", unlock_script, "1", ls[i].lock, ls[i].token };

			ok = ace_redis_append(conn, 5, argv, NULL, &err) == ACE_OK;
		}
		if (ok && ++queued == PIPELINE_MAX) {
			ok = cache_drain_replies(conn, queued, &err);
			queued = 0;
		}
	}
	if (ok)
		ok = cache_drain_replies(conn, queued, &err);
	for (size_t i = 0; i < n; i++)
		free(values[i]);
	free(values);
	if (!ok)
		cache_note_failure(cache, &err);
	return ok;
}

void
cache_sleep(double seconds)
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
		cache_sleep(delay);
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

	conn = cache_redis_checkout(cache);
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
