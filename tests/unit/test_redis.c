/* Unit tests of REDIS_URL parsing and the circuit breaker's state machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ace/breaker.h"
#include "ace/error.h"
#include "ace/redis.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A URL and the parts it must parse into. */
struct url_case {
	const char *name;
	const char *url;
	const char *host;
	int port;
	const char *path;
	const char *user;
	const char *password;
	long db;
};

static const struct url_case good_urls[] = {
	{ "host and port", "redis://127.0.0.1:6380", "127.0.0.1", 6380, "", "", "", 0 },
	{ "default port", "redis://cache.example.com", "cache.example.com", 6379, "", "", "", 0 },
	{ "database number", "redis://127.0.0.1:6379/7", "127.0.0.1", 6379, "", "", "", 7 },
	{ "trailing slash", "redis://127.0.0.1:6379/", "127.0.0.1", 6379, "", "", "", 0 },
	{ "password only", "redis://:s3cret@h:1/2", "h", 1, "", "", "s3cret", 2 },
	{ "user and password", "redis://app:pw@h:6379/0", "h", 6379, "", "app", "pw", 0 },
	{ "percent-encoded password", "redis://app:p%40ss%3Aw@h", "h", 6379, "", "app", "p@ss:w", 0 },
	{ "at sign in password", "redis://app:p@ss@h:2", "h", 2, "", "app", "p@ss", 0 },
	{ "IPv6 address", "redis://[::1]:6390/3", "::1", 6390, "", "", "", 3 },
	{ "IPv6 default port", "redis://[::1]", "::1", 6379, "", "", "", 0 },
	{ "unix socket", "unix:///run/redis/redis.sock", "", 0, "/run/redis/redis.sock", "", "", 0 },
	{ "unix socket with db", "unix:///tmp/r.sock?db=4", "", 0, "/tmp/r.sock", "", "", 4 },
	{ "unix socket with auth", "unix://u:pw@/tmp/r.sock", "", 0, "/tmp/r.sock", "u", "pw", 0 },
};

static void
test_url_good(void **state)
{
	const struct url_case *c = *state;
	struct ace_redis_url url;
	struct ace_error err = { 0 };

	if (ace_redis_url_parse(c->url, &url, &err) != ACE_OK)
		fail_msg("%s: %s", c->url, err.message);
	assert_string_equal(url.host, c->host);
	if (*c->host != '\0')
		assert_int_equal(url.port, c->port);
	assert_string_equal(url.path, c->path);
	assert_string_equal(url.user, c->user);
	assert_string_equal(url.password, c->password);
	assert_int_equal(url.db, c->db);
}

/* A URL that must be rejected, and a part of the expected message. */
struct bad_url_case {
	const char *name;
	const char *url;
	const char *message;
};

static const struct bad_url_case bad_urls[] = {
	{ "empty", "", "missing Redis URL" },
	{ "unknown scheme", "http://h:1", "expected redis://" },
	{ "TLS", "rediss://h:6380", "rediss:// (TLS) is not supported" },
	{ "missing host", "redis://:6379", "missing host" },
	{ "port zero", "redis://h:0", "port must be a number from 1 to 65535" },
	{ "port too large", "redis://h:65536", "port must be a number" },
	{ "port not a number", "redis://h:abc", "port must be a number" },
	{ "database not a number", "redis://h:1/x", "expected /DB" },
	{ "database negative", "redis://h:1/-1", "expected /DB" },
	{ "user without password", "redis://secret@h", "expected user:password@" },
	{ "bad percent-encoding", "redis://u:%zz@h", "bad percent-encoding" },
	{ "truncated percent-encoding", "redis://u:ab%4@h", "bad percent-encoding" },
	{ "relative unix path", "unix://tmp/r.sock", "absolute socket path" },
	{ "unknown unix parameter", "unix:///tmp/r.sock?timeout=1", "db=N" },
	{ "unclosed IPv6", "redis://[::1:6379", "missing ']'" },
};

