/*
 * LISTEN-driven invalidation: removes the keys of playbooks changed in PostgreSQL.
 * TODO: baselines have no trigger yet, so a recomputed baseline is served
 * until its TTL runs out.  A trigger on performance_baselines and a second
 * channel would close that gap.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "ace/cache.h"
#include "ace/log.h"
#include "cache_private.h"

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
		cache_note_failure_as(cache, &err, "redis unavailable: keys are removed once it answers");
		return;
	}
	if (p->flush_all) {
		rc = cache_scan_keys(conn, ACE_CACHE_PLAYBOOK_PREFIX "*", cache_unlink_batch, &removed, &err);
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
			rc = cache_unlink_keys(conn, keys, 1, &removed, &err);
			if (rc == ACE_OK) {
				ace_log(ACE_LOG_DEBUG, "key invalidated", "key", key, NULL);
				if (o->on_key)
					o->on_key(o->ctx, key);
			}
		}
	}
	ace_redis_checkin(cache->redis, conn);
	if (rc == ACE_OK) {
		cache_note_success(cache);
		pending_clear(p);
	} else {
		cache_note_failure_as(cache, &err, "redis unavailable: keys are removed once it answers");
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
		cache_sleep(seconds);
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
