/* Unit tests of configuration defaults, ace.yaml loading, environment overrides and flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ace/config.h"
#include "ace/error.h"
#include "ace/log.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define assert_contains(text, part) do { \
	const char *text_ = (text), *part_ = (part); \
	if (strstr(text_, part_) == NULL) \
		fail_msg("\"%s\" does not contain \"%s\"", text_, part_); \
} while (0)

/* A temporary YAML file, removed by the test's teardown. */
static char yaml_path[64];

/* Writes text to a new temporary .yaml file whose name is left in yaml_path. */
static const char *
write_yaml(const char *text)
{
	int fd;
	size_t len = strlen(text);

	snprintf(yaml_path, sizeof(yaml_path), "/tmp/ace-test-config-XXXXXX.yaml");
	fd = mkstemps(yaml_path, 5);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return yaml_path;
}

/* Clears every variable that configuration reads, so that the caller's environment cannot leak in. */
static int
clear_environment(void **state)
{
	const struct ace_config_key *keys;
	size_t n;

	(void)state;
	keys = ace_config_keys(&n);
	for (size_t i = 0; i < n; i++)
		unsetenv(keys[i].env);
	unsetenv("ACE_CONFIG");
	yaml_path[0] = '\0';
	return 0;
}

static int
remove_yaml(void **state)
{
	if (yaml_path[0] != '\0')
		unlink(yaml_path);
	return clear_environment(state);
}

/* Loads text as ace.yaml over the defaults and returns the status, with the message in err. */
static int
load_yaml(struct ace_config *cfg, const char *text, struct ace_error *err)
{
	assert_int_equal(ace_config_init(cfg), ACE_OK);
	memset(err, 0, sizeof(*err));
	return ace_config_load_file(cfg, write_yaml(text), err);
}

/* --- defaults --- */

static void
test_defaults_documented(void **state)
{
	struct ace_config cfg;

	(void)state;
	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	assert_int_equal(cfg.batch_size, 100);
	assert_true(cfg.batch_timeout == 1.0);
	assert_int_equal(cfg.pool_size, 10);
	assert_int_equal(cfg.pool_max_overflow, 40);
	assert_true(cfg.pool_recycle == 3600);
	assert_true(cfg.pool_timeout == 30);
	assert_int_equal(cfg.playbook_ttl, 600);
	assert_int_equal(cfg.baseline_ttl, 3600);
	assert_int_equal(cfg.redis_max_connections, 50);
	assert_true(cfg.connect_timeout == 10);
	assert_int_equal(cfg.workers, 1);
	assert_true(cfg.retry_timeout == 300);
	assert_true(cfg.retry_initial_delay == 0.1);
	assert_true(cfg.retry_max_delay == 10);
	assert_int_equal(cfg.max_line_bytes, 1048576);
	assert_null(cfg.database_url);
	assert_null(cfg.migrations_dir);
	assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379/0");
	assert_int_equal(cfg.log_level, ACE_LOG_INFO);
	assert_int_equal(cfg.log_format, ACE_LOG_LOGFMT);
	ace_config_release(&cfg);
}

static void
test_key_table_consistent(void **state)
{
	const struct ace_config_key *keys;
	struct ace_config cfg;
	struct ace_error err;
	size_t n;

	(void)state;
	keys = ace_config_keys(&n);
	assert_true(n > 0);
	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	for (size_t i = 0; i < n; i++) {
		const char *dot = strchr(keys[i].name, '.');

		/* A key is section.name, or a plain name at the top level such as "storage". */
		if (dot != NULL && (dot == keys[i].name || dot[1] == '\0' || strchr(dot + 1, '.')))
			fail_msg("key '%s' is not section.name or name", keys[i].name);
		assert_non_null(keys[i].env);
		assert_non_null(keys[i].help);
		assert_true(keys[i].min <= keys[i].max);
		/* Every default must pass the checks that a user's value goes through. */
		if (ace_config_set(&cfg, keys[i].name, keys[i].default_value, "default", &err) != ACE_OK)
			fail_msg("default of %s rejected: %s", keys[i].name, err.message);
		for (size_t k = 0; k < i; k++) {
			assert_string_not_equal(keys[k].name, keys[i].name);
			assert_string_not_equal(keys[k].env, keys[i].env);
		}
	}
	ace_config_release(&cfg);
}

/* --- ace.yaml --- */

