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
#include "cli.h"

#ifndef ACE_VERSION
#define ACE_VERSION "0.1.0"
#endif

/* Statuses of ace-stats besides the sysexits ones in cli.h. */
enum {
	EXIT_FOUND = 1,		/* drift: some record drifted; health: some check failed */
};

/* How long a drift baseline is reused before it is looked up again. */
#define DRIFT_REFRESH_SECONDS 60.0

/* Process stats files older than this are left out of prom: their writer stopped writing. */
#define PROCSTATS_MAX_AGE 10.0

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

struct options {
	const char *config;
	const char *output;
	const char *since;
	const char *until;
	const char *format;
	bool no_publish;
	bool only_drift;
	bool json;
	struct cli_flags flags;
	/* Options that belong to one command, for the check after parsing. */
	struct {
		const char *option;
		const char *command;
	} owned[16];
	int nowned;
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
			fputs(usage_text, stdout);
			exit(cli_close_stdout(EXIT_OK));
		case 'V':
			printf("ace-stats %s\n", ACE_VERSION);
			exit(cli_close_stdout(EXIT_OK));
		default:
			fprintf(stderr, "Try '%s --help' for more information.\n", cli_program);
			exit(EXIT_USAGE);
		}
	}
}

/* Maps a libace failure to an exit status. */
static int
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
static void
report_pg_error(const struct ace_error *err)
{
	if (strstr(err->message, "SQLSTATE 42P01") != NULL || strstr(err->message, "SQLSTATE 42703") != NULL)
		cli_error("%s; run 'ace-migrate up' first", err->message);
	else
		cli_error("%s", err->message);
}

/* Opens one connection outside the pool; prints the failure and sets *status when it fails. */
static PGconn *
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

/* --- baselines ------------------------------------------------------------------ */

static int
run_baselines(struct cli_clients *cl, const struct options *o)
{
	struct ace_baseline_options bo = { cl->cfg.baseline_window, cl->cfg.min_samples };
	struct ace_baseline_summary sum;
	struct ace_error err;
	long long keys = 0;
	int status = EXIT_OK;
	PGconn *pg = connect_db(cl, &status);

	if (pg == NULL)
		return status;
	if (ace_baseline_compute(pg, &bo, &sum, &err) != ACE_OK) {
		report_pg_error(&err);
		PQfinish(pg);
		return exit_status_for(err.code);
	}
	if (!o->no_publish) {
		struct ace_cache_options lo = {
			.redis = NULL,
			.pool = cl->pool,
			.playbook_ttl = cl->cfg.playbook_ttl,
			.baseline_ttl = cl->cfg.baseline_ttl,
			.negative_ttl = cl->cfg.negative_ttl,
			.jitter_percent = cl->cfg.ttl_jitter_percent,
			.lock_timeout = cl->cfg.cache_lock_timeout,
		};
		struct ace_cache *loader = ace_cache_new(&lo, &err);
		struct ace_baseline_publish_options po = {
			.loader = loader,
			.redis = cl->redis,
			.ttl = cl->cfg.baseline_ttl,
			.jitter_percent = cl->cfg.ttl_jitter_percent,
		};

		if (loader == NULL || ace_baseline_publish(pg, &po, &keys, &err) != ACE_OK) {
			cli_error("baselines stored in postgresql, but not published to redis: %s", err.message);
			status = EXIT_TEMPFAIL;
		}
		ace_cache_free(loader);
	}
	PQfinish(pg);
	printf("groups=%lld stored=%lld too_small=%lld min_samples=%d published=%lld "
	    "window_start=%s window_end=%s\n", sum.groups, sum.stored, sum.too_small,
	    cl->cfg.min_samples, keys, sum.window_start, sum.window_end);
	return status;
}

/* --- drift ------------------------------------------------------------------------ */

struct drift_run {
	struct ace_drift *drift;
	bool only_drift;
	bool drifted;		/* some record crossed a threshold */
	bool invalid;		/* some line was not a valid record */
	bool unavailable;	/* some baseline could not be read */
	bool io_failed;
};

