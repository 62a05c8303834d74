/*
 * ace-migrate: creates and evolves the ace schema in PostgreSQL.  It applies
 * the versioned SQL migrations built into the binary (or those of --dir),
 * records each in a history table, and holds an advisory lock so that
 * concurrent runs apply each migration once.  It also keeps the time-series
 * storage of performance_metrics as ace.yaml configures it: TimescaleDB
 * compression and retention policies, or range partitions.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/config.h"
#include "ace/log.h"
#include "ace/migrate.h"
#include "ace/pool.h"
#include "ace/storage.h"
#include "cli.h"

#define COMMAND_NAMES "up, down, status, new, policies, verify or maintain"

static const char usage_text[] =
"Usage: ace-migrate [OPTION]... COMMAND [ARG]\n"
"Create and evolve the ace schema in PostgreSQL.\n"
"\n"
"Commands:\n"
"  up                  apply every pending migration, oldest first\n"
"  down [N]            revert the newest N applied migrations (default 1)\n"
"  status              list migrations: applied, pending, drift or missing\n"
"  new NAME            create NNNN_NAME.up.sql and .down.sql in --dir\n"
"                      (default sql), numbered above the built-in migrations\n"
"  policies            make compression, retention and partitions match\n"
"                      ace.yaml and print what changed (up does it too)\n"
"  verify              compare the storage of performance_metrics with\n"
"                      ace.yaml and print each object as ok or differs\n"
"  maintain            for cron: on the partitioned layout create partitions\n"
"                      ahead, fill them from the default partition and drop\n"
"                      expired ones; on TimescaleDB run the policy jobs now\n"
"\n"
"Options:\n"
"  -c, --config FILE         read settings from FILE (default: $ACE_CONFIG)\n"
"  -d, --database-url URL    PostgreSQL URI or key/value string\n"
"                            (default: $DATABASE_URL, else libpq's PG* ones)\n"
"      --dir DIR             use the migration files in DIR instead of the\n"
"                            built-in ones (DIR must hold those too)\n"
"  -n, --dry-run             print the SQL that would run; change nothing\n"
"      --allow-drift         run even if an applied migration's file changed\n"
"                            or is gone\n"
"  -w, --wait[=SECONDS]      wait for the database to accept connections\n"
"                            (default 30 seconds when no value is given;\n"
"                            units ms, s, m, h accepted)\n"
"      --log-level LEVEL     error, warning, notice, info or debug\n"
"                            (default info)\n"
"      --log-format FORMAT   logfmt or json (default logfmt)\n"
"  -h, --help                show this help and exit\n"
"  -V, --version             show the version and exit\n"
"\n"
"Exit status:\n"
"  0   success\n"
"  64  invalid command or option\n"
"  65  an applied migration changed or is missing (drift), verify found\n"
"      differences, or the storage layout is not the configured one\n"
"  66  the migrations folder cannot be read\n"
"  69  the database could not be reached\n"
"  70  a migration or a storage change failed; what ran before it stays\n"
"  73  'new' could not create its files\n"
"  78  invalid configuration\n";

enum {
	OPT_DIR = 256,
	OPT_ALLOW_DRIFT,
	OPT_LOG_LEVEL,
	OPT_LOG_FORMAT,
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "database-url", required_argument, NULL, 'd' },
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "dry-run", no_argument, NULL, 'n' },
	{ "allow-drift", no_argument, NULL, OPT_ALLOW_DRIFT },
	{ "wait", optional_argument, NULL, 'w' },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

struct options {
	const char *config;
	const char *database_url;
	const char *dir;
	const char *log_level;
	const char *log_format;
	bool dry_run;
	bool allow_drift;
	double wait;		/* seconds; 0: no waiting */
};

