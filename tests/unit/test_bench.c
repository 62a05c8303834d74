/* Unit tests of benchmark percentiles, summaries, target checks, suite lists and report formats. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "ace/bench.h"
#include "ace/buf.h"
#include "ace/error.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void
assert_close(double actual, double expected)
{
	if (fabs(actual - expected) > 1e-9) {
		print_error("expected %.12g, got %.12g\n", expected, actual);
		fail();
	}
}

/* --- Percentiles and summaries ---------------------------------------------------- */

static void
test_percentile_interpolates(void **state)
{
	const double v[] = { 10, 20, 30, 40 };

	(void)state;
	/* Rank p/100 * (n - 1): 50% of 4 values is rank 1.5, between 20 and 30. */
	assert_close(ace_bench_percentile(v, 4, 50), 25);
	assert_close(ace_bench_percentile(v, 4, 0), 10);
	assert_close(ace_bench_percentile(v, 4, 100), 40);
	assert_close(ace_bench_percentile(v, 4, 95), 38.5);
	assert_close(ace_bench_percentile(v, 4, 99), 39.7);
	assert_close(ace_bench_percentile(v, 4, 100.0 / 3), 20);
}

static void
test_percentile_edges(void **state)
{
	const double one[] = { 7 };

	(void)state;
	assert_close(ace_bench_percentile(NULL, 0, 50), 0);
	assert_close(ace_bench_percentile(one, 1, 0), 7);
	assert_close(ace_bench_percentile(one, 1, 50), 7);
	assert_close(ace_bench_percentile(one, 1, 99), 7);
	assert_close(ace_bench_percentile(one, 1, -5), 7);
	assert_close(ace_bench_percentile(one, 1, 250), 7);
}

/* NumPy's percentile, by the same method, gives 95.05 for p95 and 99.01 for p99 of 1..100. */
static void
test_summary_of_one_to_hundred(void **state)
{
	struct ace_bench_samples s = { 0 };
	struct ace_bench_summary sum;

	(void)state;
	/* Added in reverse order, so the summary must sort them. */
	for (int i = 100; i >= 1; i--)
		assert_int_equal(ace_bench_samples_add(&s, i), 0);
	ace_bench_summarize(&s, &sum);
	assert_int_equal(sum.count, 100);
	assert_close(sum.min, 1);
	assert_close(sum.max, 100);
	assert_close(sum.mean, 50.5);
	assert_close(sum.median, 50.5);
	assert_close(sum.p95, 95.05);
	assert_close(sum.p99, 99.01);
	for (size_t i = 1; i < s.count; i++)
		assert_true(s.values[i - 1] <= s.values[i]);
	ace_bench_samples_release(&s);
	assert_null(s.values);
	assert_int_equal(s.count, 0);
}

static void
test_summary_empty(void **state)
{
	struct ace_bench_samples s = { 0 };
	struct ace_bench_summary sum;

	(void)state;
	memset(&sum, 0xff, sizeof(sum));
	ace_bench_summarize(&s, &sum);
	assert_int_equal(sum.count, 0);
	assert_close(sum.min, 0);
	assert_close(sum.median, 0);
	assert_close(sum.max, 0);
}

static void
test_summary_grows_past_first_block(void **state)
{
	struct ace_bench_samples s = { 0 };
	struct ace_bench_summary sum;

	(void)state;
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ace_bench_samples_add(&s, i % 10), 0);
	ace_bench_summarize(&s, &sum);
	assert_int_equal(sum.count, 1000);
	assert_close(sum.mean, 4.5);
	assert_close(sum.min, 0);
	assert_close(sum.max, 9);
	ace_bench_samples_release(&s);
}

/* --- Target checks ------------------------------------------------------------ */

struct judge_case {
	int op;
	double value, upper, actual;
	int expected;
};