/* Checks every line of one input and writes the results. */
static void
drift_input(struct drift_run *run, const char *source, int fd, long max_line)
{
	struct ace_lines *lines = ace_lines_new(fd, (size_t)max_line);
	struct ace_buf out = ACE_BUF_INIT;
	const char *shown = strcmp(source, "-") == 0 ? "<stdin>" : source;

	if (lines == NULL) {
		cli_error("out of memory");
		run->io_failed = true;
		return;
	}
	for (;;) {
		struct ace_metric m;
		struct ace_metric_error e;
		struct ace_drift_outcome outcome;
		const char *line;
		size_t len;
		int rc = ace_lines_next(lines, -1, &line, &len);

		if (rc == ACE_LINES_EOF)
			break;
		if (rc == ACE_LINES_ERROR) {
			cli_error("cannot read '%s': %s", shown, strerror(errno));
			run->io_failed = true;
			break;
		}
		if (rc == ACE_LINES_TOO_LONG) {
			cli_error("%s:%llu: line is %zu bytes long, more than the maximum of %ld", shown,
			    (unsigned long long)ace_lines_number(lines), len, max_line);
			run->invalid = true;
			continue;
		}
		if (rc != ACE_LINES_OK)
			continue;
		if (ace_metric_parse(line, len, ace_now_us(), &m, &e) != 0) {
			cli_error("%s:%llu: %s%s%s", shown, (unsigned long long)ace_lines_number(lines),
			    e.field, *e.field ? ": " : "", e.reason);
			run->invalid = true;
			continue;
		}
		ace_buf_reset(&out);
		rc = ace_drift_check(run->drift, line, len, &m, &out, &outcome);
		ace_metric_release(&m);
		if (rc != 0) {
			cli_error("out of memory");
			run->io_failed = true;
			break;
		}
		run->drifted |= outcome.drift;
		if (outcome.lookup_status != ACE_OK && outcome.lookup_status != ACE_ERR_NOT_FOUND)
			run->unavailable = true;
		/* Records that could not be compared are passed too, so that nothing is silently dropped. */
		if (run->only_drift && !outcome.drift && outcome.has_baseline)
			continue;
		if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
			cli_error("cannot write to standard output: %s", strerror(errno));
			run->io_failed = true;
			break;
		}
	}
	ace_buf_release(&out);
	ace_lines_free(lines);
}

static int
run_drift(struct cli_clients *cl, const struct options *o, int argc, char **argv)
{
	struct ace_drift_options dopt = {
		.cache = cl->cache,
		.thresholds = {
			.velocity_ratio = cl->cfg.drift_velocity_ratio,
			.error_rate_ratio = cl->cfg.drift_error_rate_ratio,
			.min_success_rate = cl->cfg.drift_min_success_rate,
		},
		.refresh = DRIFT_REFRESH_SECONDS,
	};
	struct drift_run run = { .only_drift = o->only_drift };
	struct ace_error err;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-") != 0 && access(argv[i], R_OK) != 0) {
			cli_error("cannot open '%s': %s", argv[i], strerror(errno));
			return EXIT_NOINPUT;
		}
	}
	run.drift = ace_drift_new(&dopt, &err);
	if (run.drift == NULL) {
		cli_error("%s", err.message);
		return EXIT_SOFTWARE;
	}
	if (argc < 2)
		drift_input(&run, "-", STDIN_FILENO, cl->cfg.max_line_bytes);
	for (int i = 1; i < argc && !run.io_failed; i++) {
		int fd = strcmp(argv[i], "-") == 0 ? STDIN_FILENO : open(argv[i], O_RDONLY);

		if (fd < 0) {
			cli_error("cannot open '%s': %s", argv[i], strerror(errno));
			run.io_failed = true;
			break;
		}
		drift_input(&run, argv[i], fd, cl->cfg.max_line_bytes);
		if (fd != STDIN_FILENO)
			close(fd);
	}
	ace_drift_free(run.drift);
	if (run.unavailable)
		cli_error("some baselines could not be read; their records were passed with the reason");
	if (run.io_failed)
		return EXIT_IOERR;
	if (run.unavailable)
		return EXIT_UNAVAILABLE;
	if (run.invalid)
		return EXIT_DATAERR;
	return run.drifted ? EXIT_FOUND : EXIT_OK;
}