static void
test_url_bad(void **state)
{
	const struct bad_url_case *c = *state;
	struct ace_redis_url url;
	struct ace_error err = { 0 };

	assert_int_equal(ace_redis_url_parse(c->url, &url, &err), ACE_ERR_INVALID);
	if (strstr(err.message, c->message) == NULL)
		fail_msg("%s: \"%s\" does not contain \"%s\"", c->url, err.message, c->message);
}

static void
test_url_error_hides_password(void **state)
{
	struct ace_redis_url url;
	struct ace_error err = { 0 };

	(void)state;
	assert_int_equal(ace_redis_url_parse("redis://u:hunter2@h:99999", &url, &err), ACE_ERR_INVALID);
	assert_null(strstr(err.message, "hunter2"));
}

static void
test_breaker_opens_after_threshold(void **state)
{
	struct ace_breaker *b = ace_breaker_new(3, 5.0);
	bool probe;

	(void)state;
	assert_non_null(b);
	assert_int_equal(ace_breaker_state(b), ACE_BREAKER_CLOSED);
	ace_breaker_failure(b, 1.0);
	ace_breaker_failure(b, 1.1);
	assert_int_equal(ace_breaker_state(b), ACE_BREAKER_CLOSED);
	assert_true(ace_breaker_allow(b, 1.2, &probe));
	assert_false(probe);
	ace_breaker_failure(b, 1.3);
	assert_int_equal(ace_breaker_state(b), ACE_BREAKER_OPEN);
	assert_int_equal(ace_breaker_failures(b), 3);
	assert_false(ace_breaker_allow(b, 2.0, &probe));
	assert_true(ace_breaker_retry_in(b, 2.0) > 4.2 && ace_breaker_retry_in(b, 2.0) < 4.4);
	ace_breaker_free(b);
}

static void
test_breaker_success_resets_count(void **state)
{
	struct ace_breaker *b = ace_breaker_new(2, 1.0);

	(void)state;
	ace_breaker_failure(b, 0.0);
	ace_breaker_success(b, 0.1);
	ace_breaker_failure(b, 0.2);
	assert_int_equal(ace_breaker_state(b), ACE_BREAKER_CLOSED);
	assert_int_equal(ace_breaker_failures(b), 1);
	ace_breaker_free(b);
}

static void
test_breaker_probe_closes(void **state)
{
	struct ace_breaker *b = ace_breaker_new(1, 2.0);
	bool probe;

	(void)state;
	ace_breaker_failure(b, 10.0);
	assert_false(ace_breaker_allow(b, 11.9, &probe));
	assert_true(ace_breaker_allow(b, 12.0, &probe));
	assert_true(probe);
	assert_int_equal(ace_breaker_state(b), ACE_BREAKER_HALF_OPEN);
	/* Only one probe is out at a time. */
	assert_false(ace_breaker_allow(b, 12.1, &probe));
	assert_false(probe);
	ace_breaker_success(b, 12.2);
	assert_int_equal(ace_breaker_state(b), ACE_BREAKER_CLOSED);
	assert_true(ace_breaker_allow(b, 12.3, &probe));
	assert_false(probe);
	ace_breaker_free(b);
}

static void
test_breaker_failed_probe_reopens(void **state)
{
	struct ace_breaker *b = ace_breaker_new(4, 1.0);
	bool probe;

	(void)state;
	for (int i = 0; i < 4; i++)
		ace_breaker_failure(b, 0.0);
	assert_true(ace_breaker_allow(b, 1.5, &probe));
	ace_breaker_failure(b, 1.6);
	assert_int_equal(ace_breaker_state(b), ACE_BREAKER_OPEN);
	/* The cool-down starts again from the failed probe. */
	assert_false(ace_breaker_allow(b, 2.5, &probe));
	assert_true(ace_breaker_allow(b, 2.6, &probe));
	assert_true(probe);
	ace_breaker_free(b);
}

static void
test_breaker_abandoned_probe(void **state)
{
	struct ace_breaker *b = ace_breaker_new(1, 0.0);
	bool probe;

	(void)state;
	ace_breaker_failure(b, 0.0);
	assert_true(ace_breaker_allow(b, 0.0, &probe));
	assert_true(probe);
	ace_breaker_abandon(b);
	assert_int_equal(ace_breaker_state(b), ACE_BREAKER_HALF_OPEN);
	assert_true(ace_breaker_allow(b, 0.1, &probe));
	assert_true(probe);
	ace_breaker_free(b);
}

