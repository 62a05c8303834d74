/* Unit tests of password masking in connection strings and of logfmt and JSON log lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "ace/log.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define assert_contains(text, part) do { \
	const char *text_ = (text), *part_ = (part); \
	if (strstr(text_, part_) == NULL) \
		fail_msg("\"%s\" does not contain \"%s\"", text_, part_); \
} while (0)

/* --- ace_redact_url --- */

struct redact_case {
	const char *name;
	const char *input;
	const char *expected;
};

static const struct redact_case redact_cases[] = {
	{ "redact URI password", "postgresql://user:secret@host/db", "postgresql://user:***@host/db" },
	{ "redact URI with port", "postgres://ace:s3cr3t@db.example:5432/ace",
	    "postgres://ace:***@db.example:5432/ace" },
	{ "redact URI user without password", "postgresql://user@host/db", "postgresql://user@host/db" },
	{ "redact URI without user", "postgresql://host:5432/db", "postgresql://host:5432/db" },
	{ "redact URI empty password", "postgresql://user:@host/db", "postgresql://user:***@host/db" },
	{ "redact URI query password", "postgresql://host/db?password=x&sslmode=require",
	    "postgresql://host/db?password=***&sslmode=require" },
	{ "redact URI query password last", "postgresql://host/db?sslmode=require&password=x",
	    "postgresql://host/db?sslmode=require&password=***" },
	{ "redact URI both passwords", "postgresql://u:p1@host/db?password=p2",
	    "postgresql://u:***@host/db?password=***" },
	{ "redact URI socket folder", "postgresql:///db?host=/var/run/postgresql&password=x",
	    "postgresql:///db?host=/var/run/postgresql&password=***" },
	{ "redact URI at sign in password", "postgresql://user:p@ss@host/db", "postgresql://user:***@host/db" },
	{ "redact URI question mark in password", "postgresql://user:pa?ss@host/db",
	    "postgresql://user:***@host/db" },
	{ "redact URI hash in password", "postgresql://user:pa#ss@host/db", "postgresql://user:***@host/db" },
	{ "redact redis password only", "redis://:pw@host:6379/0", "redis://:***@host:6379/0" },
	{ "redact redis user and password", "redis://default:pw@host:6379/0", "redis://default:***@host:6379/0" },
	{ "redact redis without password", "redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0" },
	{ "redact key/value password", "host=h password=secret user=u", "host=h password=*** user=u" },
	{ "redact key/value password first", "password=secret host=h", "password=*** host=h" },
	{ "redact key/value password last", "host=h password=secret", "host=h password=***" },
	{ "redact key/value spaces around =", "host=h password = secret user=u", "host=h password = *** user=u" },
	{ "redact key/value quoted password", "host=h password='a b\\'c' user=u", "host=h password=*** user=u" },
	{ "redact key/value without password", "host=h user=u dbname=d", "host=h user=u dbname=d" },
	{ "redact key/value password as a value", "user=password host=h", "user=password host=h" },
	{ "redact key/value URL in another value", "host=h password=secret application_name=x://y",
	    "host=h password=*** application_name=x://y" },
	{ "redact empty string", "", "" },
};

static void
test_redact_case(void **state)
{
	const struct redact_case *c = *state;
	char out[256];

	ace_redact_url(c->input, out, sizeof(out));
	assert_string_equal(out, c->expected);
}

static void
test_redact_truncates(void **state)
{
	char out[12];

	(void)state;
	memset(out, 'z', sizeof(out));
	ace_redact_url("postgresql://user:secret@host/db", out, sizeof(out));
	assert_string_equal(out, "postgresql:");
	assert_null(strstr(out, "secret"));
}

static void
test_redact_null_and_zero(void **state)
{
	char out[8] = "unset";

	(void)state;
	ace_redact_url(NULL, out, sizeof(out));
	assert_string_equal(out, "");
	/* A zero-length buffer is left untouched, so "unset" keeps its 'n'. */
	ace_redact_url("password=x", out + 1, 0);
	assert_int_equal(out[1], 'n');
}

/* --- ace_log --- */

/* Returns the string member name of a JSON object, failing the test when it is absent. */
static const char *
string_member(const cJSON *object, const char *name)
{
	const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, name));

	if (value == NULL)
		fail_msg("no string member '%s'", name);
	return value;
}

/* Reads everything written to fp so far into out, rewinding it for the next use. */
static void
read_back(FILE *fp, char *out, size_t size)
{
	size_t n;

	fflush(fp);
	rewind(fp);
	n = fread(out, 1, size - 1, fp);
	out[n] = '\0';
	rewind(fp);
	assert_int_equal(ftruncate(fileno(fp), 0), 0);
}

