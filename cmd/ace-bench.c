/*
 * ace-bench: runs workloads against the configured PostgreSQL and Redis and
 * prints | Metric | Target | Actual | Status | tables, exiting 1 when a
 * target is missed, so that it can gate a deploy.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ace/bench.h"
#include "ace/buf.h"
#include "ace/config.h"
#include "ace/log.h"
#include "cli.h"

/* Statuses of ace-bench besides the sysexits ones in cli.h. */
enum {
	EXIT_MISSED = 1,	/* the run completed and missed at least one target */
};

static const char usage_text[] =
"Usage: ace-bench [OPTION]...\n"
"Run workloads against the configured PostgreSQL and Redis and print, per suite,\n"
"a table of Metric, Target, Actual and Status.  Everything is written to a new\n"
"schema and to Redis keys of generated agents, and removed at the end.\n"
"\n"
"Suites: batching, cache, pool, overhead, compression, query (default: all).\n"
"\n"
"Options:\n"
"  -c, --config FILE          read settings and targets from FILE (default: $ACE_CONFIG)\n"
"  -d, --database-url URL     PostgreSQL URI or key/value string (default: $DATABASE_URL,\n"
"                             then libpq's PG* variables)\n"
"  -r, --redis-url URL        redis://[user:password@]host:port/db or unix:///path?db=N\n"
"                             (default: $REDIS_URL, then redis://127.0.0.1:6379/0)\n"
"  -s, --suite NAME[,NAME]    run these suites; repeatable (default: all)\n"
"  -f, --format FORMAT        markdown, json or csv (default markdown)\n"
"      --seed N               seed of the generated workloads (default 1)\n"
"      --duration SECS        longest run of each timed loop (default 10;\n"
"                             units ms, s, m, h accepted)\n"
"      --quick                small workloads and at most 1 s per loop, for tests\n"
"      --plot FILE            also draw the latency percentiles as an SVG image\n"
"      --allow-remote         accept servers that are not on this machine\n"
"      --log-level LEVEL      error, warning, notice, info or debug (default info)\n"
"      --log-format FORMAT    logfmt or json (default logfmt)\n"
"  -h, --help                 show this help and exit\n"
"  -V, --version              show the version and exit\n"
"\n"
"Targets are the bench.* keys of ace.yaml.  A progress bar is drawn on standard\n"
"error when it is a terminal.  SIGINT or SIGTERM stops the run, removes what it\n"
"wrote, and prints what was measured; a second signal ends it at once.\n"
"\n"
"Exit status:\n"
"  0   every target was met\n"
"  1   at least one target was missed\n"
"  64  invalid option\n"
"  69  a server could not be reached\n"
"  70  a server refused a statement, or ace-ingest failed\n"
"  73  the plot file cannot be created\n"
"  74  writing standard output or the plot failed\n"
"  75  interrupted by SIGINT or SIGTERM\n"
"  78  invalid configuration, or a server that is not on this machine\n";

enum {
	OPT_SEED = 256,
	OPT_DURATION,
	OPT_QUICK,
	OPT_PLOT,
	OPT_ALLOW_REMOTE,
	OPT_LOG_LEVEL,
	OPT_LOG_FORMAT,
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "database-url", required_argument, NULL, 'd' },
	{ "redis-url", required_argument, NULL, 'r' },
	{ "suite", required_argument, NULL, 's' },
	{ "format", required_argument, NULL, 'f' },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "quick", no_argument, NULL, OPT_QUICK },
	{ "plot", required_argument, NULL, OPT_PLOT },
	{ "allow-remote", no_argument, NULL, OPT_ALLOW_REMOTE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

enum format { FORMAT_MARKDOWN, FORMAT_JSON, FORMAT_CSV };

struct options {
	const char *config;
	const char *plot;
	unsigned suites;	/* 0: all */
	int format;
	bool quick;
	bool allow_remote;
	struct cli_flags flags;
};

static volatile sig_atomic_t stop_requested;

/* The first signal stops the run, which then cleans up; SA_RESETHAND lets a second one end the process. */
static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Writes to a pipe whose reader is gone fail with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
}