static void
test_judge_table(void **state)
{
	static const struct judge_case cases[] = {
		{ ACE_BENCH_LT, 10, 0, 9.99, ACE_BENCH_MET },
		{ ACE_BENCH_LT, 10, 0, 10, ACE_BENCH_MISSED },
		{ ACE_BENCH_LE, 50, 0, 50, ACE_BENCH_MET },
		{ ACE_BENCH_LE, 50, 0, 50.01, ACE_BENCH_MISSED },
		{ ACE_BENCH_GT, 80, 0, 80, ACE_BENCH_MISSED },
		{ ACE_BENCH_GT, 80, 0, 80.1, ACE_BENCH_MET },
		{ ACE_BENCH_GE, 100, 0, 100, ACE_BENCH_MET },
		{ ACE_BENCH_GE, 100, 0, 99, ACE_BENCH_MISSED },
		{ ACE_BENCH_EQ, 100, 0, 100, ACE_BENCH_MET },
		{ ACE_BENCH_EQ, 100, 0, 99, ACE_BENCH_MISSED },
		{ ACE_BENCH_BETWEEN, 10, 50, 10, ACE_BENCH_MET },
		{ ACE_BENCH_BETWEEN, 10, 50, 50, ACE_BENCH_MET },
		{ ACE_BENCH_BETWEEN, 10, 50, 9, ACE_BENCH_MISSED },
		{ ACE_BENCH_BETWEEN, 10, 50, 51, ACE_BENCH_MISSED },
		{ ACE_BENCH_NO_TARGET, 0, 0, 123, ACE_BENCH_INFO },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct ace_bench_target t = { cases[i].op, cases[i].value, cases[i].upper };
		int got = ace_bench_judge(&t, cases[i].actual);

		if (got != cases[i].expected) {
			print_error("case %zu: op %d, value %g, actual %g: expected %s, got %s\n", i,
			    cases[i].op, cases[i].value, cases[i].actual,
			    ace_bench_status_name(cases[i].expected), ace_bench_status_name(got));
			fail();
		}
	}
}

static void
test_judge_nan_misses(void **state)
{
	struct ace_bench_target lt = { ACE_BENCH_LT, 10, 0 };
	struct ace_bench_target ge = { ACE_BENCH_GE, 10, 0 };
	struct ace_bench_target none = { ACE_BENCH_NO_TARGET, 0, 0 };

	(void)state;
	assert_int_equal(ace_bench_judge(&lt, NAN), ACE_BENCH_MISSED);
	assert_int_equal(ace_bench_judge(&ge, NAN), ACE_BENCH_MISSED);
	assert_int_equal(ace_bench_judge(&none, NAN), ACE_BENCH_INFO);
}

/* --- Suite lists ----------------------------------------------------------------- */

static void
test_suites_parse(void **state)
{
	struct ace_error err = { 0 };
	unsigned mask = 0;

	(void)state;
	assert_int_equal(ace_bench_suites_parse("cache,pool", &mask, &err), ACE_OK);
	assert_int_equal(mask, (1u << ACE_BENCH_CACHE) | (1u << ACE_BENCH_POOL));
	assert_int_equal(ace_bench_suites_parse(" query , batching", &mask, &err), ACE_OK);
	assert_int_equal(mask, (1u << ACE_BENCH_CACHE) | (1u << ACE_BENCH_POOL) |
	    (1u << ACE_BENCH_QUERY) | (1u << ACE_BENCH_BATCHING));
	mask = 0;
	assert_int_equal(ace_bench_suites_parse("all", &mask, &err), ACE_OK);
	assert_int_equal(mask, ACE_BENCH_ALL);
	for (int s = 0; s < ACE_BENCH_SUITES; s++) {
		mask = 0;
		assert_int_equal(ace_bench_suites_parse(ace_bench_suite_name(s), &mask, &err), ACE_OK);
		assert_int_equal(mask, 1u << s);
	}
}

static void
test_suites_parse_rejects(void **state)
{
	static const char *const bad[] = { "", "cache,", ",cache", "caches", "cache,,pool", "ALL" };
	struct ace_error err = { 0 };

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		unsigned mask = 0;

		if (ace_bench_suites_parse(bad[i], &mask, &err) != ACE_ERR_INVALID) {
			print_error("'%s' was accepted\n", bad[i]);
			fail();
		}
	}
	assert_non_null(strstr(err.message, "unknown suite 'ALL'"));
}

/* --- Formats ----------------------------------------------------------------------- */