static int
close_log(void **state)
{
	FILE *fp = *state;

	ace_log_setup("ace", ACE_LOG_INFO, ACE_LOG_LOGFMT, NULL);
	if (fp != NULL)
		fclose(fp);
	return 0;
}

static int
open_log(void **state)
{
	FILE *fp = tmpfile();

	assert_non_null(fp);
	*state = fp;
	return 0;
}

/* The start of a logfmt line, with d for any digit. */
#define STAMP_SHAPE "ts=dddd-dd-ddTdd:dd:dd.dddZ "

/* Checks that a logfmt line starts with a time stamp in STAMP_SHAPE. */
static void
assert_logfmt_stamp(const char *line)
{
	static const char shape[] = STAMP_SHAPE;

	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		int ok = shape[i] == 'd' ? line[i] >= '0' && line[i] <= '9' : line[i] == shape[i];

		if (!ok)
			fail_msg("line does not start with %s: %s", shape, line);
	}
}

static void
test_logfmt_line(void **state)
{
	FILE *fp = *state;
	char text[1024];
	const char *rest;

	ace_log_setup("ace-test", ACE_LOG_INFO, ACE_LOG_LOGFMT, fp);
	ace_log(ACE_LOG_INFO, "batch written", "rows", ACE_LOG_INT(12), "secs", ACE_LOG_NUM(0.25, 3),
	    "source", "in.ndjson", NULL);
	read_back(fp, text, sizeof(text));

	assert_logfmt_stamp(text);
	rest = text + sizeof(STAMP_SHAPE) - 1;
	assert_string_equal(rest,
	    "level=info prog=ace-test msg=\"batch written\" rows=12 secs=0.250 source=in.ndjson\n");
}

static void
test_logfmt_quoting(void **state)
{
	FILE *fp = *state;
	char text[1024];
	static const struct {
		const char *value;
		const char *written;
	} cases[] = {
		{ "plain", "v=plain\n" },
		{ "two words", "v=\"two words\"\n" },
		{ "say \"hi\"", "v=\"say \\\"hi\\\"\"\n" },
		{ "a=b", "v=\"a=b\"\n" },
		{ "back\\slash", "v=\"back\\\\slash\"\n" },
		{ "tab\there", "v=\"tab\\there\"\n" },
		{ "line\nbreak", "v=\"line\\nbreak\"\n" },
		{ "", "v=\"\"\n" },
		{ "caf\xC3\xA9", "v=caf\xC3\xA9\n" },
	};

	ace_log_setup("t", ACE_LOG_INFO, ACE_LOG_LOGFMT, fp);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *end;

		ace_log(ACE_LOG_INFO, "m", "v", cases[i].value, NULL);
		read_back(fp, text, sizeof(text));
		end = strstr(text, " v=");
		if (end == NULL)
			fail_msg("no v= field in: %s", text);
		assert_string_equal(end + 1, cases[i].written);
	}
}

static void
test_logfmt_null_value_empty(void **state)
{
	FILE *fp = *state;
	char text[1024];

	ace_log_setup("t", ACE_LOG_INFO, ACE_LOG_LOGFMT, fp);
	ace_log(ACE_LOG_INFO, "m", "error", (const char *)NULL, "after", "x", NULL);
	read_back(fp, text, sizeof(text));
	assert_contains(text, " error=\"\" after=x\n");
}

static void
test_levels_filtered(void **state)
{
	FILE *fp = *state;
	char text[1024];

	ace_log_setup("t", ACE_LOG_WARNING, ACE_LOG_LOGFMT, fp);
	assert_true(ace_log_enabled(ACE_LOG_ERROR));
	assert_true(ace_log_enabled(ACE_LOG_WARNING));
	assert_false(ace_log_enabled(ACE_LOG_NOTICE));
	assert_false(ace_log_enabled(ACE_LOG_DEBUG));

	ace_log(ACE_LOG_DEBUG, "hidden debug", NULL);
	ace_log(ACE_LOG_INFO, "hidden info", NULL);
	ace_log(ACE_LOG_WARNING, "shown warning", NULL);
	ace_log(ACE_LOG_ERROR, "shown error", NULL);
	read_back(fp, text, sizeof(text));

	assert_null(strstr(text, "hidden"));
	assert_contains(text, "level=warning prog=t msg=\"shown warning\"\n");
	assert_contains(text, "level=error prog=t msg=\"shown error\"\n");
}

static void
test_no_sink_writes_nothing(void **state)
{
	(void)state;
	ace_log_setup("t", ACE_LOG_DEBUG, ACE_LOG_LOGFMT, NULL);
	assert_false(ace_log_enabled(ACE_LOG_ERROR));
	ace_log(ACE_LOG_ERROR, "dropped", NULL);
}

