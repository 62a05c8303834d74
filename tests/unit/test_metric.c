/* Unit tests of metric record parsing, validation, timestamps and COPY rows. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "ace/buf.h"
#include "ace/metric.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A string literal and its length in bytes, which may include NUL bytes. */
#define LINE(s) s, sizeof(s) - 1

#define assert_contains(text, part) do { \
	const char *text_ = (text), *part_ = (part); \
	if (strstr(text_, part_) == NULL) \
		fail_msg("\"%s\" does not contain \"%s\"", text_, part_); \
} while (0)

/* The clock reading given to every parse: 2023-11-14 22:13:20.654321 UTC. */
#define NOW_US INT64_C(1700000000654321)
#define NOW_TEXT "2023-11-14 22:13:20.654321+00"

/* The instant that most timestamps below name: 2025-08-01 16:20:44 UTC. */
#define BASE_US INT64_C(1754065244000000)
#define BASE_TEXT "2025-08-01 16:20:44.000000+00"

/* The three required fields, valid. */
#define REQUIRED "\"agent_id\":\"a\",\"task_id\":\"t\",\"stage\":\"planning\""

#define ROW_MAX 8192
#define COLUMNS 16

enum column {
	COL_METRIC_ID, COL_RECORDED_AT, COL_AGENT_ID, COL_TASK_ID, COL_TASK_TYPE,
	COL_STAGE, COL_SUCCESS_RATE, COL_ERROR_RATE, COL_DURATION_MS, COL_ACTION_COUNT,
	COL_VELOCITY, COL_ERROR_ACCUMULATION, COL_STALENESS, COL_INTERVENTION,
	COL_BASELINE_DELTA, COL_ATTRIBUTES,
};

/*
 * Converts a line to its COPY row with now as the clock and copies the row
 * into out, so that no memory is left to free when an assertion fails.
 * Returns the result of ace_metric_line_to_row().
 */
static int
line_to_row(const char *line, size_t len, int64_t now, char *out, size_t size,
    struct ace_metric_error *e)
{
	struct ace_buf row = ACE_BUF_INIT;
	int rc;

	memset(e, 0, sizeof(*e));
	out[0] = '\0';
	rc = ace_metric_line_to_row(line, len, now, &row, e);
	if (rc == 0 && row.len >= size) {
		snprintf(e->reason, sizeof(e->reason), "row of %zu bytes does not fit the test buffer", row.len);
		rc = -1;
	} else if (rc == 0) {
		memcpy(out, row.data, row.len + 1);
	}
	ace_buf_release(&row);
	return rc;
}

/* Splits a row in place at its tabs, drops the final newline and returns the column count. */
static int
split_row(char *row, char **cols, int max)
{
	size_t len = strlen(row);
	int n = 0;

	if (len > 0 && row[len - 1] == '\n')
		row[len - 1] = '\0';
	for (char *p = row; n < max;) {
		char *tab = strchr(p, '\t');

		cols[n++] = p;
		if (tab == NULL)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	return n;
}

/* Parses a line that must be accepted, failing the test with the reason otherwise. */
static void
parse_ok(const char *line, size_t len, struct ace_metric *m)
{
	struct ace_metric_error e;

	if (ace_metric_parse(line, len, NOW_US, m, &e) != 0)
		fail_msg("rejected: field '%s': %s", e.field, e.reason);
}

/* Returns the member name of a JSON object, failing the test when it is absent. */
static cJSON *
member(const cJSON *object, const char *name)
{
	cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);

	if (item == NULL)
		fail_msg("no member '%s'", name);
	return item;
}