static void
test_breaker_rejects_bad_settings(void **state)
{
	(void)state;
	assert_null(ace_breaker_new(0, 1.0));
	assert_null(ace_breaker_new(1, -1.0));
	assert_string_equal(ace_breaker_state_name(ACE_BREAKER_HALF_OPEN), "half-open");
}

static void
test_new_rejects_bad_settings(void **state)
{
	struct ace_redis_options o = {
		.url = "redis://127.0.0.1:6379/0", .max_connections = 0, .connect_timeout = 1,
		.command_timeout = 1, .breaker_failures = 1, .breaker_cooldown = 1,
	};
	struct ace_error err = { 0 };

	(void)state;
	assert_null(ace_redis_new(&o, &err));
	assert_int_equal(err.code, ACE_ERR_INVALID);
	o.max_connections = 1;
	o.url = "redis://:pw@h:0";
	assert_null(ace_redis_new(&o, &err));
	assert_int_equal(err.code, ACE_ERR_INVALID);
}

static void
test_shown_url_masks_password(void **state)
{
	struct ace_redis_options o = {
		.url = "redis://app:hunter2@127.0.0.1:6379/1", .max_connections = 2, .connect_timeout = 1,
		.command_timeout = 1, .breaker_failures = 1, .breaker_cooldown = 1,
	};
	struct ace_error err = { 0 };
	struct ace_redis *r = ace_redis_new(&o, &err);

	(void)state;
	assert_non_null(r);
	assert_string_equal(ace_redis_shown_url(r), "redis://app:***@127.0.0.1:6379/1");
	ace_redis_free(r);
}

/* A closed port fails fast with a retryable error, and the breaker opens after its threshold. */
static void
test_refused_connection_opens_breaker(void **state)
{
	struct ace_redis_options o = {
		.url = "redis://127.0.0.1:1/0", .max_connections = 2, .connect_timeout = 1,
		.command_timeout = 1, .breaker_failures = 2, .breaker_cooldown = 60,
	};
	struct ace_error err = { 0 };
	struct ace_redis *r = ace_redis_new(&o, &err);

	(void)state;
	assert_non_null(r);
	assert_null(ace_redis_checkout(r, &err));
	assert_int_equal(err.code, ACE_ERR_RETRY);
	assert_null(ace_redis_checkout(r, &err));
	assert_int_equal(ace_redis_breaker_state(r), ACE_BREAKER_OPEN);
	assert_null(ace_redis_checkout(r, &err));
	assert_int_equal(err.code, ACE_ERR_RETRY);
	assert_non_null(strstr(err.message, "circuit breaker open"));
	ace_redis_free(r);
}

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_url_error_hides_password),
		cmocka_unit_test(test_breaker_opens_after_threshold),
		cmocka_unit_test(test_breaker_success_resets_count),
		cmocka_unit_test(test_breaker_probe_closes),
		cmocka_unit_test(test_breaker_failed_probe_reopens),
		cmocka_unit_test(test_breaker_abandoned_probe),
		cmocka_unit_test(test_breaker_rejects_bad_settings),
		cmocka_unit_test(test_new_rejects_bad_settings),
		cmocka_unit_test(test_shown_url_masks_password),
		cmocka_unit_test(test_refused_connection_opens_breaker),
	};
	struct CMUnitTest tests[ARRAY_LEN(good_urls) + ARRAY_LEN(bad_urls) + ARRAY_LEN(fixed)];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_LEN(good_urls); i++)
		tests[n++] = (struct CMUnitTest){ good_urls[i].name, test_url_good, NULL, NULL,
		    (void *)&good_urls[i] };
	for (size_t i = 0; i < ARRAY_LEN(bad_urls); i++)
		tests[n++] = (struct CMUnitTest){ bad_urls[i].name, test_url_bad, NULL, NULL,
		    (void *)&bad_urls[i] };
	for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
		tests[n++] = fixed[i];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
