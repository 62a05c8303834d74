/* Benchmarks of ace against its targets: samples, summaries, target checks, reports and the suites that fill them. */
#ifndef ACE_BENCH_H
#define ACE_BENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "ace/buf.h"
#include "ace/config.h"
#include "ace/error.h"

/* The suites, in the order they run. */
enum ace_bench_suite {
	ACE_BENCH_BATCHING,
	ACE_BENCH_CACHE,
	ACE_BENCH_POOL,
	ACE_BENCH_OVERHEAD,
	ACE_BENCH_COMPRESSION,
	ACE_BENCH_QUERY,
	ACE_BENCH_SUITES
};

#define ACE_BENCH_ALL ((1u << ACE_BENCH_SUITES) - 1)

/* Returns "batching", "cache", "pool", "overhead", "compression" or "query". */
const char *ace_bench_suite_name(int suite);

/*
 * Adds the suites of a comma-separated list ("cache,pool", or "all") to
 * *mask, one bit per enum ace_bench_suite.  Fails with ACE_ERR_INVALID
 * naming the first unknown or empty name.  No I/O.
 */
int ace_bench_suites_parse(const char *list, unsigned *mask, struct ace_error *err);

/* --- Samples and summaries ------------------------------------------------ */

/* A growing array of measurements in one unit. */
struct ace_bench_samples {
	double *values;		/* owned; sorted in place by ace_bench_summarize() */
	size_t count;
	size_t cap;
};

struct ace_bench_summary {
	size_t count;
	double min, median, mean, p95, p99, max;	/* all 0 when count is 0 */
};

/* Appends one value.  Returns 0, or -1 when memory runs out (the samples are unchanged). */
int ace_bench_samples_add(struct ace_bench_samples *s, double value);

/* Frees the values; the samples are empty and usable again after. */
void ace_bench_samples_release(struct ace_bench_samples *s);

/*
 * Returns the p-th percentile (p from 0 to 100) of n sorted values, by
 * linear interpolation between the two closest ranks: rank p/100 * (n - 1),
 * counted from 0.  That is the default method of NumPy and R (type 7), so the
 * 50th percentile of an even count is the mean of the middle two.  Returns 0
 * when n is 0.
 */
double ace_bench_percentile(const double *sorted, size_t n, double p);

/* Sorts the samples in place and fills *out with their summary. */
void ace_bench_summarize(struct ace_bench_samples *s, struct ace_bench_summary *out);

/* --- Targets ------------------------------------------------------------ */

/* Comparisons of an actual value with a target. */
enum ace_bench_op {
	ACE_BENCH_NO_TARGET,	/* reported for information; never missed */
	ACE_BENCH_LT,		/* actual < value */
	ACE_BENCH_LE,		/* actual <= value */
	ACE_BENCH_GT,		/* actual > value */
	ACE_BENCH_GE,		/* actual >= value */
	ACE_BENCH_EQ,		/* actual == value */
	ACE_BENCH_BETWEEN,	/* value <= actual <= upper */
};

struct ace_bench_target {
	int op;			/* enum ace_bench_op */
	double value;
	double upper;		/* ACE_BENCH_BETWEEN only */
};

enum ace_bench_status {
	ACE_BENCH_MET,
	ACE_BENCH_MISSED,
	ACE_BENCH_INFO,		/* no target */
	ACE_BENCH_SKIPPED,	/* not measured; the row's note says why */
};

/*
 * Returns the status of an actual value against a target: ACE_BENCH_INFO
 * for ACE_BENCH_NO_TARGET, else ACE_BENCH_MET or ACE_BENCH_MISSED.  A NaN
 * actual value misses every target.  Values are compared exactly, so the
 * caller rounds when the unit calls for it.
 */
int ace_bench_judge(const struct ace_bench_target *target, double actual);

/* Returns "met", "missed", "info" or "skipped". */
const char *ace_bench_status_name(int status);

/* --- Reports ------------------------------------------------------------ */