static void
test_format_target(void **state)
{
	struct ace_bench_target lt = { ACE_BENCH_LT, 10, 0 };
	struct ace_bench_target gt = { ACE_BENCH_GT, 80, 0 };
	struct ace_bench_target ge = { ACE_BENCH_GE, 10000, 0 };
	struct ace_bench_target between = { ACE_BENCH_BETWEEN, 1, 1.1 };
	struct ace_bench_target none = { ACE_BENCH_NO_TARGET, 0, 0 };
	char out[64];

	(void)state;
	ace_bench_format_target(&lt, "ms", false, out, sizeof(out));
	assert_string_equal(out, "< 10 ms");
	ace_bench_format_target(&gt, "%", false, out, sizeof(out));
	assert_string_equal(out, "> 80%");
	ace_bench_format_target(&ge, "records/h", false, out, sizeof(out));
	assert_string_equal(out, ">= 10,000 records/h");
	ace_bench_format_target(&between, "s", false, out, sizeof(out));
	assert_string_equal(out, "1 to 1.1 s");
	ace_bench_format_target(&none, "ms", false, out, sizeof(out));
	assert_string_equal(out, "-");
	ace_bench_format_target(&lt, "ms", true, out, sizeof(out));
	assert_string_equal(out, "<10");
	ace_bench_format_target(&between, "s", true, out, sizeof(out));
	assert_string_equal(out, "1..1.1");
	ace_bench_format_target(&none, "ms", true, out, sizeof(out));
	assert_string_equal(out, "");
}

static void
test_format_number(void **state)
{
	char out[32];

	(void)state;
	ace_bench_format_number(0.0206, out, sizeof(out));
	assert_string_equal(out, "0.0206");
	ace_bench_format_number(12.345, out, sizeof(out));
	assert_string_equal(out, "12.3");
	ace_bench_format_number(100, out, sizeof(out));
	assert_string_equal(out, "100");
	ace_bench_format_number(1234.6, out, sizeof(out));
	assert_string_equal(out, "1235");
	ace_bench_format_number(NAN, out, sizeof(out));
	assert_string_equal(out, "-");
}

/* Builds a report of two rows (one met, one missed), a skipped row and a series. */
static void
sample_report(struct ace_bench_report *r)
{
	struct ace_bench_row met = { .suite = ACE_BENCH_CACHE, .metric = "Hit latency p95", .unit = "ms",
		.target = { ACE_BENCH_LT, 10, 0 }, .actual = 0.25 };
	struct ace_bench_row missed = { .suite = ACE_BENCH_CACHE, .metric = "Hit rate | skewed", .unit = "%",
		.target = { ACE_BENCH_GT, 80, 0 }, .actual = 75, .note = "say \"why\", twice" };
	struct ace_bench_row skipped = { .suite = ACE_BENCH_COMPRESSION, .metric = "Reduction", .unit = "%",
		.status = ACE_BENCH_SKIPPED, .note = "TimescaleDB is absent" };
	struct ace_bench_series *s;

	ace_bench_report_init(r);
	r->suites = (1u << ACE_BENCH_CACHE) | (1u << ACE_BENCH_COMPRESSION);
	snprintf(r->started_at, sizeof(r->started_at), "2026-12-04T21:00:00Z");
	r->machine.cpus = 2;
	assert_non_null(ace_bench_report_add_row(r, &met));
	assert_non_null(ace_bench_report_add_row(r, &missed));
	assert_non_null(ace_bench_report_add_row(r, &skipped));
	assert_int_equal(ace_bench_report_set(r, "seed", "%d", 7), 0);
	assert_int_equal(ace_bench_report_set(r, "quick", "%s", "yes"), 0);
	s = ace_bench_report_add_series(r, ACE_BENCH_CACHE, "cache hit latency", "ms");
	assert_non_null(s);
	for (int i = 1; i <= 20; i++)
		assert_int_equal(ace_bench_samples_add(&s->samples, i * 0.1), 0);
	ace_bench_report_finish(r);
}

static void
test_report_statuses(void **state)
{
	struct ace_bench_report r;

	(void)state;
	sample_report(&r);
	assert_int_equal(r.rows[0].status, ACE_BENCH_MET);
	assert_int_equal(r.rows[1].status, ACE_BENCH_MISSED);
	assert_int_equal(r.rows[2].status, ACE_BENCH_SKIPPED);
	assert_true(isnan(r.rows[2].actual));
	assert_int_equal(ace_bench_report_missed(&r), 1);
	assert_int_equal(ace_bench_report_judged(&r), 2);
	assert_int_equal(r.series[0].summary.count, 20);
	assert_close(r.series[0].summary.max, 2.0);
	ace_bench_report_release(&r);
}

