/*
 * ace-ingest: reads NDJSON metric records from standard input or files,
 * validates each, and writes the valid ones to performance_metrics in
 * batches with COPY.  Rejected records are reported with their line number
 * and kept in --rejects; nothing read before SIGTERM or SIGINT is lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <limits.h>
#include <openssl/evp.h>

#include "ace/buf.h"
#include "ace/config.h"
#include "ace/ingest.h"
#include "ace/lines.h"
#include "ace/log.h"
#include "ace/pool.h"
#include "ace/procstats.h"
#include "cli.h"

static const char usage_text[] =
"Usage: ace-ingest [OPTION]... [FILE]...\n"
"Read NDJSON metric records from FILEs (or standard input; '-' means standard\n"
"input), validate them, and write them to PostgreSQL in batches with COPY.\n"
"\n"
"Options:\n"
"  -c, --config FILE          read settings from FILE (default: $ACE_CONFIG)\n"
"  -d, --database-url URL     PostgreSQL URI or key/value string\n"
"                             (default: $DATABASE_URL, else libpq's PG* ones)\n"
"  -b, --batch-size N         records per batch (default 100)\n"
"  -t, --batch-timeout SECS   flush a batch at most SECS after its first record\n"
"                             arrived (default 1.0; units ms, s, m, h accepted)\n"
"  -w, --workers N            batches written at once, each on its own\n"
"                             connection (default 1)\n"
"  -r, --rejects FILE         append each rejected record, with its reason,\n"
"                             to FILE as NDJSON\n"
"      --retry-timeout SECS   how long to retry while the database is\n"
"                             unreachable before giving up (default 300;\n"
"                             units ms, s, m, h)\n"
"      --max-line-bytes N     reject longer lines (default 1048576)\n"
"  -q, --quiet                do not print the summary or each rejected record\n"
"      --log-level LEVEL      error, warning, notice, info or debug\n"
"                             (default info)\n"
"      --log-format FORMAT    logfmt or json (default logfmt)\n"
"  -h, --help                 show this help and exit\n"
"  -V, --version              show the version and exit\n"
"\n"
"A first SIGINT or SIGTERM stops reading, writes every record already read,\n"
"and exits; a second one stops retrying.\n"
"\n"
"Exit status:\n"
"  0   every record was written (duplicates of stored records count as written)\n"
"  64  invalid option\n"
"  65  some records were rejected; all valid records were written\n"
"  66  an input file cannot be opened\n"
"  69  the database could not be reached within --retry-timeout; records were\n"
"      not written (the summary counts them)\n"
"  70  the server refused the writes (a missing table, permissions)\n"
"  73  the rejects file cannot be created\n"
"  74  reading input or writing the rejects file failed\n"
"  75  interrupted by a second signal before every record was written\n"
"  78  invalid configuration\n";

enum {
	OPT_RETRY_TIMEOUT = 256,
	OPT_MAX_LINE_BYTES,
	OPT_LOG_LEVEL,
	OPT_LOG_FORMAT,
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "database-url", required_argument, NULL, 'd' },
	{ "batch-size", required_argument, NULL, 'b' },
	{ "batch-timeout", required_argument, NULL, 't' },
	{ "workers", required_argument, NULL, 'w' },
	{ "rejects", required_argument, NULL, 'r' },
	{ "retry-timeout", required_argument, NULL, OPT_RETRY_TIMEOUT },
	{ "max-line-bytes", required_argument, NULL, OPT_MAX_LINE_BYTES },
	{ "quiet", no_argument, NULL, 'q' },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

struct options {
	const char *config;
	const char *rejects;
	bool quiet;
	struct cli_flags flags;
};

/* The first signal stops reading; the second stops retrying. */
static volatile sig_atomic_t signals_seen;
static volatile sig_atomic_t stop_retrying;

/*
 * The handler also writes to this pipe, which the line reader watches, so a
 * signal that arrives just before a wait for input still ends the wait.
 */
static int wake_pipe[2] = { -1, -1 };

static void
on_signal(int sig)
{
	int saved = errno;

	(void)sig;
	signals_seen++;
	if (signals_seen > 1)
		stop_retrying = 1;
	if (wake_pipe[1] >= 0 && write(wake_pipe[1], "", 1) < 0) {
		/* A full pipe already wakes the reader. */
	}
	errno = saved;
}

struct rejects {
	FILE *file;		/* NULL without --rejects */
	const char *path;
	bool quiet;
	bool write_failed;
};

/*
 * Appends the exact bytes of a record that is not valid UTF-8, which the
 * "record" field can only show with U+FFFD in place of the bad bytes.
 */