/* --- prom ------------------------------------------------------------------------- */

/* Appends a family with one unlabelled sample. */
static int
prom_single(struct ace_buf *out, const char *name, const char *type, const char *help, double value)
{
	return ace_prom_family(out, name, type, help) | ace_prom_sample(out, name, NULL, 0, value);
}

static int
prom_database(struct ace_buf *out, const struct ace_dbstats *db)
{
	int rc = 0;

	if (!db->has_table)
		return 0;
	rc |= prom_single(out, "ace_metrics_rows", "gauge", "Rows in performance_metrics.", (double)db->rows);
	rc |= prom_single(out, "ace_metrics_table_size_bytes", "gauge",
	    "Bytes of performance_metrics with its indexes and TOAST, over every chunk or partition.",
	    db->bytes);
	rc |= ace_prom_family(out, "ace_metrics_stage_rows", "gauge", "Rows in performance_metrics per stage.");
	for (int s = 0; s < 4; s++) {
		const char *labels[] = { "stage", ace_stage_name(s) };

		rc |= ace_prom_sample(out, "ace_metrics_stage_rows", labels, 1, (double)db->stage_rows[s]);
	}
	if (db->has_lag)
		rc |= prom_single(out, "ace_ingest_lag_seconds", "gauge",
		    "Seconds from the newest recorded_at in performance_metrics to now.", db->lag_seconds);
	if (db->has_compression)
		rc |= prom_single(out, "ace_metrics_compression_ratio", "gauge",
		    "Bytes of the compressed chunks before compression divided by their bytes after.",
		    db->compression_ratio);
	if (db->has_baselines_table) {
		rc |= prom_single(out, "ace_baselines", "gauge",
		    "Agent, task type and stage groups that have a baseline.", (double)db->baselines);
		if (db->has_baseline_age)
			rc |= prom_single(out, "ace_baseline_age_seconds", "gauge",
			    "Seconds since the newest baseline was computed.", db->baseline_age_seconds);
	}
	return rc;
}

static int
prom_cache(struct ace_buf *out, const struct ace_cache_stats *st)
{
	const char *playbook[] = { "kind", "playbook" }, *baseline[] = { "kind", "baseline" };
	int rc = 0;

	rc |= prom_single(out, "ace_cache_hits_total", "counter",
	    "Lookups of ace keys that Redis answered, counted by every ace process.", (double)st->hits);
	rc |= prom_single(out, "ace_cache_misses_total", "counter",
	    "Lookups of ace keys that Redis did not have.", (double)st->misses);
	rc |= prom_single(out, "ace_cache_loads_total", "counter",
	    "Values loaded from PostgreSQL and offered to Redis.", (double)st->loads);
	if (st->gets > 0)
		rc |= prom_single(out, "ace_cache_hit_rate", "gauge",
		    "Hits divided by lookups of ace keys since the counters started.",
		    (double)st->hits / (double)st->gets);
	rc |= ace_prom_family(out, "ace_cache_keys", "gauge", "Playbook and baseline keys in Redis.");
	rc |= ace_prom_sample(out, "ace_cache_keys", playbook, 1, (double)st->playbook_keys);
	rc |= ace_prom_sample(out, "ace_cache_keys", baseline, 1, (double)st->baseline_keys);
	return rc;
}

/* The per-process figures of prom: a name, type, help, and which field of a process it reads. */
enum proc_field {
	PF_POOL_SIZE, PF_POOL_MAX_OVERFLOW, PF_POOL_CHECKED_OUT, PF_POOL_OVERFLOW, PF_POOL_CHECKOUTS,
	PF_POOL_TIMEOUTS, PF_BATCH_SIZE, PF_FLUSHES, PF_FLUSH_COUNT, PF_WRITTEN, PF_REJECTED,
};

