/* Unit tests of the storage settings: modes, compression column lists, intervals and times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ace/config.h"
#include "ace/storage.h"
#include "storage_private.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void
test_mode_names(void **state)
{
	static const char *const names[] = { "auto", "timescaledb", "partitioned" };
	static const char *const bad[] = { "", "Auto", "timescale", "partition", "auto " };

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		int mode = -1;

		assert_int_equal(ace_storage_mode_parse(names[i], &mode), 0);
		assert_int_equal(mode, (int)i);
		assert_string_equal(ace_storage_mode_name(mode), names[i]);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		int mode = -1;

		if (ace_storage_mode_parse(bad[i], &mode) == 0)
			fail_msg("'%s' accepted as mode %d", bad[i], mode);
	}
	assert_string_equal(ace_storage_layout_name(ACE_LAYOUT_HYPERTABLE), "hypertable");
	assert_string_equal(ace_storage_mode_name(99), "unknown");
}

/* Each list parses, and prints back in ace.yaml's spelling. */
static void
test_column_lists_parse(void **state)
{
	static const struct {
		const char *text;
		bool ordering;
		int count;
		const char *printed;
	} good[] = {
		{ "agent_id,task_id", false, 2, "agent_id,task_id" },
		{ " agent_id , task_id ", false, 2, "agent_id,task_id" },
		{ "", false, 0, "" },
		{ "   ", false, 0, "" },
		{ "recorded_at DESC", true, 1, "recorded_at DESC" },
		{ "recorded_at", true, 1, "recorded_at ASC" },
		{ "recorded_at desc nulls last, task_id", true, 2, "recorded_at DESC NULLS LAST,task_id ASC" },
		{ "recorded_at ASC NULLS FIRST", true, 1, "recorded_at ASC NULLS FIRST" },
		{ "recorded_at NULLS FIRST", true, 1, "recorded_at ASC NULLS FIRST" },
		{ "_x$1", false, 1, "_x$1" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		struct storage_columns cols;
		struct ace_error err;
		char printed[256];

		if (storage_parse_columns(good[i].text, good[i].ordering, "key", &cols, &err) != ACE_OK)
			fail_msg("'%s' rejected: %s", good[i].text, err.message);
		assert_int_equal(cols.count, good[i].count);
		storage_format_columns(&cols, good[i].ordering, printed, sizeof(printed));
		assert_string_equal(printed, good[i].printed);
	}
}

static void
test_column_lists_reject(void **state)
{
	static const struct {
		const char *text;
		bool ordering;
	} bad[] = {
		{ "agent_id; DROP TABLE x", false },
		{ "agent_id DESC", false },
		{ "Agent_Id", false },
		{ "\"agent_id\"", false },
		{ "agent_id,", false },
		{ ",agent_id", false },
		{ "agent_id,,task_id", false },
		{ "agent_id,agent_id", false },
		{ "1st", false },
		{ "", true },
		{ "recorded_at SIDEWAYS", true },
		{ "recorded_at DESC NULLS", true },
		{ "recorded_at DESC NULLS MIDDLE", true },
		{ "recorded_at DESC DESC", true },
		{ "recorded_at -- comment", true },
		{ "a234567890123456789012345678901234567890123456789012345678901234", false },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct storage_columns cols;
		struct ace_error err = { 0, "" };

		if (storage_parse_columns(bad[i].text, bad[i].ordering, "timeseries.x", &cols, &err) == ACE_OK)
			fail_msg("'%s' accepted with %d columns", bad[i].text, cols.count);
		assert_int_equal(err.code, ACE_ERR_INVALID);
		assert_non_null(strstr(err.message, "timeseries.x: "));
	}
}

static void
test_check_config_names_key(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	assert_int_equal(ace_storage_check_config(&cfg, &err), ACE_OK);

	assert_int_equal(ace_config_set(&cfg, "timeseries.compress_orderby", "recorded_at UP", "test", &err),
	    ACE_OK);
	assert_int_equal(ace_storage_check_config(&cfg, &err), ACE_ERR_INVALID);
	assert_string_equal(err.message, "timeseries.compress_orderby: invalid column list 'recorded_at UP' "
	    "(expected lower-case column names, each optionally followed by ASC or DESC and "
	    "NULLS FIRST or LAST, separated by commas)");
	ace_config_release(&cfg);
}

static void
test_storage_defaults(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	assert_int_equal(cfg.storage, ACE_STORAGE_AUTO);
	assert_true(cfg.chunk_interval == 86400);
	assert_true(cfg.compress_after == 7 * 86400);
	assert_true(cfg.retention == 90 * 86400);
	assert_int_equal(cfg.premake, 7);
	assert_string_equal(cfg.compress_segmentby, "agent_id,task_id");
	assert_string_equal(cfg.compress_orderby, "recorded_at DESC");

	assert_int_equal(ace_config_set(&cfg, "storage", "partitioned", "test", &err), ACE_OK);
	assert_int_equal(cfg.storage, ACE_STORAGE_PARTITIONED);
	assert_int_equal(ace_config_set(&cfg, "storage", "columnar", "test", &err), ACE_ERR_INVALID);
	assert_string_equal(err.message,
	    "test: storage: invalid storage 'columnar' (expected auto, timescaledb or partitioned)");
	/* A chunk shorter than an hour would make thousands of partitions a year. */
	assert_int_equal(ace_config_set(&cfg, "timeseries.chunk_interval", "30m", "test", &err),
	    ACE_ERR_INVALID);
	ace_config_release(&cfg);
}

static void
test_intervals_and_times(void **state)
{
	static const struct {
		long long seconds;
		const char *text;
	} intervals[] = {
		{ 86400, "1 day" }, { 7 * 86400, "7 days" }, { 3600, "1 hour" }, { 7200, "2 hours" },
		{ 90, "90 seconds" }, { 0, "0 seconds" }, { 90000, "25 hours" },
	};
	static const struct {
		long long epoch;
		const char *text;
	} times[] = {
		{ 0, "1970-01-01 00:00:00+00" },
		{ 1796342400, "2026-12-04 00:00:00+00" },
		{ -86400, "1969-12-31 00:00:00+00" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(intervals); i++) {
		char text[64];

		storage_format_interval(intervals[i].seconds, text, sizeof(text));
		assert_string_equal(text, intervals[i].text);
	}
	for (size_t i = 0; i < ARRAY_LEN(times); i++) {
		char text[64];

		storage_format_time(times[i].epoch, text, sizeof(text));
		assert_string_equal(text, times[i].text);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_names),
		cmocka_unit_test(test_column_lists_parse),
		cmocka_unit_test(test_column_lists_reject),
		cmocka_unit_test(test_check_config_names_key),
		cmocka_unit_test(test_storage_defaults),
		cmocka_unit_test(test_intervals_and_times),
	};

	return cmocka_run_group_tests_name("storage", tests, NULL, NULL);
}
