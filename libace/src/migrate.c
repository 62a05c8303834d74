/* Loading migration files and applying or reverting them under an advisory lock. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ace/buf.h"
#include "ace/migrate.h"
#include "ace/pool.h"

/* The advisory lock key: the bytes "ace-migr" read as a big-endian integer. */
#define LOCK_KEY "7017563890156922738"

static const char history_ddl[] =
	"CREATE TABLE IF NOT EXISTS " ACE_MIGRATE_HISTORY " ("
	" version bigint PRIMARY KEY,"
	" name text NOT NULL,"
	" checksum text NOT NULL,"
	" applied_at timestamptz NOT NULL DEFAULT now(),"
	" duration_ms double precision NOT NULL)";

static void
sha256_hex(const char *data, size_t len, char *out)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(data, len, digest, &n, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < n && i < 32; i++)
		sprintf(out + 2 * i, "%02x", digest[i]);
	out[64] = '\0';
}

/*
 * Splits "0001_create_things.up.sql" into version 1, name "create_things" and
 * up = true.  Returns -1 for any other shape.
 */
static int
parse_file_name(const char *file, long *version, char *name, size_t len, bool *up)
{
	const char *p = file, *name_start, *suffix;
	size_t n;

	if (!isdigit((unsigned char)*p))
		return -1;
	*version = 0;
	for (; isdigit((unsigned char)*p); p++) {
		if (*version > 100000000)
			return -1;
		*version = *version * 10 + (*p - '0');
	}
	if (*p++ != '_')
		return -1;
	name_start = p;
	suffix = strstr(p, ".");
	if (suffix == NULL)
		return -1;
	if (strcmp(suffix, ".up.sql") == 0)
		*up = true;
	else if (strcmp(suffix, ".down.sql") == 0)
		*up = false;
	else
		return -1;
	n = (size_t)(suffix - name_start);
	if (n == 0 || n >= len)
		return -1;
	for (const char *q = name_start; q < suffix; q++)
		if (!islower((unsigned char)*q) && !isdigit((unsigned char)*q) && *q != '_')
			return -1;
	memcpy(name, name_start, n);
	name[n] = '\0';
	return 0;
}

static struct ace_migration *
find_or_add(struct ace_migration_set *set, long version, const char *name,
    struct ace_error *err)
{
	struct ace_migration *m;

	for (size_t i = 0; i < set->count; i++) {
		m = &set->items[i];
		if (m->version != version)
			continue;
		if (strcmp(m->name, name) != 0) {
			ace_error_set(err, ACE_ERR_INVALID,
			    "two migrations have version %04ld: '%s' and '%s'", version, m->name, name);
			return NULL;
		}
		return m;
	}
	m = realloc(set->items, (set->count + 1) * sizeof(*m));
	if (m == NULL)
		goto nomem;
	set->items = m;
	m = &set->items[set->count];
	memset(m, 0, sizeof(*m));
	m->version = version;
	m->name = strdup(name);
	if (m->name == NULL)
		goto nomem;
	set->count++;
	return m;
nomem:
	ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	return NULL;
}

/* Adds one file's text (taking ownership of sql) to the set. */
static int
add_file(struct ace_migration_set *set, const char *file, char *sql, size_t len,
    struct ace_error *err)
{
	struct ace_migration *m;
	char name[128];
	long version;
	bool up;

	if (parse_file_name(file, &version, name, sizeof(name), &up) < 0) {
		free(sql);
		return ace_error_set(err, ACE_ERR_INVALID,
		    "migration file '%s' is not named NNNN_name.up.sql or NNNN_name.down.sql", file);
	}
	m = find_or_add(set, version, name, err);
	if (m == NULL) {
		free(sql);
		return err->code;
	}
	if ((up && m->up_sql != NULL) || (!up && m->down_sql != NULL)) {
		free(sql);
		return ace_error_set(err, ACE_ERR_INVALID,
		    "two %s files of migration %s have version %04ld (one is '%s')",
		    up ? "up" : "down", name, version, file);
	}
	if (up) {
		m->up_sql = sql;
		m->transactional = strncmp(sql, ACE_MIGRATE_NO_TRANSACTION,
		    strlen(ACE_MIGRATE_NO_TRANSACTION)) != 0;
		sha256_hex(sql, len, m->checksum);
	} else {
		m->down_sql = sql;
	}
	return ACE_OK;
}