static void
test_markdown_table(void **state)
{
	struct ace_bench_report r;
	struct ace_buf out = ACE_BUF_INIT;

	(void)state;
	sample_report(&r);
	assert_int_equal(ace_bench_format_markdown(&r, &out), 0);
	assert_non_null(strstr(out.data, "## cache\n\n| Metric | Target | Actual | Status |\n"
	    "|--------|--------|--------|--------|\n"));
	assert_non_null(strstr(out.data, "| Hit latency p95 | < 10 ms | 0.25 ms | \u2705 |\n"));
	assert_non_null(strstr(out.data, "| Hit rate \\| skewed | > 80% | 75% (say \"why\", twice) | \u274c |\n"));
	assert_non_null(strstr(out.data, "| Reduction | - | skipped: TimescaleDB is absent | - |\n"));
	assert_non_null(strstr(out.data, "- Settings: seed=7, quick=yes\n"));
	assert_non_null(strstr(out.data, "\n1 of 2 targets met.\n"));
	ace_buf_release(&out);
	ace_bench_report_release(&r);
}

static void
test_csv_lines(void **state)
{
	struct ace_bench_report r;
	struct ace_buf out = ACE_BUF_INIT;

	(void)state;
	sample_report(&r);
	assert_int_equal(ace_bench_format_csv(&r, &out), 0);
	assert_string_equal(out.data,
	    "suite,metric,target,actual,unit,status,note\n"
	    "cache,Hit latency p95,<10,0.25,ms,ok,\n"
	    "cache,Hit rate | skewed,>80,75,%,FAIL,\"say \"\"why\"\", twice\"\n"
	    "compression,Reduction,,,%,skip,TimescaleDB is absent\n");
	ace_buf_release(&out);
	ace_bench_report_release(&r);
}

static void
test_json_document(void **state)
{
	struct ace_bench_report r;
	struct ace_buf out = ACE_BUF_INIT;
	cJSON *doc, *rows, *row, *summary;

	(void)state;
	sample_report(&r);
	assert_int_equal(ace_bench_format_json(&r, &out), 0);
	doc = cJSON_Parse(out.data);
	assert_non_null(doc);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "machine"), "cpus")->valueint, 2);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "settings"), "seed")->valueint, 7);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "settings"), "quick")->valuestring,
	    "yes");
	rows = cJSON_GetObjectItem(doc, "results");
	assert_int_equal(cJSON_GetArraySize(rows), 3);
	row = cJSON_GetArrayItem(rows, 1);
	assert_string_equal(cJSON_GetObjectItem(row, "status")->valuestring, "missed");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(row, "target"), "op")->valuestring, ">");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 2), "actual")));
	summary = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "summaries"), 0);
	assert_int_equal(cJSON_GetObjectItem(summary, "count")->valueint, 20);
	assert_close(cJSON_GetObjectItem(summary, "max")->valuedouble, 2.0);
	assert_close(cJSON_GetObjectItem(summary, "median")->valuedouble, 1.05);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "targets"), "missed")->valueint, 1);
	cJSON_Delete(doc);
	ace_buf_release(&out);
	ace_bench_report_release(&r);
}