static const struct {
	const char *name;
	const char *type;
	const char *help;
	int field;
} proc_families[] = {
	{ "ace_database_pool_size", "gauge", "Connections the process's PostgreSQL pool keeps.", PF_POOL_SIZE },
	{ "ace_database_pool_max_overflow", "gauge", "Connections the pool may open above its size.", PF_POOL_MAX_OVERFLOW },
	{ "ace_database_pool_checked_out", "gauge", "Pool connections in use now.", PF_POOL_CHECKED_OUT },
	{ "ace_database_pool_overflow", "gauge", "Pool connections open above the pool size now.", PF_POOL_OVERFLOW },
	{ "ace_database_pool_checkouts_total", "counter", "Connections taken from the pool.", PF_POOL_CHECKOUTS },
	{ "ace_database_pool_timeouts_total", "counter", "Checkouts that waited the whole pool timeout and failed.", PF_POOL_TIMEOUTS },
	{ "ace_metrics_batch_size", "gauge", "Records per batch that ace-ingest is configured with.", PF_BATCH_SIZE },
	{ "ace_ingest_flushes_total", "counter", "Batches ace-ingest committed.", PF_FLUSHES },
	{ "ace_metrics_flush_count", "untyped", "Batches ace-ingest committed; the older name of ace_ingest_flushes_total.", PF_FLUSH_COUNT },
	{ "ace_ingest_records_written_total", "counter", "Records ace-ingest committed.", PF_WRITTEN },
	{ "ace_ingest_records_rejected_total", "counter", "Records ace-ingest rejected.", PF_REJECTED },
};

/* Returns whether process p has the field, and its value in *v. */
static bool
proc_value(const struct ace_procstats *p, int field, double *v)
{
	bool pool = p->has_pool, ingest = p->has_ingest;

	switch (field) {
	case PF_POOL_SIZE: *v = p->pool_size; return pool;
	case PF_POOL_MAX_OVERFLOW: *v = p->pool_max_overflow; return pool;
	case PF_POOL_CHECKED_OUT: *v = p->pool_checked_out; return pool;
	case PF_POOL_OVERFLOW: *v = p->pool_open > p->pool_size ? p->pool_open - p->pool_size : 0; return pool;
	case PF_POOL_CHECKOUTS: *v = (double)p->pool_checkouts; return pool;
	case PF_POOL_TIMEOUTS: *v = (double)p->pool_timeouts; return pool;
	case PF_BATCH_SIZE: *v = p->batch_size; return ingest;
	case PF_FLUSHES:
	case PF_FLUSH_COUNT: *v = (double)p->flushes; return ingest;
	case PF_WRITTEN: *v = (double)p->records_written; return ingest;
	case PF_REJECTED: *v = (double)p->records_rejected; return ingest;
	}
	return false;
}

/* Appends one histogram family of the operations of every process. */
static int
prom_histogram(struct ace_buf *out, const char *name, const char *help,
    const struct ace_procstats *procs, size_t n)
{
	char bucket[128], sum[128], count[128];
	bool any = false;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		any |= procs[i].operations > 0;
	if (!any)
		return 0;
	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	snprintf(sum, sizeof(sum), "%s_sum", name);
	snprintf(count, sizeof(count), "%s_count", name);
	rc |= ace_prom_family(out, name, "histogram", help);
	for (size_t i = 0; i < n; i++) {
		char pid[24];

		snprintf(pid, sizeof(pid), "%ld", procs[i].pid);
		for (size_t k = 0; k < procs[i].operations; k++) {
			const struct ace_histogram_snapshot *h = &procs[i].operation[k].duration;
			const char *labels[8] = { "program", procs[i].program, "pid", pid,
			    "operation", procs[i].operation[k].name, "le", NULL };

			for (int b = 0; b <= ACE_HISTOGRAM_BUCKETS; b++) {
				char le[32];

				ace_prom_format_value(ace_histogram_bound(b), le, sizeof(le));
				labels[7] = le;
				rc |= ace_prom_sample(out, bucket, labels, 4, (double)h->cumulative[b]);
			}
			rc |= ace_prom_sample(out, sum, labels, 3, h->sum);
			rc |= ace_prom_sample(out, count, labels, 3, (double)h->cumulative[ACE_HISTOGRAM_BUCKETS]);
		}
	}
	return rc;
}

