/* The migration engine: versioned SQL files, a history table and an advisory lock. */
#ifndef ACE_MIGRATE_H
#define ACE_MIGRATE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "ace/error.h"

/*
 * Migrations are pairs of files NNNN_name.up.sql and NNNN_name.down.sql.
 * An up file whose first line is "-- ace:no-transaction" runs statement by
 * statement outside a transaction (for CREATE INDEX CONCURRENTLY and the
 * like); every other file runs in one transaction with its history row.
 */
#define ACE_MIGRATE_NO_TRANSACTION "-- ace:no-transaction"
#define ACE_MIGRATE_HISTORY "ace_schema_migrations"

/* A file compiled into the binary by scripts/embed-sql. */
struct ace_embedded_file {
	const char *name;
	const char *data;
	size_t len;
};

extern const struct ace_embedded_file ace_embedded_migrations[];
extern const size_t ace_embedded_migrations_count;

struct ace_migration {
	long version;
	char *name;		/* the part between the version and ".up.sql" */
	char *up_sql;
	char *down_sql;		/* NULL when there is no down file */
	bool transactional;
	char checksum[65];	/* SHA-256 of up_sql, lower-case hex */
};

/* Migrations sorted by version; owned by the set. */
struct ace_migration_set {
	struct ace_migration *items;
	size_t count;
};

/* Loads the built-in migrations.  Fails with ACE_ERR_INVALID on a malformed name or a duplicate version. */
int ace_migrations_load_embedded(struct ace_migration_set *set, struct ace_error *err);

/* Loads the migrations of a folder; ACE_ERR_NOT_FOUND when it cannot be read. */
int ace_migrations_load_dir(struct ace_migration_set *set, const char *dir, struct ace_error *err);

void ace_migrations_release(struct ace_migration_set *set);

enum ace_migration_state {
	ACE_MIGRATION_APPLIED,
	ACE_MIGRATION_PENDING,
	ACE_MIGRATION_DRIFT,	/* applied, but the file changed since */
	ACE_MIGRATION_MISSING,	/* applied, but no file has this version */
};

struct ace_migration_status {
	long version;
	char name[128];
	int state;		/* enum ace_migration_state */
	char applied_at[40];	/* "" when not applied */
	double duration_ms;
	char checksum_applied[65];
	char checksum_file[65];
};

/*
 * Reads the history table (an absent table means nothing is applied) and
 * compares it with set.  Returns an array sorted by version in *out, freed
 * with free(), of *count entries.
 */
int ace_migrate_status(PGconn *pg, const struct ace_migration_set *set,
    struct ace_migration_status **out, size_t *count, struct ace_error *err);

/* Callbacks and switches of ace_migrate_up() and ace_migrate_down(). */
struct ace_migrate_hooks {
	/* Called before running a migration; sql is what will run. */
	void (*before)(void *ctx, const struct ace_migration *m, bool up, const char *sql);
	/* Called after it ran (never in a dry run), with its duration. */
	void (*after)(void *ctx, const struct ace_migration *m, bool up, double ms);
	/* Called once if the lock is held by another session, before waiting for it. */
	void (*waiting)(void *ctx);
	void *ctx;
	bool dry_run;		/* report the SQL, run nothing, record nothing */
	bool allow_drift;	/* run even when an applied file changed or is missing */
};

/*
 * Applies every pending migration in version order under a session-level
 * advisory lock, so that concurrent callers apply each one exactly once.
 * Fails with ACE_ERR_CONFLICT, before running anything, when an applied
 * migration's file changed or is missing (unless allow_drift), and with the
 * server's error (naming the migration) when one fails; the migrations
 * before it stay applied.  *applied counts what ran.
 */
int ace_migrate_up(PGconn *pg, const struct ace_migration_set *set,
    const struct ace_migrate_hooks *hooks, int *applied, struct ace_error *err);

/*
 * Reverts the newest `steps` applied migrations with their down files, newest
 * first, under the same lock.  Fails with ACE_ERR_NOT_FOUND when one has no
 * down file (nothing is reverted then).
 */
int ace_migrate_down(PGconn *pg, const struct ace_migration_set *set, int steps,
    const struct ace_migrate_hooks *hooks, int *reverted, struct ace_error *err);

/*
 * Creates NNNN_name.up.sql and NNNN_name.down.sql in dir (creating dir when
 * it is missing), numbered one above the highest of floor and the versions
 * already in dir.  name must be lower-case letters, digits and underscores,
 * and no migration in dir may have it already (ACE_ERR_CONFLICT).  Writes
 * the up file's path into path (of size len).
 */
int ace_migrate_new(const char *dir, const char *name, long floor, char *path, size_t len,
    struct ace_error *err);

/*
 * Splits SQL text into statements at semicolons outside quotes, dollar
 * quotes and comments.  Calls fn for each non-empty statement (not
 * NUL-terminated) and stops at the first non-zero return, which it returns.
 */
int ace_sql_split(const char *sql, int (*fn)(void *ctx, const char *stmt, size_t len), void *ctx);

#endif
