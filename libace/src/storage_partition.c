/* The partitioned path: range partitions of performance_metrics, created ahead, filled from the default partition and dropped after retention. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ace/pool.h"
#include "storage_private.h"

/*
 * Partitions cover [lo, lo + chunk interval), with lo a multiple of the
 * interval since the Unix epoch, as TimescaleDB aligns its chunks, and are
 * named performance_metrics_pYYYYMMDD (or _pYYYYMMDD_HHMM when the interval
 * is not whole days).  Rows outside every partition land in the default
 * partition, so while it exists no insert fails for lack of a partition.
 */

/*
 * How long creating or dropping a partition waits for a lock.  While it
 * waits, every later query of the table it waits for queues behind it, so a
 * long query must make maintain fail, to be retried on its next run, rather
 * than stall ace-ingest.
 */
#define PARTITION_LOCK_TIMEOUT "SET LOCAL lock_timeout = '10s'"

struct partition {
	char name[64];
	long long lo, hi;	/* epoch seconds; bounds that are not timestamps read as +-1e15 */
};

struct partitions {
	struct partition *items;	/* sorted by lo */
	int count;
	char default_name[64];		/* "" when there is no default partition */
	long long now;			/* the server's clock, epoch seconds */
};

static void
free_partitions(struct partitions *parts)
{
	free(parts->items);
	memset(parts, 0, sizeof(*parts));
}

/* Reads the partitions of performance_metrics, their bounds and the server's clock. */
static int
read_partitions(struct storage_ctx *ctx, struct partitions *parts, struct ace_error *err)
{
	/*
	 * pg_get_expr() prints bounds as "FOR VALUES FROM ('...') TO ('...')" in
	 * this session's time zone and date style, so casting the text back in the
	 * same session gives the exact instant.
	 */
	static const char sql[] =
		"SELECT c.relname, b.expr = 'DEFAULT', "
		"       coalesce(extract(epoch FROM (regexp_match(b.expr, 'FROM \\(''([^'']+)''\\)'))[1]"
		"                ::timestamptz)::bigint, -1000000000000000), "
		"       coalesce(extract(epoch FROM (regexp_match(b.expr, 'TO \\(''([^'']+)''\\)'))[1]"
		"                ::timestamptz)::bigint, 1000000000000000) "
		"  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid, "
		"       LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS expr) b "
		" WHERE i.inhparent = '" STORAGE_TABLE "'::regclass "
		" ORDER BY 3, 1";
	PGresult *res = storage_query(ctx->pg, sql, 0, NULL,
	    "cannot read the partitions of " STORAGE_TABLE, err);
	int n;

	memset(parts, 0, sizeof(*parts));
	if (res == NULL)
		return err->code;
	n = PQntuples(res);
	parts->items = calloc((size_t)n + 1, sizeof(*parts->items));
	if (parts->items == NULL) {
		PQclear(res);
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	}
	for (int r = 0; r < n; r++) {
		struct partition *p = &parts->items[parts->count];

		if (PQgetvalue(res, r, 1)[0] == 't') {
			snprintf(parts->default_name, sizeof(parts->default_name), "%s",
			    PQgetvalue(res, r, 0));
			continue;
		}
		parts->count++;
		snprintf(p->name, sizeof(p->name), "%s", PQgetvalue(res, r, 0));
		p->lo = strtoll(PQgetvalue(res, r, 2), NULL, 10);
		p->hi = strtoll(PQgetvalue(res, r, 3), NULL, 10);
	}
	PQclear(res);

	res = storage_query(ctx->pg, "SELECT floor(extract(epoch FROM now()))::bigint", 0, NULL,
	    "cannot read the server's clock", err);
	if (res == NULL) {
		free_partitions(parts);
		return err->code;
	}
	parts->now = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return ACE_OK;
}

/* Returns the start of the interval that contains epoch second t. */
static long long
bucket_start(long long t, long long interval)
{
	long long q = t / interval;

	if (t % interval != 0 && t < 0)
		q--;
	return q * interval;
}

/* Returns the partition that covers exactly [lo, hi), or NULL. */
static const struct partition *
find_exact(const struct partitions *parts, long long lo, long long hi)
{
	for (int i = 0; i < parts->count; i++)
		if (parts->items[i].lo == lo && parts->items[i].hi == hi)
			return &parts->items[i];
	return NULL;
}

/* Returns a partition that overlaps [lo, hi), or NULL. */
static const struct partition *
find_overlap(const struct partitions *parts, long long lo, long long hi)
{
	for (int i = 0; i < parts->count; i++)
		if (parts->items[i].lo < hi && lo < parts->items[i].hi)
			return &parts->items[i];
	return NULL;
}

