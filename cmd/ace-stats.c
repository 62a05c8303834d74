/*
 * ace-stats: computes baselines from the stored metrics, flags records that
 * drift from them, exports Prometheus metrics, checks the health of a
 * deployment and reports per agent and stage.  Each job is a subcommand,
 * meant for cron or for a pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ace/baseline.h"
#include "ace/buf.h"
#include "ace/cache.h"
#include "ace/config.h"
#include "ace/dbstats.h"
#include "ace/drift.h"
#include "ace/health.h"
#include "ace/lines.h"
#include "ace/log.h"
#include "ace/metric.h"
#include "ace/migrate.h"
#include "ace/pool.h"
#include "ace/procstats.h"
#include "ace/prom.h"
#include "ace/redis.h"
#include "ace-stats.h"
#include "cli.h"

static const char usage_text[] =
"Usage: ace-stats [OPTION]... baselines [--window DURATION] [--min-samples N]\n"
"   or: ace-stats [OPTION]... drift [--only-drift] [FILE]...\n"
"   or: ace-stats [OPTION]... prom [-o FILE]\n"
"   or: ace-stats [OPTION]... health [--json]\n"
"   or: ace-stats [OPTION]... report [--since WHEN] [--until WHEN] [--format FORMAT]\n"
"Compute baselines, detect drift, export Prometheus metrics and check health.\n"
"\n"
"Commands:\n"
"  baselines    compute a new version of the baseline of every agent, task type\n"
"               and stage with records in the window, store it in\n"
"               performance_baselines and refresh its Redis key; print a summary\n"
"  drift        read NDJSON metric records (FILEs or standard input) and write\n"
"               each with its baseline, per-metric deviation, z-score and\n"
"               threshold flags as NDJSON\n"
"  prom         write the Prometheus text format (0.0.4) to standard output or,\n"
"               atomically, to FILE\n"
"  health       run the deployment checks, one line each: ok, fail or skip, the\n"
"               name, the value and (the threshold)\n"
"  report       count, p50 and p95 duration and success rate per agent and stage\n"
"\n"
"Options:\n"
"  -c, --config FILE          read settings from FILE (default: $ACE_CONFIG)\n"
"  -d, --database-url URL     PostgreSQL URI or key/value string (default:\n"
"                             $DATABASE_URL, then libpq's PG* variables)\n"
"  -r, --redis-url URL        redis://[user:password@]host:port/db or\n"
"                             unix:///path?db=N (default: $REDIS_URL, then\n"
"                             redis://127.0.0.1:6379/0)\n"
"  -w, --window DURATION      baselines: metrics of this last stretch of time\n"
"                             (default 7d; units s, m, h, d accepted)\n"
"  -m, --min-samples N        baselines: groups with fewer records get no\n"
"                             baseline (default 30, at least 2)\n"
"      --no-publish           baselines: store them, but leave Redis alone\n"
"      --only-drift           drift: write only records that cross a threshold,\n"
"                             and records that could not be compared\n"
"  -o, --output FILE          prom: replace FILE atomically instead of writing\n"
"                             to standard output\n"
"      --json                 health: print one JSON object\n"
"      --since WHEN           report: start of the range, an RFC 3339 time or a\n"
"                             duration ago such as 24h (default 24h)\n"
"      --until WHEN           report: end of the range, excluded (default now)\n"
"  -f, --format FORMAT        report: table, json or csv (default table)\n"
"      --log-level LEVEL      error, warning, notice, info or debug (default info)\n"
"      --log-format FORMAT    logfmt or json (default logfmt)\n"
"  -h, --help                 show this help and exit\n"
"  -V, --version              show the version and exit\n"
"\n"
"Exit status:\n"
"  0   success\n"
"  1   drift: some record crossed a threshold; health: some check failed\n"
"  64  invalid command or option\n"
"  65  drift: some input lines were not valid records (each was reported)\n"
"  66  drift: an input file cannot be opened\n"
"  69  a server could not be reached: PostgreSQL, or Redis for prom;\n"
"      prom still writes what it could read\n"
"  70  the server refused a statement (a missing table or column: run\n"
"      ace-migrate up)\n"
"  73  prom: the output file cannot be written\n"
"  74  reading input or writing standard output failed\n"
"  75  baselines: stored in PostgreSQL, but Redis was not updated\n"
"  78  invalid configuration\n";

enum {
	OPT_NO_PUBLISH = 256,
	OPT_ONLY_DRIFT,
	OPT_JSON,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_LOG_LEVEL,
	OPT_LOG_FORMAT,
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "database-url", required_argument, NULL, 'd' },
	{ "redis-url", required_argument, NULL, 'r' },
	{ "window", required_argument, NULL, 'w' },
	{ "min-samples", required_argument, NULL, 'm' },
	{ "no-publish", no_argument, NULL, OPT_NO_PUBLISH },
	{ "only-drift", no_argument, NULL, OPT_ONLY_DRIFT },
	{ "output", required_argument, NULL, 'o' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "until", required_argument, NULL, OPT_UNTIL },
	{ "format", required_argument, NULL, 'f' },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Remembers that an option of one command was given, so another command can reject it. */
