/* The Redis client: REDIS_URL parsing, a bounded stack of hiredis connections, and breaker accounting. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "ace/breaker.h"
#include "ace/log.h"
#include "ace/pool.h"
#include "ace/redis.h"

struct ace_redis_conn {
	redisContext *ctx;
	struct ace_redis *owner;
	unsigned long id;
	int pending;		/* commands appended whose reply was not read */
	int fail_code;		/* ACE_OK until the socket failed */
	char fail_message[160];
	bool reported;		/* this checkout's outcome went to the breaker */
	bool failed_reported;	/* this checkout's failure went to the breaker */
	bool probe;		/* this checkout is the half-open breaker's probe */
};

struct ace_redis {
	struct ace_redis_url url;
	char shown[512];	/* the URL with the password masked */
	int max_connections;
	double connect_timeout;
	double command_timeout;

	pthread_mutex_t lock;
	pthread_cond_t freed;		/* signalled when a connection or slot frees up */
	struct ace_redis_conn **idle;	/* stack; most recently used on top */
	int nidle;
	int open;			/* idle + in use + being opened */
	unsigned long next_id;
	struct ace_breaker *breaker;
};

/* --- URL parsing ----------------------------------------------------------- */

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Copies len bytes of percent-encoded text into out (of size size), decoded. */
static int
percent_decode(const char *s, size_t len, char *out, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -1;
			hi = hex_value(s[i + 1]);
			lo = hex_value(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0' || n + 1 >= size)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

/* Parses a database number: decimal digits, 0 to INT_MAX. */
static int
parse_db(const char *s, size_t len, long *db)
{
	char digits[16];
	char *end;

	if (len == 0 || len >= sizeof(digits))
		return -1;
	memcpy(digits, s, len);
	digits[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)digits[i]))
			return -1;
	errno = 0;
	*db = strtol(digits, &end, 10);
	if (errno != 0 || *end != '\0' || *db > INT_MAX)
		return -1;
	return 0;
}

/* Splits "user:password" (len bytes) into out->user and out->password. */
static int
parse_userinfo(const char *s, size_t len, struct ace_redis_url *out, struct ace_error *err)
{
	const char *colon = memchr(s, ':', len);

	if (colon == NULL)
		return ace_error_set(err, ACE_ERR_INVALID,
		    "invalid Redis URL: expected user:password@ or :password@ before the host");
	if (percent_decode(s, (size_t)(colon - s), out->user, sizeof(out->user)) < 0 ||
	    percent_decode(colon + 1, len - (size_t)(colon - s) - 1, out->password,
	    sizeof(out->password)) < 0)
		return ace_error_set(err, ACE_ERR_INVALID,
		    "invalid Redis URL: bad percent-encoding or too long user or password");
	return ACE_OK;
}

/* Parses "host[:port]" or "[v6]:port" (len bytes). */
static int
parse_hostport(const char *s, size_t len, struct ace_redis_url *out, struct ace_error *err)
{
	const char *host = s, *port = NULL;
	size_t host_len;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL)
			return ace_error_set(err, ACE_ERR_INVALID, "invalid Redis URL: missing ']' after an IPv6 address");
		host = s + 1;
		host_len = (size_t)(close - host);
		if (close + 1 < s + len) {
			if (close[1] != ':')
				return ace_error_set(err, ACE_ERR_INVALID, "invalid Redis URL: expected ':' after ']'");
			port = close + 2;
		}
	} else {
		const char *colon = memchr(s, ':', len);

		host_len = colon ? (size_t)(colon - s) : len;
		if (colon != NULL)
			port = colon + 1;
	}
	if (host_len == 0)
		return ace_error_set(err, ACE_ERR_INVALID, "invalid Redis URL: missing host");
	if (host_len >= sizeof(out->host))
		return ace_error_set(err, ACE_ERR_INVALID, "invalid Redis URL: host name too long");
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';
	out->port = 6379;
	if (port != NULL) {
		long value;

		if (parse_db(port, (size_t)(s + len - port), &value) < 0 || value < 1 || value > 65535)
			return ace_error_set(err, ACE_ERR_INVALID,
			    "invalid Redis URL: port must be a number from 1 to 65535");
		out->port = (int)value;
	}
	return ACE_OK;
}

