/* Unit tests of the Prometheus text format writer: names, escaping, values and samples. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ace/buf.h"
#include "ace/procstats.h"
#include "ace/prom.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Escapes text as a label value and checks the result. */
static void
check_label(const char *text, const char *expected)
{
	struct ace_buf out = ACE_BUF_INIT;

	assert_int_equal(ace_prom_escape_label_value(&out, text), 0);
	assert_string_equal(out.data ? out.data : "", expected);
	ace_buf_release(&out);
}

static void
test_label_escaping(void **state)
{
	(void)state;
	check_label("plain", "plain");
	check_label("a\\b", "a\\\\b");
	check_label("say \"hi\"", "say \\\"hi\\\"");
	check_label("two\nlines", "two\\nlines");
	check_label("tab\tstays", "tab\tstays");
	check_label("ünï", "ünï");
	check_label("", "");
}

static void
test_help_escaping(void **state)
{
	struct ace_buf out = ACE_BUF_INIT;

	(void)state;
	/* HELP escapes backslash and newline, but not double quotes. */
	assert_int_equal(ace_prom_escape_help(&out, "a \"b\" \\ c\nd"), 0);
	assert_string_equal(out.data, "a \"b\" \\\\ c\\nd");
	ace_buf_release(&out);
}

static void
test_metric_names(void **state)
{
	const char *valid[] = { "ace_up", "a", "_x", "ns:metric_total", "A9" };
	const char *invalid[] = { "", "9a", "a-b", "a b", "a.b", "é" };

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(valid); i++)
		assert_true(ace_prom_valid_metric_name(valid[i]));
	for (size_t i = 0; i < ARRAY_LEN(invalid); i++)
		assert_false(ace_prom_valid_metric_name(invalid[i]));
}

static void
test_label_names(void **state)
{
	(void)state;
	assert_true(ace_prom_valid_label_name("stage"));
	assert_true(ace_prom_valid_label_name("_x1"));
	assert_false(ace_prom_valid_label_name("__name__"));
	assert_false(ace_prom_valid_label_name("a:b"));
	assert_false(ace_prom_valid_label_name("1a"));
	assert_false(ace_prom_valid_label_name(""));
}

static void
test_value_format(void **state)
{
	const struct {
		double value;
		const char *text;
	} cases[] = {
		{ 0, "0" },
		{ 1, "1" },
		{ -2.5, "-2.5" },
		{ 0.1, "0.1" },
		{ 1.0 / 3, "0.3333333333333333" },
		{ 1e21, "1e+21" },
		{ 123456789012, "123456789012" },
	};
	char text[40];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		ace_prom_format_value(cases[i].value, text, sizeof(text));
		assert_string_equal(text, cases[i].text);
		assert_true(strtod(text, NULL) == cases[i].value);
	}
	ace_prom_format_value(NAN, text, sizeof(text));
	assert_string_equal(text, "NaN");
	ace_prom_format_value(INFINITY, text, sizeof(text));
	assert_string_equal(text, "+Inf");
	ace_prom_format_value(-INFINITY, text, sizeof(text));
	assert_string_equal(text, "-Inf");
}

static void
test_family_and_samples(void **state)
{
	struct ace_buf out = ACE_BUF_INIT;
	const char *labels[] = { "stage", "plan\"ning", "program", "ace\\x" };

	(void)state;
	assert_int_equal(ace_prom_family(&out, "ace_rows", "gauge", "Rows.\nMore."), 0);
	assert_int_equal(ace_prom_sample(&out, "ace_rows", NULL, 0, 3), 0);
	assert_int_equal(ace_prom_sample(&out, "ace_rows", labels, 2, 0.5), 0);
	assert_string_equal(out.data,
	    "# HELP ace_rows Rows.\\nMore.\n"
	    "# TYPE ace_rows gauge\n"
	    "ace_rows 3\n"
	    "ace_rows{stage=\"plan\\\"ning\",program=\"ace\\\\x\"} 0.5\n");
	ace_buf_release(&out);
}

static void
test_invalid_names_rejected(void **state)
{
	struct ace_buf out = ACE_BUF_INIT;
	const char *labels[] = { "__reserved", "x" };

	(void)state;
	assert_int_equal(ace_prom_family(&out, "bad-name", "gauge", "x"), -1);
	assert_int_equal(ace_prom_sample(&out, "ok_name", labels, 1, 1), -1);
	ace_buf_release(&out);
}

static void
test_procstats_round_trip(void **state)
{
	struct ace_procstats in, out;
	struct ace_buf text = ACE_BUF_INIT;
	struct ace_error err;

	(void)state;
	memset(&in, 0, sizeof(in));
	snprintf(in.program, sizeof(in.program), "ace-cache");
	in.pid = 4242;
	in.updated_at = 1754065244.5;
	in.has_pool = true;
	in.pool_size = 10;
	in.pool_max_overflow = 40;
	in.pool_open = 12;
	in.pool_checked_out = 11;
	in.pool_checkouts = 99;
	in.operations = 1;
	snprintf(in.operation[0].name, sizeof(in.operation[0].name), "get");
	for (int b = 0; b <= ACE_HISTOGRAM_BUCKETS; b++)
		in.operation[0].duration.cumulative[b] = (unsigned long long)b;
	in.operation[0].duration.sum = 0.25;

	assert_int_equal(ace_procstats_format(&in, &text), 0);
	assert_int_equal(ace_procstats_parse(text.data, &out, &err), ACE_OK);
	assert_string_equal(out.program, "ace-cache");
	assert_int_equal(out.pid, 4242);
	assert_true(out.has_pool);
	assert_false(out.has_ingest);
	assert_int_equal(out.pool_open, 12);
	assert_int_equal(out.pool_checkouts, 99);
	assert_int_equal(out.operations, 1);
	assert_string_equal(out.operation[0].name, "get");
	assert_int_equal(out.operation[0].duration.cumulative[ACE_HISTOGRAM_BUCKETS], ACE_HISTOGRAM_BUCKETS);
	assert_true(out.operation[0].duration.sum == 0.25);
	ace_buf_release(&text);

	assert_int_equal(ace_procstats_parse("{\"pid\":1}", &out, &err), ACE_ERR_INVALID);
}

static void
test_histogram_buckets(void **state)
{
	struct ace_histogram h;
	struct ace_histogram_snapshot s;

	(void)state;
	ace_histogram_init(&h);
	ace_histogram_observe(&h, 0.0005);	/* at a bound: that bucket */
	ace_histogram_observe(&h, 0.003);
	ace_histogram_observe(&h, 100);		/* past every bound: +Inf */
	ace_histogram_read(&h, &s);
	assert_int_equal(s.cumulative[0], 1);
	assert_int_equal(s.cumulative[2], 1);
	assert_int_equal(s.cumulative[3], 2);
	assert_int_equal(s.cumulative[ACE_HISTOGRAM_BUCKETS - 1], 2);
	assert_int_equal(s.cumulative[ACE_HISTOGRAM_BUCKETS], 3);
	assert_true(fabs(s.sum - 100.0035) < 1e-9);
	assert_true(isinf(ace_histogram_bound(ACE_HISTOGRAM_BUCKETS)));
	ace_histogram_destroy(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_help_escaping),
		cmocka_unit_test(test_metric_names),
		cmocka_unit_test(test_label_names),
		cmocka_unit_test(test_value_format),
		cmocka_unit_test(test_family_and_samples),
		cmocka_unit_test(test_invalid_names_rejected),
		cmocka_unit_test(test_procstats_round_trip),
		cmocka_unit_test(test_histogram_buckets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