static int
prom_processes(struct ace_buf *out, const struct ace_procstats *procs, size_t n)
{
	int rc = 0;

	for (size_t f = 0; f < sizeof(proc_families) / sizeof(proc_families[0]); f++) {
		bool family = false;

		for (size_t i = 0; i < n; i++) {
			char pid[24];
			const char *labels[] = { "program", procs[i].program, "pid", pid };
			double v;

			if (!proc_value(&procs[i], proc_families[f].field, &v))
				continue;
			if (!family)
				rc |= ace_prom_family(out, proc_families[f].name, proc_families[f].type,
				    proc_families[f].help);
			family = true;
			snprintf(pid, sizeof(pid), "%ld", procs[i].pid);
			rc |= ace_prom_sample(out, proc_families[f].name, labels, 2, v);
		}
	}
	rc |= prom_histogram(out, "ace_cache_operation_duration_seconds",
	    "Seconds each cache operation of ace-cache took.", procs, n);
	rc |= prom_histogram(out, "ace_cache_operation_duration",
	    "Seconds each cache operation took; the older name of ace_cache_operation_duration_seconds.",
	    procs, n);
	return rc;
}

static int
run_prom(struct cli_clients *cl, const struct options *o)
{
	struct ace_buf out = ACE_BUF_INIT;
	struct ace_dbstats db;
	struct ace_cache_stats cs;
	struct ace_error err;
	bool db_up = false, redis_up = false;
	int status = EXIT_OK, rc = 0;
	PGconn *pg = connect_db(cl, &status);

	if (pg != NULL) {
		db_up = ace_dbstats_read(pg, &db, &err) == ACE_OK;
		if (!db_up) {
			report_pg_error(&err);
			status = exit_status_for(err.code);
		}
		PQfinish(pg);
	}
	redis_up = ace_cache_stats(cl->cache, &cs, &err) == ACE_OK;
	if (!redis_up) {
		cli_error("cannot read the cache figures: %s", err.message);
		if (status == EXIT_OK)
			status = exit_status_for(err.code);
	}

	rc |= prom_single(&out, "ace_database_up", "gauge",
	    "1 when ace-stats could read its figures from PostgreSQL, else 0.", db_up);
	rc |= prom_single(&out, "ace_redis_up", "gauge",
	    "1 when ace-stats could read its figures from Redis, else 0.", redis_up);
	if (db_up)
		rc |= prom_database(&out, &db);
	if (redis_up)
		rc |= prom_cache(&out, &cs);
	if (cl->cfg.stats_dir != NULL) {
		struct ace_procstats *procs;
		size_t n;

		if (ace_procstats_read_dir(cl->cfg.stats_dir, PROCSTATS_MAX_AGE, &procs, &n, &err) != ACE_OK) {
			cli_error("%s", err.message);
			if (status == EXIT_OK)
				status = EXIT_CONFIG;
		} else {
			rc |= prom_processes(&out, procs, n);
			free(procs);
		}
	}
	if (rc != 0) {
		cli_error("out of memory");
		ace_buf_release(&out);
		return EXIT_SOFTWARE;
	}
	if (o->output != NULL && strcmp(o->output, "-") != 0) {
		if (ace_prom_write_file(o->output, out.data, out.len, &err) != ACE_OK) {
			cli_error("%s", err.message);
			status = EXIT_CANTCREAT;
		}
	} else if (fwrite(out.data, 1, out.len, stdout) != out.len) {
		status = EXIT_IOERR;
	}
	ace_buf_release(&out);
	return status;
}

