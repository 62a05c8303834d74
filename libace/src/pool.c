/* The libpq connection pool: a LIFO of idle connections under one mutex. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ace/log.h"
#include "ace/pool.h"

struct ace_conn {
	PGconn *pg;
	unsigned long id;
	double created;
};

struct ace_pool {
	char *conninfo;
	char *application_name;
	int size;
	int max_overflow;
	double recycle;
	double timeout;
	double connect_timeout;

	pthread_mutex_t lock;
	pthread_cond_t freed;		/* signalled when a connection or slot frees up */
	struct ace_conn **idle;		/* stack of size entries; most recently used on top */
	int nidle;
	int open;			/* idle + in use + being opened */
	unsigned long next_id;
	struct ace_pool_stats stats;
};

double
ace_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Copies a libpq message into out as one line: newlines and tabs become single spaces. */
static void
one_line(char *out, size_t len, const char *message)
{
	size_t n = 0;
	bool space = false;

	for (const char *p = message; *p && n + 1 < len; p++) {
		if (*p == '\n' || *p == '\t' || *p == ' ') {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < len)
			out[n++] = ' ';
		space = false;
		out[n++] = *p;
	}
	out[n] = '\0';
}

/* Pool connections are quiet: NOTICEs (such as "already exists, skipping") go to the debug log. */
static void
notice_to_log(void *arg, const char *message)
{
	char line[256];
	size_t n;

	(void)arg;
	snprintf(line, sizeof(line), "%s", message);
	n = strlen(line);
	if (n > 0 && line[n - 1] == '\n')
		line[n - 1] = '\0';
	ace_log(ACE_LOG_DEBUG, "server notice", "notice", line, NULL);
}

PGconn *
ace_pg_connect(const char *conninfo, const char *application_name,
    double connect_timeout, struct ace_error *err)
{
	const char *keywords[] = { "dbname", "connect_timeout", "fallback_application_name", NULL };
	const char *values[4];
	char timeout[32];
	PGconn *pg;

	snprintf(timeout, sizeof(timeout), "%d", connect_timeout < 1 ? 1 : (int)(connect_timeout + 0.999));
	values[0] = conninfo && *conninfo ? conninfo : NULL;
	values[1] = timeout;
	values[2] = application_name ? application_name : "ace";
	values[3] = NULL;
	pg = PQconnectdbParams(keywords, values, 1);
	if (pg == NULL) {
		ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		return NULL;
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		char msg[ACE_ERROR_MAX];
		bool bad_option;

		one_line(msg, sizeof(msg), PQerrorMessage(pg));
		bad_option = strstr(msg, "invalid connection option") != NULL ||
		    strstr(msg, "invalid URI") != NULL || strstr(msg, "missing \"=\"") != NULL ||
		    strstr(msg, "invalid integer value") != NULL;
		ace_error_set(err, bad_option ? ACE_ERR_INVALID : ACE_ERR_RETRY, "%s", msg);
		PQfinish(pg);
		return NULL;
	}
	PQsetNoticeProcessor(pg, notice_to_log, NULL);
	return pg;
}

int
ace_pg_wait(const char *conninfo, double timeout, struct ace_error *err)
{
	const char *keywords[] = { "dbname", "connect_timeout", NULL };
	const char *values[] = { conninfo && *conninfo ? conninfo : NULL, "2", NULL };
	double deadline = ace_monotonic() + timeout;
	PGPing ping;

	for (;;) {
		ping = PQpingParams(keywords, values, 1);
		if (ping == PQPING_OK)
			return ACE_OK;
		if (ping == PQPING_NO_ATTEMPT)
			return ace_error_set(err, ACE_ERR_INVALID, "invalid connection string");
		if (ace_monotonic() >= deadline)
			break;
		usleep(200 * 1000);
	}
	return ace_error_set(err, ACE_ERR_TIMEOUT, "%s after %g s",
	    ping == PQPING_REJECT ? "server still rejecting connections (starting up or shutting down)" :
	    "server not reachable", timeout);
}