static void
partition_name(long long lo, long long interval, char *buf, size_t len)
{
	time_t t = (time_t)lo;
	struct tm tm;
	char stamp[32];

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), interval % 86400 == 0 ? "%Y%m%d" : "%Y%m%d_%H%M", &tm);
	snprintf(buf, len, STORAGE_TABLE "_p%s", stamp);
}

/* Returns the retention boundary: rows before it are expired.  INT64_MIN when retention is off. */
static long long
retention_boundary(const struct storage_ctx *ctx, const struct partitions *parts)
{
	return ctx->retention > 0 ? parts->now - ctx->retention : INT64_MIN;
}

/* Writes the retention boundary as a timestamptz literal, "-infinity" when retention is off. */
static void
format_boundary(const struct storage_ctx *ctx, const struct partitions *parts, char *buf, size_t len)
{
	if (ctx->retention > 0)
		storage_format_time(retention_boundary(ctx, parts), buf, len);
	else
		snprintf(buf, len, "-infinity");
}

/*
 * Reads the interval starts of the rows in the default partition that are
 * not expired, at most max of them, oldest first.
 */
static int
read_default_buckets(struct storage_ctx *ctx, const struct partitions *parts, long long *starts,
    int max, int *count, struct ace_error *err)
{
	char interval[32], boundary[40], limit[16], sql[512];
	const char *params[] = { interval, boundary, limit };
	char *name;
	PGresult *res;

	*count = 0;
	if (parts->default_name[0] == '\0')
		return ACE_OK;
	name = PQescapeIdentifier(ctx->pg, parts->default_name, strlen(parts->default_name));
	if (name == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	snprintf(sql, sizeof(sql),
	    "SELECT DISTINCT floor(extract(epoch FROM recorded_at) / $1::bigint)::bigint * $1::bigint "
	    "  FROM %s WHERE recorded_at >= $2::timestamptz "
	    " ORDER BY 1 LIMIT $3::integer", name);
	PQfreemem(name);
	snprintf(interval, sizeof(interval), "%lld", ctx->chunk);
	format_boundary(ctx, parts, boundary, sizeof(boundary));
	snprintf(limit, sizeof(limit), "%d", max);
	res = storage_query(ctx->pg, sql, 3, params, "cannot read the default partition", err);
	if (res == NULL)
		return err->code;
	for (int r = 0; r < PQntuples(res) && r < max; r++)
		starts[(*count)++] = strtoll(PQgetvalue(res, r, 0), NULL, 10);
	PQclear(res);
	return ACE_OK;
}

/* --- Creating and dropping ------------------------------------------------------ */

/*
 * Creates the partition for [lo, hi) and moves into it the rows of the
 * default partition in that range, in one transaction.  The partition is
 * made as a plain table, filled, and then attached: CREATE TABLE ...
 * PARTITION OF would fail while the default partition holds rows of the
 * range, and would lock the parent table exclusively.  ATTACH PARTITION
 * locks the parent only against schema changes, so queries and inserts into
 * other partitions go on.  The default partition is locked exclusively from
 * the start, because a row inserted into it between the move and the attach
 * would make the attach fail.  A CHECK constraint that matches the bounds
 * lets ATTACH skip scanning the new table; it is dropped afterwards.
 */
static int
create_partition(struct storage_ctx *ctx, const struct partitions *parts, long long lo,
    long long hi, long long *moved, struct ace_error *err)
{
	char name[64], from[40], to[40], what[160];
	char *sql = NULL, *default_ident = NULL;
	size_t len = 4096;
	PGresult *res;
	int rc;

	*moved = 0;
	partition_name(lo, ctx->chunk, name, sizeof(name));
	storage_format_time(lo, from, sizeof(from));
	storage_format_time(hi, to, sizeof(to));
	snprintf(what, sizeof(what), "cannot create partition %s", name);
	sql = malloc(len);
	if (parts->default_name[0] != '\0')
		default_ident = PQescapeIdentifier(ctx->pg, parts->default_name,
		    strlen(parts->default_name));
	if (sql == NULL || (parts->default_name[0] != '\0' && default_ident == NULL)) {
		rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		goto out;
	}

	rc = storage_exec(ctx->pg, "BEGIN; " PARTITION_LOCK_TIMEOUT, what, err);
	if (rc != ACE_OK)
		goto out;
	if (default_ident != NULL) {
		snprintf(sql, len, "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", default_ident);
		rc = storage_exec(ctx->pg, sql, what, err);
		if (rc != ACE_OK)
			goto out;
	}
	snprintf(sql, len,
	    "CREATE TABLE %s (LIKE " STORAGE_TABLE " INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
	    "INCLUDING STORAGE); "
	    "ALTER TABLE %s ADD CONSTRAINT %s_bounds CHECK (recorded_at >= '%s' AND recorded_at < '%s')",
	    name, name, name, from, to);
	rc = storage_exec(ctx->pg, sql, what, err);
	if (rc != ACE_OK)
		goto out;
	if (default_ident != NULL) {
		snprintf(sql, len,
		    "WITH moved AS (DELETE FROM %s WHERE recorded_at >= '%s' AND recorded_at < '%s' "
		    "RETURNING *) INSERT INTO %s SELECT * FROM moved", default_ident, from, to, name);
		res = storage_query(ctx->pg, sql, 0, NULL, what, err);
		if (res == NULL) {
			rc = err->code;
			goto out;
		}
		*moved = strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
	}
	snprintf(sql, len,
	    "ALTER TABLE " STORAGE_TABLE " ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s'); "
	    "ALTER TABLE %s DROP CONSTRAINT %s_bounds",
	    name, from, to, name, name);
	rc = storage_exec(ctx->pg, sql, what, err);
	if (rc == ACE_OK)
		rc = storage_exec(ctx->pg, "COMMIT", what, err);
out:
	if (rc != ACE_OK)
		storage_rollback(ctx->pg);
	PQfreemem(default_ident);
	free(sql);
	return rc;
}

static int
create_default_partition(struct storage_ctx *ctx, struct partitions *parts, struct ace_error *err)
{
	int rc = storage_exec(ctx->pg, "CREATE TABLE " STORAGE_DEFAULT_PARTITION
	    " PARTITION OF " STORAGE_TABLE " DEFAULT", "cannot create the default partition", err);

	if (rc != ACE_OK)
		return rc;
	snprintf(parts->default_name, sizeof(parts->default_name), "%s", STORAGE_DEFAULT_PARTITION);
	storage_say(ctx, ACE_STORAGE_CHANGED, "default partition: created " STORAGE_DEFAULT_PARTITION);
	return ACE_OK;
}

/* Creates the partition of one interval unless one covers it; reports what happened. */
static int
ensure_partition(struct storage_ctx *ctx, struct partitions *parts, long long lo,
    int *created, struct ace_error *err)
{
	long long hi = lo + ctx->chunk, moved;
	const struct partition *other;
	char from[40], to[40], name[64];
	int rc;

	if (find_exact(parts, lo, hi) != NULL)
		return ACE_OK;
	storage_format_time(lo, from, sizeof(from));
	storage_format_time(hi, to, sizeof(to));
	other = find_overlap(parts, lo, hi);
	if (other != NULL) {
		/* TODO: fill the gaps around partitions of an earlier chunk interval; until then their rows wait in the default partition. */
		storage_say(ctx, ACE_STORAGE_UNCHANGED, "partition for [%s, %s): skipped, because it "
		    "overlaps %s, made with another chunk interval", from, to, other->name);
		return ACE_OK;
	}
	rc = create_partition(ctx, parts, lo, hi, &moved, err);
	if (rc != ACE_OK)
		return rc;
	partition_name(lo, ctx->chunk, name, sizeof(name));
	if (moved > 0)
		storage_say(ctx, ACE_STORAGE_CHANGED, "partition %s: created for [%s, %s), "
		    "moved %lld rows from %s", name, from, to, moved, parts->default_name);
	else
		storage_say(ctx, ACE_STORAGE_CHANGED, "partition %s: created for [%s, %s)",
		    name, from, to);
	(*created)++;
	return ACE_OK;
}

/* Drops partitions that end at or before the retention boundary, each in its own transaction. */
static int
drop_expired(struct storage_ctx *ctx, const struct partitions *parts, struct ace_error *err)
{
	long long boundary = retention_boundary(ctx, parts);
	char when[40], sql[256], what[128];

	storage_format_time(boundary, when, sizeof(when));
	for (int i = 0; i < parts->count; i++) {
		const struct partition *p = &parts->items[i];
		char to[40], *ident;
		int rc;

		if (p->hi > boundary)
			continue;
		ident = PQescapeIdentifier(ctx->pg, p->name, strlen(p->name));
		if (ident == NULL)
			return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		/* DROP locks the parent exclusively, but only for as long as the catalog change takes. */
		snprintf(sql, sizeof(sql), "BEGIN; " PARTITION_LOCK_TIMEOUT "; DROP TABLE %s; COMMIT",
		    ident);
		PQfreemem(ident);
		snprintf(what, sizeof(what), "cannot drop partition %s", p->name);
		rc = storage_exec(ctx->pg, sql, what, err);
		if (rc != ACE_OK) {
			storage_rollback(ctx->pg);
			return rc;
		}
		storage_format_time(p->hi, to, sizeof(to));
		storage_say(ctx, ACE_STORAGE_CHANGED, "partition %s: dropped, its rows end at %s, "
		    "before the retention boundary %s", p->name, to, when);
	}
	return ACE_OK;
}

/* Deletes rows older than the retention boundary from the default partition. */
static int
delete_expired_defaults(struct storage_ctx *ctx, const struct partitions *parts,
    struct ace_error *err)
{
	long long boundary = retention_boundary(ctx, parts);
	char when[40], sql[256];
	char *ident;
	PGresult *res;
	long long n;

	if (parts->default_name[0] == '\0')
		return ACE_OK;
	storage_format_time(boundary, when, sizeof(when));
	ident = PQescapeIdentifier(ctx->pg, parts->default_name, strlen(parts->default_name));
	if (ident == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE recorded_at < '%s'", ident, when);
	PQfreemem(ident);
	res = storage_query(ctx->pg, sql, 0, NULL, "cannot delete expired rows of the default partition",
	    err);
	if (res == NULL)
		return err->code;
	n = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	if (n > 0)
		storage_say(ctx, ACE_STORAGE_CHANGED, "default partition: deleted %lld rows before the "
		    "retention boundary %s", n, when);
	return ACE_OK;
}

int
storage_partition_apply(struct storage_ctx *ctx, bool drop, struct ace_error *err)
{
	/* Intervals with rows waiting in the default partition, taken in rounds of this many. */
	enum { ROUND = 256 };
	long long starts[ROUND], first, last;
	struct partitions parts;
	int created = 0, count = 0, rc;
	char from[40], to[40];

	rc = read_partitions(ctx, &parts, err);
	if (rc != ACE_OK)
		return rc;
	if (parts.default_name[0] == '\0') {
		rc = create_default_partition(ctx, &parts, err);
		if (rc != ACE_OK)
			goto out;
	}

	/* The current interval and premake intervals after it. */
	first = bucket_start(parts.now, ctx->chunk);
	last = first + (long long)ctx->cfg->premake * ctx->chunk;
	for (long long lo = first; lo <= last && rc == ACE_OK; lo += ctx->chunk)
		rc = ensure_partition(ctx, &parts, lo, &created, err);
	if (rc != ACE_OK)
		goto out;
	storage_format_time(first, from, sizeof(from));
	storage_format_time(last + ctx->chunk, to, sizeof(to));
	if (created == 0)
		storage_say(ctx, ACE_STORAGE_UNCHANGED, "partitions ahead: unchanged (%s to %s)",
		    from, to);

	/*
	 * Every interval within retention that has rows in the default partition
	 * gets its partition.  Each creation empties its interval, so the next
	 * round reads only intervals still waiting; those that overlap another
	 * partition are skipped and stay.  NOTE: each move scans the default
	 * partition, which holds every row right after migration 0005, so
	 * converting a large table costs one scan of it per interval of data.
	 */
	do {
		int skipped = 0;

		free_partitions(&parts);
		rc = read_partitions(ctx, &parts, err);
		if (rc == ACE_OK)
			rc = read_default_buckets(ctx, &parts, starts, ROUND, &count, err);
		for (int i = 0; i < count && rc == ACE_OK; i++) {
			int before = created;

			rc = ensure_partition(ctx, &parts, starts[i], &created, err);
			if (created == before)
				skipped++;
		}
		if (skipped == count)
			break;
	} while (rc == ACE_OK && count == ROUND);

	if (rc == ACE_OK && drop && ctx->retention > 0) {
		free_partitions(&parts);
		rc = read_partitions(ctx, &parts, err);
		if (rc == ACE_OK)
			rc = drop_expired(ctx, &parts, err);
		if (rc == ACE_OK)
			rc = delete_expired_defaults(ctx, &parts, err);
	}
out:
	free_partitions(&parts);
	return rc;
}

/* --- Verify ---------------------------------------------------------------------- */

/* Counts the rows of the default partition before and after the retention boundary. */
static int
count_default_rows(struct storage_ctx *ctx, const struct partitions *parts, long long *expired,
    long long *waiting, struct ace_error *err)
{
	char boundary[40], sql[256];
	const char *params[] = { boundary };
	char *ident;
	PGresult *res;

	*expired = *waiting = 0;
	ident = PQescapeIdentifier(ctx->pg, parts->default_name, strlen(parts->default_name));
	if (ident == NULL)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FILTER (WHERE recorded_at < $1::timestamptz), "
	    "       count(*) FILTER (WHERE recorded_at >= $1::timestamptz) FROM %s", ident);
	PQfreemem(ident);
	format_boundary(ctx, parts, boundary, sizeof(boundary));
	res = storage_query(ctx->pg, sql, 1, params, "cannot read the default partition", err);
	if (res == NULL)
		return err->code;
	*expired = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	*waiting = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return ACE_OK;
}

static void
verify_ahead(struct storage_ctx *ctx, const struct partitions *parts)
{
	long long first = bucket_start(parts->now, ctx->chunk);
	long long last = first + (long long)ctx->cfg->premake * ctx->chunk;
	char from[40], to[40], missing[512] = "";
	size_t used = 0;
	int absent = 0;

	for (long long lo = first; lo <= last; lo += ctx->chunk) {
		char name[64];

		if (find_exact(parts, lo, lo + ctx->chunk) != NULL)
			continue;
		partition_name(lo, ctx->chunk, name, sizeof(name));
		if (absent++ < 3 && used < sizeof(missing))
			used += (size_t)snprintf(missing + used, sizeof(missing) - used, "%s%s",
			    used ? ", " : "", name);
	}
	storage_format_time(first, from, sizeof(from));
	storage_format_time(last + ctx->chunk, to, sizeof(to));
	if (absent == 0)
		storage_say(ctx, ACE_STORAGE_OK, "partitions ahead: %d cover %s to %s",
		    ctx->cfg->premake + 1, from, to);
	else
		storage_say(ctx, ACE_STORAGE_DIFFERS, "partitions ahead: %d of %d missing between %s "
		    "and %s (%s%s); run 'ace-migrate maintain'", absent, ctx->cfg->premake + 1, from, to,
		    missing, absent > 3 ? ", ..." : "");
}

static void
verify_retention(struct storage_ctx *ctx, const struct partitions *parts, long long expired_rows)
{
	long long boundary = retention_boundary(ctx, parts);
	char when[40], retention[64];
	int expired = 0;

	if (ctx->retention == 0) {
		storage_say(ctx, ACE_STORAGE_OK, "retention: none, as timeseries.retention is 0");
		return;
	}
	storage_format_time(boundary, when, sizeof(when));
	storage_format_interval(ctx->retention, retention, sizeof(retention));
	for (int i = 0; i < parts->count; i++) {
		if (parts->items[i].hi > boundary)
			continue;
		if (expired++ == 0)
			storage_say(ctx, ACE_STORAGE_DIFFERS, "retention: partition %s ends before the "
			    "boundary %s (%s ago); run 'ace-migrate maintain'", parts->items[i].name, when,
			    retention);
	}
	if (expired > 1)
		storage_say(ctx, ACE_STORAGE_DIFFERS, "retention: %d more partitions end before %s",
		    expired - 1, when);
	if (expired_rows > 0)
		storage_say(ctx, ACE_STORAGE_DIFFERS, "retention: the default partition holds %lld rows "
		    "before %s; run 'ace-migrate maintain'", expired_rows, when);
	if (expired == 0 && expired_rows == 0)
		storage_say(ctx, ACE_STORAGE_OK, "retention: nothing before %s (%s ago)", when, retention);
}

int
storage_partition_verify(struct storage_ctx *ctx, struct ace_error *err)
{
	long long expired = 0, waiting = 0;
	struct partitions parts;
	int rc;

	rc = read_partitions(ctx, &parts, err);
	if (rc != ACE_OK)
		return rc;
	if (parts.default_name[0] == '\0') {
		storage_say(ctx, ACE_STORAGE_DIFFERS, "default partition: missing, so rows outside "
		    "every partition are rejected; run 'ace-migrate policies'");
	} else {
		rc = count_default_rows(ctx, &parts, &expired, &waiting, err);
		if (rc != ACE_OK)
			goto out;
		if (waiting > 0)
			storage_say(ctx, ACE_STORAGE_DIFFERS, "default partition: %s holds %lld rows that "
			    "belong in partitions; run 'ace-migrate maintain'", parts.default_name, waiting);
		else
			storage_say(ctx, ACE_STORAGE_OK, "default partition: %s, no rows waiting",
			    parts.default_name);
	}
	verify_ahead(ctx, &parts);
	verify_retention(ctx, &parts, expired);
out:
	free_partitions(&parts);
	return rc;
}