/* One line of a result table: | Metric | Target | Actual | Status |. */
struct ace_bench_row {
	int suite;			/* enum ace_bench_suite */
	char metric[96];
	char unit[24];			/* of target and actual: "ms", "%", "records/h", ... */
	struct ace_bench_target target;
	double actual;			/* NaN when skipped */
	int status;			/* enum ace_bench_status */
	char note[256];			/* why it was skipped, or a detail shown after the value */
};

/* The samples behind a latency or duration row, kept for JSON and the plot. */
struct ace_bench_series {
	int suite;
	char name[96];
	char unit[8];
	struct ace_bench_samples samples;
	struct ace_bench_summary summary;	/* filled by ace_bench_report_finish() */
};

/* One setting of the run, for the report's settings section. */
struct ace_bench_setting {
	char name[64];
	char value[160];
};

/* The machine a run measured, read by ace_bench_run(). */
struct ace_bench_machine {
	int cpus;			/* online CPUs */
	char cpu_model[160];		/* "" when /proc/cpuinfo names none */
	double memory_gib;		/* MemTotal; 0 when unknown */
	char kernel[160];		/* uname: system, release and machine */
	char postgresql[160];		/* server_version of the server measured */
	char redis[64];			/* redis_version, "" when no suite used Redis */
};

struct ace_bench_report {
	struct ace_bench_row *rows;
	size_t nrows, rows_cap;
	struct ace_bench_series *series;
	size_t nseries, series_cap;
	struct ace_bench_setting *settings;
	size_t nsettings, settings_cap;
	struct ace_bench_machine machine;
	char started_at[32];		/* UTC, "2026-12-04T21:30:00Z" */
	double seconds;			/* wall time of the run */
	unsigned suites;		/* mask of the suites that ran */
	bool interrupted;		/* the cancel flag stopped the run before its end */
};

/* Empties a report before its first use: no rows, series or settings. */
void ace_bench_report_init(struct ace_bench_report *r);

/* Frees everything the report owns; it may be initialized again after. */
void ace_bench_report_release(struct ace_bench_report *r);

/*
 * Appends a copy of row, setting its status from its target and actual
 * value unless the status is ACE_BENCH_SKIPPED.  Returns the new row, owned
 * by the report and valid until the next append, or NULL when memory runs
 * out.
 */
struct ace_bench_row *ace_bench_report_add_row(struct ace_bench_report *r, const struct ace_bench_row *row);

/*
 * Appends an empty series and returns it, owned by the report and valid
 * until the next append, or NULL when memory runs out.
 */
struct ace_bench_series *ace_bench_report_add_series(struct ace_bench_report *r, int suite,
    const char *name, const char *unit);

