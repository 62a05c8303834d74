/* Unit tests of SQL statement splitting and of loading migration files from a folder and the binary. */
#include <ctype.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ace/error.h"
#include "ace/migrate.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define assert_contains(text, part) do { \
	const char *text_ = (text), *part_ = (part); \
	if (strstr(text_, part_) == NULL) \
		fail_msg("\"%s\" does not contain \"%s\"", text_, part_); \
} while (0)

/* --- ace_sql_split --- */

#define MAX_STATEMENTS 8

/* The statements one split produced, trimmed of surrounding white space. */
struct collected {
	int count;
	int stop_after;		/* return 99 after this many statements, or never when 0 */
	char text[MAX_STATEMENTS][256];
};

static int
collect(void *ctx, const char *stmt, size_t len)
{
	struct collected *c = ctx;

	while (len > 0 && isspace((unsigned char)*stmt)) {
		stmt++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)stmt[len - 1]))
		len--;
	if (c->count < MAX_STATEMENTS)
		snprintf(c->text[c->count], sizeof(c->text[0]), "%.*s", (int)len, stmt);
	c->count++;
	return c->stop_after > 0 && c->count >= c->stop_after ? 99 : 0;
}

struct split_case {
	const char *name;
	const char *sql;
	const char *statements[MAX_STATEMENTS];	/* NULL ends the list */
};

static const struct split_case split_cases[] = {
	{ "split at semicolons", "SELECT 1; SELECT 2;", { "SELECT 1", "SELECT 2" } },
	{ "split final statement without semicolon", "SELECT 1;\nSELECT 2\n", { "SELECT 1", "SELECT 2" } },
	{ "split skips empty statements", ";;  ;\n;SELECT 1;;\n;", { "SELECT 1" } },
	{ "split empty text", "", { NULL } },
	{ "split white space only", " \n\t\n", { NULL } },
	{ "split semicolon in single quotes", "SELECT 'a;b'; SELECT 2;", { "SELECT 'a;b'", "SELECT 2" } },
	{ "split doubled single quote", "SELECT 'it''s; here'; SELECT 3;",
	    { "SELECT 'it''s; here'", "SELECT 3" } },
	{ "split empty string literal", "SELECT ''; SELECT ';';", { "SELECT ''", "SELECT ';'" } },
	{ "split semicolon in double quotes", "SELECT \"semi;colon\" FROM t; SELECT 4;",
	    { "SELECT \"semi;colon\" FROM t", "SELECT 4" } },
	{ "split doubled double quote", "SELECT 1 AS \"a\"\";b\"; SELECT 5;",
	    { "SELECT 1 AS \"a\"\";b\"", "SELECT 5" } },
	{ "split dollar quotes",
	    "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; SELECT 6;",
	    { "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", "SELECT 6" } },
	{ "split tagged dollar quotes",
	    "DO $body$ BEGIN PERFORM 1; RAISE NOTICE $$x;y$$; END $body$; SELECT 7;",
	    { "DO $body$ BEGIN PERFORM 1; RAISE NOTICE $$x;y$$; END $body$", "SELECT 7" } },
	{ "split different tag inside", "SELECT $a$ $b$ ; $a$; SELECT 8;",
	    { "SELECT $a$ $b$ ; $a$", "SELECT 8" } },
	{ "split positional parameter", "SELECT $1; SELECT 9;", { "SELECT $1", "SELECT 9" } },
	{ "split line comment", "SELECT 1; -- a comment; with a semicolon\nSELECT 2;", { "SELECT 1", "SELECT 2" } },
	{ "split line comment inside statement", "SELECT 1 -- trailing; comment\n; SELECT 2",
	    { "SELECT 1 -- trailing; comment", "SELECT 2" } },
	{ "split comment only", "-- only a comment\n", { NULL } },
	{ "split comment after last statement", "SELECT 1;\n-- the end;\n", { "SELECT 1" } },
	{ "split block comment", "/* a; b */ SELECT 1; SELECT /* ; */ 2;", { "SELECT 1", "SELECT /* ; */ 2" } },
	{ "split unterminated block comment", "SELECT 1; /* open; ", { "SELECT 1" } },
	{ "split quote in comment", "-- it's\nSELECT 1; SELECT 2;", { "SELECT 1", "SELECT 2" } },
	{ "split comment marks in a string", "SELECT '--;/*'; SELECT 3;", { "SELECT '--;/*'", "SELECT 3" } },
	{ "split no-transaction file",
	    "-- ace:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\nCREATE INDEX CONCURRENTLY j ON t (b);\n",
	    { "CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE INDEX CONCURRENTLY j ON t (b)" } },
	/* PostgreSQL block comments nest, as the SQL standard specifies. */
	{ "split nested block comment", "/* outer /* inner */ still; comment */ SELECT 1;", { "SELECT 1" } },
	/* In an E'' string a backslash escapes the quote that follows it. */
	{ "split escape string", "SELECT E'it\\'s; here'; SELECT 2;", { "SELECT E'it\\'s; here'", "SELECT 2" } },
};

