/* The deployment checklist as checks: servers reachable, migrations current, limits, policies, hit rate and lag. */
#ifndef ACE_HEALTH_H
#define ACE_HEALTH_H

#include <stddef.h>

#include "ace/cache.h"
#include "ace/error.h"
#include "ace/migrate.h"
#include "ace/redis.h"

enum ace_health_status {
	ACE_HEALTH_OK,
	ACE_HEALTH_FAIL,
	ACE_HEALTH_SKIP,	/* not applicable, or its server already failed its own check */
};

struct ace_health_check {
	const char *name;	/* a fixed string such as "redis" */
	int status;		/* enum ace_health_status */
	char value[64];		/* one word or number, "-" when unknown */
	char threshold[64];	/* what passes, such as ">= 0.8" */
	char detail[ACE_ERROR_MAX + 512];	/* why it failed or was skipped; "" when ok */
};

struct ace_health_options {
	const char *conninfo;			/* PostgreSQL; NULL: libpq defaults */
	double connect_timeout;			/* seconds */
	struct ace_redis *redis;		/* Redis client */
	struct ace_cache *cache;		/* for the shared hit counters */
	const struct ace_migration_set *migrations;	/* what "current" means */
	int pool_size;				/* database.pool_size */
	int pool_max_overflow;			/* database.max_overflow */
	int workers;				/* ingest.workers */
	double min_hit_rate;			/* stats.health_min_hit_rate */
	double max_lag;				/* stats.health_max_lag, seconds */
};

#define ACE_HEALTH_CHECKS 9

/*
 * Runs every check in a fixed order into checks[ACE_HEALTH_CHECKS] and
 * returns how many failed.  The checks are: database, redis,
 * migrations_pending (pending, changed or missing migrations), pool_connections (pool_size +
 * max_overflow within the server's connections), pool_workers
 * (ingest.workers within the pool), compression_policy and
 * retention_policy (TimescaleDB only), cache_hit_rate and ingest_lag.
 * Checks that need a server that failed its own check are skipped.  Blocks
 * for at most the connection and command timeouts per server.
 */
int ace_health_run(const struct ace_health_options *o, struct ace_health_check *checks);

/* Returns "ok", "fail" or "skip". */
const char *ace_health_status_name(int status);

#endif