static void
command_option(struct options *o, const char *option, const char *command)
{
	if (o->nowned == (int)(sizeof(o->owned) / sizeof(o->owned[0])))
		cli_usage_error("too many options");
	o->owned[o->nowned].option = option;
	o->owned[o->nowned].command = command;
	o->nowned++;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	int c;

	while ((c = getopt_long(argc, argv, "c:d:r:w:m:o:f:hV", long_options, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'd': cli_flags_add(&o->flags, "database.url", "--database-url", optarg); break;
		case 'r': cli_flags_add(&o->flags, "redis.url", "--redis-url", optarg); break;
		case 'w':
			cli_flags_add(&o->flags, "stats.baseline_window", "--window", optarg);
			command_option(o, "--window", "baselines");
			break;
		case 'm':
			cli_flags_add(&o->flags, "stats.min_samples", "--min-samples", optarg);
			command_option(o, "--min-samples", "baselines");
			break;
		case OPT_NO_PUBLISH:
			o->no_publish = true;
			command_option(o, "--no-publish", "baselines");
			break;
		case OPT_ONLY_DRIFT:
			o->only_drift = true;
			command_option(o, "--only-drift", "drift");
			break;
		case 'o':
			o->output = optarg;
			command_option(o, "--output", "prom");
			break;
		case OPT_JSON:
			o->json = true;
			command_option(o, "--json", "health");
			break;
		case OPT_SINCE:
			o->since = optarg;
			command_option(o, "--since", "report");
			break;
		case OPT_UNTIL:
			o->until = optarg;
			command_option(o, "--until", "report");
			break;
		case 'f':
			o->format = optarg;
			command_option(o, "--format", "report");
			break;
		case OPT_LOG_LEVEL: cli_flags_add(&o->flags, "log.level", "--log-level", optarg); break;
		case OPT_LOG_FORMAT: cli_flags_add(&o->flags, "log.format", "--log-format", optarg); break;
		case 'h':
			cli_help_exit(usage_text);
		case 'V':
			cli_version_exit();
		default:
			cli_bad_option_exit();
		}
	}
}

/* Maps a libace failure to an exit status. */
int
exit_status_for(int code)
{
	switch (code) {
	case ACE_OK: return EXIT_OK;
	case ACE_ERR_RETRY:
	case ACE_ERR_TIMEOUT: return EXIT_UNAVAILABLE;
	case ACE_ERR_INVALID: return EXIT_CONFIG;
	case ACE_ERR_SYSTEM: return EXIT_IOERR;
	}
	return EXIT_SOFTWARE;
}

/* Prints a PostgreSQL failure, with a hint when a table or column is missing. */
void
report_pg_error(const struct ace_error *err)
{
	if (strstr(err->message, "SQLSTATE 42P01") != NULL || strstr(err->message, "SQLSTATE 42703") != NULL)
		cli_error("%s; run 'ace-migrate up' first", err->message);
	else
		cli_error("%s", err->message);
}

/* Opens one connection outside the pool; prints the failure and sets *status when it fails. */
PGconn *
connect_db(const struct cli_clients *cl, int *status)
{
	char shown[512];
	struct ace_error err;
	PGconn *pg;

	pg = ace_pg_connect(cl->cfg.database_url, "ace-stats", cl->cfg.connect_timeout, &err);
	if (pg == NULL) {
		ace_redact_url(cl->cfg.database_url ? cl->cfg.database_url : "(libpq defaults)", shown,
		    sizeof(shown));
		cli_error("cannot connect to '%s': %s", shown, err.message);
		*status = err.code == ACE_ERR_INVALID ? EXIT_CONFIG : EXIT_UNAVAILABLE;
	}
	return pg;
}

/* --- main -------------------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	struct options o = { 0 };
	struct cli_clients cl = { 0 };
	const char *command;
	int status;

	cli_program = "ace-stats";
	parse_options(argc, argv, &o);
	argc -= optind;
	argv += optind;
	if (argc < 1)
		cli_usage_error("missing command (baselines, drift, prom, health or report)");
	command = argv[0];
	if (strcmp(command, "baselines") != 0 && strcmp(command, "drift") != 0 &&
	    strcmp(command, "prom") != 0 && strcmp(command, "health") != 0 &&
	    strcmp(command, "report") != 0)
		cli_usage_error("unknown command '%s' (expected baselines, drift, prom, health or report)",
		    command);
	if (strcmp(command, "drift") != 0 && argc > 1)
		cli_usage_error("%s: unexpected argument '%s'", command, argv[1]);
	for (int i = 0; i < o.nowned; i++)
		if (strcmp(o.owned[i].command, command) != 0)
			cli_usage_error("%s applies to %s only", o.owned[i].option, o.owned[i].command);

	cli_load_config(&cl.cfg, o.config);
	cli_flags_apply(&cl.cfg, &o.flags);
	cli_setup_log(&cl.cfg);
	signal(SIGPIPE, SIG_IGN);
	cli_open_clients(&cl, 1, 0);

	if (strcmp(command, "baselines") == 0)
		status = run_baselines(&cl, &o);
	else if (strcmp(command, "drift") == 0)
		status = run_drift(&cl, &o, argc, argv);
	else if (strcmp(command, "prom") == 0)
		status = run_prom(&cl, &o);
	else if (strcmp(command, "health") == 0)
		status = run_health(&cl, &o);
	else
		status = run_report(&cl, &o);

	cli_close_clients(&cl);
	return cli_close_stdout(status);
}