static int
compare_versions(const void *a, const void *b)
{
	const struct ace_migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

/* Sorts the set and checks that every version has an up file. */
static int
finish_set(struct ace_migration_set *set, struct ace_error *err)
{
	if (set->count > 1)
		qsort(set->items, set->count, sizeof(*set->items), compare_versions);
	for (size_t i = 0; i < set->count; i++)
		if (set->items[i].up_sql == NULL)
			return ace_error_set(err, ACE_ERR_INVALID,
			    "migration %04ld_%s has a down file but no up file",
			    set->items[i].version, set->items[i].name);
	return ACE_OK;
}

int
ace_migrations_load_embedded(struct ace_migration_set *set, struct ace_error *err)
{
	memset(set, 0, sizeof(*set));
	for (size_t i = 0; i < ace_embedded_migrations_count; i++) {
		const struct ace_embedded_file *f = &ace_embedded_migrations[i];
		char *sql = strndup(f->data, f->len);
		int rc;

		if (sql == NULL)
			return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		rc = add_file(set, f->name, sql, f->len, err);
		if (rc != ACE_OK)
			return rc;
	}
	return finish_set(set, err);
}

static char *
read_file(const char *path, size_t *len, struct ace_error *err)
{
	struct ace_buf buf = ACE_BUF_INIT;
	char chunk[8192];
	size_t n;
	FILE *fp = fopen(path, "rb");

	if (fp == NULL) {
		ace_error_set(err, ACE_ERR_NOT_FOUND, "cannot open '%s': %s", path, strerror(errno));
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (ace_buf_append(&buf, chunk, n) < 0) {
			ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
			goto fail;
		}
	}
	if (ferror(fp)) {
		ace_error_set(err, ACE_ERR_SYSTEM, "cannot read '%s': %s", path, strerror(errno));
		goto fail;
	}
	fclose(fp);
	if (buf.data == NULL && ace_buf_append(&buf, "", 0) < 0) {
		ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		return NULL;
	}
	*len = buf.len;
	return buf.data;
fail:
	fclose(fp);
	ace_buf_release(&buf);
	return NULL;
}

int
ace_migrations_load_dir(struct ace_migration_set *set, const char *dir, struct ace_error *err)
{
	struct dirent *entry;
	DIR *d;
	int rc = ACE_OK;

	memset(set, 0, sizeof(*set));
	d = opendir(dir);
	if (d == NULL)
		return ace_error_set(err, ACE_ERR_NOT_FOUND, "cannot open migrations folder '%s': %s",
		    dir, strerror(errno));
	while (rc == ACE_OK && (entry = readdir(d)) != NULL) {
		char path[4096];
		size_t len;
		char *sql;

		if (entry->d_name[0] == '.' || strstr(entry->d_name, ".sql") == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
		sql = read_file(path, &len, err);
		if (sql == NULL)
			rc = err->code;
		else
			rc = add_file(set, entry->d_name, sql, len, err);
	}
	closedir(d);
	if (rc != ACE_OK)
		return rc;
	return finish_set(set, err);
}

void
ace_migrations_release(struct ace_migration_set *set)
{
	for (size_t i = 0; i < set->count; i++) {
		free(set->items[i].name);
		free(set->items[i].up_sql);
		free(set->items[i].down_sql);
	}
	free(set->items);
	memset(set, 0, sizeof(*set));
}

/* Runs SQL that returns no rows (one or more statements). */
static int
exec_sql(PGconn *pg, const char *sql, const char *what, struct ace_error *err)
{
	PGresult *res = PQexec(pg, sql);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int rc = ACE_OK;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
		rc = ace_pg_error(err, pg, res, what);
	PQclear(res);
	return rc;
}

static int
lock_history(PGconn *pg, const struct ace_migrate_hooks *hooks, struct ace_error *err)
{
	PGresult *res = PQexec(pg, "SELECT pg_try_advisory_lock(" LOCK_KEY ")");
	bool got;
	int rc;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ace_pg_error(err, pg, res, "cannot take the migration lock");
		PQclear(res);
		return rc;
	}
	got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!got) {
		if (hooks && hooks->waiting)
			hooks->waiting(hooks->ctx);
		rc = exec_sql(pg, "SELECT pg_advisory_lock(" LOCK_KEY ")", "cannot take the migration lock", err);
		if (rc != ACE_OK)
			return rc;
	}
	if (hooks && hooks->dry_run)
		return ACE_OK;	/* a dry run creates nothing, not even the history table */
	return exec_sql(pg, history_ddl, "cannot create the history table", err);
}

