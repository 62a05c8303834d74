/* The Redis client of libace: URL parsing, a bounded set of hiredis connections and a circuit breaker. */
#ifndef ACE_REDIS_H
#define ACE_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "ace/error.h"

/* A REDIS_URL taken apart by ace_redis_url_parse(). */
struct ace_redis_url {
	char host[256];		/* TCP host name or address; "" for a unix socket */
	int port;		/* TCP port, 6379 when the URL names none */
	char path[108];		/* unix socket path; "" for TCP */
	char user[128];		/* ACL user; "" for the default user */
	char password[256];	/* "" : no AUTH */
	long db;		/* database number for SELECT */
};

/*
 * Parses redis://[[user]:password@]host[:port][/db] (an IPv6 address in
 * brackets) and unix://[[user]:password@]/path[?db=N].  User and password
 * may be percent-encoded.  Fails with ACE_ERR_INVALID and a message that
 * never contains the password.  rediss:// (TLS) is rejected, because the
 * hiredis that ace builds on has no TLS.
 */
int ace_redis_url_parse(const char *url, struct ace_redis_url *out, struct ace_error *err);

struct ace_redis;
struct ace_redis_conn;

struct ace_redis_options {
	const char *url;		/* as for ace_redis_url_parse(); copied */
	int max_connections;		/* connections open at once (at least 1) */
	double connect_timeout;		/* seconds one connection attempt may take */
	double command_timeout;		/* seconds a reply, or a free connection, is waited for */
	int breaker_failures;		/* consecutive failures that open the breaker */
	double breaker_cooldown;	/* seconds before an open breaker lets a probe through */
};

/*
 * Creates a client.  No connection is opened until the first checkout.
 * Returns NULL with ACE_ERR_INVALID (a bad URL or setting) or
 * ACE_ERR_SYSTEM.
 *
 * NOTE: the breaker's state lives in this client, so each process learns
 * about an outage on its own.  A short-lived process waits up to the
 * timeouts once; sharing the state (a file, say) would spare even that.
 */
struct ace_redis *ace_redis_new(const struct ace_redis_options *opts, struct ace_error *err);

/* Closes every idle connection and frees the client; none may be checked out. */
void ace_redis_free(struct ace_redis *redis);

/*
 * Returns a connection for the caller's sole use until ace_redis_checkin().
 * An idle connection is reused when its socket still looks open.  Otherwise
 * a new one is opened (connect, AUTH, SELECT), and each step is bounded by
 * the connect or command timeout.  Blocks at most command_timeout while
 * max_connections are in use, then fails with ACE_ERR_TIMEOUT.  Fails at
 * once with ACE_ERR_RETRY while the circuit breaker is open.  A failed
 * connection attempt returns ACE_ERR_RETRY or ACE_ERR_TIMEOUT and counts as
 * a breaker failure; a rejected AUTH or SELECT returns ACE_ERR_SERVER.
 * Thread-safe.
 */
struct ace_redis_conn *ace_redis_checkout(struct ace_redis *redis, struct ace_error *err);

/*
 * Gives a connection back.  A connection whose socket failed is closed, and
 * the next checkout opens a new one.  Thread-safe.
 */
void ace_redis_checkin(struct ace_redis *redis, struct ace_redis_conn *conn);

/*
 * Queues one command (argv strings of lens bytes; lens NULL: NUL-terminated)
 * without sending it.  Fails only with ACE_ERR_SYSTEM (out of memory) or
 * ACE_ERR_RETRY on a connection that already failed.
 */
int ace_redis_append(struct ace_redis_conn *conn, int argc, const char **argv,
    const size_t *lens, struct ace_error *err);

/*
 * Sends the queued commands and reads the next reply into *reply, which the
 * caller frees with freeReplyObject().  Each read waits at most the command
 * timeout.  An error reply of the server is returned as ACE_ERR_SERVER (or
 * ACE_ERR_RETRY for LOADING, BUSY, TRYAGAIN and MASTERDOWN) with *reply
 * NULL, and the connection stays usable for the replies after it.  A
 * timeout (ACE_ERR_TIMEOUT) or a broken connection (ACE_ERR_RETRY) fails
 * this and every later read on the connection at once, and counts as one
 * breaker failure.  The first reply of a checkout counts as a success.
 */
int ace_redis_read(struct ace_redis_conn *conn, redisReply **reply, struct ace_error *err);

/* Appends one command and reads its reply, as the two calls above. */
int ace_redis_command(struct ace_redis_conn *conn, redisReply **reply, struct ace_error *err,
    int argc, const char **argv, const size_t *lens);

/* The breaker's state now: enum ace_breaker_state.  Thread-safe. */
int ace_redis_breaker_state(struct ace_redis *redis);

/* The URL with its password masked, for messages. */
const char *ace_redis_shown_url(const struct ace_redis *redis);

#endif