static void
test_svg_escapes_and_closes(void **state)
{
	struct ace_bench_report r;
	struct ace_buf out = ACE_BUF_INIT;

	(void)state;
	sample_report(&r);
	snprintf(r.series[0].name, sizeof(r.series[0].name), "a <b> & \"c\"");
	assert_int_equal(ace_bench_format_svg(&r, &out), 0);
	assert_true(strncmp(out.data, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", 44) == 0);
	assert_non_null(strstr(out.data, "a &lt;b&gt; &amp; &quot;c&quot;"));
	assert_non_null(strstr(out.data, "<polyline "));
	assert_string_equal(out.data + out.len - 7, "</svg>\n");
	ace_buf_release(&out);
	ace_bench_report_release(&r);
}

/* --- Servers on this machine ------------------------------------------------------ */

struct local_case {
	const char *url;
	int expected;
};

static void
test_local_pg(void **state)
{
	static const struct local_case cases[] = {
		{ "postgresql://ace@127.0.0.1:5432/ace", ACE_OK },
		{ "postgresql://ace@127.8.9.10/ace", ACE_OK },
		{ "postgresql://ace@[::1]:5432/ace", ACE_OK },
		{ "postgresql://ace@localhost/ace", ACE_OK },
		{ "host=/var/run/postgresql dbname=ace", ACE_OK },
		{ "host=localhost,127.0.0.1 dbname=ace", ACE_OK },
		{ "dbname=ace", ACE_OK },
		{ "", ACE_OK },
		{ NULL, ACE_OK },
		{ "postgresql://ace@db.example.com/ace", ACE_ERR_INVALID },
		{ "host=10.0.0.5 dbname=ace", ACE_ERR_INVALID },
		{ "host=127.0.0.1,db.example.com", ACE_ERR_INVALID },
		{ "host=localhost hostaddr=192.0.2.1", ACE_ERR_INVALID },
		{ "postgresql://ace@128.0.0.1/ace", ACE_ERR_INVALID },
		{ "service=production", ACE_ERR_INVALID },
		{ "postgresql://ace@[::1/ace", ACE_ERR_INVALID },
	};

	(void)state;
	unsetenv("PGHOST");
	unsetenv("PGHOSTADDR");
	unsetenv("PGSERVICE");
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct ace_error err = { 0 };
		int got = ace_bench_check_local_pg(cases[i].url, &err);

		if (got != cases[i].expected) {
			print_error("'%s': expected %d, got %d (%s)\n", cases[i].url ? cases[i].url : "(null)",
			    cases[i].expected, got, err.message);
			fail();
		}
	}
}

static void
test_local_pg_environment(void **state)
{
	struct ace_error err = { 0 };

	(void)state;
	setenv("PGHOST", "db.example.com", 1);
	assert_int_equal(ace_bench_check_local_pg("dbname=ace", &err), ACE_ERR_INVALID);
	assert_non_null(strstr(err.message, "'db.example.com' is not on this machine"));
	assert_non_null(strstr(err.message, "--allow-remote"));
	/* A host in the string wins over PGHOST, as in libpq. */
	assert_int_equal(ace_bench_check_local_pg("host=127.0.0.1", &err), ACE_OK);
	unsetenv("PGHOST");
	setenv("PGHOSTADDR", "192.0.2.1", 1);
	assert_int_equal(ace_bench_check_local_pg("dbname=ace", &err), ACE_ERR_INVALID);
	unsetenv("PGHOSTADDR");
}

static void
test_local_redis(void **state)
{
	static const struct local_case cases[] = {
		{ "redis://127.0.0.1:6379/0", ACE_OK },
		{ "redis://localhost", ACE_OK },
		{ "redis://[::1]:6380/2", ACE_OK },
		{ "unix:///run/redis/redis.sock?db=1", ACE_OK },
		{ "redis://cache.example.com:6379/0", ACE_ERR_INVALID },
		{ "redis://10.1.2.3", ACE_ERR_INVALID },
		{ "rediss://127.0.0.1", ACE_ERR_INVALID },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct ace_error err = { 0 };
		int got = ace_bench_check_local_redis(cases[i].url, &err);

		if (got != cases[i].expected) {
			print_error("'%s': expected %d, got %d (%s)\n", cases[i].url, cases[i].expected, got,
			    err.message);
			fail();
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percentile_interpolates),
		cmocka_unit_test(test_percentile_edges),
		cmocka_unit_test(test_summary_of_one_to_hundred),
		cmocka_unit_test(test_summary_empty),
		cmocka_unit_test(test_summary_grows_past_first_block),
		cmocka_unit_test(test_judge_table),
		cmocka_unit_test(test_judge_nan_misses),
		cmocka_unit_test(test_suites_parse),
		cmocka_unit_test(test_suites_parse_rejects),
		cmocka_unit_test(test_format_target),
		cmocka_unit_test(test_format_number),
		cmocka_unit_test(test_report_statuses),
		cmocka_unit_test(test_markdown_table),
		cmocka_unit_test(test_csv_lines),
		cmocka_unit_test(test_json_document),
		cmocka_unit_test(test_svg_escapes_and_closes),
		cmocka_unit_test(test_local_pg),
		cmocka_unit_test(test_local_pg_environment),
		cmocka_unit_test(test_local_redis),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