static void
parse_options(int argc, char **argv, struct options *o)
{
	int c;

	while ((c = getopt_long(argc, argv, "c:d:nw::hV", long_options, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'd': o->database_url = optarg; break;
		case OPT_DIR: o->dir = optarg; break;
		case 'n': o->dry_run = true; break;
		case OPT_ALLOW_DRIFT: o->allow_drift = true; break;
		case 'w':
			o->wait = 30;
			if (optarg != NULL && (ace_parse_seconds(optarg, &o->wait) < 0 || o->wait < 0))
				cli_usage_error("--wait: invalid duration '%s'", optarg);
			break;
		case OPT_LOG_LEVEL: o->log_level = optarg; break;
		case OPT_LOG_FORMAT: o->log_format = optarg; break;
		case 'h':
			cli_help_exit(usage_text);
		case 'V':
			cli_version_exit();
		default:
			cli_bad_option_exit();
		}
	}
}

static void
print_step(void *ctx, const struct ace_migration *m, bool up, const char *sql)
{
	const struct options *o = ctx;

	if (!o->dry_run)
		return;
	printf("-- %s %04ld_%s%s\n%s", up ? "up" : "down", m->version, m->name,
	    m->transactional ? "" : " (no transaction)", sql);
	if (*sql && sql[strlen(sql) - 1] != '\n')
		putchar('\n');
	putchar('\n');
}

static void
print_done(void *ctx, const struct ace_migration *m, bool up, double ms)
{
	(void)ctx;
	printf("%s %04ld_%s (%.1f ms)\n", up ? "applied" : "reverted", m->version, m->name, ms);
	fflush(stdout);
}

static void
print_waiting(void *ctx)
{
	(void)ctx;
	ace_log(ACE_LOG_NOTICE, "another ace-migrate holds the migration lock; waiting", NULL);
}

static int
exit_status_for(int code)
{
	switch (code) {
	case ACE_OK: return EXIT_OK;
	case ACE_ERR_CONFLICT: return EXIT_DATAERR;
	case ACE_ERR_RETRY:
	case ACE_ERR_TIMEOUT: return EXIT_UNAVAILABLE;
	case ACE_ERR_INVALID: return EXIT_CONFIG;
	case ACE_ERR_NOT_FOUND: return EXIT_SOFTWARE;
	}
	return EXIT_SOFTWARE;
}

static const char *state_names[] = {
	[ACE_MIGRATION_APPLIED] = "applied",
	[ACE_MIGRATION_PENDING] = "pending",
	[ACE_MIGRATION_DRIFT] = "drift",
	[ACE_MIGRATION_MISSING] = "missing",
};

static int
run_status(PGconn *pg, const struct ace_migration_set *set)
{
	struct ace_migration_status *st;
	struct ace_error err;
	size_t n;
	int status = EXIT_OK;

	if (ace_migrate_status(pg, set, &st, &n, &err) != ACE_OK) {
		cli_error("%s", err.message);
		return exit_status_for(err.code);
	}
	printf("%-8s %-32s %-8s %-21s %s\n", "version", "name", "state", "applied_at", "duration_ms");
	for (size_t i = 0; i < n; i++) {
		char duration[32] = "-";

		if (st[i].applied_at[0] != '\0')
			snprintf(duration, sizeof(duration), "%.1f", st[i].duration_ms);
		printf("%04ld     %-32s %-8s %-21s %s\n", st[i].version, st[i].name,
		    state_names[st[i].state], st[i].applied_at[0] ? st[i].applied_at : "-", duration);
		if (st[i].state == ACE_MIGRATION_DRIFT || st[i].state == ACE_MIGRATION_MISSING)
			status = EXIT_DATAERR;
	}
	free(st);
	return status;
}

static long
parse_steps(const char *text)
{
	char *end;
	long n = strtol(text, &end, 10);

	if (*text == '\0' || *end != '\0' || n < 1 || n > 100000)
		cli_usage_error("down: invalid number of steps '%s' (expected 1 or more)", text);
	return n;
}

static int
run_new(const struct ace_config *cfg, const struct options *o, int argc, char **argv)
{
	const char *dir = "sql";
	struct ace_error err;
	char path[4096];

	struct ace_migration_set builtin;
	long floor = 0;

	if (o->dir != NULL)
		dir = o->dir;
	else if (cfg->migrations_dir != NULL)
		dir = cfg->migrations_dir;

	/* Number above the built-in migrations too, so a copy of them can sit beside it. */
	if (ace_migrations_load_embedded(&builtin, &err) == ACE_OK && builtin.count > 0)
		floor = builtin.items[builtin.count - 1].version;
	ace_migrations_release(&builtin);

	if (argc != 2)
		cli_usage_error("new: expected one NAME");
	if (ace_migrate_new(dir, argv[1], floor, path, sizeof(path), &err) != ACE_OK) {
		cli_error("%s", err.message);
		if (err.code == ACE_ERR_INVALID || err.code == ACE_ERR_CONFLICT)
			return EXIT_USAGE;
		return EXIT_CANTCREAT;
	}
	printf("%s\n", path);
	path[strlen(path) - strlen(".up.sql")] = '\0';
	printf("%s.down.sql\n", path);
	return EXIT_OK;
}

static const char *const line_labels[] = {
	[ACE_STORAGE_CHANGED] = "",
	[ACE_STORAGE_UNCHANGED] = "",
	[ACE_STORAGE_OK] = "ok       ",
	[ACE_STORAGE_DIFFERS] = "differs  ",
};

/* Prints every storage report line; verify's lines get an ok or differs column. */
static void
print_storage_line(void *ctx, int kind, const char *text)
{
	(void)ctx;
	printf("%s%s\n", line_labels[kind], text);
}

/* Prints only what changed, as up and maintain do. */
static void
print_storage_change(void *ctx, int kind, const char *text)
{
	if (kind == ACE_STORAGE_CHANGED)
		print_storage_line(ctx, kind, text);
}

/* Runs policies, verify or maintain, and returns the exit status. */
static int
run_storage(PGconn *pg, const struct ace_config *cfg, const char *command)
{
	struct ace_storage_report all = { print_storage_line, NULL };
	struct ace_storage_report changes = { print_storage_change, NULL };
	struct ace_error err;
	int count = 0, rc;

	if (strcmp(command, "policies") == 0) {
		rc = ace_storage_apply(pg, cfg, &all, &count, &err);
	} else if (strcmp(command, "maintain") == 0) {
		rc = ace_storage_maintain(pg, cfg, &changes, &count, &err);
		if (rc == ACE_OK && count == 0)
			printf("nothing to do\n");
	} else {
		rc = ace_storage_verify(pg, cfg, &all, &count, &err);
		if (rc == ACE_OK && count > 0) {
			fflush(stdout);
			cli_error("verify: %d difference%s from the configuration", count,
			    count == 1 ? "" : "s");
			return EXIT_DATAERR;
		}
	}
	if (rc != ACE_OK) {
		fflush(stdout);
		cli_error("%s: %s", command, err.message);
		return exit_status_for(rc);
	}
	return EXIT_OK;
}

/*
 * After up: prints which layout migration 0005 chose when it ran now, then
 * applies the storage settings and prints what changed.  A database whose
 * migrations (from --dir) never converted performance_metrics is left alone.
 */
static int
apply_storage_after_up(PGconn *pg, const struct ace_config *cfg)
{
	struct ace_storage_report changes = { print_storage_change, NULL };
	char path[32], note[400];
	struct ace_error err;
	int layout, count, rc;

	rc = ace_storage_chosen(pg, path, sizeof(path), note, sizeof(note), &err);
	if (rc == ACE_OK && path[0] != '\0')
		printf("storage: %s%s%s\n", path, note[0] ? ", because " : "", note);
	if (rc == ACE_OK)
		rc = ace_storage_layout(pg, &layout, &err);
	if (rc == ACE_OK && (layout == ACE_LAYOUT_HYPERTABLE || layout == ACE_LAYOUT_PARTITIONED))
		rc = ace_storage_apply(pg, cfg, &changes, &count, &err);
	if (rc != ACE_OK) {
		fflush(stdout);
		cli_error("storage: %s", err.message);
		return exit_status_for(rc);
	}
	return EXIT_OK;
}

static PGconn *
connect_db(const struct ace_config *cfg, const struct options *o, int *status)
{
	char shown[512];
	struct ace_error err;
	PGconn *pg;

	ace_redact_url(cfg->database_url ? cfg->database_url : "(libpq defaults)", shown, sizeof(shown));
	if (o->wait > 0 && ace_pg_wait(cfg->database_url, o->wait, &err) != ACE_OK) {
		cli_error("cannot connect to '%s': %s", shown, err.message);
		*status = err.code == ACE_ERR_INVALID ? EXIT_CONFIG : EXIT_UNAVAILABLE;
		return NULL;
	}
	pg = ace_pg_connect(cfg->database_url, "ace-migrate", cfg->connect_timeout, &err);
	if (pg == NULL) {
		cli_error("cannot connect to '%s': %s", shown, err.message);
		*status = err.code == ACE_ERR_INVALID ? EXIT_CONFIG : EXIT_UNAVAILABLE;
	}
	return pg;
}

int
main(int argc, char **argv)
{
	struct options o = { 0 };
	struct ace_config cfg;
	struct ace_migration_set set;
	struct ace_error err;
	const char *command, *dir;
	PGconn *pg = NULL;
	int status = EXIT_OK, count = 0, rc;
	bool storage_command;
	long steps = 1;

	cli_program = "ace-migrate";
	parse_options(argc, argv, &o);
	argc -= optind;
	argv += optind;
	if (argc < 1)
		cli_usage_error("missing command (%s)", COMMAND_NAMES);
	command = argv[0];
	storage_command = strcmp(command, "policies") == 0 || strcmp(command, "verify") == 0 ||
	    strcmp(command, "maintain") == 0;
	if (strcmp(command, "up") != 0 && strcmp(command, "down") != 0 &&
	    strcmp(command, "status") != 0 && strcmp(command, "new") != 0 && !storage_command)
		cli_usage_error("unknown command '%s' (expected %s)", command, COMMAND_NAMES);
	if ((strcmp(command, "up") == 0 || strcmp(command, "status") == 0 || storage_command) &&
	    argc > 1)
		cli_usage_error("%s: unexpected argument '%s'", command, argv[1]);
	if (strcmp(command, "down") == 0 && argc > 2)
		cli_usage_error("down: unexpected argument '%s'", argv[2]);
	if (strcmp(command, "down") == 0 && argc == 2)
		steps = parse_steps(argv[1]);
	if (strcmp(command, "new") == 0 && o.dry_run)
		cli_usage_error("new: --dry-run does not apply; new only writes two files");
	if (storage_command && o.dry_run)
		cli_usage_error("%s: --dry-run does not apply; run verify to see what differs", command);

	cli_load_config(&cfg, o.config);
	if (o.database_url)
		cli_set(&cfg, "database.url", o.database_url, "--database-url");
	if (o.log_level)
		cli_set(&cfg, "log.level", o.log_level, "--log-level");
	if (o.log_format)
		cli_set(&cfg, "log.format", o.log_format, "--log-format");
	cli_setup_log(&cfg);
	if (ace_storage_check_config(&cfg, &err) != ACE_OK) {
		cli_error("%s", err.message);
		ace_config_release(&cfg);
		return EXIT_CONFIG;
	}

	if (strcmp(command, "new") == 0) {
		status = run_new(&cfg, &o, argc, argv);
		ace_config_release(&cfg);
		return cli_close_stdout(status);
	}

	dir = o.dir ? o.dir : cfg.migrations_dir;
	rc = dir ? ace_migrations_load_dir(&set, dir, &err) : ace_migrations_load_embedded(&set, &err);
	if (rc != ACE_OK) {
		cli_error("%s", err.message);
		ace_config_release(&cfg);
		return rc == ACE_ERR_NOT_FOUND ? EXIT_NOINPUT : EXIT_CONFIG;
	}

	pg = connect_db(&cfg, &o, &status);
	if (pg == NULL)
		goto out;

	if (strcmp(command, "status") == 0) {
		status = run_status(pg, &set);
	} else if (storage_command) {
		status = run_storage(pg, &cfg, command);
	} else {
		struct ace_migrate_hooks hooks = {
			.before = print_step, .after = print_done, .waiting = print_waiting,
			.ctx = &o, .dry_run = o.dry_run, .allow_drift = o.allow_drift,
		};
		bool up = strcmp(command, "up") == 0;

		rc = up && !o.dry_run ? ace_storage_prepare(pg, &cfg, &err) : ACE_OK;
		if (rc == ACE_OK)
			rc = up ? ace_migrate_up(pg, &set, &hooks, &count, &err) :
			    ace_migrate_down(pg, &set, (int)steps, &hooks, &count, &err);
		if (rc != ACE_OK) {
			cli_error("%s", err.message);
			status = exit_status_for(rc);
		} else if (count == 0) {
			printf("%s\n", up ? "already up to date" : "nothing to revert");
		}
		if (rc == ACE_OK && up && !o.dry_run)
			status = apply_storage_after_up(pg, &cfg);
	}
out:
	PQfinish(pg);
	ace_migrations_release(&set);
	ace_config_release(&cfg);
	return cli_close_stdout(status);
}