/* --- health ------------------------------------------------------------------------- */

static int
run_health(struct cli_clients *cl, const struct options *o)
{
	struct ace_health_check checks[ACE_HEALTH_CHECKS];
	struct ace_migration_set set;
	struct ace_error err;
	int rc, failed;
	struct ace_health_options ho = {
		.conninfo = cl->cfg.database_url,
		.connect_timeout = cl->cfg.connect_timeout,
		.redis = cl->redis,
		.cache = cl->cache,
		.migrations = &set,
		.pool_size = cl->cfg.pool_size,
		.pool_max_overflow = cl->cfg.pool_max_overflow,
		.workers = cl->cfg.workers,
		.min_hit_rate = cl->cfg.health_min_hit_rate,
		.max_lag = cl->cfg.health_max_lag,
	};

	rc = cl->cfg.migrations_dir ? ace_migrations_load_dir(&set, cl->cfg.migrations_dir, &err) :
	    ace_migrations_load_embedded(&set, &err);
	if (rc != ACE_OK) {
		cli_error("%s", err.message);
		return EXIT_CONFIG;
	}
	failed = ace_health_run(&ho, checks);
	ace_migrations_release(&set);

	if (o->json) {
		struct ace_buf out = ACE_BUF_INIT;

		rc = ace_buf_printf(&out, "{\"ok\":%s,\"checks\":[", failed ? "false" : "true");
		for (int i = 0; i < ACE_HEALTH_CHECKS; i++) {
			const struct ace_health_check *c = &checks[i];

			rc |= ace_buf_printf(&out, "%s{\"name\":\"%s\",\"status\":\"%s\",\"value\":", i ? "," : "",
			    c->name, ace_health_status_name(c->status));
			rc |= ace_buf_put_json_string(&out, c->value, strlen(c->value), NULL);
			rc |= ace_buf_puts(&out, ",\"threshold\":");
			rc |= ace_buf_put_json_string(&out, c->threshold, strlen(c->threshold), NULL);
			rc |= ace_buf_puts(&out, ",\"detail\":");
			rc |= ace_buf_put_json_string(&out, c->detail, strlen(c->detail), NULL);
			rc |= ace_buf_putc(&out, '}');
		}
		rc |= ace_buf_puts(&out, "]}\n");
		if (rc == 0)
			fwrite(out.data, 1, out.len, stdout);
		ace_buf_release(&out);
	} else {
		for (int i = 0; i < ACE_HEALTH_CHECKS; i++)
			printf("%-4s %s %s (%s)\n", ace_health_status_name(checks[i].status), checks[i].name,
			    checks[i].value, checks[i].threshold);
	}
	for (int i = 0; i < ACE_HEALTH_CHECKS; i++)
		if (checks[i].status == ACE_HEALTH_FAIL)
			cli_error("health: %s: %s", checks[i].name, checks[i].detail);
	return failed ? EXIT_FOUND : EXIT_OK;
}

/* --- report ---------------------------------------------------------------------------- */

enum { FORMAT_TABLE, FORMAT_JSON, FORMAT_CSV };

struct report_run {
	int format;
	long long rows;
};

/* Parses an RFC 3339 time, or a duration meaning that long before now. */
static int64_t
parse_when(const char *option, const char *text, int64_t now_us)
{
	const char *why;
	double seconds;
	int64_t us;

	if (ace_parse_rfc3339(text, &us, &why) == 0)
		return us;
	if (ace_parse_seconds(text, &seconds) == 0 && seconds >= 0 && seconds < 1e10)
		return now_us - (int64_t)(seconds * 1e6);
	cli_usage_error("%s: invalid time '%s' (expected an RFC 3339 time or a duration such as 24h)",
	    option, text);
}

