/* A thread-safe pool of libpq connections with overflow, recycling and health checks. */
#ifndef ACE_POOL_H
#define ACE_POOL_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "ace/error.h"

struct ace_pool;
struct ace_conn;

struct ace_pool_options {
	const char *conninfo;		/* URI or key/value string; NULL or "": libpq's PG* defaults */
	const char *application_name;	/* fallback_application_name of each connection */
	int size;			/* idle connections kept open (at least 1) */
	int max_overflow;		/* connections allowed above size; closed when returned */
	double recycle;			/* seconds; an older connection is replaced at checkout; 0: never */
	double timeout;			/* seconds a checkout waits for a free connection */
	double connect_timeout;		/* seconds one connection attempt may take (libpq rounds up to 2) */
};

/* Counters of a pool's state, read with ace_pool_stats(). */
struct ace_pool_stats {
	int open;			/* connections open now, idle or in use */
	int idle;
	int in_use;
	int waiting;			/* callers blocked in checkout */
	int max_open;			/* most connections open at once so far */
	unsigned long opened;		/* connections ever opened */
	unsigned long closed;
	unsigned long recycled;		/* closed at checkout for being older than recycle */
	unsigned long health_failures;	/* idle connections found broken at checkout */
	unsigned long checkouts;
	unsigned long timeouts;		/* checkouts that gave up after timeout */
	unsigned long connect_failures;
};

/*
 * Creates a pool.  No connection is opened until the first checkout.
 * Returns NULL with err set (ACE_ERR_INVALID or ACE_ERR_SYSTEM).  The
 * options' strings are copied.
 */
struct ace_pool *ace_pool_new(const struct ace_pool_options *opts, struct ace_error *err);

/*
 * Returns an open connection, idle in no transaction, for the caller's sole
 * use until ace_pool_checkin().  Idle connections are checked first (socket
 * state, transaction state, age) and broken ones are replaced.  Blocks while
 * size + max_overflow connections are in use, for at most the pool timeout,
 * then fails with ACE_ERR_TIMEOUT and a message naming size, overflow and
 * timeout.  A failed connection attempt returns NULL with ACE_ERR_RETRY and
 * libpq's reason.  Thread-safe.
 */
struct ace_conn *ace_pool_checkout(struct ace_pool *pool, struct ace_error *err);

/*
 * Gives a connection back.  With discard set (after a connection error, or
 * when its session state is unknown), or when the pool already keeps size
 * idle connections, the connection is closed.  Thread-safe.
 */
void ace_pool_checkin(struct ace_pool *pool, struct ace_conn *conn, bool discard);

/* The libpq handle of a checked-out connection; owned by the pool. */
PGconn *ace_conn_pg(struct ace_conn *conn);

/* A small number that identifies the connection in log lines. */
unsigned long ace_conn_id(const struct ace_conn *conn);

void ace_pool_stats(struct ace_pool *pool, struct ace_pool_stats *stats);

/* Closes every idle connection and frees the pool; none may be checked out. */
void ace_pool_free(struct ace_pool *pool);

/*
 * Opens one connection outside any pool, with the same parameters as the
 * pool uses.  Returns NULL with ACE_ERR_RETRY (server unreachable, starting
 * or refusing) or ACE_ERR_INVALID (a malformed connection string).
 */
PGconn *ace_pg_connect(const char *conninfo, const char *application_name,
    double connect_timeout, struct ace_error *err);

/*
 * Waits until the server accepts connections, polling with PQping, for at
 * most timeout seconds.  Returns ACE_OK, ACE_ERR_TIMEOUT, or ACE_ERR_INVALID
 * for a malformed connection string.
 */
int ace_pg_wait(const char *conninfo, double timeout, struct ace_error *err);

/*
 * Classifies a failed result (or a NULL result with an error on conn):
 * ACE_ERR_RETRY for connection loss and transient server states (SQLSTATE
 * classes 08, 53, 57P01..57P03, 40001, 40P01), ACE_ERR_DATA for rejected
 * values (classes 22 and 23), ACE_ERR_SERVER for everything else.
 */
int ace_pg_classify(PGconn *conn, const PGresult *res);

/* Fills err with the server's message, its SQLSTATE and code from ace_pg_classify(). */
int ace_pg_error(struct ace_error *err, PGconn *conn, const PGresult *res, const char *what);

/* Seconds from a monotonic clock. */
double ace_monotonic(void);

#endif