static void
test_file_sets_values(void **state)
{
	static const char text[] =
	    "# ace settings\n"
	    "database:\n"
	    "  url: postgresql://ace@db.example/ace\n"
	    "  pool_size: 20\n"
	    "  max_overflow: 0\n"
	    "  migrations_dir: /srv/migrations\n"
	    "ingest:\n"
	    "  batch_size: 500\n"
	    "  workers: 4\n"
	    "  max_line_bytes: 64k\n"
	    "redis:\n"
	    "  url: redis://cache:6380/2\n"
	    "  max_connections: 5\n"
	    "cache:\n"
	    "  playbook_ttl_seconds: 60\n"
	    "  baseline_ttl_seconds: 120\n"
	    "log:\n"
	    "  level: debug\n"
	    "  format: json\n";
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	if (load_yaml(&cfg, text, &err) != ACE_OK)
		fail_msg("%s", err.message);
	assert_string_equal(cfg.database_url, "postgresql://ace@db.example/ace");
	assert_int_equal(cfg.pool_size, 20);
	assert_int_equal(cfg.pool_max_overflow, 0);
	assert_string_equal(cfg.migrations_dir, "/srv/migrations");
	assert_int_equal(cfg.batch_size, 500);
	assert_int_equal(cfg.workers, 4);
	assert_int_equal(cfg.max_line_bytes, 65536);
	assert_string_equal(cfg.redis_url, "redis://cache:6380/2");
	assert_int_equal(cfg.redis_max_connections, 5);
	assert_int_equal(cfg.playbook_ttl, 60);
	assert_int_equal(cfg.baseline_ttl, 120);
	assert_int_equal(cfg.log_level, ACE_LOG_DEBUG);
	assert_int_equal(cfg.log_format, ACE_LOG_JSON);
	/* Keys the file leaves out keep their defaults. */
	assert_true(cfg.batch_timeout == 1.0);
	assert_true(cfg.pool_timeout == 30);
	ace_config_release(&cfg);
}

static void
test_file_durations(void **state)
{
	static const char text[] =
	    "ingest:\n"
	    "  batch_timeout: 250ms\n"
	    "  retry_timeout: 90s\n"
	    "database:\n"
	    "  pool_recycle: 2m\n"
	    "  pool_timeout: 1.5\n"
	    "  connect_timeout: 1h\n";
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	if (load_yaml(&cfg, text, &err) != ACE_OK)
		fail_msg("%s", err.message);
	assert_true(cfg.batch_timeout == 0.25);
	assert_true(cfg.retry_timeout == 90);
	assert_true(cfg.pool_recycle == 120);
	assert_true(cfg.pool_timeout == 1.5);
	assert_true(cfg.connect_timeout == 3600);
	ace_config_release(&cfg);
}

static void
test_file_empty_string_clears(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	if (load_yaml(&cfg, "redis:\n  url: \"\"\n", &err) != ACE_OK)
		fail_msg("%s", err.message);
	assert_null(cfg.redis_url);
	ace_config_release(&cfg);
}

/* One ace.yaml that must be rejected, and parts of the message it must produce. */
struct file_error_case {
	const char *name;
	const char *text;
	const char *parts[3];	/* besides the file name, ended early by NULL */
};

static const struct file_error_case file_error_cases[] = {
	{ "file unknown key", "ingest:\n  batch_size: 5\n  bogus: 1\n",
	    { ":3:", "unknown key", "ingest.bogus" } },
	{ "file unknown section", "database:\n  pool_size: 5\nqueue:\n  depth: 1\n",
	    { ":4:", "unknown key", "queue.depth" } },
	{ "file key outside a section", "batch_size: 5\n", { ":1:", "unknown key", "'batch_size'" } },
	{ "file pool_size below range", "database:\n  pool_size: 0\n",
	    { ":2:", "database.pool_size", "out of range (1 to 1000 connections)" } },
	{ "file batch_size above range", "\ningest:\n  batch_size: 1000001\n",
	    { ":3:", "ingest.batch_size", "1 to 1000000" } },
	{ "file batch_timeout zero", "ingest:\n  batch_timeout: 0\n",
	    { ":2:", "ingest.batch_timeout", "out of range (0.001 to 3600 seconds)" } },
	{ "file ttl range in full digits", "cache:\n  playbook_ttl_seconds: 0\n",
	    { ":2:", "cache.playbook_ttl_seconds", "1 to 31536000 seconds" } },
	{ "file max_line_bytes range in full digits", "ingest:\n  max_line_bytes: 2G\n",
	    { ":2:", "ingest.max_line_bytes", "64 to 1073741824 bytes" } },
	{ "file integer not a number", "ingest:\n  batch_size: abc\n",
	    { ":2:", "ingest.batch_size", "invalid integer 'abc'" } },
	{ "file integer with fraction", "ingest:\n  batch_size: 1.5\n",
	    { ":2:", "ingest.batch_size", "invalid integer '1.5'" } },
	{ "file duration unknown unit", "ingest:\n  batch_timeout: 3 days\n",
	    { ":2:", "ingest.batch_timeout", "invalid duration '3 days'" } },
	{ "file size with fraction of a byte", "ingest:\n  max_line_bytes: 100.5\n",
	    { ":2:", "ingest.max_line_bytes", "invalid size" } },
	{ "file list for a value", "ingest:\n  batch_size: [1, 2]\n",
	    { ":2:", "ingest.batch_size", "expected a single value, found a list" } },
	{ "file mapping for a value", "database:\n  url:\n    host: h\n",
	    { ":3:", "database.url", "found a mapping" } },
	{ "file invalid log level", "log:\n  level: loud\n",
	    { ":2:", "log.level", "invalid log level 'loud'" } },
	{ "file invalid log format", "log:\n  format: xml\n",
	    { ":2:", "log.format", "invalid log format 'xml'" } },
	{ "file YAML syntax error", "ingest:\n  batch_size: 5\n bad: x\n",
	    { ":3:", "invalid YAML", NULL } },
	{ "file YAML tab indent", "ingest:\n\tbatch_size: 5\n", { ":2:", "invalid YAML", NULL } },
	{ "file list at top level", "- a\n- b\n", { ":1:", "expected a mapping", NULL } },
};