static int
parse_format(const char *text)
{
	if (strcmp(text, "markdown") == 0)
		return FORMAT_MARKDOWN;
	if (strcmp(text, "json") == 0)
		return FORMAT_JSON;
	if (strcmp(text, "csv") == 0)
		return FORMAT_CSV;
	cli_usage_error("--format: invalid format '%s' (expected markdown, json or csv)", text);
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	struct ace_error err;
	int c;

	while ((c = getopt_long(argc, argv, "c:d:r:s:f:hV", long_options, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'd': cli_flags_add(&o->flags, "database.url", "--database-url", optarg); break;
		case 'r': cli_flags_add(&o->flags, "redis.url", "--redis-url", optarg); break;
		case 's':
			if (ace_bench_suites_parse(optarg, &o->suites, &err) != ACE_OK)
				cli_usage_error("--suite: %s", err.message);
			break;
		case 'f': o->format = parse_format(optarg); break;
		case OPT_SEED: cli_flags_add(&o->flags, "bench.seed", "--seed", optarg); break;
		case OPT_DURATION: cli_flags_add(&o->flags, "bench.duration", "--duration", optarg); break;
		case OPT_QUICK: o->quick = true; break;
		case OPT_PLOT: o->plot = optarg; break;
		case OPT_ALLOW_REMOTE: o->allow_remote = true; break;
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
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (o->suites == 0)
		o->suites = ACE_BENCH_ALL;
}

/* --- Progress bar ------------------------------------------------------------------ */

struct progress {
	unsigned suites;
	int width;		/* characters of the bar */
	bool drawn;
};

/* Redraws one line on the terminal: the bar over all selected suites, and the one running. */
static void
draw_progress(void *ctx, int suite, double fraction)
{
	struct progress *p = ctx;
	int done = 0, total = 0, filled;
	double overall;
	char bar[64];

	for (int s = 0; s < ACE_BENCH_SUITES; s++) {
		if (!(p->suites & (1u << s)))
			continue;
		total++;
		done += s < suite;
	}
	overall = total ? (done + fraction) / total : 1;
	filled = (int)(overall * p->width + 0.5);
	for (int i = 0; i < p->width; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[p->width] = '\0';
	fprintf(stderr, "\r%s: [%s] %3.0f%% %-12s", cli_program, bar, overall * 100,
	    ace_bench_suite_name(suite));
	fflush(stderr);
	p->drawn = true;
}

static void
clear_progress(struct progress *p)
{
	if (p->drawn)
		fputs("\r\033[K", stderr);
	p->drawn = false;
}

/* --- Output --------------------------------------------------------------------- */

/* Finds ace-ingest next to this binary, else on PATH; NULL when neither has it. */
static char *
find_ingest(void)
{
	char self[PATH_MAX], *slash, *path, *copy, *dir, *save = NULL, *found = NULL;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL && asprintf(&found, "%.*s/ace-ingest", (int)(slash - self), self) > 0) {
			if (access(found, X_OK) == 0)
				return found;
			free(found);
			found = NULL;
		}
	}
	path = getenv("PATH");
	copy = path != NULL ? strdup(path) : NULL;
	for (dir = copy ? strtok_r(copy, ":", &save) : NULL; dir != NULL && found == NULL;
	    dir = strtok_r(NULL, ":", &save)) {
		if (asprintf(&found, "%s/ace-ingest", *dir ? dir : ".") < 0) {
			found = NULL;
			break;
		}
		if (access(found, X_OK) != 0) {
			free(found);
			found = NULL;
		}
	}
	free(copy);
	return found;
}

static int
format_report(const struct ace_bench_report *r, int format, struct ace_buf *out)
{
	switch (format) {
	case FORMAT_JSON: return ace_bench_format_json(r, out);
	case FORMAT_CSV: return ace_bench_format_csv(r, out);
	}
	return ace_bench_format_markdown(r, out);
}

/* Writes the plot to its file, which main opened before the run. */
static int
write_plot(const struct ace_bench_report *r, FILE *fp, const char *path)
{
	struct ace_buf svg = ACE_BUF_INIT;
	int status = EXIT_OK;

	if (ace_bench_format_svg(r, &svg) < 0) {
		cli_error("cannot draw the plot: out of memory");
		status = EXIT_SOFTWARE;
	} else if (fwrite(svg.data, 1, svg.len, fp) != svg.len || fflush(fp) != 0) {
		cli_error("cannot write '%s': %s", path, strerror(errno));
		status = EXIT_IOERR;
	}
	if (fclose(fp) != 0 && status == EXIT_OK) {
		cli_error("cannot write '%s': %s", path, strerror(errno));
		status = EXIT_IOERR;
	}
	ace_buf_release(&svg);
	return status;
}

/* Names the missed targets on standard error, so that a failed gate shows why. */
static void
print_missed(const struct ace_bench_report *r)
{
	size_t missed = ace_bench_report_missed(r), shown = 0;

	if (missed == 0)
		return;
	fprintf(stderr, "%s: %zu of %zu targets missed:", cli_program, missed, ace_bench_report_judged(r));
	for (size_t i = 0; i < r->nrows; i++)
		if (r->rows[i].status == ACE_BENCH_MISSED)
			fprintf(stderr, "%s %s (%s)", shown++ ? "," : "", r->rows[i].metric,
			    ace_bench_suite_name(r->rows[i].suite));
	fputc('\n', stderr);
}

static int
exit_status_for(int code)
{
	switch (code) {
	case ACE_ERR_INVALID: return EXIT_CONFIG;
	case ACE_ERR_RETRY:
	case ACE_ERR_TIMEOUT: return EXIT_UNAVAILABLE;
	}
	return EXIT_SOFTWARE;
}

int
main(int argc, char **argv)
{
	struct options o = { .format = FORMAT_MARKDOWN };
	struct progress bar = { .width = 30 };
	struct ace_bench_report report;
	struct ace_buf out = ACE_BUF_INIT;
	struct ace_config cfg;
	struct ace_error err;
	FILE *plot = NULL;
	char *ingest;
	int rc, status;

	cli_program = "ace-bench";
	parse_options(argc, argv, &o);
	cli_load_config(&cfg, o.config);
	cli_flags_apply(&cfg, &o.flags);
	cli_setup_log(&cfg);

	/* Open the plot first, so that a bad path fails before a long run. */
	if (o.plot != NULL && (plot = fopen(o.plot, "w")) == NULL) {
		cli_error("cannot create '%s': %s", o.plot, strerror(errno));
		ace_config_release(&cfg);
		return EXIT_CANTCREAT;
	}
	install_signals();
	ingest = find_ingest();
	bar.suites = o.suites;
	{
		struct ace_bench_options bo = {
			.cfg = &cfg,
			.suites = o.suites,
			.quick = o.quick,
			.ingest_path = ingest,
			.config_path = o.config,
			.allow_remote = o.allow_remote,
			.cancel = &stop_requested,
			.progress = isatty(STDERR_FILENO) ? draw_progress : NULL,
			.ctx = &bar,
		};

		ace_bench_report_init(&report);
		rc = ace_bench_run(&bo, &report, &err);
	}
	clear_progress(&bar);

	if (stop_requested) {
		cli_error("interrupted; the benchmark schema and keys were removed%s%s",
		    rc != ACE_OK ? ", but: " : "", rc != ACE_OK ? err.message : "");
		status = EXIT_TEMPFAIL;
	} else if (rc != ACE_OK) {
		cli_error("%s", err.message);
		status = exit_status_for(rc);
	} else {
		status = ace_bench_report_missed(&report) > 0 ? EXIT_MISSED : EXIT_OK;
	}
	/* What was measured is printed even after a failure: it may explain the failure. */
	if (report.nrows > 0 || rc == ACE_OK) {
		if (format_report(&report, o.format, &out) < 0) {
			cli_error("cannot format the report: out of memory");
			status = EXIT_SOFTWARE;
		} else {
			fwrite(out.data, 1, out.len, stdout);
		}
	}
	if (rc == ACE_OK && !stop_requested)
		print_missed(&report);
	if (plot != NULL) {
		int s = write_plot(&report, plot, o.plot);

		if (status == EXIT_OK || status == EXIT_MISSED)
			status = s == EXIT_OK ? status : s;
	}
	ace_buf_release(&out);
	ace_bench_report_release(&report);
	free(ingest);
	ace_config_release(&cfg);
	return cli_close_stdout(status);
}