/* Records a setting as name and printf-formatted value.  Returns 0, or -1 when memory runs out. */
int ace_bench_report_set(struct ace_bench_report *r, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Summarizes every series.  Call once the run is over, before formatting. */
void ace_bench_report_finish(struct ace_bench_report *r);

/* Counts the rows whose status is ACE_BENCH_MISSED. */
size_t ace_bench_report_missed(const struct ace_bench_report *r);

/* Counts the rows that have a target and were measured (met or missed). */
size_t ace_bench_report_judged(const struct ace_bench_report *r);

/* --- Output --------------------------------------------------------------- */

/*
 * Formats a target for the Target column: "< 10 ms", ">= 100 agents",
 * "= 100 records", "1.00 to 1.10 s", or "-" when there is none.  With
 * ascii, the unit is left out (the CSV form: "<10", "1.00..1.10").
 */
void ace_bench_format_target(const struct ace_bench_target *t, const char *unit, bool ascii,
    char *out, size_t len);

/*
 * Formats a number with as many decimals as its size calls for: 3
 * significant digits below 100, none from 100 up.
 */
void ace_bench_format_number(double value, char *out, size_t len);

/*
 * Each formatter appends the whole report to out and returns 0, or -1 when
 * memory runs out.  Markdown: a heading with the machine and settings, then
 * one | Metric | Target | Actual | Status | table per suite, with ✅ for met,
 * ❌ for missed and "-" for rows without a target or skipped.  CSV: a header
 * line and one line per row (suite,metric,target,actual,unit,status,note),
 * with status ok, FAIL, info or skip, quoted as RFC 4180 requires.  JSON:
 * one object with the machine, the settings, every row and every series'
 * summary.
 */
int ace_bench_format_markdown(const struct ace_bench_report *r, struct ace_buf *out);
int ace_bench_format_csv(const struct ace_bench_report *r, struct ace_buf *out);
int ace_bench_format_json(const struct ace_bench_report *r, struct ace_buf *out);

/*
 * Appends a standalone SVG image of the latency distributions: one
 * percentile curve per series with a millisecond unit, with the percentile
 * on a "nines" axis (0, 90, 99, 99.9) and the latency on a log scale.
 * Returns 0, or -1 when memory runs out.  Call after ace_bench_report_finish().
 */
int ace_bench_format_svg(const struct ace_bench_report *r, struct ace_buf *out);

/* --- Running ----------------------------------------------------------- */

struct ace_bench_options {
	const struct ace_config *cfg;	/* servers, the settings measured, bench.* targets */
	unsigned suites;		/* mask of enum ace_bench_suite bits */
	bool quick;			/* small workloads and at most 1 s per timed loop, for tests */
	const char *ingest_path;	/* ace-ingest binary, run by the batching suite; NULL: its flush rows are skipped */
	const char *config_path;	/* passed to that ace-ingest with --config; NULL: none */
	bool allow_remote;		/* accept servers that are not on this machine */
	volatile sig_atomic_t *cancel;	/* when set non-zero, the run stops, cleans up and returns */

	/* Called from the calling thread as work advances; may be NULL. */
	void (*progress)(void *ctx, int suite, double fraction);
	void *ctx;
};

/*
 * Runs the selected suites against the configured PostgreSQL and Redis and
 * appends their rows to report (initialized by the caller), then summarizes
 * it.  Unless allow_remote is set, fails with ACE_ERR_INVALID before
 * connecting when database.url or redis.url names a host other than
 * localhost, a loopback address or a unix socket.
 *
 * Everything written goes to a new schema ace_bench_<pid>_<random>, where
 * the built-in migrations are applied, and to Redis keys whose agent ids
 * start with "ace-bench-<pid>-<random>-".  Both are removed before the call
 * returns, also after a failure or a cancel.  Cache lookups do count in the
 * shared ace:stats hash of the Redis database, as any client's do.
 *
 * Blocks for the whole run: about bench.duration per timed loop, or a few
 * seconds in all with quick.  Returns ACE_OK when every suite ran, even if
 * targets were missed, and also when cancelled (report->interrupted set).
 * Fails with ACE_ERR_RETRY or ACE_ERR_TIMEOUT when a server cannot be
 * reached, ACE_ERR_SERVER when one rejects a statement, and ACE_ERR_SYSTEM
 * on out of memory or a failed system call.  The rows measured before the
 * failure stay in report.  A failed cleanup also fails the call, naming
 * what was left behind.
 */
int ace_bench_run(const struct ace_bench_options *o, struct ace_bench_report *report,
    struct ace_error *err);

/*
 * Checks that a libpq connection string (or URI) names only servers on this
 * machine: localhost, 127.0.0.0/8, ::1 or a unix socket, also through
 * PGHOST and PGHOSTADDR when it names no host.  A host name other than
 * localhost is not resolved and fails.  Fails with ACE_ERR_INVALID naming
 * the host.  No I/O.
 */
int ace_bench_check_local_pg(const char *conninfo, struct ace_error *err);

/* The same check for a Redis URL, as parsed by ace_redis_url_parse(). */
int ace_bench_check_local_redis(const char *url, struct ace_error *err);

#endif