/* Whether s is 36 characters of lower-case hex in the 8-4-4-4-12 form. */
static int
is_lower_uuid(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

/* --- COPY rows of whole records --- */

static void
test_full_record_row(void **state)
{
	static const char line[] =
	    "{\"metric_id\":\"0198A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B\","
	    "\"recorded_at\":\"2025-08-01T16:20:44.123456Z\","
	    "\"agent_id\":\"agent-1\",\"task_id\":\"task-1\",\"task_type\":\"airline\","
	    "\"stage\":\"execution\",\"stage_success_rate\":0.75,\"stage_error_rate\":0.25,"
	    "\"stage_duration_ms\":1500,\"stage_action_count\":12,"
	    "\"overall_progress_velocity\":2.5,\"error_accumulation_rate\":0.125,"
	    "\"context_staleness_score\":0.5,\"intervention_effectiveness\":1,"
	    "\"baseline_delta\":{\"latency\":-0.5},\"model\":\"gpt-4.1\"}";
	static const char expected[] =
	    "0198a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\t2025-08-01 16:20:44.123456+00\t"
	    "agent-1\ttask-1\tairline\texecution\t0.75\t0.25\t1500\t12\t2.5\t0.125\t"
	    "0.5\t1\t{\"latency\":-0.5}\t{\"model\":\"gpt-4.1\"}\n";
	struct ace_metric_error e;
	char row[ROW_MAX];

	(void)state;
	assert_int_equal(line_to_row(LINE(line), NOW_US, row, sizeof(row), &e), 0);
	assert_string_equal(row, expected);
}

static void
test_minimal_record_row(void **state)
{
	static const char line[] = "{" REQUIRED ",\"recorded_at\":\"2025-08-01T16:20:44Z\"}";
	struct ace_metric_error e;
	char row[ROW_MAX];
	char *cols[COLUMNS + 1];

	(void)state;
	assert_int_equal(line_to_row(LINE(line), NOW_US, row, sizeof(row), &e), 0);
	assert_int_equal(split_row(row, cols, COLUMNS + 1), COLUMNS);
	assert_true(is_lower_uuid(cols[COL_METRIC_ID]));
	assert_string_equal(cols[COL_RECORDED_AT], BASE_TEXT);
	assert_string_equal(cols[COL_AGENT_ID], "a");
	assert_string_equal(cols[COL_TASK_ID], "t");
	assert_string_equal(cols[COL_TASK_TYPE], "\\N");
	assert_string_equal(cols[COL_STAGE], "planning");
	for (int i = COL_SUCCESS_RATE; i <= COL_BASELINE_DELTA; i++)
		assert_string_equal(cols[i], "\\N");
	assert_string_equal(cols[COL_ATTRIBUTES], "{}");
}

static void
test_row_matches_column_list(void **state)
{
	/* The column order that enum column, and so every check of a column here, relies on. */
	static const char columns[] =
	    "metric_id, recorded_at, agent_id, task_id, task_type, stage, "
	    "stage_success_rate, stage_error_rate, stage_duration_ms, stage_action_count, "
	    "overall_progress_velocity, error_accumulation_rate, context_staleness_score, "
	    "intervention_effectiveness, baseline_delta, attributes";
	static const char line[] = "{" REQUIRED "}";
	struct ace_metric_error e;
	char row[ROW_MAX];
	int tabs = 0;

	(void)state;
	assert_string_equal(ACE_METRIC_COPY_COLUMNS, columns);
	assert_int_equal(line_to_row(LINE(line), NOW_US, row, sizeof(row), &e), 0);
	for (const char *p = row; *p; p++)
		tabs += *p == '\t';
	assert_int_equal(tabs, COLUMNS - 1);
	assert_int_equal(row[strlen(row) - 1], '\n');
}

static void
test_reals_keep_float4_precision(void **state)
{
	/* The real columns are float4, so a value must come back as the same float. */
	static const char line[] = "{" REQUIRED ",\"stage_success_rate\":0.123456789012,"
	    "\"overall_progress_velocity\":123456.789,\"error_accumulation_rate\":1e-7}";
	struct ace_metric_error e;
	char row[ROW_MAX];
	char *cols[COLUMNS + 1];

	(void)state;
	assert_int_equal(line_to_row(LINE(line), NOW_US, row, sizeof(row), &e), 0);
	assert_int_equal(split_row(row, cols, COLUMNS + 1), COLUMNS);
	assert_true(strtof(cols[COL_SUCCESS_RATE], NULL) == (float)0.123456789012);
	assert_true(strtof(cols[COL_VELOCITY], NULL) == (float)123456.789);
	assert_true(strtof(cols[COL_ERROR_ACCUMULATION], NULL) == (float)1e-7);
}

/*
 * Returns whether PostgreSQL's real input accepts text.  As in its float4in,
 * strtof must read the whole text, and a range error rejects the text when
 * the result is 0 or infinite.  PostgreSQL 15 rejects '1e-50'::real and
 * '1e+39'::real.
 */
static bool
real_text_accepted(const char *text)
{
	char *end;
	float v;

	errno = 0;
	v = strtof(text, &end);
	if (end == text || *end != '\0')
		return false;
	return !(errno == ERANGE && (v == 0 || isinf(v)));
}

static void
test_tiny_reals_written_valid(void **state)
{
	static const char line[] = "{" REQUIRED ",\"stage_success_rate\":1e-50,"
	    "\"error_accumulation_rate\":1e-40}";
	struct ace_metric_error e;
	char row[ROW_MAX];
	char *cols[COLUMNS + 1];

	(void)state;
	assert_int_equal(line_to_row(LINE(line), NOW_US, row, sizeof(row), &e), 0);
	assert_int_equal(split_row(row, cols, COLUMNS + 1), COLUMNS);
	if (!real_text_accepted(cols[COL_SUCCESS_RATE]))
		fail_msg("stage_success_rate 1e-50 written as '%s', which real rejects", cols[COL_SUCCESS_RATE]);
	if (!real_text_accepted(cols[COL_ERROR_ACCUMULATION]))
		fail_msg("error_accumulation_rate 1e-40 written as '%s', which real rejects",
		    cols[COL_ERROR_ACCUMULATION]);
}

static void
test_copy_escapes_text(void **state)
{
	struct ace_metric m;
	struct ace_buf row = ACE_BUF_INIT;
	char text[ROW_MAX];
	char *cols[COLUMNS + 1];
	int rc;

	(void)state;
	/* Parsing rejects control characters in ids, so build the record by hand. */
	memset(&m, 0, sizeof(m));
	strcpy(m.metric_id, "0198a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
	m.recorded_at_us = BASE_US;
	m.agent_id = "back\\slash";
	m.task_id = "tab\there\nnewline\\back\rcr";
	m.task_type = "type\\x";
	m.stage = ACE_STAGE_REFLECTION;
	m.baseline_delta = "{\"a\\tb\":1}";
	m.attributes = "{\"note\":\"line\\none\"}";
	rc = ace_metric_copy_row(&m, &row);
	snprintf(text, sizeof(text), "%s", row.data ? row.data : "");
	ace_buf_release(&row);

	assert_int_equal(rc, 0);
	assert_int_equal(split_row(text, cols, COLUMNS + 1), COLUMNS);
	assert_string_equal(cols[COL_AGENT_ID], "back\\\\slash");
	assert_string_equal(cols[COL_TASK_ID], "tab\\there\\nnewline\\\\back\\rcr");
	assert_string_equal(cols[COL_TASK_TYPE], "type\\\\x");
	assert_string_equal(cols[COL_STAGE], "reflection");
	assert_string_equal(cols[COL_BASELINE_DELTA], "{\"a\\\\tb\":1}");
	assert_string_equal(cols[COL_ATTRIBUTES], "{\"note\":\"line\\\\none\"}");
}

static void
test_parsed_backslash_escaped(void **state)
{
	/* JSON "c\\d" is the three characters c, backslash, d. */
	static const char line[] = "{\"agent_id\":\"a\",\"task_id\":\"c\\\\d\",\"stage\":\"planning\","
	    "\"note\":\"x\\ty\"}";
	struct ace_metric_error e;
	char row[ROW_MAX];
	char *cols[COLUMNS + 1];

	(void)state;
	assert_int_equal(line_to_row(LINE(line), NOW_US, row, sizeof(row), &e), 0);
	assert_int_equal(split_row(row, cols, COLUMNS + 1), COLUMNS);
	assert_string_equal(cols[COL_TASK_ID], "c\\\\d");
	assert_string_equal(cols[COL_ATTRIBUTES], "{\"note\":\"x\\\\ty\"}");
}

/* --- parsed fields --- */

static void
test_unknown_fields_to_attributes(void **state)
{
	static const char line[] = "{" REQUIRED ",\"model\":\"gpt-4.1\",\"temperature\":0.25,"
	    "\"tags\":[\"x\",\"y\"],\"run\":{\"seed\":7},\"flag\":true,\"none\":null,"
	    "\"task_type\":\"retail\",\"stage_duration_ms\":5}";
	struct ace_metric m;
	cJSON *attrs;

	(void)state;
	parse_ok(LINE(line), &m);
	attrs = cJSON_Parse(m.attributes);
	ace_metric_release(&m);

	assert_non_null(attrs);
	assert_true(cJSON_IsObject(attrs));
	assert_int_equal(cJSON_GetArraySize(attrs), 6);
	assert_string_equal(cJSON_GetStringValue(member(attrs, "model")), "gpt-4.1");
	assert_true(cJSON_GetNumberValue(member(attrs, "temperature")) == 0.25);
	assert_int_equal(cJSON_GetArraySize(member(attrs, "tags")), 2);
	assert_true(cJSON_GetNumberValue(member(member(attrs, "run"), "seed")) == 7);
	assert_true(cJSON_IsTrue(member(attrs, "flag")));
	assert_true(cJSON_IsNull(member(attrs, "none")));
	assert_null(cJSON_GetObjectItemCaseSensitive(attrs, "agent_id"));
	assert_null(cJSON_GetObjectItemCaseSensitive(attrs, "task_id"));
	assert_null(cJSON_GetObjectItemCaseSensitive(attrs, "task_type"));
	assert_null(cJSON_GetObjectItemCaseSensitive(attrs, "stage"));
	assert_null(cJSON_GetObjectItemCaseSensitive(attrs, "stage_duration_ms"));
	cJSON_Delete(attrs);
}

static void
test_attributes_object_merged(void **state)
{
	static const char line[] = "{" REQUIRED ",\"model\":\"top\","
	    "\"attributes\":{\"model\":\"inner\",\"seed\":7,\"agent_id\":\"other\"}}";
	struct ace_metric m;
	cJSON *attrs;
	const char *agent;

	(void)state;
	parse_ok(LINE(line), &m);
	attrs = cJSON_Parse(m.attributes);
	agent = m.agent_id;
	assert_string_equal(agent, "a");
	ace_metric_release(&m);

	assert_non_null(attrs);
	assert_int_equal(cJSON_GetArraySize(attrs), 3);
	/* A top-level field wins; the clashing members stay nested, not lost. */
	assert_string_equal(cJSON_GetStringValue(member(attrs, "model")), "top");
	assert_true(cJSON_GetNumberValue(member(attrs, "seed")) == 7);
	assert_null(cJSON_GetObjectItemCaseSensitive(attrs, "agent_id"));
	assert_string_equal(cJSON_GetStringValue(member(member(attrs, "attributes"), "model")), "inner");
	assert_string_equal(cJSON_GetStringValue(member(member(attrs, "attributes"), "agent_id")), "other");
	assert_int_equal(cJSON_GetArraySize(member(attrs, "attributes")), 2);
	cJSON_Delete(attrs);
}

static void
test_attributes_member_task_type_kept(void **state)
{
	/*
	 * task_type names a column, so the attributes member of that name stays
	 * in a nested attributes object instead of being lost.
	 */
	static const char line[] = "{" REQUIRED ",\"attributes\":{\"task_type\":\"retail\",\"seed\":7}}";
	struct ace_metric m;
	cJSON *attrs;
	int has_task_type, has_seed, column_null;

	(void)state;
	parse_ok(LINE(line), &m);
	attrs = cJSON_Parse(m.attributes);
	column_null = m.task_type == NULL;
	ace_metric_release(&m);
	has_task_type = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(attrs, "attributes"), "task_type") != NULL;
	has_seed = cJSON_GetObjectItemCaseSensitive(attrs, "seed") != NULL;
	cJSON_Delete(attrs);

	assert_true(column_null);
	assert_true(has_seed);
	assert_true(has_task_type);
}

static void
test_metric_id_generated(void **state)
{
	static const char line[] = "{" REQUIRED "}";
	struct ace_metric m;
	char id[37];
	bool generated;

	(void)state;
	parse_ok(LINE(line), &m);
	memcpy(id, m.metric_id, sizeof(id));
	generated = m.metric_id_generated;
	ace_metric_release(&m);

	assert_true(generated);
	assert_true(is_lower_uuid(id));
	/* In version 7 the first 48 bits are the milliseconds of NOW_US (0x018bcfe56a8e). */
	assert_memory_equal(id, "018bcfe5-6a8e-7", 15);
	assert_non_null(strchr("89ab", id[19]));
}

static void
test_metric_id_null_generated(void **state)
{
	static const char line[] = "{" REQUIRED ",\"metric_id\":null}";
	struct ace_metric m;
	bool generated;

	(void)state;
	parse_ok(LINE(line), &m);
	generated = m.metric_id_generated;
	ace_metric_release(&m);
	assert_true(generated);
}

static void
test_metric_id_given_lowercased(void **state)
{
	static const char line[] = "{" REQUIRED ",\"metric_id\":\"ABCDEF01-2345-6789-ABCD-EF0123456789\"}";
	struct ace_metric m;
	char id[37];
	bool generated;

	(void)state;
	parse_ok(LINE(line), &m);
	memcpy(id, m.metric_id, sizeof(id));
	generated = m.metric_id_generated;
	ace_metric_release(&m);

	assert_false(generated);
	assert_string_equal(id, "abcdef01-2345-6789-abcd-ef0123456789");
}

static void
test_generated_ids_differ(void **state)
{
	char a[37], b[37];

	(void)state;
	ace_uuid_v7(NOW_US, a);
	ace_uuid_v7(NOW_US, b);
	assert_true(is_lower_uuid(a));
	assert_true(is_lower_uuid(b));
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '7');
}

