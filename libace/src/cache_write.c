/* Playbook writes, invalidation by key or pattern, warming and statistics of the cache. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/cache.h"
#include "ace/log.h"
#include "cache_private.h"

static const char warm_playbooks_sql[] =
	"SELECT DISTINCT ON (agent_id) agent_id, '', " PLAYBOOK_JSON
	" FROM context_playbooks ORDER BY agent_id, version DESC";

static const char warm_baselines_sql[] =
	"SELECT agent_id, task_type, jsonb_build_object('agent_id', agent_id, 'task_type', task_type, "
	"'stages', " BASELINE_STAGES " || jsonb_object_agg(stage, row))::text "
	"FROM (SELECT DISTINCT ON (agent_id, task_type, stage) agent_id, task_type, stage, "
	BASELINE_ROW " AS row FROM performance_baselines b "
	"ORDER BY agent_id, task_type, stage, version DESC) s GROUP BY agent_id, task_type";

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

	conn = cache_redis_required(cache, err);
	if (conn == NULL)
		return err->code;
	snprintf(lock, sizeof(lock), "%s%s", ACE_CACHE_LOCK_PREFIX, key);
	cache_format_ttl(cache, kind, value, ttl, sizeof(ttl));
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
int
cache_unlink_keys(struct ace_redis_conn *conn, char **keys, size_t n, long long *removed,
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
int
cache_scan_keys(struct ace_redis_conn *conn, const char *pattern,
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

int
cache_unlink_batch(void *ctx, struct ace_redis_conn *conn, char **keys, size_t n, struct ace_error *err)
{
	return cache_unlink_keys(conn, keys, n, ctx, err);
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
	conn = cache_redis_required(cache, err);
	if (conn == NULL)
		return err->code;
	rc = cache_scan_keys(conn, pattern, cache_unlink_batch, removed, err);
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
	conn = cache_redis_required(cache, err);
	if (conn == NULL)
		return err->code;
	rc = cache_unlink_keys(conn, keys, 1, removed, err);
	ace_redis_checkin(cache->redis, conn);
	return rc;
}

/* --- Warming ------------------------------------------------------------------------ */

/*
 * Streams the rows of sql (agent_id, task_type, value) into SET commands, pipelined.
 * NOTE: a plain SET, unlike the lock-checked fill of lookups, so a playbook
 * set while warm runs can be overwritten by the older row warm read.  The
 * listen command's removal, or the TTL, ends that.
 */
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
				cache_format_ttl(cache, kind, value, ttl, sizeof(ttl));
				rc = ace_redis_append(conn, 5, argv, NULL, err);
				if (rc == ACE_OK && ++queued == PIPELINE_MAX) {
					rc = cache_drain_replies(conn, queued, err) ? ACE_OK : err->code;
					queued = 0;
				}
				(*count)++;
			}
		} else if (rc == ACE_OK && st != PGRES_TUPLES_OK) {
			rc = ace_pg_error(err, pg, res, "postgresql: warm query");
		}
		PQclear(res);	/* results are read to the end, even after a failure */
	}
	if (rc == ACE_OK && !cache_drain_replies(conn, queued, err))
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
	conn = cache_redis_required(cache, err);
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
	conn = cache_redis_required(cache, err);
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
		rc = cache_scan_keys(conn, "ace:*", count_batch, out, err);
	}
	ace_redis_checkin(cache->redis, conn);
	return rc;
}