int
ace_pg_classify(PGconn *conn, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (conn != NULL && PQstatus(conn) != CONNECTION_OK)
		return ACE_ERR_RETRY;
	if (state == NULL)
		return ACE_ERR_RETRY;	/* no SQLSTATE: a client-side communication failure */
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
	    strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
	    strcmp(state, "57P03") == 0 || strcmp(state, "40001") == 0 ||
	    strcmp(state, "40P01") == 0)
		return ACE_ERR_RETRY;
	if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
		return ACE_ERR_DATA;
	return ACE_ERR_SERVER;
}

int
ace_pg_error(struct ace_error *err, PGconn *conn, const PGresult *res, const char *what)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char msg[ACE_ERROR_MAX];

	if (primary == NULL)
		primary = conn ? PQerrorMessage(conn) : "unknown error";
	one_line(msg, sizeof(msg), primary);
	if (*msg == '\0')
		snprintf(msg, sizeof(msg), "connection lost");
	if (state != NULL)
		return ace_error_set(err, ace_pg_classify(conn, res), "%s: %s (SQLSTATE %s)", what, msg, state);
	return ace_error_set(err, ace_pg_classify(conn, res), "%s: %s", what, msg);
}

static char *
copy_string(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

struct ace_pool *
ace_pool_new(const struct ace_pool_options *opts, struct ace_error *err)
{
	struct ace_pool *pool;
	pthread_condattr_t attr;

	if (opts->size < 1 || opts->max_overflow < 0 || opts->timeout < 0) {
		ace_error_set(err, ACE_ERR_INVALID,
		    "invalid pool settings: size %d (at least 1), max_overflow %d, timeout %g s",
		    opts->size, opts->max_overflow, opts->timeout);
		return NULL;
	}
	pool = calloc(1, sizeof(*pool));
	if (pool == NULL)
		goto nomem;
	pool->idle = calloc((size_t)opts->size, sizeof(*pool->idle));
	pool->conninfo = copy_string(opts->conninfo);
	pool->application_name = copy_string(opts->application_name);
	if (pool->idle == NULL || (opts->conninfo && *opts->conninfo && !pool->conninfo))
		goto nomem;
	pool->size = opts->size;
	pool->max_overflow = opts->max_overflow;
	pool->recycle = opts->recycle;
	pool->timeout = opts->timeout;
	pool->connect_timeout = opts->connect_timeout;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->freed, &attr);
	pthread_condattr_destroy(&attr);
	return pool;
nomem:
	if (pool) {
		free(pool->idle);
		free(pool->conninfo);
		free(pool->application_name);
		free(pool);
	}
	ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	return NULL;
}

/* Closes a connection; the caller holds no lock and has already uncounted it. */
static void
close_conn(struct ace_conn *conn)
{
	PQfinish(conn->pg);
	free(conn);
}

/*
 * Returns whether an idle connection is still usable: libpq reports it open
 * and idle, and the socket has nothing unread.  A readable idle socket means
 * the server sent something unprompted (usually a FATAL before closing).
 */
static bool
healthy(struct ace_conn *conn)
{
	struct pollfd pfd;

	if (PQstatus(conn->pg) != CONNECTION_OK ||
	    PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
		return false;
	pfd.fd = PQsocket(conn->pg);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0)
		return false;
	if (poll(&pfd, 1, 0) > 0) {
		if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))
			return false;
		if (!PQconsumeInput(conn->pg) || PQstatus(conn->pg) != CONNECTION_OK)
			return false;
	}
	return true;
}

static struct ace_conn *
open_conn(struct ace_pool *pool, unsigned long id, struct ace_error *err)
{
	struct ace_conn *conn = calloc(1, sizeof(*conn));

	if (conn == NULL) {
		ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		return NULL;
	}
	conn->pg = ace_pg_connect(pool->conninfo, pool->application_name,
	    pool->connect_timeout, err);
	if (conn->pg == NULL) {
		free(conn);
		return NULL;
	}
	conn->id = id;
	conn->created = ace_monotonic();
	return conn;
}

static void
deadline_timespec(double deadline, struct timespec *ts)
{
	ts->tv_sec = (time_t)deadline;
	ts->tv_nsec = (long)((deadline - (double)ts->tv_sec) * 1e9);
}