static void
unlock_history(PGconn *pg)
{
	PGresult *res;

	if (PQstatus(pg) != CONNECTION_OK)
		return;
	if (PQtransactionStatus(pg) != PQTRANS_IDLE)
		PQclear(PQexec(pg, "ROLLBACK"));
	res = PQexec(pg, "SELECT pg_advisory_unlock(" LOCK_KEY ")");
	PQclear(res);
}

static int
compare_status(const void *a, const void *b)
{
	const struct ace_migration_status *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

static const struct ace_migration *
find_version(const struct ace_migration_set *set, long version)
{
	for (size_t i = 0; i < set->count; i++)
		if (set->items[i].version == version)
			return &set->items[i];
	return NULL;
}

int
ace_migrate_status(PGconn *pg, const struct ace_migration_set *set,
    struct ace_migration_status **out, size_t *count, struct ace_error *err)
{
	struct ace_migration_status *st;
	PGresult *res;
	size_t n = 0;
	int rows = 0, rc = ACE_OK;

	res = PQexec(pg, "SELECT to_regclass('" ACE_MIGRATE_HISTORY "') IS NOT NULL");
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ace_pg_error(err, pg, res, "cannot read migration history");
		PQclear(res);
		return rc;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		PQclear(res);
		res = PQexec(pg, "SELECT version, name, checksum, "
		    "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), duration_ms "
		    "FROM " ACE_MIGRATE_HISTORY " ORDER BY version");
		if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = ace_pg_error(err, pg, res, "cannot read migration history");
			PQclear(res);
			return rc;
		}
		rows = PQntuples(res);
	}

	st = calloc(set->count + (size_t)rows + 1, sizeof(*st));
	if (st == NULL) {
		PQclear(res);
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	}
	for (int r = 0; r < rows; r++) {
		struct ace_migration_status *s = &st[n++];
		const struct ace_migration *m;

		s->version = strtol(PQgetvalue(res, r, 0), NULL, 10);
		snprintf(s->name, sizeof(s->name), "%s", PQgetvalue(res, r, 1));
		snprintf(s->checksum_applied, sizeof(s->checksum_applied), "%s", PQgetvalue(res, r, 2));
		snprintf(s->applied_at, sizeof(s->applied_at), "%s", PQgetvalue(res, r, 3));
		s->duration_ms = strtod(PQgetvalue(res, r, 4), NULL);
		m = find_version(set, s->version);
		if (m == NULL) {
			s->state = ACE_MIGRATION_MISSING;
			continue;
		}
		snprintf(s->checksum_file, sizeof(s->checksum_file), "%s", m->checksum);
		s->state = strcmp(m->checksum, s->checksum_applied) == 0 ?
		    ACE_MIGRATION_APPLIED : ACE_MIGRATION_DRIFT;
	}
	PQclear(res);
	for (size_t i = 0; i < set->count; i++) {
		const struct ace_migration *m = &set->items[i];
		bool applied = false;

		for (size_t k = 0; k < (size_t)rows; k++)
			if (st[k].version == m->version)
				applied = true;
		if (applied)
			continue;
		st[n].version = m->version;
		snprintf(st[n].name, sizeof(st[n].name), "%s", m->name);
		snprintf(st[n].checksum_file, sizeof(st[n].checksum_file), "%s", m->checksum);
		st[n].state = ACE_MIGRATION_PENDING;
		n++;
	}
	qsort(st, n, sizeof(*st), compare_status);
	*out = st;
	*count = n;
	return ACE_OK;
}

struct split_ctx {
	PGconn *pg;
	const struct ace_migration *m;
	int statement;
	struct ace_error *err;
};