static int
parse_tcp(const char *rest, struct ace_redis_url *out, struct ace_error *err)
{
	const char *slash = rest + strcspn(rest, "/?#");
	const char *at = NULL;
	int rc;

	/* The last '@' before the path, as a password may contain '@'. */
	for (const char *p = rest; p < slash; p++)
		if (*p == '@')
			at = p;
	if (at != NULL) {
		rc = parse_userinfo(rest, (size_t)(at - rest), out, err);
		if (rc != ACE_OK)
			return rc;
		rest = at + 1;
	}
	rc = parse_hostport(rest, (size_t)(slash - rest), out, err);
	if (rc != ACE_OK)
		return rc;
	if (*slash == '\0' || strcmp(slash, "/") == 0)
		return ACE_OK;
	if (*slash != '/' || parse_db(slash + 1, strlen(slash + 1), &out->db) < 0)
		return ace_error_set(err, ACE_ERR_INVALID,
		    "invalid Redis URL: expected /DB, a database number, after the host");
	return ACE_OK;
}

static int
parse_unix(const char *rest, struct ace_redis_url *out, struct ace_error *err)
{
	const char *query, *at = NULL;
	size_t path_len;
	int rc;

	if (*rest != '/') {
		at = strchr(rest, '@');
		if (at == NULL)
			return ace_error_set(err, ACE_ERR_INVALID,
			    "invalid Redis URL: expected an absolute socket path, as in unix:///run/redis.sock");
		rc = parse_userinfo(rest, (size_t)(at - rest), out, err);
		if (rc != ACE_OK)
			return rc;
		rest = at + 1;
		if (*rest != '/')
			return ace_error_set(err, ACE_ERR_INVALID,
			    "invalid Redis URL: expected an absolute socket path after '@'");
	}
	query = strchr(rest, '?');
	path_len = query ? (size_t)(query - rest) : strlen(rest);
	if (path_len >= sizeof(out->path))
		return ace_error_set(err, ACE_ERR_INVALID, "invalid Redis URL: socket path longer than %zu bytes",
		    sizeof(out->path) - 1);
	memcpy(out->path, rest, path_len);
	out->path[path_len] = '\0';
	if (query == NULL)
		return ACE_OK;
	if (strncmp(query, "?db=", 4) != 0 || parse_db(query + 4, strlen(query + 4), &out->db) < 0)
		return ace_error_set(err, ACE_ERR_INVALID,
		    "invalid Redis URL: the only query parameter is db=N, a database number");
	return ACE_OK;
}

int
ace_redis_url_parse(const char *url, struct ace_redis_url *out, struct ace_error *err)
{
	memset(out, 0, sizeof(*out));
	if (url == NULL || *url == '\0')
		return ace_error_set(err, ACE_ERR_INVALID, "missing Redis URL");
	if (strncmp(url, "redis://", 8) == 0)
		return parse_tcp(url + 8, out, err);
	if (strncmp(url, "unix://", 7) == 0)
		return parse_unix(url + 7, out, err);
	if (strncmp(url, "rediss://", 9) == 0)
		return ace_error_set(err, ACE_ERR_INVALID,
		    "invalid Redis URL: rediss:// (TLS) is not supported by the hiredis that ace uses");
	return ace_error_set(err, ACE_ERR_INVALID,
	    "invalid Redis URL: expected redis://[user:password@]host:port/db or unix:///path");
}

/* --- Breaker accounting ------------------------------------------------------ */