struct ace_conn *
ace_pool_checkout(struct ace_pool *pool, struct ace_error *err)
{
	double deadline = ace_monotonic() + pool->timeout;
	struct ace_conn *conn;
	unsigned long id;
	struct timespec ts;

	deadline_timespec(deadline, &ts);
	pthread_mutex_lock(&pool->lock);
	pool->stats.checkouts++;
	for (;;) {
		while (pool->nidle > 0) {
			conn = pool->idle[--pool->nidle];
			bool old = pool->recycle > 0 && ace_monotonic() - conn->created > pool->recycle;

			if (!old && healthy(conn)) {
				pthread_mutex_unlock(&pool->lock);
				return conn;
			}
			if (old)
				pool->stats.recycled++;
			else
				pool->stats.health_failures++;
			pool->open--;
			pool->stats.closed++;
			pthread_mutex_unlock(&pool->lock);
			ace_log(ACE_LOG_DEBUG, old ? "connection recycled" : "idle connection broken, replacing",
			    "conn", ACE_LOG_INT(conn->id), NULL);
			close_conn(conn);
			pthread_mutex_lock(&pool->lock);
		}
		if (pool->open < pool->size + pool->max_overflow)
			break;
		pool->stats.waiting++;
		int rc = pthread_cond_timedwait(&pool->freed, &pool->lock, &ts);
		pool->stats.waiting--;
		if (rc == ETIMEDOUT && pool->nidle == 0 &&
		    pool->open >= pool->size + pool->max_overflow) {
			pool->stats.timeouts++;
			pthread_mutex_unlock(&pool->lock);
			ace_error_set(err, ACE_ERR_TIMEOUT,
			    "no free database connection after %g s (pool size %d, max_overflow %d, all %d in use)",
			    pool->timeout, pool->size, pool->max_overflow, pool->size + pool->max_overflow);
			return NULL;
		}
	}

	/* Reserve a slot, then connect without holding the lock. */
	pool->open++;
	if (pool->open > pool->stats.max_open)
		pool->stats.max_open = pool->open;
	id = ++pool->next_id;
	pthread_mutex_unlock(&pool->lock);

	conn = open_conn(pool, id, err);

	pthread_mutex_lock(&pool->lock);
	if (conn == NULL) {
		pool->open--;
		pool->stats.connect_failures++;
		pthread_cond_signal(&pool->freed);
	} else {
		pool->stats.opened++;
	}
	pthread_mutex_unlock(&pool->lock);
	if (conn != NULL)
		ace_log(ACE_LOG_DEBUG, "connection opened", "conn", ACE_LOG_INT(id), NULL);
	return conn;
}

void
ace_pool_checkin(struct ace_pool *pool, struct ace_conn *conn, bool discard)
{
	if (conn == NULL)
		return;
	if (!discard && PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
		discard = true;
	pthread_mutex_lock(&pool->lock);
	if (!discard && pool->nidle < pool->size) {
		pool->idle[pool->nidle++] = conn;
		conn = NULL;
	} else {
		pool->open--;
		pool->stats.closed++;
	}
	pthread_cond_signal(&pool->freed);
	pthread_mutex_unlock(&pool->lock);
	if (conn != NULL)
		close_conn(conn);
}

PGconn *
ace_conn_pg(struct ace_conn *conn)
{
	return conn->pg;
}

unsigned long
ace_conn_id(const struct ace_conn *conn)
{
	return conn->id;
}

void
ace_pool_stats(struct ace_pool *pool, struct ace_pool_stats *stats)
{
	pthread_mutex_lock(&pool->lock);
	*stats = pool->stats;
	stats->open = pool->open;
	stats->idle = pool->nidle;
	stats->in_use = pool->open - pool->nidle;
	pthread_mutex_unlock(&pool->lock);
}

void
ace_pool_free(struct ace_pool *pool)
{
	if (pool == NULL)
		return;
	for (int i = 0; i < pool->nidle; i++)
		close_conn(pool->idle[i]);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->freed);
	free(pool->idle);
	free(pool->conninfo);
	free(pool->application_name);
	free(pool);
}