static void
csv_field(const char *text)
{
	if (strpbrk(text, ",\"\r\n") == NULL) {
		fputs(text, stdout);
		return;
	}
	putchar('"');
	for (const char *p = text; *p; p++) {
		if (*p == '"')
			putchar('"');
		putchar(*p);
	}
	putchar('"');
}

static int
report_row(void *ctx, const struct ace_report_row *r)
{
	struct report_run *run = ctx;
	char p50[32] = "", p95[32] = "", rate[32] = "";

	if (r->has_duration) {
		snprintf(p50, sizeof(p50), "%.1f", r->duration_p50);
		snprintf(p95, sizeof(p95), "%.1f", r->duration_p95);
	}
	if (r->has_success_rate)
		snprintf(rate, sizeof(rate), "%.4f", r->success_rate);

	if (run->format == FORMAT_TABLE) {
		int width = r->agent_width > 5 ? r->agent_width : 5;

		if (run->rows == 0)
			printf("%-*s  %-12s  %10s  %10s  %10s  %12s\n", width, "agent", "stage", "count",
			    "p50_ms", "p95_ms", "success_rate");
		printf("%-*s  %-12s  %10lld  %10s  %10s  %12s\n", width, r->agent_id, r->stage, r->count,
		    *p50 ? p50 : "-", *p95 ? p95 : "-", *rate ? rate : "-");
	} else if (run->format == FORMAT_CSV) {
		if (run->rows == 0)
			puts("agent_id,stage,count,duration_p50_ms,duration_p95_ms,success_rate");
		csv_field(r->agent_id);
		printf(",%s,%lld,%s,%s,%s\n", r->stage, r->count, p50, p95, rate);
	} else {
		struct ace_buf out = ACE_BUF_INIT;
		int rc = ace_buf_puts(&out, run->rows ? ",\n{\"agent_id\":" : "[\n{\"agent_id\":");

		rc |= ace_buf_put_json_string(&out, r->agent_id, strlen(r->agent_id), NULL);
		rc |= ace_buf_printf(&out, ",\"stage\":\"%s\",\"count\":%lld,\"duration_p50_ms\":%s,"
		    "\"duration_p95_ms\":%s,\"success_rate\":%s}", r->stage, r->count,
		    *p50 ? p50 : "null", *p95 ? p95 : "null", *rate ? rate : "null");
		if (rc == 0)
			fwrite(out.data, 1, out.len, stdout);
		ace_buf_release(&out);
		if (rc != 0)
			return -1;
	}
	run->rows++;
	return ferror(stdout) ? -1 : 0;
}

static int
run_report(struct cli_clients *cl, const struct options *o)
{
	int64_t now = ace_now_us();
	int64_t since = parse_when("--since", o->since ? o->since : "24h", now);
	int64_t until = o->until ? parse_when("--until", o->until, now) : now;
	struct report_run run = { FORMAT_TABLE, 0 };
	struct ace_error err;
	int status = EXIT_OK;
	PGconn *pg;

	if (o->format == NULL || strcmp(o->format, "table") == 0)
		run.format = FORMAT_TABLE;
	else if (strcmp(o->format, "json") == 0)
		run.format = FORMAT_JSON;
	else if (strcmp(o->format, "csv") == 0)
		run.format = FORMAT_CSV;
	else
		cli_usage_error("--format: unknown format '%s' (expected table, json or csv)", o->format);
	if (until < since)
		cli_usage_error("--until is before --since");

	pg = connect_db(cl, &status);
	if (pg == NULL)
		return status;
	if (ace_dbstats_report(pg, since, until, report_row, &run, &err) != ACE_OK) {
		report_pg_error(&err);
		status = exit_status_for(err.code);
	} else if (run.format == FORMAT_JSON) {
		fputs(run.rows ? "\n]\n" : "[]\n", stdout);
	} else if (run.format == FORMAT_CSV && run.rows == 0) {
		puts("agent_id,stage,count,duration_p50_ms,duration_p95_ms,success_rate");
	}
	PQfinish(pg);
	return status;
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