static void
test_file_error_case(void **state)
{
	const struct file_error_case *c = *state;
	struct ace_config cfg;
	struct ace_error err;
	int rc;

	rc = load_yaml(&cfg, c->text, &err);
	ace_config_release(&cfg);
	assert_int_equal(rc, ACE_ERR_INVALID);
	assert_int_equal(err.code, ACE_ERR_INVALID);
	assert_contains(err.message, yaml_path);
	for (size_t i = 0; i < ARRAY_LEN(c->parts) && c->parts[i] != NULL; i++)
		assert_contains(err.message, c->parts[i]);
}

static void
test_file_empty_ok(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	assert_int_equal(load_yaml(&cfg, "", &err), ACE_OK);
	assert_int_equal(cfg.batch_size, 100);
	ace_config_release(&cfg);
}

static void
test_file_comments_only_ok(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	assert_int_equal(load_yaml(&cfg, "# nothing set here\n\n# yet\n", &err), ACE_OK);
	assert_int_equal(cfg.pool_size, 10);
	ace_config_release(&cfg);
}

static void
test_file_section_all_commented_ok(void **state)
{
	/* Commenting out every key of a section leaves the section empty, which sets nothing. */
	static const char text[] = "database:\n  pool_size: 12\ningest:\n  # batch_size: 500\n";
	struct ace_config cfg;
	struct ace_error err;
	int rc, pool_size;

	(void)state;
	rc = load_yaml(&cfg, text, &err);
	pool_size = cfg.pool_size;
	ace_config_release(&cfg);
	if (rc != ACE_OK)
		fail_msg("rejected: %s", err.message);
	assert_int_equal(pool_size, 12);
}

static void
test_file_missing_not_found(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	assert_int_equal(ace_config_load_file(&cfg, "/nonexistent/ace.yaml", &err), ACE_ERR_NOT_FOUND);
	assert_contains(err.message, "/nonexistent/ace.yaml");
	ace_config_release(&cfg);
}

/* --- environment and flags --- */

static void
test_env_overrides(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	setenv("DATABASE_POOL_SIZE", "25", 1);
	setenv("DATABASE_MAX_OVERFLOW", "3", 1);
	setenv("DATABASE_POOL_RECYCLE", "10m", 1);
	setenv("DATABASE_POOL_TIMEOUT", "5", 1);
	setenv("DATABASE_URL", "host=db dbname=ace", 1);
	setenv("REDIS_URL", "redis://r:6379/1", 1);
	setenv("ACE_INGEST_BATCH_SIZE", "7", 1);
	setenv("ACE_INGEST_BATCH_TIMEOUT", "500ms", 1);
	setenv("ACE_CACHE_PLAYBOOK_TTL_SECONDS", "30", 1);
	setenv("ACE_LOG_LEVEL", "warning", 1);

	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	if (ace_config_load_env(&cfg, &err) != ACE_OK)
		fail_msg("%s", err.message);
	assert_int_equal(cfg.pool_size, 25);
	assert_int_equal(cfg.pool_max_overflow, 3);
	assert_true(cfg.pool_recycle == 600);
	assert_true(cfg.pool_timeout == 5);
	assert_string_equal(cfg.database_url, "host=db dbname=ace");
	assert_string_equal(cfg.redis_url, "redis://r:6379/1");
	assert_int_equal(cfg.batch_size, 7);
	assert_true(cfg.batch_timeout == 0.5);
	assert_int_equal(cfg.playbook_ttl, 30);
	assert_int_equal(cfg.log_level, ACE_LOG_WARNING);
	ace_config_release(&cfg);
}