static int
exec_statement(void *arg, const char *stmt, size_t len)
{
	struct split_ctx *ctx = arg;
	char *sql = strndup(stmt, len);
	char what[200];
	int rc;

	if (sql == NULL)
		return ace_error_set(ctx->err, ACE_ERR_SYSTEM, "out of memory");
	ctx->statement++;
	snprintf(what, sizeof(what), "migration %04ld_%s, statement %d",
	    ctx->m->version, ctx->m->name, ctx->statement);
	rc = exec_sql(ctx->pg, sql, what, ctx->err);
	free(sql);
	return rc;
}

static int
record_history(PGconn *pg, const struct ace_migration *m, double ms, struct ace_error *err)
{
	char version[32], duration[64];
	const char *params[] = { version, m->name, m->checksum, duration };
	PGresult *res;
	int rc = ACE_OK;

	snprintf(version, sizeof(version), "%ld", m->version);
	snprintf(duration, sizeof(duration), "%.3f", ms);
	res = PQexecParams(pg, "INSERT INTO " ACE_MIGRATE_HISTORY
	    " (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)",
	    4, NULL, params, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = ace_pg_error(err, pg, res, "cannot record migration");
	PQclear(res);
	return rc;
}

static int
delete_history(PGconn *pg, const struct ace_migration *m, struct ace_error *err)
{
	char version[32];
	const char *params[] = { version };
	PGresult *res;
	int rc = ACE_OK;

	snprintf(version, sizeof(version), "%ld", m->version);
	res = PQexecParams(pg, "DELETE FROM " ACE_MIGRATE_HISTORY " WHERE version = $1",
	    1, NULL, params, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = ace_pg_error(err, pg, res, "cannot update migration history");
	PQclear(res);
	return rc;
}

/* Runs one migration's SQL in the given direction and updates the history. */
static int
run_one(PGconn *pg, const struct ace_migration *m, bool up,
    const struct ace_migrate_hooks *hooks, struct ace_error *err)
{
	const char *sql = up ? m->up_sql : m->down_sql;
	double start = ace_monotonic(), ms;
	char what[200];
	int rc;

	if (hooks && hooks->before)
		hooks->before(hooks->ctx, m, up, sql);
	if (hooks && hooks->dry_run)
		return ACE_OK;
	snprintf(what, sizeof(what), "migration %04ld_%s %s failed", m->version, m->name,
	    up ? "up" : "down");

	if (m->transactional) {
		rc = exec_sql(pg, "BEGIN", what, err);
		if (rc == ACE_OK)
			rc = exec_sql(pg, sql, what, err);
	} else {
		struct split_ctx ctx = { pg, m, 0, err };

		rc = ace_sql_split(sql, exec_statement, &ctx);
		if (rc == ACE_OK)
			rc = exec_sql(pg, "BEGIN", what, err);
	}
	ms = (ace_monotonic() - start) * 1000;
	if (rc == ACE_OK)
		rc = up ? record_history(pg, m, ms, err) : delete_history(pg, m, err);
	if (rc == ACE_OK)
		rc = exec_sql(pg, "COMMIT", what, err);
	if (rc != ACE_OK) {
		if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) != PQTRANS_IDLE)
			PQclear(PQexec(pg, "ROLLBACK"));
		return rc;
	}
	if (hooks && hooks->after)
		hooks->after(hooks->ctx, m, up, ms);
	return ACE_OK;
}

/* Fails when an applied migration drifted or lost its file, unless allowed. */
static int
check_drift(const struct ace_migration_status *st, size_t n, bool allow, struct ace_error *err)
{
	for (size_t i = 0; i < n && !allow; i++) {
		if (st[i].state == ACE_MIGRATION_DRIFT)
			return ace_error_set(err, ACE_ERR_CONFLICT,
			    "migration %04ld_%s changed after it was applied (checksum %.12s applied, "
			    "%.12s in the file); restore the file, or pass --allow-drift",
			    st[i].version, st[i].name, st[i].checksum_applied, st[i].checksum_file);
		if (st[i].state == ACE_MIGRATION_MISSING)
			return ace_error_set(err, ACE_ERR_CONFLICT,
			    "migration %04ld_%s is applied but has no file; use the matching "
			    "ace-migrate or --dir, or pass --allow-drift", st[i].version, st[i].name);
	}
	return ACE_OK;
}