/* Logs a change of breaker state; the caller holds the lock. */
static void
log_transition(struct ace_redis *redis, int before, const char *reason)
{
	int after = ace_breaker_state(redis->breaker);

	if (after == before)
		return;
	if (after == ACE_BREAKER_OPEN)
		ace_log(ACE_LOG_WARNING, "redis circuit breaker opened: calls go to postgresql",
		    "redis", redis->shown, "failures", ACE_LOG_INT(ace_breaker_failures(redis->breaker)),
		    "retry_in_s", ACE_LOG_NUM(ace_breaker_retry_in(redis->breaker, ace_monotonic()), 1),
		    "error", reason, NULL);
	else if (after == ACE_BREAKER_HALF_OPEN)
		ace_log(ACE_LOG_INFO, "redis circuit breaker half-open: probing", "redis", redis->shown, NULL);
	else
		ace_log(ACE_LOG_NOTICE, "redis circuit breaker closed", "redis", redis->shown, NULL);
}

/*
 * Reports this checkout's outcome to the breaker: the first success once,
 * and a failure once, even after a success, so that a connection that
 * answers and then hangs still counts.
 */
static void
report(struct ace_redis_conn *conn, bool ok, const char *reason)
{
	struct ace_redis *redis = conn->owner;
	int before;

	if (ok ? conn->reported : conn->failed_reported)
		return;
	conn->reported = true;
	if (!ok)
		conn->failed_reported = true;
	pthread_mutex_lock(&redis->lock);
	before = ace_breaker_state(redis->breaker);
	if (ok)
		ace_breaker_success(redis->breaker, ace_monotonic());
	else
		ace_breaker_failure(redis->breaker, ace_monotonic());
	log_transition(redis, before, reason);
	pthread_mutex_unlock(&redis->lock);
}

/* --- Connections ----------------------------------------------------------- */

static struct timeval
to_timeval(double seconds)
{
	struct timeval tv;

	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1000;
	return tv;
}

/* Classifies the error of a failed context: a timeout, or a lost or refused connection. */
static int
context_error_code(const redisContext *ctx)
{
	if (strstr(ctx->errstr, "timed out") != NULL ||
	    strstr(ctx->errstr, "temporarily unavailable") != NULL)
		return ACE_ERR_TIMEOUT;
	return ACE_ERR_RETRY;
}

/* Marks conn failed from its context's error, reports it, and fills err. */
static int
fail_conn(struct ace_redis_conn *conn, struct ace_error *err)
{
	redisContext *ctx = conn->ctx;

	conn->fail_code = context_error_code(ctx);
	if (ctx->err == REDIS_ERR_EOF || *ctx->errstr == '\0')
		snprintf(conn->fail_message, sizeof(conn->fail_message), "server closed the connection");
	else if (conn->fail_code == ACE_ERR_TIMEOUT)
		snprintf(conn->fail_message, sizeof(conn->fail_message), "no reply within %g s",
		    conn->owner->command_timeout);
	else
		snprintf(conn->fail_message, sizeof(conn->fail_message), "%s", ctx->errstr);
	report(conn, false, conn->fail_message);
	return ace_error_set(err, conn->fail_code, "%s", conn->fail_message);
}