static void
test_parsed_numbers_present(void **state)
{
	static const char line[] = "{" REQUIRED ",\"stage_success_rate\":0.5,"
	    "\"stage_error_rate\":null,\"stage_action_count\":3}";
	struct ace_metric m;
	unsigned present;
	double success, actions;

	(void)state;
	parse_ok(LINE(line), &m);
	present = m.present;
	success = m.numbers[ACE_M_SUCCESS_RATE];
	actions = m.numbers[ACE_M_ACTION_COUNT];
	ace_metric_release(&m);

	assert_int_equal(present, (1u << ACE_M_SUCCESS_RATE) | (1u << ACE_M_ACTION_COUNT));
	assert_true(success == 0.5);
	assert_true(actions == 3);
}

static void
test_stage_names(void **state)
{
	(void)state;
	assert_string_equal(ace_stage_name(ACE_STAGE_PLANNING), "planning");
	assert_string_equal(ace_stage_name(ACE_STAGE_EXECUTION), "execution");
	assert_string_equal(ace_stage_name(ACE_STAGE_REFLECTION), "reflection");
	assert_string_equal(ace_stage_name(ACE_STAGE_VERIFICATION), "verification");
	assert_string_equal(ace_stage_name(-1), "unknown");
	assert_string_equal(ace_stage_name(4), "unknown");
}

/* --- length limits, counted in characters --- */

/* Builds a valid record in which field contains count copies of unit. */
static char *
record_with_long_field(const char *field, const char *unit, size_t count)
{
	static const char *const names[] = { "agent_id", "task_id", "task_type" };
	struct ace_buf b = ACE_BUF_INIT;

	ace_buf_puts(&b, "{\"stage\":\"planning\"");
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		bool long_one = strcmp(names[i], field) == 0;

		if (strcmp(names[i], "task_type") == 0 && !long_one)
			continue;
		ace_buf_printf(&b, ",\"%s\":\"", names[i]);
		if (long_one)
			for (size_t k = 0; k < count; k++)
				ace_buf_puts(&b, unit);
		else
			ace_buf_puts(&b, "x");
		ace_buf_putc(&b, '"');
	}
	ace_buf_putc(&b, '}');
	return b.data;
}