static void
test_env_empty_ignored(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	setenv("ACE_INGEST_BATCH_SIZE", "", 1);
	setenv("REDIS_URL", "", 1);
	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	assert_int_equal(ace_config_load_env(&cfg, &err), ACE_OK);
	assert_int_equal(cfg.batch_size, 100);
	assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379/0");
	ace_config_release(&cfg);
}

static void
test_env_invalid_names_variable(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	setenv("ACE_INGEST_BATCH_SIZE", "lots", 1);
	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	assert_int_equal(ace_config_load_env(&cfg, &err), ACE_ERR_INVALID);
	assert_contains(err.message, "ACE_INGEST_BATCH_SIZE");
	assert_contains(err.message, "'lots'");
	ace_config_release(&cfg);
}

static void
test_env_out_of_range_names_variable(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	setenv("DATABASE_POOL_SIZE", "0", 1);
	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	assert_int_equal(ace_config_load_env(&cfg, &err), ACE_ERR_INVALID);
	assert_contains(err.message, "DATABASE_POOL_SIZE");
	assert_contains(err.message, "out of range");
	ace_config_release(&cfg);
}

static void
test_set_from_flag(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	assert_int_equal(ace_config_set(&cfg, "ingest.batch_size", "42", "--batch-size", &err), ACE_OK);
	assert_int_equal(cfg.batch_size, 42);
	assert_int_equal(ace_config_set(&cfg, "log.format", "json", "--log-format", &err), ACE_OK);
	assert_int_equal(cfg.log_format, ACE_LOG_JSON);
	assert_int_equal(ace_config_set(&cfg, "database.url", "postgresql:///x", "--database-url", &err), ACE_OK);
	assert_string_equal(cfg.database_url, "postgresql:///x");
	ace_config_release(&cfg);
}

static void
test_set_invalid_names_flag(void **state)
{
	struct ace_config cfg;
	struct ace_error err;
	int rc;

	(void)state;
	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	rc = ace_config_set(&cfg, "ingest.batch_size", "-3", "--batch-size", &err);
	assert_int_equal(rc, ACE_ERR_INVALID);
	assert_contains(err.message, "--batch-size");
	assert_contains(err.message, "out of range");
	assert_int_equal(cfg.batch_size, 100);
	ace_config_release(&cfg);
}

static void
test_set_unknown_key(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	assert_int_equal(ace_config_set(&cfg, "ingest.speed", "1", "--speed", &err), ACE_ERR_INVALID);
	assert_contains(err.message, "--speed");
	assert_contains(err.message, "unknown key 'ingest.speed'");
	ace_config_release(&cfg);
}

static void
test_precedence_file_env_flag(void **state)
{
	static const char text[] = "ingest:\n  batch_size: 500\n  workers: 3\ndatabase:\n  pool_size: 20\n";
	struct ace_config cfg;
	struct ace_error err;
	const char *path = write_yaml(text);

	(void)state;
	setenv("ACE_INGEST_BATCH_SIZE", "600", 1);
	setenv("ACE_INGEST_WORKERS", "5", 1);
	if (ace_config_load(&cfg, path, &err) != ACE_OK)
		fail_msg("%s", err.message);
	assert_int_equal(cfg.pool_size, 20);	/* file only */
	assert_int_equal(cfg.batch_size, 600);	/* environment over file */
	assert_int_equal(cfg.workers, 5);

	assert_int_equal(ace_config_set(&cfg, "ingest.batch_size", "700", "--batch-size", &err), ACE_OK);
	assert_int_equal(cfg.batch_size, 700);	/* flag over environment */
	assert_int_equal(cfg.workers, 5);
	ace_config_release(&cfg);
}

static void
test_load_reads_ace_config_variable(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	setenv("ACE_CONFIG", write_yaml("database:\n  pool_size: 33\n"), 1);
	if (ace_config_load(&cfg, NULL, &err) != ACE_OK)
		fail_msg("%s", err.message);
	assert_int_equal(cfg.pool_size, 33);
	ace_config_release(&cfg);
}