int
ace_migrate_up(PGconn *pg, const struct ace_migration_set *set,
    const struct ace_migrate_hooks *hooks, int *applied, struct ace_error *err)
{
	struct ace_migration_status *st = NULL;
	size_t n = 0;
	int rc;

	*applied = 0;
	rc = lock_history(pg, hooks, err);
	if (rc != ACE_OK)
		goto out;
	rc = ace_migrate_status(pg, set, &st, &n, err);
	if (rc != ACE_OK)
		goto out;
	rc = check_drift(st, n, hooks && hooks->allow_drift, err);
	for (size_t i = 0; i < n && rc == ACE_OK; i++) {
		if (st[i].state != ACE_MIGRATION_PENDING)
			continue;
		rc = run_one(pg, find_version(set, st[i].version), true, hooks, err);
		if (rc == ACE_OK)
			(*applied)++;
	}
out:
	free(st);
	unlock_history(pg);
	return rc;
}

int
ace_migrate_down(PGconn *pg, const struct ace_migration_set *set, int steps,
    const struct ace_migrate_hooks *hooks, int *reverted, struct ace_error *err)
{
	struct ace_migration_status *st = NULL;
	size_t n = 0;
	int rc, todo = 0;

	*reverted = 0;
	rc = lock_history(pg, hooks, err);
	if (rc != ACE_OK)
		goto out;
	rc = ace_migrate_status(pg, set, &st, &n, err);
	if (rc != ACE_OK)
		goto out;
	rc = check_drift(st, n, hooks && hooks->allow_drift, err);

	/* Check every step first, so that a missing down file reverts nothing. */
	for (size_t i = n; i-- > 0 && todo < steps && rc == ACE_OK;) {
		const struct ace_migration *m;

		if (st[i].state == ACE_MIGRATION_PENDING)
			continue;
		m = find_version(set, st[i].version);
		if (m == NULL || m->down_sql == NULL)
			rc = ace_error_set(err, ACE_ERR_NOT_FOUND,
			    "migration %04ld_%s has no down file, so it cannot be reverted",
			    st[i].version, st[i].name);
		todo++;
	}
	for (size_t i = n; i-- > 0 && *reverted < todo && rc == ACE_OK;) {
		if (st[i].state == ACE_MIGRATION_PENDING)
			continue;
		rc = run_one(pg, find_version(set, st[i].version), false, hooks, err);
		if (rc == ACE_OK)
			(*reverted)++;
	}
out:
	free(st);
	unlock_history(pg);
	return rc;
}

static int
write_new_file(const char *path, const char *text, struct ace_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	size_t len = strlen(text);

	if (fd < 0)
		return ace_error_set(err, ACE_ERR_SYSTEM, "cannot create '%s': %s", path, strerror(errno));
	if (write(fd, text, len) != (ssize_t)len) {
		int saved = errno;

		close(fd);
		return ace_error_set(err, ACE_ERR_SYSTEM, "cannot write '%s': %s", path, strerror(saved));
	}
	if (close(fd) < 0)
		return ace_error_set(err, ACE_ERR_SYSTEM, "cannot write '%s': %s", path, strerror(errno));
	return ACE_OK;
}

int
ace_migrate_new(const char *dir, const char *name, long floor, char *path, size_t len,
    struct ace_error *err)
{
	struct dirent *entry;
	long highest = floor;
	char down[4096], text[512];
	DIR *d;
	int rc;