static void
test_json_line(void **state)
{
	FILE *fp = *state;
	char text[1024];
	cJSON *doc;
	const char *ts, *note;
	int items;

	ace_log_setup("ace-test", ACE_LOG_DEBUG, ACE_LOG_JSON, fp);
	ace_log(ACE_LOG_DEBUG, "said \"hi\"", "note", "tab\tline\nctl\x01 back\\", "empty", NULL, NULL);
	read_back(fp, text, sizeof(text));

	assert_int_equal(text[strlen(text) - 1], '\n');
	assert_non_null(strstr(text, "\\u0001"));
	doc = cJSON_Parse(text);
	if (doc == NULL)
		fail_msg("not JSON: %s", text);
	ts = string_member(doc, "ts");
	note = string_member(doc, "note");
	items = cJSON_GetArraySize(doc);

	assert_int_equal(strlen(ts), 24);
	assert_int_equal(ts[23], 'Z');
	assert_string_equal(string_member(doc, "level"), "debug");
	assert_string_equal(string_member(doc, "prog"), "ace-test");
	assert_string_equal(string_member(doc, "msg"), "said \"hi\"");
	assert_string_equal(note, "tab\tline\nctl\x01 back\\");
	assert_string_equal(string_member(doc, "empty"), "");
	assert_int_equal(items, 6);
	cJSON_Delete(doc);
}

static void
test_json_one_line_per_call(void **state)
{
	FILE *fp = *state;
	char text[2048];
	int lines = 0;

	ace_log_setup("t", ACE_LOG_INFO, ACE_LOG_JSON, fp);
	ace_log(ACE_LOG_INFO, "first", "k", "multi\nline", NULL);
	ace_log(ACE_LOG_ERROR, "second", NULL);
	read_back(fp, text, sizeof(text));
	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 2);
}

/* --- names and number formatting --- */

static void
test_level_names_parse(void **state)
{
	static const struct {
		const char *name;
		int level;
	} cases[] = {
		{ "error", ACE_LOG_ERROR }, { "warning", ACE_LOG_WARNING }, { "warn", ACE_LOG_WARNING },
		{ "notice", ACE_LOG_NOTICE }, { "info", ACE_LOG_INFO }, { "debug", ACE_LOG_DEBUG },
		{ "DEBUG", ACE_LOG_DEBUG },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int level = -1;

		if (ace_log_level_parse(cases[i].name, &level) != 0)
			fail_msg("'%s' rejected", cases[i].name);
		assert_int_equal(level, cases[i].level);
	}
	{
		int level = -1;

		assert_int_equal(ace_log_level_parse("verbose", &level), -1);
		assert_int_equal(ace_log_level_parse("", &level), -1);
	}
	assert_string_equal(ace_log_level_name(ACE_LOG_NOTICE), "notice");
	assert_string_equal(ace_log_level_name(0), "unknown");
	assert_string_equal(ace_log_level_name(8), "unknown");
}

static void
test_format_names_parse(void **state)
{
	int format = -1;

	(void)state;
	assert_int_equal(ace_log_format_parse("logfmt", &format), 0);
	assert_int_equal(format, ACE_LOG_LOGFMT);
	assert_int_equal(ace_log_format_parse("json", &format), 0);
	assert_int_equal(format, ACE_LOG_JSON);
	assert_int_equal(ace_log_format_parse("text", &format), -1);
}

static void
test_number_arguments(void **state)
{
	char buf[8];

	(void)state;
	assert_string_equal(ACE_LOG_INT(-42), "-42");
	assert_string_equal(ACE_LOG_INT(9223372036854775807LL), "9223372036854775807");
	assert_string_equal(ACE_LOG_NUM(1.23456, 2), "1.23");
	assert_string_equal(ACE_LOG_NUM(2, 0), "2");
	assert_string_equal(ace_log_int(buf, sizeof(buf), 123456789), "1234567");
}

#define LOG_TEST(f) cmocka_unit_test_setup_teardown(f, open_log, close_log)

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_redact_truncates),
		cmocka_unit_test(test_redact_null_and_zero),
		LOG_TEST(test_logfmt_line),
		LOG_TEST(test_logfmt_quoting),
		LOG_TEST(test_logfmt_null_value_empty),
		LOG_TEST(test_levels_filtered),
		LOG_TEST(test_no_sink_writes_nothing),
		LOG_TEST(test_json_line),
		LOG_TEST(test_json_one_line_per_call),
		cmocka_unit_test(test_level_names_parse),
		cmocka_unit_test(test_format_names_parse),
		cmocka_unit_test(test_number_arguments),
	};
	struct CMUnitTest tests[ARRAY_LEN(redact_cases) + ARRAY_LEN(fixed)];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_LEN(redact_cases); i++)
		tests[n++] = (struct CMUnitTest){ redact_cases[i].name, test_redact_case, NULL, NULL,
		    (void *)&redact_cases[i] };
	for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
		tests[n++] = fixed[i];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