/* Parses a record whose field contains count copies of unit.  Returns 0, or -1 with e filled. */
static int
parse_long_field(const char *field, const char *unit, size_t count, struct ace_metric_error *e)
{
	char *line = record_with_long_field(field, unit, count);
	struct ace_metric m;
	int rc;

	assert_non_null(line);
	rc = ace_metric_parse(line, strlen(line), NOW_US, &m, e);
	if (rc == 0)
		ace_metric_release(&m);
	free(line);
	return rc;
}

static void
test_agent_id_255_chars_accepted(void **state)
{
	struct ace_metric_error e;

	(void)state;
	assert_int_equal(parse_long_field("agent_id", "x", 255, &e), 0);
}

static void
test_agent_id_256_chars_rejected(void **state)
{
	struct ace_metric_error e;

	(void)state;
	assert_int_equal(parse_long_field("agent_id", "x", 256, &e), -1);
	assert_string_equal(e.field, "agent_id");
	assert_contains(e.reason, "256 characters");
	assert_contains(e.reason, "255");
}

static void
test_agent_id_255_accented_accepted(void **state)
{
	struct ace_metric_error e;

	(void)state;
	/* 255 characters of two bytes each pass, because the limit counts characters. */
	assert_int_equal(parse_long_field("agent_id", "\xC3\xA9", 255, &e), 0);
}

static void
test_agent_id_256_accented_rejected(void **state)
{
	struct ace_metric_error e;

	(void)state;
	assert_int_equal(parse_long_field("agent_id", "\xC3\xA9", 256, &e), -1);
	assert_string_equal(e.field, "agent_id");
	assert_contains(e.reason, "256 characters");
}

static void
test_task_id_256_chars_rejected(void **state)
{
	struct ace_metric_error e;

	(void)state;
	assert_int_equal(parse_long_field("task_id", "x", 255, &e), 0);
	assert_int_equal(parse_long_field("task_id", "x", 256, &e), -1);
	assert_string_equal(e.field, "task_id");
}

static void
test_task_type_100_chars_accepted(void **state)
{
	struct ace_metric_error e;

	(void)state;
	assert_int_equal(parse_long_field("task_type", "x", 100, &e), 0);
}

static void
test_task_type_101_chars_rejected(void **state)
{
	struct ace_metric_error e;

	(void)state;
	assert_int_equal(parse_long_field("task_type", "x", 101, &e), -1);
	assert_string_equal(e.field, "task_type");
	assert_contains(e.reason, "101 characters");
	assert_contains(e.reason, "100");
}

/* --- records that must be accepted, checked through one column of the row --- */

struct accept_case {
	const char *name;
	const char *line;
	size_t len;
	int column;		/* enum column */
	const char *expected;	/* the column's COPY text */
};

#define ACCEPT(name, line, column, expected) { "accept " name, LINE(line), column, expected }

static const struct accept_case accept_cases[] = {
	ACCEPT("recorded_at with Z", "{" REQUIRED ",\"recorded_at\":\"2025-08-01T16:20:44Z\"}",
	    COL_RECORDED_AT, BASE_TEXT),
	ACCEPT("recorded_at with +02:00", "{" REQUIRED ",\"recorded_at\":\"2025-08-01T18:20:44+02:00\"}",
	    COL_RECORDED_AT, BASE_TEXT),
	ACCEPT("recorded_at with -05:30", "{" REQUIRED ",\"recorded_at\":\"2025-08-01T10:50:44-05:30\"}",
	    COL_RECORDED_AT, BASE_TEXT),
	ACCEPT("recorded_at with space separator", "{" REQUIRED ",\"recorded_at\":\"2025-08-01 16:20:44Z\"}",
	    COL_RECORDED_AT, BASE_TEXT),
	ACCEPT("recorded_at lower-case t and z", "{" REQUIRED ",\"recorded_at\":\"2025-08-01t16:20:44z\"}",
	    COL_RECORDED_AT, BASE_TEXT),
	ACCEPT("recorded_at one fractional digit", "{" REQUIRED ",\"recorded_at\":\"2025-08-01T16:20:44.1Z\"}",
	    COL_RECORDED_AT, "2025-08-01 16:20:44.100000+00"),
	ACCEPT("recorded_at six fractional digits",
	    "{" REQUIRED ",\"recorded_at\":\"2025-08-01T16:20:44.000001Z\"}",
	    COL_RECORDED_AT, "2025-08-01 16:20:44.000001+00"),
	ACCEPT("recorded_at nine fractional digits",
	    "{" REQUIRED ",\"recorded_at\":\"2025-08-01T16:20:44.123456789Z\"}",
	    COL_RECORDED_AT, "2025-08-01 16:20:44.123456+00"),
	ACCEPT("recorded_at offset crosses midnight",
	    "{" REQUIRED ",\"recorded_at\":\"2025-08-01T23:30:00-05:30\"}",
	    COL_RECORDED_AT, "2025-08-02 05:00:00.000000+00"),
	ACCEPT("recorded_at leap second", "{" REQUIRED ",\"recorded_at\":\"2016-12-31T23:59:60Z\"}",
	    COL_RECORDED_AT, "2017-01-01 00:00:00.000000+00"),
	ACCEPT("recorded_at epoch integer", "{" REQUIRED ",\"recorded_at\":1754065244}",
	    COL_RECORDED_AT, BASE_TEXT),
	ACCEPT("recorded_at epoch float", "{" REQUIRED ",\"recorded_at\":1754065244.5}",
	    COL_RECORDED_AT, "2025-08-01 16:20:44.500000+00"),
	ACCEPT("recorded_at epoch zero", "{" REQUIRED ",\"recorded_at\":0}",
	    COL_RECORDED_AT, "1970-01-01 00:00:00.000000+00"),
	ACCEPT("recorded_at absent uses now", "{" REQUIRED "}", COL_RECORDED_AT, NOW_TEXT),
	ACCEPT("success plus error exactly 1",
	    "{" REQUIRED ",\"stage_success_rate\":0.5,\"stage_error_rate\":0.5}", COL_ERROR_RATE, "0.5"),
	ACCEPT("success plus error 0.7 and 0.3",
	    "{" REQUIRED ",\"stage_success_rate\":0.7,\"stage_error_rate\":0.3}", COL_ERROR_RATE, "0.3"),
	ACCEPT("rates at bounds 0 and 1",
	    "{" REQUIRED ",\"context_staleness_score\":0,\"intervention_effectiveness\":1}",
	    COL_INTERVENTION, "1"),
	ACCEPT("duration 2^31-1", "{" REQUIRED ",\"stage_duration_ms\":2147483647}",
	    COL_DURATION_MS, "2147483647"),
	ACCEPT("duration with exponent", "{" REQUIRED ",\"stage_duration_ms\":1.5e3}",
	    COL_DURATION_MS, "1500"),
	ACCEPT("duration 0", "{" REQUIRED ",\"stage_duration_ms\":0}", COL_DURATION_MS, "0"),
	ACCEPT("action count null", "{" REQUIRED ",\"stage_action_count\":null}",
	    COL_ACTION_COUNT, "\\N"),
	ACCEPT("velocity above 1", "{" REQUIRED ",\"overall_progress_velocity\":42.5}",
	    COL_VELOCITY, "42.5"),
	ACCEPT("task_type null", "{" REQUIRED ",\"task_type\":null}", COL_TASK_TYPE, "\\N"),
	ACCEPT("baseline_delta null", "{" REQUIRED ",\"baseline_delta\":null}", COL_BASELINE_DELTA, "\\N"),
	ACCEPT("baseline_delta empty object", "{" REQUIRED ",\"baseline_delta\":{}}",
	    COL_BASELINE_DELTA, "{}"),
	ACCEPT("baseline_delta null member", "{" REQUIRED ",\"baseline_delta\":{\"a\":null,\"b\":2}}",
	    COL_BASELINE_DELTA, "{\"a\":null,\"b\":2}"),
	ACCEPT("stage execution", "{\"agent_id\":\"a\",\"task_id\":\"t\",\"stage\":\"execution\"}",
	    COL_STAGE, "execution"),
	ACCEPT("stage reflection", "{\"agent_id\":\"a\",\"task_id\":\"t\",\"stage\":\"reflection\"}",
	    COL_STAGE, "reflection"),
	ACCEPT("stage verification", "{\"agent_id\":\"a\",\"task_id\":\"t\",\"stage\":\"verification\"}",
	    COL_STAGE, "verification"),
	ACCEPT("escaped backslash before u0000", "{" REQUIRED ",\"note\":\"\\\\u0000\"}",
	    COL_ATTRIBUTES, "{\"note\":\"\\\\\\\\u0000\"}"),
	ACCEPT("non-ASCII agent_id", "{\"agent_id\":\"\xC3\xA9t\xC3\xA9\",\"task_id\":\"t\",\"stage\":\"planning\"}",
	    COL_AGENT_ID, "\xC3\xA9t\xC3\xA9"),
	ACCEPT("four-byte UTF-8 in task_id", "{\"agent_id\":\"a\",\"task_id\":\"\xF0\x9F\x98\x80\",\"stage\":\"planning\"}",
	    COL_TASK_ID, "\xF0\x9F\x98\x80"),
	ACCEPT("whitespace around the object", "  {" REQUIRED "}  ", COL_AGENT_ID, "a"),
};

