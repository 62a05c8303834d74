/* The baselines and drift commands of ace-stats: compute baselines, then compare records with them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ace/baseline.h"
#include "ace/buf.h"
#include "ace/cache.h"
#include "ace/drift.h"
#include "ace/lines.h"
#include "ace/metric.h"
#include "ace/pool.h"
#include "ace-stats.h"
#include "cli.h"

/* How long a drift baseline is reused before it is looked up again. */
#define DRIFT_REFRESH_SECONDS 60.0

int
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

int
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
