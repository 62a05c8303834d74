/*
 * ace-cache: serves agent playbooks and performance baselines from Redis,
 * reading through to PostgreSQL on a miss.  It has one-shot commands (get,
 * set, invalidate, warm, stats) and a long-running listen.  With no command
 * it is a filter of NDJSON requests to NDJSON responses, pipelined to Redis.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ace/breaker.h"
#include "ace/buf.h"
#include "ace/cache.h"
#include "ace/config.h"
#include "ace/lines.h"
#include "ace/log.h"
#include "ace/pool.h"
#include "ace/procstats.h"
#include "ace/redis.h"
#include "ace-cache.h"
#include "cli.h"

static const char usage_text[] =
"Usage: ace-cache [OPTION]... [filter]\n"
"   or: ace-cache [OPTION]... get playbook AGENT\n"
"   or: ace-cache [OPTION]... get baseline AGENT TASK_TYPE\n"
"   or: ace-cache [OPTION]... set playbook AGENT [FILE]\n"
"   or: ace-cache [OPTION]... invalidate playbook AGENT\n"
"   or: ace-cache [OPTION]... invalidate baseline AGENT [TASK_TYPE]\n"
"   or: ace-cache [OPTION]... invalidate --pattern PATTERN\n"
"   or: ace-cache [OPTION]... warm | stats | listen\n"
"Serve agent playbooks and baselines from Redis, read through from PostgreSQL.\n"
"\n"
"Commands:\n"
"  filter        read NDJSON requests on standard input, write one NDJSON response\n"
"                per request, in order (the default without a command)\n"
"  get           print the value as JSON; load and cache it on a miss\n"
"  set           write a new playbook version from FILE (or standard input), an\n"
"                object with \"context\" and optional \"metadata\"; print it\n"
"  invalidate    remove keys from Redis and print how many existed\n"
"  warm          store every current playbook and baseline in Redis\n"
"  stats         print hits, misses, hit rate and key counts of ace's keys\n"
"  listen        remove a playbook's key whenever its rows change in PostgreSQL,\n"
"                printing each key removed, until SIGINT or SIGTERM\n"
"\n"
"Options:\n"
"  -c, --config FILE          read settings from FILE (default: $ACE_CONFIG)\n"
"  -d, --database-url URL     PostgreSQL URI or key/value string (default: $DATABASE_URL,\n"
"                             then libpq's PG* variables)\n"
"  -r, --redis-url URL        redis://[user:password@]host:port/db or\n"
"                             unix:///path?db=N (default: $REDIS_URL,\n"
"                             then redis://127.0.0.1:6379/0)\n"
"  -e, --expect-version N     set: write only if the current version is N\n"
"                             (0: only if the agent has no playbook yet)\n"
"  -p, --pattern PATTERN      invalidate: remove the playbook and baseline keys\n"
"                             that match a Redis glob starting with 'ace:'\n"
"  -t, --command-timeout SECS\n"
"                             maximum wait for one Redis reply (default 0.5;\n"
"                             units ms, s, m, h accepted)\n"
"      --json                 stats: print one JSON object\n"
"      --log-level LEVEL      error, warning, notice, info or debug (default info)\n"
"      --log-format FORMAT    logfmt or json (default logfmt)\n"
"  -h, --help                 show this help and exit\n"
"  -V, --version              show the version and exit\n"
"\n"
"Exit status:\n"
"  0   success\n"
"  1   get: not found in PostgreSQL (the absence is cached briefly too)\n"
"  2   set: the current version differs from --expect-version\n"
"  64  invalid command or option\n"
"  65  invalid input: a bad playbook document, or in filter mode some requests\n"
"      were invalid (each got an error response)\n"
"  66  set: FILE cannot be opened\n"
"  69  unavailable: the value needed PostgreSQL, or the command needed Redis,\n"
"      and it could not be reached\n"
"  70  a server refused a statement or command (a missing table, permissions)\n"
"  74  writing standard output or reading input failed\n"
"  75  set: the playbook was written to PostgreSQL, but Redis was not updated\n"
"  78  invalid configuration\n";

enum {
	OPT_JSON = 256,
	OPT_LOG_LEVEL,
	OPT_LOG_FORMAT,
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "database-url", required_argument, NULL, 'd' },
	{ "redis-url", required_argument, NULL, 'r' },
	{ "expect-version", required_argument, NULL, 'e' },
	{ "pattern", required_argument, NULL, 'p' },
	{ "command-timeout", required_argument, NULL, 't' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

volatile sig_atomic_t stop_requested;
int wake_pipe[2] = { -1, -1 };

static void
on_signal(int sig)
{
	int saved = errno;

	(void)sig;
	stop_requested = 1;
	if (wake_pipe[1] >= 0 && write(wake_pipe[1], "", 1) < 0) {
		/* A full pipe already wakes the waiter. */
	}
	errno = saved;
}