static void
test_split_case(void **state)
{
	const struct split_case *c = *state;
	struct collected got;
	int expected = 0;

	memset(&got, 0, sizeof(got));
	assert_int_equal(ace_sql_split(c->sql, collect, &got), 0);
	while (expected < MAX_STATEMENTS && c->statements[expected] != NULL)
		expected++;
	if (got.count != expected)
		fail_msg("%d statements, expected %d; first: \"%s\"", got.count, expected,
		    got.count > 0 ? got.text[0] : "");
	for (int i = 0; i < expected; i++)
		assert_string_equal(got.text[i], c->statements[i]);
}

static void
test_split_stops_on_error(void **state)
{
	struct collected got;

	(void)state;
	memset(&got, 0, sizeof(got));
	got.stop_after = 2;
	assert_int_equal(ace_sql_split("SELECT 1; SELECT 2; SELECT 3;", collect, &got), 99);
	assert_int_equal(got.count, 2);
	assert_string_equal(got.text[1], "SELECT 2");
}

static void
test_split_statement_not_terminated(void **state)
{
	struct collected got;

	(void)state;
	/* The callback receives a length, because the text runs on past the statement. */
	memset(&got, 0, sizeof(got));
	assert_int_equal(ace_sql_split("SELECT 'x';SELECT 2", collect, &got), 0);
	assert_int_equal(got.count, 2);
	assert_string_equal(got.text[0], "SELECT 'x'");
}

/* --- ace_migrations_load_dir --- */

/* A temporary folder of migration files, removed after each test. */
static char folder[64];

static int
make_folder(void **state)
{
	(void)state;
	snprintf(folder, sizeof(folder), "/tmp/ace-test-migrations-XXXXXX");
	assert_non_null(mkdtemp(folder));
	return 0;
}

static int
remove_folder(void **state)
{
	DIR *d = opendir(folder);
	struct dirent *entry;

	(void)state;
	assert_non_null(d);
	while ((entry = readdir(d)) != NULL) {
		char path[sizeof(folder) + sizeof(entry->d_name) + 1];

		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", folder, entry->d_name);
		assert_int_equal(unlink(path), 0);
	}
	closedir(d);
	assert_int_equal(rmdir(folder), 0);
	return 0;
}