static void
test_accept_case(void **state)
{
	const struct accept_case *c = *state;
	struct ace_metric_error e;
	char row[ROW_MAX];
	char *cols[COLUMNS + 1];

	if (line_to_row(c->line, c->len, NOW_US, row, sizeof(row), &e) != 0)
		fail_msg("rejected: field '%s': %s", e.field, e.reason);
	assert_int_equal(split_row(row, cols, COLUMNS + 1), COLUMNS);
	assert_string_equal(cols[c->column], c->expected);
}

/* --- records that must be rejected --- */

struct reject_case {
	const char *name;
	const char *line;
	size_t len;
	const char *field;	/* expected e.field */
	const char *reason;	/* a part of the expected e.reason */
};

#define REJECT(name, line, field, reason) { "reject " name, LINE(line), field, reason }

static const struct reject_case reject_cases[] = {
	/* The whole line. */
	REJECT("empty line", "", "", "empty"),
	REJECT("blank line", "   ", "", "invalid JSON"),
	REJECT("truncated JSON", "{\"agent_id\":\"a\",\"task_id\":\"t\"", "", "invalid JSON"),
	REJECT("truncated string", "{\"agent_id\":\"a", "", "invalid JSON"),
	REJECT("text after the object", "{" REQUIRED "} x", "", "invalid JSON"),
	REJECT("two objects", "{" REQUIRED "}{" REQUIRED "}", "", "invalid JSON"),
	REJECT("array", "[1,2]", "", "found an array"),
	REJECT("number", "42", "", "found a number"),
	REJECT("string", "\"text\"", "", "found a string"),
	REJECT("null", "null", "", "found null"),
	REJECT("NUL byte", "{\"agent_id\":\"a\0b\",\"task_id\":\"t\",\"stage\":\"planning\"}", "",
	    "NUL byte at byte 15"),
	REJECT("overlong UTF-8", "{\"agent_id\":\"\xC0\xAF\",\"task_id\":\"t\",\"stage\":\"planning\"}", "",
	    "invalid UTF-8 at byte 14"),
	REJECT("surrogate in UTF-8", "{\"agent_id\":\"\xED\xA0\x80\",\"task_id\":\"t\",\"stage\":\"planning\"}", "",
	    "invalid UTF-8 at byte 14"),
	REJECT("truncated UTF-8 sequence", "{\"agent_id\":\"\xE2\x82\",\"task_id\":\"t\",\"stage\":\"planning\"}", "",
	    "invalid UTF-8 at byte 14"),
	REJECT("UTF-8 above U+10FFFF", "{\"agent_id\":\"\xF4\x90\x80\x80\",\"task_id\":\"t\",\"stage\":\"planning\"}", "",
	    "invalid UTF-8"),
	REJECT("Latin-1 byte", "{\"agent_id\":\"caf\xE9\",\"task_id\":\"t\",\"stage\":\"planning\"}", "",
	    "invalid UTF-8 at byte 17"),
	REJECT("u0000 escape in a value", "{" REQUIRED ",\"note\":\"a\\u0000b\"}", "", "\\u0000"),
	REJECT("u0000 escape in a key", "{" REQUIRED ",\"a\\u0000\":1}", "", "\\u0000"),
	REJECT("u0000 after escaped backslash", "{" REQUIRED ",\"note\":\"\\\\\\u0000\"}", "", "\\u0000"),

	/* Required fields. */
	REJECT("agent_id missing", "{\"task_id\":\"t\",\"stage\":\"planning\"}", "agent_id", "missing"),
	REJECT("task_id missing", "{\"agent_id\":\"a\",\"stage\":\"planning\"}", "task_id", "missing"),
	REJECT("stage missing", "{\"agent_id\":\"a\",\"task_id\":\"t\"}", "stage", "missing"),
	REJECT("agent_id null", "{\"agent_id\":null,\"task_id\":\"t\",\"stage\":\"planning\"}",
	    "agent_id", "found null"),
	REJECT("agent_id empty", "{\"agent_id\":\"\",\"task_id\":\"t\",\"stage\":\"planning\"}",
	    "agent_id", "empty"),
	REJECT("stage not one of four", "{\"agent_id\":\"a\",\"task_id\":\"t\",\"stage\":\"testing\"}",
	    "stage", "not a stage"),
	REJECT("stage in capitals", "{\"agent_id\":\"a\",\"task_id\":\"t\",\"stage\":\"Planning\"}",
	    "stage", "not a stage"),

	/* Wrong JSON types, one per field. */
	REJECT("metric_id number", "{" REQUIRED ",\"metric_id\":5}", "metric_id", "found a number"),
	REJECT("recorded_at boolean", "{" REQUIRED ",\"recorded_at\":true}", "recorded_at", "found a boolean"),
	REJECT("recorded_at object", "{" REQUIRED ",\"recorded_at\":{}}", "recorded_at", "found an object"),
	REJECT("agent_id number", "{\"agent_id\":7,\"task_id\":\"t\",\"stage\":\"planning\"}",
	    "agent_id", "found a number"),
	REJECT("task_id array", "{\"agent_id\":\"a\",\"task_id\":[],\"stage\":\"planning\"}",
	    "task_id", "found an array"),
	REJECT("task_type object", "{" REQUIRED ",\"task_type\":{}}", "task_type", "found an object"),
	REJECT("stage number", "{\"agent_id\":\"a\",\"task_id\":\"t\",\"stage\":1}", "stage", "found a number"),
	REJECT("success rate string", "{" REQUIRED ",\"stage_success_rate\":\"0.5\"}",
	    "stage_success_rate", "found a string"),
	REJECT("error rate boolean", "{" REQUIRED ",\"stage_error_rate\":false}",
	    "stage_error_rate", "found a boolean"),
	REJECT("duration string", "{" REQUIRED ",\"stage_duration_ms\":\"5\"}",
	    "stage_duration_ms", "found a string"),
	REJECT("action count array", "{" REQUIRED ",\"stage_action_count\":[1]}",
	    "stage_action_count", "found an array"),
	REJECT("velocity object", "{" REQUIRED ",\"overall_progress_velocity\":{}}",
	    "overall_progress_velocity", "found an object"),
	REJECT("error accumulation string", "{" REQUIRED ",\"error_accumulation_rate\":\"high\"}",
	    "error_accumulation_rate", "found a string"),
	REJECT("staleness boolean", "{" REQUIRED ",\"context_staleness_score\":true}",
	    "context_staleness_score", "found a boolean"),
	REJECT("intervention string", "{" REQUIRED ",\"intervention_effectiveness\":\"1\"}",
	    "intervention_effectiveness", "found a string"),
	REJECT("baseline_delta array", "{" REQUIRED ",\"baseline_delta\":[1]}",
	    "baseline_delta", "expected an object, found an array"),
	REJECT("baseline_delta string", "{" REQUIRED ",\"baseline_delta\":\"x\"}",
	    "baseline_delta", "expected an object, found a string"),
	REJECT("attributes string", "{" REQUIRED ",\"attributes\":\"x\"}", "attributes", "found a string"),
	REJECT("attributes array", "{" REQUIRED ",\"attributes\":[]}", "attributes", "found an array"),

	/* Numeric ranges. */
	REJECT("success rate above 1", "{" REQUIRED ",\"stage_success_rate\":1.5}",
	    "stage_success_rate", "out of range (0 to 1)"),
	REJECT("success rate negative", "{" REQUIRED ",\"stage_success_rate\":-0.1}",
	    "stage_success_rate", "out of range (0 to 1)"),
	REJECT("error rate above 1", "{" REQUIRED ",\"stage_error_rate\":1.01}",
	    "stage_error_rate", "out of range (0 to 1)"),
	REJECT("staleness above 1", "{" REQUIRED ",\"context_staleness_score\":2}",
	    "context_staleness_score", "out of range (0 to 1)"),
	REJECT("intervention negative", "{" REQUIRED ",\"intervention_effectiveness\":-0.5}",
	    "intervention_effectiveness", "out of range (0 to 1)"),
	REJECT("duration negative", "{" REQUIRED ",\"stage_duration_ms\":-1}",
	    "stage_duration_ms", "out of range"),
	REJECT("action count negative", "{" REQUIRED ",\"stage_action_count\":-3}",
	    "stage_action_count", "out of range"),
	REJECT("velocity negative", "{" REQUIRED ",\"overall_progress_velocity\":-0.5}",
	    "overall_progress_velocity", "negative"),
	REJECT("error accumulation negative", "{" REQUIRED ",\"error_accumulation_rate\":-1e-9}",
	    "error_accumulation_rate", "negative"),
	REJECT("duration not an integer", "{" REQUIRED ",\"stage_duration_ms\":1.5}",
	    "stage_duration_ms", "not an integer"),
	REJECT("action count not an integer", "{" REQUIRED ",\"stage_action_count\":2.25}",
	    "stage_action_count", "not an integer"),
	REJECT("duration 2^31", "{" REQUIRED ",\"stage_duration_ms\":2147483648}",
	    "stage_duration_ms", "out of range (0 to 2147483647)"),
	REJECT("velocity infinite", "{" REQUIRED ",\"overall_progress_velocity\":1e400}",
	    "overall_progress_velocity", "not a finite number"),
	REJECT("velocity beyond real range", "{" REQUIRED ",\"overall_progress_velocity\":1e39}",
	    "overall_progress_velocity", "out of range"),
	REJECT("success plus error above 1",
	    "{" REQUIRED ",\"stage_success_rate\":0.6,\"stage_error_rate\":0.5}",
	    "stage_error_rate", "more than 1"),

	/* Control characters and duplicates. */
	REJECT("control escape in agent_id", "{\"agent_id\":\"a\\u0001\",\"task_id\":\"t\",\"stage\":\"planning\"}",
	    "agent_id", "control character"),
	REJECT("raw tab in agent_id", "{\"agent_id\":\"a\tb\",\"task_id\":\"t\",\"stage\":\"planning\"}",
	    "agent_id", "control character"),
	REJECT("C1 U+0085 in agent_id", "{\"agent_id\":\"a\\u0085\",\"task_id\":\"t\",\"stage\":\"planning\"}",
	    "agent_id", "control character"),
	REJECT("newline escape in task_id", "{\"agent_id\":\"a\",\"task_id\":\"t\\n\",\"stage\":\"planning\"}",
	    "task_id", "control character"),
	REJECT("DEL in task_id", "{\"agent_id\":\"a\",\"task_id\":\"t\\u007f\",\"stage\":\"planning\"}",
	    "task_id", "control character"),
	REJECT("C1 U+0085 in task_id", "{\"agent_id\":\"a\",\"task_id\":\"t\\u0085\",\"stage\":\"planning\"}",
	    "task_id", "control character"),
	REJECT("raw C1 bytes in task_id", "{\"agent_id\":\"a\",\"task_id\":\"t\xC2\x9F\",\"stage\":\"planning\"}",
	    "task_id", "control character"),
	REJECT("control escape in task_type", "{" REQUIRED ",\"task_type\":\"x\\u001b\"}",
	    "task_type", "control character"),
	REJECT("duplicate stage", "{" REQUIRED ",\"stage\":\"execution\"}", "stage", "more than once"),
	REJECT("duplicate agent_id", "{" REQUIRED ",\"agent_id\":\"b\"}", "agent_id", "more than once"),
	REJECT("duplicate rate", "{" REQUIRED ",\"stage_success_rate\":0.1,\"stage_success_rate\":0.2}",
	    "stage_success_rate", "more than once"),

	/* Timestamps. */
	REJECT("timestamp without offset", "{" REQUIRED ",\"recorded_at\":\"2025-08-01T16:20:44\"}",
	    "recorded_at", "no UTC offset"),
	REJECT("timestamp February 30", "{" REQUIRED ",\"recorded_at\":\"2025-02-30T00:00:00Z\"}",
	    "recorded_at", "out of range"),
	REJECT("timestamp hour 24", "{" REQUIRED ",\"recorded_at\":\"2025-08-01T24:00:00Z\"}",
	    "recorded_at", "out of range"),
	REJECT("timestamp month 13", "{" REQUIRED ",\"recorded_at\":\"2025-13-01T00:00:00Z\"}",
	    "recorded_at", "out of range"),
	REJECT("timestamp date only", "{" REQUIRED ",\"recorded_at\":\"2025-08-01\"}",
	    "recorded_at", "RFC 3339"),
	REJECT("timestamp in words", "{" REQUIRED ",\"recorded_at\":\"yesterday\"}",
	    "recorded_at", "RFC 3339"),
	REJECT("timestamp empty fraction", "{" REQUIRED ",\"recorded_at\":\"2025-08-01T16:20:44.Z\"}",
	    "recorded_at", "RFC 3339"),
	REJECT("epoch seconds negative", "{" REQUIRED ",\"recorded_at\":-1}",
	    "recorded_at", "out of range"),
	REJECT("epoch seconds past year 9999", "{" REQUIRED ",\"recorded_at\":253402300800}",
	    "recorded_at", "out of range"),

	/* metric_id and baseline_delta. */
	REJECT("metric_id not a UUID", "{" REQUIRED ",\"metric_id\":\"not-a-uuid\"}", "metric_id", "not a UUID"),
	REJECT("metric_id 35 digits", "{" REQUIRED ",\"metric_id\":\"0198a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5\"}",
	    "metric_id", "not a UUID"),
	REJECT("metric_id non-hex digit", "{" REQUIRED ",\"metric_id\":\"0198a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g\"}",
	    "metric_id", "not a UUID"),
	REJECT("metric_id without dashes", "{" REQUIRED ",\"metric_id\":\"0198a1b2c3d47e5f8a9b0c1d2e3f4a5b\"}",
	    "metric_id", "not a UUID"),
	REJECT("metric_id in braces", "{" REQUIRED ",\"metric_id\":\"{0198a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a}\"}",
	    "metric_id", "not a UUID"),
	REJECT("baseline_delta string value", "{" REQUIRED ",\"baseline_delta\":{\"latency\":\"fast\"}}",
	    "baseline_delta", "'latency' must be a number"),
	REJECT("baseline_delta object value", "{" REQUIRED ",\"baseline_delta\":{\"latency\":{}}}",
	    "baseline_delta", "must be a number"),
};