static void
install_signals(void)
{
	struct sigaction sa;

	if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		wake_pipe[0] = wake_pipe[1] = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static long
parse_version(const char *text)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (*text == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 2147483647)
		cli_usage_error("--expect-version: invalid version '%s' (expected 0 to 2147483647)", text);
	return v;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	int c;

	o->expect_version = -1;
	while ((c = getopt_long(argc, argv, "c:d:r:e:p:t:hV", long_options, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'd': cli_flags_add(&o->flags, "database.url", "--database-url", optarg); break;
		case 'r': cli_flags_add(&o->flags, "redis.url", "--redis-url", optarg); break;
		case 'e': o->expect_version = parse_version(optarg); break;
		case 'p': o->pattern = optarg; break;
		case 't': cli_flags_add(&o->flags, "redis.command_timeout", "--command-timeout", optarg); break;
		case OPT_JSON: o->json = true; break;
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

static void
open_clients(struct cli_clients *cl, const struct options *o)
{
	cli_load_config(&cl->cfg, o->config);
	cli_flags_apply(&cl->cfg, &o->flags);
	cli_setup_log(&cl->cfg);
	cli_open_clients(cl, cl->cfg.pool_size, cl->cfg.pool_max_overflow);
}

/* --- main ---------------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	struct options o = { 0 };
	struct cli_clients cl = { 0 };
	struct figures figures = { 0 };
	struct ace_procstats_writer *writer = NULL;
	const char *command;
	int status;

	cli_program = "ace-cache";
	parse_options(argc, argv, &o);
	argc -= optind;
	argv += optind;
	command = argc > 0 ? argv[0] : "filter";

	if (strcmp(command, "filter") != 0 && strcmp(command, "get") != 0 &&
	    strcmp(command, "set") != 0 && strcmp(command, "invalidate") != 0 &&
	    strcmp(command, "warm") != 0 && strcmp(command, "stats") != 0 &&
	    strcmp(command, "listen") != 0)
		cli_usage_error("unknown command '%s' (expected filter, get, set, invalidate, warm, stats or listen)",
		    command);
	if ((strcmp(command, "filter") == 0 || strcmp(command, "warm") == 0 ||
	    strcmp(command, "stats") == 0 || strcmp(command, "listen") == 0) && argc > 1)
		cli_usage_error("%s: unexpected argument '%s'", command, argv[1]);
	if (o.pattern != NULL && strcmp(command, "invalidate") != 0)
		cli_usage_error("--pattern applies to invalidate only");
	if (o.expect_version >= 0 && strcmp(command, "set") != 0)
		cli_usage_error("--expect-version applies to set only");
	if (o.json && strcmp(command, "stats") != 0)
		cli_usage_error("--json applies to stats only");

	install_signals();
	open_clients(&cl, &o);
	/*
	 * Only the long-running commands write a stats file.  get, set,
	 * invalidate and stats end within milliseconds, so a scrape would
	 * almost never see their file, and warm prints its totals when it ends.
	 */
	if (cl.cfg.stats_dir != NULL && (strcmp(command, "filter") == 0 || strcmp(command, "listen") == 0))
		writer = start_figures(&cl, &figures, strcmp(command, "filter") == 0);
	if (strcmp(command, "get") == 0)
		status = run_get(&cl, argc, argv);
	else if (strcmp(command, "set") == 0)
		status = run_set(&cl, &o, argc, argv);
	else if (strcmp(command, "invalidate") == 0)
		status = run_invalidate(&cl, &o, argc, argv);
	else if (strcmp(command, "warm") == 0)
		status = run_warm(&cl);
	else if (strcmp(command, "stats") == 0)
		status = run_stats(&cl, &o);
	else if (strcmp(command, "listen") == 0)
		status = run_listen(&cl);
	else
		status = run_filter(&cl, writer != NULL ? &figures : NULL);
	stop_figures(writer, &figures);
	cli_close_clients(&cl);
	return cli_close_stdout(status);
}