static void
test_load_without_file(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	assert_int_equal(ace_config_load(&cfg, NULL, &err), ACE_OK);
	assert_int_equal(cfg.batch_size, 100);
	ace_config_release(&cfg);
}

static void
test_load_missing_file_fails(void **state)
{
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	assert_int_equal(ace_config_load(&cfg, "/nonexistent/ace.yaml", &err), ACE_ERR_NOT_FOUND);
	ace_config_release(&cfg);
}

/* --- value syntax --- */

static void
test_parse_seconds(void **state)
{
	static const struct {
		const char *text;
		double seconds;
	} good[] = {
		{ "1", 1 }, { "1.5", 1.5 }, { "0", 0 }, { "2s", 2 }, { "250ms", 0.25 },
		{ "2m", 120 }, { "1h", 3600 }, { "10 s", 10 }, { "1.5h", 5400 }, { "7d", 604800 },
	};
	static const char *const bad[] = { "", "abc", "5x", "5 sec", "5min", "ms", "1e999", "nan", "inf", "5s5" };

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		double v = -1;

		if (ace_parse_seconds(good[i].text, &v) != 0)
			fail_msg("'%s' rejected", good[i].text);
		if (v != good[i].seconds)
			fail_msg("'%s' parsed as %g, expected %g", good[i].text, v, good[i].seconds);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		double v = -1;

		if (ace_parse_seconds(bad[i], &v) == 0)
			fail_msg("'%s' accepted as %g", bad[i], v);
	}
}

static void
test_byte_sizes(void **state)
{
	static const struct {
		const char *text;
		long bytes;
	} cases[] = {
		{ "64", 64 }, { "64k", 65536 }, { "64K", 65536 }, { "1M", 1048576 },
		{ "2MB", 2097152 }, { "1.5k", 1536 }, { "1G", 1073741824 },
	};
	struct ace_config cfg;
	struct ace_error err;

	(void)state;
	assert_int_equal(ace_config_init(&cfg), ACE_OK);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		if (ace_config_set(&cfg, "ingest.max_line_bytes", cases[i].text, "test", &err) != ACE_OK)
			fail_msg("'%s' rejected: %s", cases[i].text, err.message);
		if (cfg.max_line_bytes != cases[i].bytes)
			fail_msg("'%s' set %ld, expected %ld", cases[i].text, cfg.max_line_bytes, cases[i].bytes);
	}
	assert_int_equal(ace_config_set(&cfg, "ingest.max_line_bytes", "63", "test", &err), ACE_ERR_INVALID);
	assert_int_equal(ace_config_set(&cfg, "ingest.max_line_bytes", "1T", "test", &err), ACE_ERR_INVALID);
	ace_config_release(&cfg);
}

#define CONFIG_TEST(f) cmocka_unit_test_setup_teardown(f, clear_environment, remove_yaml)

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		CONFIG_TEST(test_defaults_documented),
		CONFIG_TEST(test_key_table_consistent),
		CONFIG_TEST(test_file_sets_values),
		CONFIG_TEST(test_file_durations),
		CONFIG_TEST(test_file_empty_string_clears),
		CONFIG_TEST(test_file_empty_ok),
		CONFIG_TEST(test_file_comments_only_ok),
		CONFIG_TEST(test_file_section_all_commented_ok),
		CONFIG_TEST(test_file_missing_not_found),
		CONFIG_TEST(test_env_overrides),
		CONFIG_TEST(test_env_empty_ignored),
		CONFIG_TEST(test_env_invalid_names_variable),
		CONFIG_TEST(test_env_out_of_range_names_variable),
		CONFIG_TEST(test_set_from_flag),
		CONFIG_TEST(test_set_invalid_names_flag),
		CONFIG_TEST(test_set_unknown_key),
		CONFIG_TEST(test_precedence_file_env_flag),
		CONFIG_TEST(test_load_reads_ace_config_variable),
		CONFIG_TEST(test_load_without_file),
		CONFIG_TEST(test_load_missing_file_fails),
		CONFIG_TEST(test_parse_seconds),
		CONFIG_TEST(test_byte_sizes),
	};
	struct CMUnitTest tests[ARRAY_LEN(fixed) + ARRAY_LEN(file_error_cases)];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
		tests[n++] = fixed[i];
	for (size_t i = 0; i < ARRAY_LEN(file_error_cases); i++)
		tests[n++] = (struct CMUnitTest){ file_error_cases[i].name, test_file_error_case,
		    clear_environment, remove_yaml, (void *)&file_error_cases[i] };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