static bool
retryable_reply(const char *message)
{
	static const char *prefixes[] = { "LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN" };

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(message, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

int
ace_redis_append(struct ace_redis_conn *conn, int argc, const char **argv,
    const size_t *lens, struct ace_error *err)
{
	if (conn->fail_code != ACE_OK)
		return ace_error_set(err, conn->fail_code, "%s", conn->fail_message);
	if (redisAppendCommandArgv(conn->ctx, argc, argv, lens) != REDIS_OK)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	conn->pending++;
	return ACE_OK;
}

int
ace_redis_read(struct ace_redis_conn *conn, redisReply **reply, struct ace_error *err)
{
	void *raw = NULL;
	redisReply *r;
	int code;

	*reply = NULL;
	if (conn->fail_code != ACE_OK)
		return ace_error_set(err, conn->fail_code, "%s", conn->fail_message);
	if (redisGetReply(conn->ctx, &raw) != REDIS_OK || raw == NULL)
		return fail_conn(conn, err);
	conn->pending--;
	r = raw;
	if (r->type != REDIS_REPLY_ERROR) {
		report(conn, true, NULL);
		*reply = r;
		return ACE_OK;
	}
	code = retryable_reply(r->str) ? ACE_ERR_RETRY : ACE_ERR_SERVER;
	report(conn, code != ACE_ERR_RETRY, r->str);
	ace_error_set(err, code, "%s", r->str);
	freeReplyObject(r);
	return code;
}

int
ace_redis_command(struct ace_redis_conn *conn, redisReply **reply, struct ace_error *err,
    int argc, const char **argv, const size_t *lens)
{
	int rc = ace_redis_append(conn, argc, argv, lens, err);

	if (rc != ACE_OK) {
		*reply = NULL;
		return rc;
	}
	return ace_redis_read(conn, reply, err);
}

/* Sends the AUTH and SELECT that the URL requires, pipelined. */
static int
handshake(struct ace_redis_conn *conn, const struct ace_redis_url *url, struct ace_error *err)
{
	char db[24];
	const char *auth[] = { "AUTH", url->user, url->password };
	const char *auth_default[] = { "AUTH", url->password };
	const char *select[] = { "SELECT", db };
	redisReply *reply;
	int n = 0, rc = ACE_OK;

	snprintf(db, sizeof(db), "%ld", url->db);
	if (*url->password != '\0') {
		/* Redis 6 ACLs take AUTH user password; older servers only AUTH password. */
		if (*url->user != '\0')
			rc = ace_redis_append(conn, 3, auth, NULL, err);
		else
			rc = ace_redis_append(conn, 2, auth_default, NULL, err);
		n++;
	}
	if (rc == ACE_OK && url->db != 0) {
		rc = ace_redis_append(conn, 2, select, NULL, err);
		n++;
	}
	for (int i = 0; i < n && rc == ACE_OK; i++) {
		rc = ace_redis_read(conn, &reply, err);
		if (rc == ACE_OK)
			freeReplyObject(reply);
		else if (rc == ACE_ERR_SERVER)
			ace_error_prefix(err, "%s rejected", i == 0 && *url->password ? "AUTH" : "SELECT");
	}
	return rc;
}

/* Opens and prepares a connection; returns NULL with err set. */
static struct ace_redis_conn *
open_conn(struct ace_redis *redis, unsigned long id, bool probe, struct ace_error *err)
{
	struct ace_redis_conn *conn = calloc(1, sizeof(*conn));
	struct timeval tv = to_timeval(redis->connect_timeout);
	int rc;

	if (conn == NULL) {
		ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		return NULL;
	}
	conn->owner = redis;
	conn->id = id;
	conn->probe = probe;
	if (*redis->url.path != '\0')
		conn->ctx = redisConnectUnixWithTimeout(redis->url.path, tv);
	else
		conn->ctx = redisConnectWithTimeout(redis->url.host, redis->url.port, tv);
	if (conn->ctx == NULL) {
		ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		goto failed;
	}
	if (conn->ctx->err != 0) {
		rc = context_error_code(conn->ctx);
		if (rc == ACE_ERR_TIMEOUT)
			ace_error_set(err, rc, "cannot connect within %g s", redis->connect_timeout);
		else
			ace_error_set(err, rc, "cannot connect: %s", conn->ctx->errstr);
		report(conn, false, err->message);
		goto failed;
	}
	/* TCP keepalive notices a peer that vanished while the connection sat idle; unix sockets have none. */
	if (redisSetTimeout(conn->ctx, to_timeval(redis->command_timeout)) != REDIS_OK ||
	    (*redis->url.path == '\0' && redisEnableKeepAlive(conn->ctx) != REDIS_OK)) {
		ace_error_set(err, ACE_ERR_SYSTEM, "cannot set socket options: %s", conn->ctx->errstr);
		goto failed;
	}
	if (handshake(conn, &redis->url, err) != ACE_OK)
		goto failed;
	return conn;
failed:
	if (conn->probe && !conn->reported) {
		pthread_mutex_lock(&redis->lock);
		ace_breaker_abandon(redis->breaker);
		pthread_mutex_unlock(&redis->lock);
	}
	if (conn->ctx != NULL)
		redisFree(conn->ctx);
	free(conn);
	return NULL;
}

/*
 * Returns whether an idle connection still looks open.  An idle socket that
 * is readable means the server closed it (a restart, a client timeout).
 */
static bool
idle_healthy(struct ace_redis_conn *conn)
{
	struct pollfd pfd = { .fd = conn->ctx->fd, .events = POLLIN, .revents = 0 };

	if (conn->ctx->err != 0 || pfd.fd < 0)
		return false;
	return poll(&pfd, 1, 0) == 0;
}

static void
close_conn(struct ace_redis_conn *conn)
{
	redisFree(conn->ctx);
	free(conn);
}

static void
deadline_timespec(double deadline, struct timespec *ts)
{
	ts->tv_sec = (time_t)deadline;
	ts->tv_nsec = (long)((deadline - (double)ts->tv_sec) * 1e9);
}

struct ace_redis *
ace_redis_new(const struct ace_redis_options *opts, struct ace_error *err)
{
	struct ace_redis *redis;
	pthread_condattr_t attr;

	if (opts->max_connections < 1 || opts->connect_timeout <= 0 || opts->command_timeout <= 0 ||
	    opts->breaker_failures < 1 || opts->breaker_cooldown < 0) {
		ace_error_set(err, ACE_ERR_INVALID,
		    "invalid Redis settings: max_connections %d, connect_timeout %g s, command_timeout %g s, "
		    "breaker_failures %d, breaker_cooldown %g s", opts->max_connections,
		    opts->connect_timeout, opts->command_timeout, opts->breaker_failures,
		    opts->breaker_cooldown);
		return NULL;
	}
	redis = calloc(1, sizeof(*redis));
	if (redis == NULL) {
		ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		return NULL;
	}
	if (ace_redis_url_parse(opts->url, &redis->url, err) != ACE_OK)
		goto failed;
	ace_redact_url(opts->url, redis->shown, sizeof(redis->shown));
	redis->idle = calloc((size_t)opts->max_connections, sizeof(*redis->idle));
	redis->breaker = ace_breaker_new(opts->breaker_failures, opts->breaker_cooldown);
	if (redis->idle == NULL || redis->breaker == NULL) {
		ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		goto failed;
	}
	redis->max_connections = opts->max_connections;
	redis->connect_timeout = opts->connect_timeout;
	redis->command_timeout = opts->command_timeout;
	pthread_mutex_init(&redis->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&redis->freed, &attr);
	pthread_condattr_destroy(&attr);
	return redis;
failed:
	ace_breaker_free(redis->breaker);
	free(redis->idle);
	free(redis);
	return NULL;
}

void
ace_redis_free(struct ace_redis *redis)
{
	if (redis == NULL)
		return;
	for (int i = 0; i < redis->nidle; i++)
		close_conn(redis->idle[i]);
	pthread_mutex_destroy(&redis->lock);
	pthread_cond_destroy(&redis->freed);
	ace_breaker_free(redis->breaker);
	free(redis->idle);
	free(redis);
}

/* Asks the breaker for a call; the caller holds the lock. */
static int
admit(struct ace_redis *redis, bool *probe, struct ace_error *err)
{
	int before = ace_breaker_state(redis->breaker);
	double now = ace_monotonic();

	if (!ace_breaker_allow(redis->breaker, now, probe))
		return ace_error_set(err, ACE_ERR_RETRY,
		    "circuit breaker %s after %d failures; next probe in %.1f s",
		    ace_breaker_state_name(ace_breaker_state(redis->breaker)),
		    ace_breaker_failures(redis->breaker), ace_breaker_retry_in(redis->breaker, now));
	log_transition(redis, before, NULL);
	return ACE_OK;
}

struct ace_redis_conn *
ace_redis_checkout(struct ace_redis *redis, struct ace_error *err)
{
	struct ace_redis_conn *conn = NULL;
	struct timespec ts;
	unsigned long id;
	bool probe = false;

	deadline_timespec(ace_monotonic() + redis->command_timeout, &ts);
	pthread_mutex_lock(&redis->lock);
	if (admit(redis, &probe, err) != ACE_OK) {
		pthread_mutex_unlock(&redis->lock);
		return NULL;
	}
	for (;;) {
		while (redis->nidle > 0) {
			conn = redis->idle[--redis->nidle];
			if (idle_healthy(conn)) {
				conn->probe = probe;
				conn->reported = false;
				conn->failed_reported = false;
				pthread_mutex_unlock(&redis->lock);
				return conn;
			}
			redis->open--;
			pthread_mutex_unlock(&redis->lock);
			ace_log(ACE_LOG_DEBUG, "idle redis connection closed by the server, replacing",
			    "conn", ACE_LOG_INT(conn->id), NULL);
			close_conn(conn);
			pthread_mutex_lock(&redis->lock);
		}
		if (redis->open < redis->max_connections)
			break;
		if (pthread_cond_timedwait(&redis->freed, &redis->lock, &ts) == ETIMEDOUT &&
		    redis->nidle == 0 && redis->open >= redis->max_connections) {
			if (probe)
				ace_breaker_abandon(redis->breaker);
			pthread_mutex_unlock(&redis->lock);
			ace_error_set(err, ACE_ERR_TIMEOUT,
			    "no free Redis connection after %g s (all %d of redis.max_connections in use)",
			    redis->command_timeout, redis->max_connections);
			return NULL;
		}
	}
	redis->open++;
	id = ++redis->next_id;
	pthread_mutex_unlock(&redis->lock);

	conn = open_conn(redis, id, probe, err);
	if (conn == NULL) {
		pthread_mutex_lock(&redis->lock);
		redis->open--;
		pthread_cond_signal(&redis->freed);
		pthread_mutex_unlock(&redis->lock);
		return NULL;
	}
	ace_log(ACE_LOG_DEBUG, "redis connection opened", "conn", ACE_LOG_INT(id),
	    "redis", redis->shown, NULL);
	return conn;
}

void
ace_redis_checkin(struct ace_redis *redis, struct ace_redis_conn *conn)
{
	bool keep;

	if (conn == NULL)
		return;
	/* Unread replies would be taken for the next caller's: such a connection is closed. */
	keep = conn->fail_code == ACE_OK && conn->ctx->err == 0 && conn->pending == 0;
	pthread_mutex_lock(&redis->lock);
	if (conn->probe && !conn->reported)
		ace_breaker_abandon(redis->breaker);
	if (keep && redis->nidle < redis->max_connections) {
		redis->idle[redis->nidle++] = conn;
		conn = NULL;
	} else {
		redis->open--;
	}
	pthread_cond_signal(&redis->freed);
	pthread_mutex_unlock(&redis->lock);
	if (conn != NULL)
		close_conn(conn);
}

int
ace_redis_breaker_state(struct ace_redis *redis)
{
	int state;

	pthread_mutex_lock(&redis->lock);
	state = ace_breaker_state(redis->breaker);
	pthread_mutex_unlock(&redis->lock);
	return state;
}

const char *
ace_redis_shown_url(const struct ace_redis *redis)
{
	return redis->shown;
}