static void
test_reject_case(void **state)
{
	const struct reject_case *c = *state;
	struct ace_metric_error e;
	struct ace_metric m;

	memset(&e, 0, sizeof(e));
	if (ace_metric_parse(c->line, c->len, NOW_US, &m, &e) == 0) {
		ace_metric_release(&m);
		fail_msg("accepted; expected a rejection of '%s' with \"%s\"", c->field, c->reason);
	}
	assert_string_equal(e.field, c->field);
	assert_contains(e.reason, c->reason);
}

/* --- timestamps, formatting and UTF-8 --- */

struct timestamp_case {
	const char *text;
	int64_t us;
	const char *formatted;	/* ace_format_timestamp(us) */
};

static const struct timestamp_case timestamp_cases[] = {
	{ "1970-01-01T00:00:00Z", 0, "1970-01-01 00:00:00.000000+00" },
	{ "1970-01-01T00:00:00.000001Z", 1, "1970-01-01 00:00:00.000001+00" },
	{ "1969-12-31T23:59:59.5Z", -500000, "1969-12-31 23:59:59.500000+00" },
	{ "1970-01-01T01:00:00+01:00", 0, "1970-01-01 00:00:00.000000+00" },
	{ "2024-02-29T12:34:56.789012Z", INT64_C(1709210096789012), "2024-02-29 12:34:56.789012+00" },
	{ "2000-02-29T00:00:00Z", INT64_C(951782400000000), "2000-02-29 00:00:00.000000+00" },
	{ "2025-08-01T16:20:44Z", BASE_US, BASE_TEXT },
	{ "9999-12-31T23:59:59.999999Z", INT64_C(253402300799999999), "9999-12-31 23:59:59.999999+00" },
	{ "0001-01-01T00:00:00Z", INT64_C(-62135596800000000), "0001-01-01 00:00:00.000000+00" },
};