static int
put_base64(struct ace_buf *out, const char *data, size_t len)
{
	size_t need = 4 * ((len + 2) / 3) + 1;
	int rc;

	if (len > INT_MAX / 2 || ace_buf_puts(out, ",\"record_base64\":\"") < 0 ||
	    ace_buf_reserve(out, need) < 0)
		return -1;
	rc = EVP_EncodeBlock((unsigned char *)out->data + out->len,
	    (const unsigned char *)data, (int)len);
	out->len += (size_t)rc;
	out->data[out->len] = '\0';
	return ace_buf_putc(out, '"');
}

/* Prints a rejected record on stderr and appends it to the rejects file. */
static void
on_reject(void *ctx, const struct ace_reject *r)
{
	struct rejects *rj = ctx;

	if (!rj->quiet)
		fprintf(stderr, "%s: %s:%llu: %s%s%s%s\n", cli_program,
		    strcmp(r->source, "-") == 0 ? "<stdin>" : r->source,
		    (unsigned long long)r->line, r->field, *r->field ? ": " : "",
		    r->by_server ? "rejected by the server: " : "", r->reason);
	if (rj->file != NULL && !rj->write_failed) {
		struct ace_buf out = ACE_BUF_INIT;
		bool replaced = false;
		int rc = 0;

		rc |= ace_buf_puts(&out, "{\"source\":");
		rc |= ace_buf_put_json_string(&out, r->source, strlen(r->source), NULL);
		rc |= ace_buf_printf(&out, ",\"line\":%llu,\"field\":", (unsigned long long)r->line);
		rc |= ace_buf_put_json_string(&out, r->field, strlen(r->field), NULL);
		rc |= ace_buf_puts(&out, ",\"error\":");
		rc |= ace_buf_put_json_string(&out, r->reason, strlen(r->reason), NULL);
		rc |= ace_buf_printf(&out, ",\"stage\":\"%s\",\"record\":",
		    r->by_server ? "server" : "validation");
		rc |= ace_buf_put_json_string(&out, r->record, r->record_len, &replaced);
		if (replaced)
			rc |= put_base64(&out, r->record, r->record_len);
		rc |= ace_buf_puts(&out, "}\n");
		if (rc != 0 || fwrite(out.data, 1, out.len, rj->file) != out.len ||
		    fflush(rj->file) != 0) {
			rj->write_failed = true;
			cli_error("cannot write to rejects file '%s': %s", rj->path,
			    rc != 0 ? "out of memory" : strerror(errno));
		}
		ace_buf_release(&out);
	}
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	int c;

	while ((c = getopt_long(argc, argv, "c:d:b:t:w:r:qhV", long_options, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'd': cli_flags_add(&o->flags, "database.url", "--database-url", optarg); break;
		case 'b': cli_flags_add(&o->flags, "ingest.batch_size", "--batch-size", optarg); break;
		case 't': cli_flags_add(&o->flags, "ingest.batch_timeout", "--batch-timeout", optarg); break;
		case 'w': cli_flags_add(&o->flags, "ingest.workers", "--workers", optarg); break;
		case 'r': o->rejects = optarg; break;
		case OPT_RETRY_TIMEOUT: cli_flags_add(&o->flags, "ingest.retry_timeout", "--retry-timeout", optarg); break;
		case OPT_MAX_LINE_BYTES: cli_flags_add(&o->flags, "ingest.max_line_bytes", "--max-line-bytes", optarg); break;
		case 'q': o->quiet = true; break;
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
install_signals(void)
{
	struct sigaction sa;

	if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		wake_pipe[0] = wake_pipe[1] = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: a blocked read must wake up */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The sources of this process's stats file, read from the writer's thread. */
struct figures {
	struct ace_pool *pool;
	struct ace_ingest *ing;
	const struct ace_config *cfg;
};

static void
fill_figures(void *ctx, struct ace_procstats *s)
{
	const struct figures *f = ctx;
	struct ace_pool_stats ps;
	struct ace_ingest_stats is;

	ace_pool_stats(f->pool, &ps);
	ace_ingest_stats(f->ing, &is);
	s->has_pool = true;
	s->pool_size = f->cfg->pool_size;
	s->pool_max_overflow = f->cfg->pool_max_overflow;
	s->pool_open = ps.open;
	s->pool_checked_out = ps.in_use;
	s->pool_waiting = ps.waiting;
	s->pool_checkouts = ps.checkouts;
	s->pool_timeouts = ps.timeouts;
	s->has_ingest = true;
	s->batch_size = f->cfg->batch_size;
	s->flushes = is.batches;
	s->records_written = is.written;
	s->records_rejected = is.rejected;
}

struct run {
	struct ace_ingest *ing;
	struct ace_error err;
	int fatal;		/* ACE_OK until writing stopped for good */
	bool input_failed;
	bool interrupted;
};

/* Reads one input until its end, a signal, or a fatal write error. */
static void
read_input(struct run *run, const char *source, int fd, long max_line)
{
	struct ace_lines *lines = ace_lines_new(fd, (size_t)max_line);

	if (lines == NULL) {
		cli_error("out of memory");
		run->input_failed = true;
		return;
	}
	ace_lines_set_wake_fd(lines, wake_pipe[0]);
	while (run->fatal == ACE_OK && !signals_seen) {
		double due = ace_ingest_deadline(run->ing);
		double timeout = due > 0 ? due - ace_monotonic() : -1;
		const char *line;
		size_t len;
		int rc;

		if (due > 0 && timeout <= 0) {
			run->fatal = ace_ingest_flush(run->ing, &run->err);
			continue;
		}
		rc = ace_lines_next(lines, timeout, &line, &len);
		if (rc == ACE_LINES_OK) {
			run->fatal = ace_ingest_add(run->ing, source, ace_lines_number(lines),
			    line, len, &run->err);
		} else if (rc == ACE_LINES_TOO_LONG) {
			char reason[128];
			struct ace_reject r = {
				.source = source, .line = ace_lines_number(lines), .field = "",
				.reason = reason, .record = "", .record_len = 0,
			};

			snprintf(reason, sizeof(reason), "line is %zu bytes long, more than the maximum of %ld",
			    len, max_line);
			ace_ingest_reject(run->ing, &r);
		} else if (rc == ACE_LINES_TIMEOUT || rc == ACE_LINES_INTERRUPTED) {
			continue;
		} else if (rc == ACE_LINES_EOF) {
			break;
		} else {
			cli_error("cannot read '%s': %s", source, strerror(errno));
			run->input_failed = true;
			break;
		}
	}
	ace_lines_free(lines);
}

static void
print_summary(const struct ace_ingest_stats *s, double elapsed)
{
	fprintf(stderr, "%s: read %llu, written %llu, duplicates %llu, rejected %llu, "
	    "unwritten %llu, batches %llu, %.3f s, %.0f records/s\n", cli_program,
	    (unsigned long long)s->read, (unsigned long long)s->written,
	    (unsigned long long)s->duplicates, (unsigned long long)s->rejected,
	    (unsigned long long)s->unwritten, (unsigned long long)s->batches, elapsed,
	    elapsed > 0 ? (double)(s->written + s->duplicates) / elapsed : 0.0);
}

static int
exit_status(const struct run *run, const struct ace_ingest_stats *s, bool rejects_failed)
{
	if (run->fatal == ACE_ERR_RETRY || run->fatal == ACE_ERR_TIMEOUT)
		return signals_seen > 1 ? EXIT_TEMPFAIL : EXIT_UNAVAILABLE;
	if (run->fatal == ACE_ERR_SERVER)
		return EXIT_SOFTWARE;
	if (run->fatal == ACE_ERR_INVALID)
		return EXIT_CONFIG;
	if (run->fatal != ACE_OK)
		return EXIT_IOERR;
	if (s->unwritten > 0)
		return EXIT_TEMPFAIL;
	if (run->input_failed || rejects_failed)
		return EXIT_IOERR;
	if (s->rejected > 0)
		return EXIT_DATAERR;
	return EXIT_OK;
}

static struct ace_pool *
make_pool(const struct ace_config *cfg)
{
	struct ace_pool_options po = {
		.conninfo = cfg->database_url,
		.application_name = "ace-ingest",
		.size = cfg->pool_size,
		.max_overflow = cfg->pool_max_overflow,
		.recycle = cfg->pool_recycle,
		.timeout = cfg->pool_timeout,
		.connect_timeout = cfg->connect_timeout,
	};
	struct ace_error err;
	struct ace_pool *pool;

	/* Each worker holds one connection while it writes, so all must fit at once. */
	if (cfg->workers > cfg->pool_size + cfg->pool_max_overflow) {
		cli_error("ingest.workers (%d) is more than database.pool_size + database.max_overflow (%d + %d)",
		    cfg->workers, cfg->pool_size, cfg->pool_max_overflow);
		exit(EXIT_CONFIG);
	}
	pool = ace_pool_new(&po, &err);

	if (pool == NULL) {
		cli_error("%s", err.message);
		exit(EXIT_CONFIG);
	}
	return pool;
}

int
main(int argc, char **argv)
{
	struct options o = { 0 };
	struct rejects rj = { 0 };
	struct run run = { 0 };
	struct ace_ingest_stats stats;
	struct ace_config cfg;
	struct ace_pool *pool;
	struct ace_procstats_writer *procstats = NULL;
	struct figures figures;
	char shown[512];
	double started;
	int status;

	cli_program = "ace-ingest";
	parse_options(argc, argv, &o);
	cli_load_config(&cfg, o.config);
	cli_flags_apply(&cfg, &o.flags);
	cli_setup_log(&cfg);

	/* Open every input first, so that a typo fails before anything is written. */
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "-") != 0 && access(argv[i], R_OK) != 0) {
			cli_error("cannot open '%s': %s", argv[i], strerror(errno));
			ace_config_release(&cfg);
			return EXIT_NOINPUT;
		}
	}
	rj.quiet = o.quiet;
	if (o.rejects != NULL) {
		rj.path = o.rejects;
		rj.file = fopen(o.rejects, "a");
		if (rj.file == NULL) {
			cli_error("cannot open rejects file '%s': %s", o.rejects, strerror(errno));
			ace_config_release(&cfg);
			return EXIT_CANTCREAT;
		}
	}

	install_signals();
	pool = make_pool(&cfg);
	{
		struct ace_ingest_options io = {
			.pool = pool,
			.batch_size = cfg.batch_size,
			.batch_timeout = cfg.batch_timeout,
			.workers = cfg.workers,
			.retry_timeout = cfg.retry_timeout,
			.retry_initial_delay = cfg.retry_initial_delay,
			.retry_max_delay = cfg.retry_max_delay,
			.on_reject = on_reject,
			.ctx = &rj,
			.cancel = &stop_retrying,
		};

		run.ing = ace_ingest_new(&io, &run.err);
	}
	if (run.ing == NULL) {
		cli_error("%s", run.err.message);
		return EXIT_SOFTWARE;
	}
	if (cfg.stats_dir != NULL) {
		figures = (struct figures){ pool, run.ing, &cfg };
		procstats = ace_procstats_start(cfg.stats_dir, "ace-ingest", fill_figures, &figures, &run.err);
		if (procstats == NULL)
			ace_log(ACE_LOG_WARNING, "process stats are not written", "error", run.err.message, NULL);
	}
	ace_redact_url(cfg.database_url ? cfg.database_url : "libpq defaults", shown, sizeof(shown));
	ace_log(ACE_LOG_DEBUG, "ingest started", "database", shown,
	    "batch_size", ACE_LOG_INT(cfg.batch_size), "workers", ACE_LOG_INT(cfg.workers), NULL);

	started = ace_monotonic();
	if (optind >= argc) {
		read_input(&run, "-", STDIN_FILENO, cfg.max_line_bytes);
	} else {
		for (int i = optind; i < argc && run.fatal == ACE_OK && !signals_seen; i++) {
			int fd = strcmp(argv[i], "-") == 0 ? STDIN_FILENO : open(argv[i], O_RDONLY);

			if (fd < 0) {
				cli_error("cannot open '%s': %s", argv[i], strerror(errno));
				run.input_failed = true;
				continue;
			}
			read_input(&run, argv[i], fd, cfg.max_line_bytes);
			if (fd != STDIN_FILENO)
				close(fd);
		}
	}
	if (signals_seen)
		ace_log(ACE_LOG_NOTICE, "signal received: writing the records already read, then exiting", NULL);

	{
		int rc = ace_ingest_finish(run.ing, &run.err);

		if (run.fatal == ACE_OK)
			run.fatal = rc;
	}
	ace_ingest_stats(run.ing, &stats);
	if (run.fatal != ACE_OK) {
		if (run.fatal == ACE_ERR_SERVER && strstr(run.err.message, "42P01") != NULL)
			cli_error("%s; run 'ace-migrate up' first", run.err.message);
		else
			cli_error("%s", run.err.message);
	}
	if (!o.quiet)
		print_summary(&stats, ace_monotonic() - started);

	{
		struct ace_pool_stats ps;

		ace_pool_stats(pool, &ps);
		ace_log(ACE_LOG_DEBUG, "pool counters", "opened", ACE_LOG_INT(ps.opened),
		    "max_open", ACE_LOG_INT(ps.max_open), "checkouts", ACE_LOG_INT(ps.checkouts),
		    "recycled", ACE_LOG_INT(ps.recycled), "health_failures", ACE_LOG_INT(ps.health_failures),
		    "connect_failures", ACE_LOG_INT(ps.connect_failures), "timeouts", ACE_LOG_INT(ps.timeouts),
		    "retries", ACE_LOG_INT(stats.retries), NULL);
	}
	status = exit_status(&run, &stats, rj.write_failed);
	ace_procstats_stop(procstats);
	ace_ingest_free(run.ing);
	ace_pool_free(pool);
	if (rj.file != NULL && fclose(rj.file) != 0 && !rj.write_failed) {
		cli_error("cannot write to rejects file '%s': %s", rj.path, strerror(errno));
		status = status == EXIT_OK || status == EXIT_DATAERR ? EXIT_IOERR : status;
	}
	ace_config_release(&cfg);
	return cli_close_stdout(status);
}