static void
put_file(const char *name, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", folder, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* Loads the folder and returns the status, with the message in err. */
static int
load_folder(struct ace_migration_set *set, struct ace_error *err)
{
	memset(err, 0, sizeof(*err));
	return ace_migrations_load_dir(set, folder, err);
}

static void
test_load_dir_pairs_sorted(void **state)
{
	struct ace_migration_set set;
	struct ace_error err;

	(void)state;
	put_file("0010_add_index.up.sql", "CREATE INDEX i ON t (a);\n");
	put_file("0002_add_column.down.sql", "ALTER TABLE t DROP COLUMN b;\n");
	put_file("0001_create_table.up.sql", "CREATE TABLE t (a int);\n");
	put_file("0002_add_column.up.sql", "ALTER TABLE t ADD COLUMN b int;\n");
	put_file("0001_create_table.down.sql", "DROP TABLE t;\n");
	put_file("README.md", "not a migration\n");
	put_file(".0003_hidden.up.sql", "SELECT 1;\n");

	if (load_folder(&set, &err) != ACE_OK)
		fail_msg("%s", err.message);
	assert_int_equal(set.count, 3);

	assert_int_equal(set.items[0].version, 1);
	assert_string_equal(set.items[0].name, "create_table");
	assert_string_equal(set.items[0].up_sql, "CREATE TABLE t (a int);\n");
	assert_string_equal(set.items[0].down_sql, "DROP TABLE t;\n");
	assert_true(set.items[0].transactional);

	assert_int_equal(set.items[1].version, 2);
	assert_string_equal(set.items[1].name, "add_column");
	assert_string_equal(set.items[1].up_sql, "ALTER TABLE t ADD COLUMN b int;\n");
	assert_string_equal(set.items[1].down_sql, "ALTER TABLE t DROP COLUMN b;\n");

	assert_int_equal(set.items[2].version, 10);
	assert_string_equal(set.items[2].name, "add_index");
	assert_null(set.items[2].down_sql);
	ace_migrations_release(&set);
	assert_int_equal(set.count, 0);
	assert_null(set.items);
}

static void
test_load_dir_checksum(void **state)
{
	/* Output of: printf 'SELECT 1;\n' | sha256sum */
	static const char digest[] = "b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd";
	struct ace_migration_set set;
	struct ace_error err;

	(void)state;
	put_file("0001_one.up.sql", "SELECT 1;\n");
	put_file("0001_one.down.sql", "SELECT 'the down file does not count';\n");
	if (load_folder(&set, &err) != ACE_OK)
		fail_msg("%s", err.message);
	assert_int_equal(set.count, 1);
	assert_string_equal(set.items[0].checksum, digest);
	ace_migrations_release(&set);
}

static void
test_load_dir_empty_file_checksum(void **state)
{
	/* Output of: printf '' | sha256sum */
	static const char digest[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	struct ace_migration_set set;
	struct ace_error err;

	(void)state;
	put_file("0001_empty.up.sql", "");
	if (load_folder(&set, &err) != ACE_OK)
		fail_msg("%s", err.message);
	assert_int_equal(set.count, 1);
	assert_string_equal(set.items[0].up_sql, "");
	assert_string_equal(set.items[0].checksum, digest);
	ace_migrations_release(&set);
}

static void
test_load_dir_no_transaction_marker(void **state)
{
	struct ace_migration_set set;
	struct ace_error err;

	(void)state;
	put_file("0001_index.up.sql", ACE_MIGRATE_NO_TRANSACTION "\nCREATE INDEX CONCURRENTLY i ON t (a);\n");
	put_file("0002_later_marker.up.sql", "SELECT 1;\n" ACE_MIGRATE_NO_TRANSACTION "\n");
	put_file("0003_plain.up.sql", "-- an ordinary comment\nSELECT 1;\n");
	if (load_folder(&set, &err) != ACE_OK)
		fail_msg("%s", err.message);
	assert_int_equal(set.count, 3);
	assert_false(set.items[0].transactional);
	/* The marker counts only as the first line. */
	assert_true(set.items[1].transactional);
	assert_true(set.items[2].transactional);
	ace_migrations_release(&set);
}

static void
test_load_dir_empty_folder(void **state)
{
	struct ace_migration_set set;
	struct ace_error err;

	(void)state;
	assert_int_equal(load_folder(&set, &err), ACE_OK);
	assert_int_equal(set.count, 0);
	ace_migrations_release(&set);
}

static void
test_load_dir_bad_names(void **state)
{
	static const char *const names[] = {
		"0001_Upper.up.sql",
		"0001_x.sql",
		"0001_x.up.SQL.sql",
		"abc_x.up.sql",
		"0001.up.sql",
		"0001_.up.sql",
		"0001-x.up.sql",
		"0001_x.upp.sql",
		"0001_x-y.up.sql",
		"0001_x.up.sql.bak.sql",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		struct ace_migration_set set;
		struct ace_error err;
		char path[256];
		int rc;

		put_file(names[i], "SELECT 1;\n");
		rc = load_folder(&set, &err);
		ace_migrations_release(&set);
		snprintf(path, sizeof(path), "%s/%s", folder, names[i]);
		unlink(path);

		if (rc != ACE_ERR_INVALID)
			fail_msg("'%s': status %d, expected ACE_ERR_INVALID", names[i], rc);
		assert_contains(err.message, names[i]);
		assert_contains(err.message, "NNNN_name.up.sql");
	}
}

static void
test_load_dir_duplicate_version(void **state)
{
	struct ace_migration_set set;
	struct ace_error err;
	int rc;

	(void)state;
	put_file("0001_first.up.sql", "SELECT 1;\n");
	put_file("0001_second.up.sql", "SELECT 2;\n");
	rc = load_folder(&set, &err);
	ace_migrations_release(&set);
	assert_int_equal(rc, ACE_ERR_INVALID);
	assert_contains(err.message, "version 0001");
	assert_contains(err.message, "'first'");
	assert_contains(err.message, "'second'");
}

static void
test_load_dir_same_version_twice(void **state)
{
	/* Both names mean version 1 "a", and keeping only one of them would depend on readdir order. */
	struct ace_migration_set set;
	struct ace_error err;
	int rc;

	(void)state;
	put_file("0001_a.up.sql", "SELECT 1;\n");
	put_file("1_a.up.sql", "SELECT 2;\n");
	rc = load_folder(&set, &err);
	ace_migrations_release(&set);
	if (rc != ACE_ERR_INVALID)
		fail_msg("status %d, expected ACE_ERR_INVALID for two up files of version 1", rc);
	assert_contains(err.message, "version 0001");
}

static void
test_load_dir_down_without_up(void **state)
{
	struct ace_migration_set set;
	struct ace_error err;
	int rc;

	(void)state;
	put_file("0001_a.up.sql", "SELECT 1;\n");
	put_file("0002_b.down.sql", "SELECT 2;\n");
	rc = load_folder(&set, &err);
	ace_migrations_release(&set);
	assert_int_equal(rc, ACE_ERR_INVALID);
	assert_contains(err.message, "0002_b");
	assert_contains(err.message, "no up file");
}

static void
test_load_dir_missing(void **state)
{
	struct ace_migration_set set;
	struct ace_error err;

	(void)state;
	assert_int_equal(ace_migrations_load_dir(&set, "/nonexistent/migrations", &err), ACE_ERR_NOT_FOUND);
	assert_contains(err.message, "/nonexistent/migrations");
	ace_migrations_release(&set);
}

/* --- ace_migrations_load_embedded --- */

static void
sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(data, len, digest, &n, EVP_sha256(), NULL), 1);
	assert_int_equal(n, 32);
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static void
test_load_embedded(void **state)
{
	static const char *const names[] = { "performance_metrics", "context_playbooks", "performance_baselines",
	    "playbook_notify" };
	struct ace_migration_set set;
	struct ace_error err;

	(void)state;
	if (ace_migrations_load_embedded(&set, &err) != ACE_OK)
		fail_msg("%s", err.message);
	/* Later migrations join the list, so only the first ones are named here. */
	assert_true(set.count >= ARRAY_LEN(names));
	for (size_t i = 0; i < set.count; i++) {
		const struct ace_migration *m = &set.items[i];
		char digest[65];

		assert_int_equal(m->version, (long)i + 1);
		if (i < ARRAY_LEN(names))
			assert_string_equal(m->name, names[i]);
		assert_non_null(m->up_sql);
		assert_non_null(m->down_sql);
		assert_true(strlen(m->up_sql) > 0);
		assert_true(strlen(m->down_sql) > 0);
		assert_true(m->transactional);
		sha256_hex(m->up_sql, strlen(m->up_sql), digest);
		assert_string_equal(m->checksum, digest);
	}
	assert_contains(set.items[0].up_sql, "CREATE TABLE performance_metrics");
	assert_contains(set.items[0].down_sql, "DROP TABLE performance_metrics");
	ace_migrations_release(&set);
}

static void
test_embedded_files_named(void **state)
{
	(void)state;
	assert_true(ace_embedded_migrations_count > 0);
	for (size_t i = 0; i < ace_embedded_migrations_count; i++) {
		const struct ace_embedded_file *f = &ace_embedded_migrations[i];

		assert_non_null(strstr(f->name, ".sql"));
		assert_null(strchr(f->name, '/'));
		assert_int_equal(strlen(f->data), f->len);
	}
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, make_folder, remove_folder)

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_split_stops_on_error),
		cmocka_unit_test(test_split_statement_not_terminated),
		DIR_TEST(test_load_dir_pairs_sorted),
		DIR_TEST(test_load_dir_checksum),
		DIR_TEST(test_load_dir_empty_file_checksum),
		DIR_TEST(test_load_dir_no_transaction_marker),
		DIR_TEST(test_load_dir_empty_folder),
		DIR_TEST(test_load_dir_bad_names),
		DIR_TEST(test_load_dir_duplicate_version),
		DIR_TEST(test_load_dir_same_version_twice),
		DIR_TEST(test_load_dir_down_without_up),
		cmocka_unit_test(test_load_dir_missing),
		cmocka_unit_test(test_load_embedded),
		cmocka_unit_test(test_embedded_files_named),
	};
	struct CMUnitTest tests[ARRAY_LEN(split_cases) + ARRAY_LEN(fixed)];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_LEN(split_cases); i++)
		tests[n++] = (struct CMUnitTest){ split_cases[i].name, test_split_case, NULL, NULL,
		    (void *)&split_cases[i] };
	for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
		tests[n++] = fixed[i];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