	if (*name == '\0' || strlen(name) > 100)
		return ace_error_set(err, ACE_ERR_INVALID, "migration name must be 1 to 100 characters");
	for (const char *p = name; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
			return ace_error_set(err, ACE_ERR_INVALID,
			    "invalid migration name '%s' (use lower-case letters, digits and _)", name);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return ace_error_set(err, ACE_ERR_SYSTEM, "cannot create migrations folder '%s': %s",
		    dir, strerror(errno));
	d = opendir(dir);
	if (d == NULL)
		return ace_error_set(err, ACE_ERR_NOT_FOUND, "cannot open migrations folder '%s': %s",
		    dir, strerror(errno));
	while ((entry = readdir(d)) != NULL) {
		char other[128];
		long version;
		bool up;

		if (parse_file_name(entry->d_name, &version, other, sizeof(other), &up) != 0)
			continue;
		if (strcmp(other, name) == 0) {
			/* Format first: closedir() frees the entry. */
			ace_error_set(err, ACE_ERR_CONFLICT,
			    "a migration named '%s' exists already: %s/%s", name, dir, entry->d_name);
			closedir(d);
			return ACE_ERR_CONFLICT;
		}
		if (version > highest)
			highest = version;
	}
	closedir(d);

	snprintf(path, len, "%s/%04ld_%s.up.sql", dir, highest + 1, name);
	snprintf(down, sizeof(down), "%s/%04ld_%s.down.sql", dir, highest + 1, name);
	snprintf(text, sizeof(text),
	    "-- %s: what this migration changes, in one sentence.\n"
	    "-- Runs in one transaction; make the first line \"%s\" to run\n"
	    "-- statement by statement instead (CREATE INDEX CONCURRENTLY).\n\n", name,
	    ACE_MIGRATE_NO_TRANSACTION);
	rc = write_new_file(path, text, err);
	if (rc != ACE_OK)
		return rc;
	snprintf(text, sizeof(text), "-- Reverts %04ld_%s.\n\n", highest + 1, name);
	rc = write_new_file(down, text, err);
	if (rc != ACE_OK)
		unlink(path);
	return rc;
}

/* Returns the length of a dollar-quote tag ("$$" or "$name$") at p, or 0. */
static size_t
dollar_tag(const char *p)
{
	size_t n = 1;

	if (*p != '$')
		return 0;
	while (isalnum((unsigned char)p[n]) || p[n] == '_')
		n++;
	if (p[n] != '$' || isdigit((unsigned char)p[1]))
		return 0;
	return n + 1;
}

static bool
blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

int
ace_sql_split(const char *sql, int (*fn)(void *ctx, const char *stmt, size_t len), void *ctx)
{
	const char *start = sql, *p = sql;
	bool code = false;	/* the statement holds something besides comments */

	while (*p) {
		size_t tag;

		if (p[0] == '-' && p[1] == '-') {
			p += strcspn(p, "\n");
			if (!code)
				start = p;
			continue;
		}
		if (p[0] == '/' && p[1] == '*') {
			/* PostgreSQL block comments nest. */
			int depth = 0;

			do {
				if (p[0] == '/' && p[1] == '*') {
					depth++;
					p += 2;
				} else if (p[0] == '*' && p[1] == '/') {
					depth--;
					p += 2;
				} else {
					p++;
				}
			} while (*p && depth > 0);
			if (!code)
				start = p;
			continue;
		}
		if (*p == '\'' || *p == '"') {
			/* In E'...' strings a backslash escapes the next character. */
			bool escapes = *p == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
			    (p - 1 == sql || !(isalnum((unsigned char)p[-2]) || p[-2] == '_'));
			char quote = *p++;

			while (*p) {
				if (escapes && *p == '\\' && p[1]) {
					p += 2;
				} else if (*p == quote && p[1] == quote) {
					p += 2;
				} else if (*p == quote) {
					break;
				} else {
					p++;
				}
			}
			if (*p)
				p++;
			code = true;
			continue;
		}
		if ((tag = dollar_tag(p)) > 0) {
			const char *end = NULL;

			for (const char *q = p + tag; *q; q++)
				if (strncmp(q, p, tag) == 0) {
					end = q;
					break;
				}
			p = end ? end + tag : p + strlen(p);
			code = true;
			continue;
		}
		if (*p == ';') {
			if (code && !blank(start, (size_t)(p - start))) {
				int rc = fn(ctx, start, (size_t)(p - start));

				if (rc != 0)
					return rc;
			}
			start = ++p;
			code = false;
			continue;
		}
		if (!isspace((unsigned char)*p))
			code = true;
		p++;
	}
	if (code && !blank(start, (size_t)(p - start)))
		return fn(ctx, start, (size_t)(p - start));
	return 0;
}
