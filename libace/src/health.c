/* The health checks behind ace-stats health. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/dbstats.h"
#include "ace/health.h"
#include "ace/pool.h"

const char *
ace_health_status_name(int status)
{
	if (status == ACE_HEALTH_OK)
		return "ok";
	if (status == ACE_HEALTH_FAIL)
		return "fail";
	return "skip";
}

static struct ace_health_check *
start(struct ace_health_check *c, const char *name, const char *threshold)
{
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->status = ACE_HEALTH_OK;
	snprintf(c->value, sizeof(c->value), "-");
	snprintf(c->threshold, sizeof(c->threshold), "%s", threshold);
	return c;
}

static void
skip(struct ace_health_check *c, const char *why)
{
	c->status = ACE_HEALTH_SKIP;
	snprintf(c->detail, sizeof(c->detail), "%s", why);
}

static void
check_redis(const struct ace_health_options *o, struct ace_health_check *c)
{
	const char *argv[] = { "PING" };
	struct ace_redis_conn *conn;
	struct ace_error err;
	redisReply *reply;
	int rc = ACE_ERR_RETRY;

	start(c, "redis", "reachable");
	conn = ace_redis_checkout(o->redis, &err);
	if (conn != NULL) {
		rc = ace_redis_command(conn, &reply, &err, 1, argv, NULL);
		if (rc == ACE_OK)
			freeReplyObject(reply);
		ace_redis_checkin(o->redis, conn);
	}
	snprintf(c->value, sizeof(c->value), "%s", rc == ACE_OK ? "reachable" : "unreachable");
	if (rc != ACE_OK) {
		c->status = ACE_HEALTH_FAIL;
		snprintf(c->detail, sizeof(c->detail), "%s: %s", ace_redis_shown_url(o->redis), err.message);
	}
}

static void
check_migrations(const struct ace_health_options *o, PGconn *pg, struct ace_health_check *c)
{
	struct ace_migration_status *st;
	struct ace_error err;
	size_t n, behind = 0;

	start(c, "migrations_pending", "== 0");
	if (ace_migrate_status(pg, o->migrations, &st, &n, &err) != ACE_OK) {
		c->status = ACE_HEALTH_FAIL;
		snprintf(c->detail, sizeof(c->detail), "%s", err.message);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (st[i].state == ACE_MIGRATION_APPLIED)
			continue;
		if (behind++ == 0)
			snprintf(c->detail, sizeof(c->detail), "%04ld_%s is %s", st[i].version, st[i].name,
			    st[i].state == ACE_MIGRATION_PENDING ? "pending" :
			    st[i].state == ACE_MIGRATION_DRIFT ? "changed since it was applied" : "missing");
	}
	free(st);
	snprintf(c->value, sizeof(c->value), "%zu", behind);
	if (behind > 0) {
		c->status = ACE_HEALTH_FAIL;
		if (behind > 1)
			snprintf(c->detail + strlen(c->detail), sizeof(c->detail) - strlen(c->detail),
			    ", and %zu more; run ace-migrate up", behind - 1);
		else
			snprintf(c->detail + strlen(c->detail), sizeof(c->detail) - strlen(c->detail),
			    "; run ace-migrate up");
	}
}

static void
check_pool(const struct ace_health_options *o, const struct ace_dbstats *db, struct ace_health_check *c,
    struct ace_health_check *w)
{
	int total = o->pool_size + o->pool_max_overflow;

	start(c, "pool_connections", "");
	snprintf(c->threshold, sizeof(c->threshold), "<= %d", db->max_connections);
	snprintf(c->value, sizeof(c->value), "%d", total);
	if (total > db->max_connections) {
		c->status = ACE_HEALTH_FAIL;
		snprintf(c->detail, sizeof(c->detail),
		    "database.pool_size + database.max_overflow (%d + %d) is more than the %d connections "
		    "the server allows", o->pool_size, o->pool_max_overflow, db->max_connections);
	}

	start(w, "pool_workers", "");
	snprintf(w->threshold, sizeof(w->threshold), "<= %d", total);
	snprintf(w->value, sizeof(w->value), "%d", o->workers);
	if (o->workers > total) {
		w->status = ACE_HEALTH_FAIL;
		snprintf(w->detail, sizeof(w->detail),
		    "ingest.workers (%d) is more than database.pool_size + database.max_overflow (%d)",
		    o->workers, total);
	}
}

static void
check_policy(const struct ace_dbstats *db, const char *name, int count, struct ace_health_check *c)
{
	start(c, name, "active");
	if (count < 0) {
		skip(c, "TimescaleDB is not installed");
		return;
	}
	if (strcmp(db->layout, "hypertable") != 0) {
		skip(c, "performance_metrics is not a hypertable");
		return;
	}
	snprintf(c->value, sizeof(c->value), "%s", count > 0 ? "active" : "missing");
	if (count == 0) {
		c->status = ACE_HEALTH_FAIL;
		snprintf(c->detail, sizeof(c->detail), "no scheduled %s job on performance_metrics; "
		    "run ace-migrate policies", name);
	}
}

static void
check_hit_rate(const struct ace_health_options *o, bool redis_ok, struct ace_health_check *c)
{
	struct ace_cache_stats st;
	struct ace_error err;

	start(c, "cache_hit_rate", "");
	snprintf(c->threshold, sizeof(c->threshold), ">= %g", o->min_hit_rate);
	if (!redis_ok) {
		skip(c, "redis is unreachable");
		return;
	}
	if (ace_cache_stats(o->cache, &st, &err) != ACE_OK) {
		c->status = ACE_HEALTH_FAIL;
		snprintf(c->detail, sizeof(c->detail), "%s", err.message);
		return;
	}
	if (st.gets == 0) {
		skip(c, "no cache lookups counted yet");
		return;
	}
	snprintf(c->value, sizeof(c->value), "%.4f", (double)st.hits / (double)st.gets);
	if ((double)st.hits / (double)st.gets < o->min_hit_rate) {
		c->status = ACE_HEALTH_FAIL;
		snprintf(c->detail, sizeof(c->detail), "%lld hits of %lld lookups", st.hits, st.gets);
	}
}

static void
check_lag(const struct ace_health_options *o, const struct ace_dbstats *db, struct ace_health_check *c)
{
	start(c, "ingest_lag", "");
	snprintf(c->threshold, sizeof(c->threshold), "<= %g s", o->max_lag);
	if (!db->has_lag) {
		c->status = ACE_HEALTH_FAIL;
		snprintf(c->value, sizeof(c->value), "none");
		snprintf(c->detail, sizeof(c->detail), "performance_metrics has no rows");
		return;
	}
	snprintf(c->value, sizeof(c->value), "%.1f", db->lag_seconds);
	if (db->lag_seconds > o->max_lag) {
		c->status = ACE_HEALTH_FAIL;
		snprintf(c->detail, sizeof(c->detail), "the newest record is %.1f s old", db->lag_seconds);
	}
}

/* Marks the checks that need PostgreSQL as skipped, or as failed when the connection worked but a query failed. */
static void
database_checks_unknown(struct ace_health_check *checks, int status, const char *why)
{
	static const char *names[] = { "migrations_pending", "pool_connections", "pool_workers",
	    "compression_policy", "retention_policy", "ingest_lag" };
	static const char *thresholds[] = { "== 0", "-", "-", "active", "active", "-" };
	const int slots[] = { 2, 3, 4, 5, 6, 8 };

	for (int i = 0; i < 6; i++) {
		start(&checks[slots[i]], names[i], thresholds[i]);
		checks[slots[i]].status = status;
		snprintf(checks[slots[i]].detail, sizeof(checks[slots[i]].detail), "%s", why);
	}
}