static void
test_rfc3339_round_trips(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(timestamp_cases); i++) {
		const struct timestamp_case *c = &timestamp_cases[i];
		const char *why = NULL;
		int64_t us = 0;
		char out[64];

		if (ace_parse_rfc3339(c->text, &us, &why) != 0)
			fail_msg("%s: rejected: %s", c->text, why);
		assert_int_equal(us, c->us);
		ace_format_timestamp(us, out);
		assert_string_equal(out, c->formatted);
	}
}

static void
test_rfc3339_rejects(void **state)
{
	static const struct {
		const char *text;
		const char *why;
	} cases[] = {
		{ "2023-02-29T00:00:00Z", "out of range" },
		{ "1900-02-29T00:00:00Z", "out of range" },
		{ "2025-04-31T00:00:00Z", "out of range" },
		{ "2025-08-01T23:60:00Z", "out of range" },
		{ "2025-08-01T23:59:61Z", "out of range" },
		{ "0000-01-01T00:00:00Z", "out of range" },
		{ "2025-08-01T00:00:00+24:00", "out of range" },
		{ "2025-08-01T00:00:00+01:60", "out of range" },
		{ "2025-08-01T00:00:00", "no UTC offset" },
		{ "2025-08-01T00:00:00+0100", "RFC 3339" },
		{ "2025-08-01T00:00:00Z ", "RFC 3339" },
		{ "2025-8-01T00:00:00Z", "RFC 3339" },
		{ "2025-08-01X00:00:00Z", "RFC 3339" },
		{ "", "RFC 3339" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *why = NULL;
		int64_t us = 0;

		if (ace_parse_rfc3339(cases[i].text, &us, &why) == 0)
			fail_msg("\"%s\" accepted as %lld", cases[i].text, (long long)us);
		assert_non_null(why);
		assert_contains(why, cases[i].why);
	}
}

static void
test_format_every_day_of_2024(void **state)
{
	/* Formatting then parsing each day's noon of a leap year gives the same instant. */
	int64_t start = INT64_C(1704110400000000);	/* 2024-01-01 12:00:00 UTC */

	(void)state;
	for (int day = 0; day < 366; day++) {
		int64_t us = start + (int64_t)day * 86400 * 1000000 + 123;
		char text[64], rfc[80];
		const char *why = NULL;
		int64_t back = 0;

		ace_format_timestamp(us, text);
		/* "YYYY-MM-DD HH:MM:SS.ffffff+00" plus ":00" is valid RFC 3339. */
		snprintf(rfc, sizeof(rfc), "%s:00", text);
		if (ace_parse_rfc3339(rfc, &back, &why) != 0)
			fail_msg("%s: rejected: %s", rfc, why);
		assert_int_equal(back, us);
	}
}

static void
test_utf8_invalid_at(void **state)
{
	static const struct {
		const char *name;
		const char *s;
		size_t len;
		long expected;
	} cases[] = {
		{ "ASCII", LINE("abc"), -1 },
		{ "empty", LINE(""), -1 },
		{ "two-byte", LINE("caf\xC3\xA9"), -1 },
		{ "three-byte", LINE("\xE2\x82\xAC"), -1 },
		{ "four-byte", LINE("\xF0\x9F\x98\x80"), -1 },
		{ "U+10FFFF", LINE("\xF4\x8F\xBF\xBF"), -1 },
		{ "U+D7FF before surrogates", LINE("\xED\x9F\xBF"), -1 },
		{ "overlong two-byte C0", LINE("a\xC0\x80"), 1 },
		{ "overlong two-byte C1", LINE("ab\xC1\xBF"), 2 },
		{ "overlong three-byte", LINE("\xE0\x80\xAF"), 0 },
		{ "overlong four-byte", LINE("xy\xF0\x8F\xBF\xBF"), 2 },
		{ "surrogate D800", LINE("ab\xED\xA0\x80"), 2 },
		{ "surrogate DFFF", LINE("\xED\xBF\xBF"), 0 },
		{ "above U+10FFFF", LINE("\xF4\x90\x80\x80"), 0 },
		{ "F5 lead byte", LINE("\xF5\x80\x80\x80"), 0 },
		{ "lone continuation", LINE("abc\x80"), 3 },
		{ "truncated at end", LINE("\xC3\xA9\xC3"), 2 },
		{ "truncated three-byte", LINE("\xE2\x82" "a"), 0 },
		{ "continuation missing", LINE("\xC3" "a"), 0 },
		{ "FF byte", LINE("ok\xFF"), 2 },
		{ "valid then invalid", LINE("\xC3\xA9\xE2\x82\xAC\xED\xA0\x80"), 5 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		long at = ace_utf8_invalid_at(cases[i].s, cases[i].len);

		if (at != cases[i].expected)
			fail_msg("%s: offset %ld, expected %ld", cases[i].name, at, cases[i].expected);
	}
}

static void
test_utf8_length_bounds_scan(void **state)
{
	(void)state;
	/* Only len bytes count: a sequence cut by len is invalid even if more follow. */
	assert_int_equal(ace_utf8_invalid_at("\xC3\xA9", 1), 0);
	assert_int_equal(ace_utf8_invalid_at("ab\xC3\xA9", 2), -1);
}

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_full_record_row),
		cmocka_unit_test(test_minimal_record_row),
		cmocka_unit_test(test_row_matches_column_list),
		cmocka_unit_test(test_reals_keep_float4_precision),
		cmocka_unit_test(test_tiny_reals_written_valid),
		cmocka_unit_test(test_copy_escapes_text),
		cmocka_unit_test(test_parsed_backslash_escaped),
		cmocka_unit_test(test_unknown_fields_to_attributes),
		cmocka_unit_test(test_attributes_object_merged),
		cmocka_unit_test(test_attributes_member_task_type_kept),
		cmocka_unit_test(test_metric_id_generated),
		cmocka_unit_test(test_metric_id_null_generated),
		cmocka_unit_test(test_metric_id_given_lowercased),
		cmocka_unit_test(test_generated_ids_differ),
		cmocka_unit_test(test_parsed_numbers_present),
		cmocka_unit_test(test_stage_names),
		cmocka_unit_test(test_agent_id_255_chars_accepted),
		cmocka_unit_test(test_agent_id_256_chars_rejected),
		cmocka_unit_test(test_agent_id_255_accented_accepted),
		cmocka_unit_test(test_agent_id_256_accented_rejected),
		cmocka_unit_test(test_task_id_256_chars_rejected),
		cmocka_unit_test(test_task_type_100_chars_accepted),
		cmocka_unit_test(test_task_type_101_chars_rejected),
		cmocka_unit_test(test_rfc3339_round_trips),
		cmocka_unit_test(test_rfc3339_rejects),
		cmocka_unit_test(test_format_every_day_of_2024),
		cmocka_unit_test(test_utf8_invalid_at),
		cmocka_unit_test(test_utf8_length_bounds_scan),
	};
	struct CMUnitTest tests[ARRAY_LEN(fixed) + ARRAY_LEN(accept_cases) + ARRAY_LEN(reject_cases)];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
		tests[n++] = fixed[i];
	for (size_t i = 0; i < ARRAY_LEN(accept_cases); i++)
		tests[n++] = (struct CMUnitTest){ accept_cases[i].name, test_accept_case, NULL, NULL,
		    (void *)&accept_cases[i] };
	for (size_t i = 0; i < ARRAY_LEN(reject_cases); i++)
		tests[n++] = (struct CMUnitTest){ reject_cases[i].name, test_reject_case, NULL, NULL,
		    (void *)&reject_cases[i] };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