int
ace_health_run(const struct ace_health_options *o, struct ace_health_check *checks)
{
	struct ace_health_check *db_check = &checks[0];
	struct ace_dbstats db;
	struct ace_error err;
	PGconn *pg;
	int failed = 0;

	check_redis(o, &checks[1]);
	start(db_check, "database", "reachable");
	pg = ace_pg_connect(o->conninfo, "ace-stats", o->connect_timeout, &err);
	snprintf(db_check->value, sizeof(db_check->value), "%s", pg ? "reachable" : "unreachable");
	if (pg == NULL) {
		db_check->status = ACE_HEALTH_FAIL;
		snprintf(db_check->detail, sizeof(db_check->detail), "%s", err.message);
		database_checks_unknown(checks, ACE_HEALTH_SKIP, "the database is unreachable");
	} else if (ace_dbstats_read(pg, &db, &err) != ACE_OK) {
		database_checks_unknown(checks, ACE_HEALTH_FAIL, err.message);
	} else {
		check_migrations(o, pg, &checks[2]);
		check_pool(o, &db, &checks[3], &checks[4]);
		check_policy(&db, "compression_policy", db.compression_policies, &checks[5]);
		check_policy(&db, "retention_policy", db.retention_policies, &checks[6]);
		check_lag(o, &db, &checks[8]);
		if (!db.has_table) {
			checks[8].status = ACE_HEALTH_FAIL;
			snprintf(checks[8].detail, sizeof(checks[8].detail),
			    "performance_metrics does not exist; run ace-migrate up");
		}
	}
	PQfinish(pg);
	check_hit_rate(o, checks[1].status == ACE_HEALTH_OK, &checks[7]);

	for (int i = 0; i < ACE_HEALTH_CHECKS; i++)
		failed += checks[i].status == ACE_HEALTH_FAIL;
	return failed;
}
