/* Unit tests of cache key formatting, TTL jitter, glob escaping and playbook documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ace/cache.h"
#include "ace/error.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void
test_key_playbook(void **state)
{
	struct ace_cache_request req = { ACE_CACHE_PLAYBOOK, "agent-7", NULL };
	char key[ACE_CACHE_KEY_MAX];
	struct ace_error err = { 0 };

	(void)state;
	assert_int_equal(ace_cache_key(&req, key, sizeof(key), &err), ACE_OK);
	assert_string_equal(key, "ace:playbook:agent-7");
}

static void
test_key_baseline(void **state)
{
	struct ace_cache_request req = { ACE_CACHE_BASELINE, "agent-7", "refund" };
	char key[ACE_CACHE_KEY_MAX];
	struct ace_error err = { 0 };

	(void)state;
	assert_int_equal(ace_cache_key(&req, key, sizeof(key), &err), ACE_OK);
	assert_string_equal(key, "ace:baseline:agent-7:refund");
	req.task_type = "";
	assert_int_equal(ace_cache_key(&req, key, sizeof(key), &err), ACE_OK);
	assert_string_equal(key, "ace:baseline:agent-7:");
	req.task_type = NULL;
	assert_int_equal(ace_cache_key(&req, key, sizeof(key), &err), ACE_OK);
	assert_string_equal(key, "ace:baseline:agent-7:");
}

static void
test_key_lengths_in_characters(void **state)
{
	struct ace_cache_request req = { ACE_CACHE_BASELINE, NULL, NULL };
	char agent[255 * 4 + 8], task[100 * 4 + 8];
	char key[ACE_CACHE_KEY_MAX];
	struct ace_error err = { 0 };

	(void)state;
	/* 255 four-byte characters fit; the limit counts characters, as the schema does. */
	for (int i = 0; i < 255; i++)
		memcpy(agent + 4 * i, "\xf0\x9f\x98\x80", 4);
	agent[255 * 4] = '\0';
	for (int i = 0; i < 100; i++)
		memcpy(task + 4 * i, "\xf0\x9f\x98\x80", 4);
	task[100 * 4] = '\0';
	req.agent_id = agent;
	req.task_type = task;
	assert_int_equal(ace_cache_key(&req, key, sizeof(key), &err), ACE_OK);
	assert_int_equal(strlen(key), strlen("ace:baseline::") + 255 * 4 + 100 * 4);

	memset(agent, 'a', 256);
	agent[256] = '\0';
	assert_int_equal(ace_cache_key(&req, key, sizeof(key), &err), ACE_ERR_INVALID);
	assert_string_equal(err.message, "agent_id is longer than 255 characters");

	agent[255] = '\0';
	memset(task, 't', 101);
	task[101] = '\0';
	assert_int_equal(ace_cache_key(&req, key, sizeof(key), &err), ACE_ERR_INVALID);
	assert_string_equal(err.message, "task_type is longer than 100 characters");
}

/* An agent id or task type that must be rejected, and the message. */
struct bad_key_case {
	const char *name;
	int kind;
	const char *agent_id;
	const char *task_type;
	const char *message;
};

static const struct bad_key_case bad_keys[] = {
	{ "empty agent", ACE_CACHE_PLAYBOOK, "", NULL, "agent_id is empty" },
	{ "missing agent", ACE_CACHE_PLAYBOOK, NULL, NULL, "agent_id is empty" },
	{ "newline in agent", ACE_CACHE_PLAYBOOK, "a\nb", NULL, "agent_id contains a control character" },
	{ "DEL in agent", ACE_CACHE_PLAYBOOK, "a\x7f", NULL, "agent_id contains a control character" },
	{ "tab in task type", ACE_CACHE_BASELINE, "a", "x\ty", "task_type contains a control character" },
	{ "unknown kind", 9, "a", NULL, "unknown kind 9" },
};

static void
test_key_bad(void **state)
{
	const struct bad_key_case *c = *state;
	struct ace_cache_request req = { c->kind, c->agent_id, c->task_type };
	char key[ACE_CACHE_KEY_MAX];
	struct ace_error err = { 0 };

	assert_int_equal(ace_cache_key(&req, key, sizeof(key), &err), ACE_ERR_INVALID);
	assert_string_equal(err.message, c->message);
}

static void
test_key_too_small_buffer(void **state)
{
	struct ace_cache_request req = { ACE_CACHE_PLAYBOOK, "agent-7", NULL };
	char key[10];
	struct ace_error err = { 0 };

	(void)state;
	assert_int_equal(ace_cache_key(&req, key, sizeof(key), &err), ACE_ERR_INVALID);
}

static void
test_ttl_without_jitter(void **state)
{
	(void)state;
	assert_int_equal(ace_cache_ttl_ms(600, 0, 0.0), 600000);
	assert_int_equal(ace_cache_ttl_ms(600, 0, 0.999), 600000);
	assert_int_equal(ace_cache_ttl_ms(600, 10, 0.0), 600000);
}

static void
test_ttl_jitter_bounds(void **state)
{
	static const int ttls[] = { 1, 30, 600, 3600, 31536000 };
	static const int percents[] = { 1, 10, 50, 90 };

	(void)state;
	for (size_t t = 0; t < ARRAY_LEN(ttls); t++) {
		for (size_t p = 0; p < ARRAY_LEN(percents); p++) {
			long long full = (long long)ttls[t] * 1000;
			long long low = full - full * percents[p] / 100;

			for (int i = 0; i < 1000; i++) {
				double u = i / 1000.0;
				long long ms = ace_cache_ttl_ms(ttls[t], percents[p], u);

				if (ms < low || ms > full || ms < 1)
					fail_msg("ttl %d s, jitter %d%%, u %.3f: %lld ms outside [%lld, %lld]",
					    ttls[t], percents[p], u, ms, low, full);
			}
			/* The largest u below 1 still stays within the bound. */
			assert_true(ace_cache_ttl_ms(ttls[t], percents[p], 0.9999999999) >= low);
		}
	}
}

static void
test_ttl_jitter_spreads(void **state)
{
	long long first = ace_cache_ttl_ms(600, 10, 0.1);
	long long second = ace_cache_ttl_ms(600, 10, 0.7);

	(void)state;
	assert_int_equal(first, 594000);
	assert_int_equal(second, 558000);
}

static void
test_escape_glob(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(ace_cache_escape_glob("plain-agent", out, sizeof(out)), 0);
	assert_string_equal(out, "plain-agent");
	assert_int_equal(ace_cache_escape_glob("a*b?c[d]e\\f", out, sizeof(out)), 0);
	assert_string_equal(out, "a\\*b\\?c\\[d\\]e\\\\f");
	assert_int_equal(ace_cache_escape_glob("****", out, 8), -1);
	assert_int_equal(ace_cache_escape_glob("***", out, 7), 0);
	assert_string_equal(out, "\\*\\*\\*");
}

/* A playbook document and what parsing it must give. */
struct playbook_case {
	const char *name;
	const char *json;
	int code;
	const char *context;	/* or the error message when code is not ACE_OK */
	const char *metadata;
};

static const struct playbook_case playbooks[] = {
	{ "context only", "{\"context\":{\"steps\":[1,2]}}", ACE_OK, "{\"steps\":[1,2]}", "{}" },
	{ "context and metadata", "{\"context\":\"be brief\",\"metadata\":{\"by\":\"ops\"}}", ACE_OK,
	    "\"be brief\"", "{\"by\":\"ops\"}" },
	{ "value read back", "{\"playbook_id\":4,\"agent_id\":\"a1\",\"version\":3,\"context\":[1],"
	    "\"metadata\":{},\"created_at\":\"x\",\"updated_at\":\"y\"}", ACE_OK, "[1]", "{}" },
	{ "invalid JSON", "{\"context\":", ACE_ERR_INVALID, "invalid JSON", NULL },
	{ "not an object", "[1]", ACE_ERR_INVALID, "expected a JSON object with \"context\"", NULL },
	{ "missing context", "{\"metadata\":{}}", ACE_ERR_INVALID, "missing field \"context\"", NULL },
	{ "null context", "{\"context\":null}", ACE_ERR_INVALID, "field \"context\" is null", NULL },
	{ "metadata not an object", "{\"context\":1,\"metadata\":[]}", ACE_ERR_INVALID,
	    "field \"metadata\" is not an object", NULL },
	{ "other agent", "{\"agent_id\":\"a2\",\"context\":1}", ACE_ERR_INVALID,
	    "field \"agent_id\" differs from the agent being written, 'a1'", NULL },
	{ "unknown field", "{\"context\":1,\"contxt\":2}", ACE_ERR_INVALID,
	    "unknown field \"contxt\" (expected context and metadata)", NULL },
	{ "context twice", "{\"context\":1,\"context\":2}", ACE_ERR_INVALID,
	    "field \"context\" appears twice", NULL },
};

static void
test_parse_playbook(void **state)
{
	const struct playbook_case *c = *state;
	struct ace_cache_playbook pb;
	struct ace_error err = { 0 };
	int rc = ace_cache_parse_playbook(c->json, strlen(c->json), "a1", &pb, &err);

	assert_int_equal(rc, c->code);
	if (rc != ACE_OK) {
		assert_string_equal(err.message, c->context);
		assert_null(pb.context);
		assert_null(pb.metadata);
		return;
	}
	assert_string_equal(pb.context, c->context);
	assert_string_equal(pb.metadata, c->metadata);
	ace_cache_playbook_release(&pb);
}

static void
test_new_rejects_bad_settings(void **state)
{
	struct ace_cache_options o = { 0 };
	struct ace_error err = { 0 };

	(void)state;
	assert_null(ace_cache_new(&o, &err));
	assert_int_equal(err.code, ACE_ERR_INVALID);
}

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_key_playbook),
		cmocka_unit_test(test_key_baseline),
		cmocka_unit_test(test_key_lengths_in_characters),
		cmocka_unit_test(test_key_too_small_buffer),
		cmocka_unit_test(test_ttl_without_jitter),
		cmocka_unit_test(test_ttl_jitter_bounds),
		cmocka_unit_test(test_ttl_jitter_spreads),
		cmocka_unit_test(test_escape_glob),
		cmocka_unit_test(test_new_rejects_bad_settings),
	};
	struct CMUnitTest tests[ARRAY_LEN(bad_keys) + ARRAY_LEN(playbooks) + ARRAY_LEN(fixed)];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_LEN(bad_keys); i++)
		tests[n++] = (struct CMUnitTest){ bad_keys[i].name, test_key_bad, NULL, NULL,
		    (void *)&bad_keys[i] };
	for (size_t i = 0; i < ARRAY_LEN(playbooks); i++)
		tests[n++] = (struct CMUnitTest){ playbooks[i].name, test_parse_playbook, NULL, NULL,
		    (void *)&playbooks[i] };
	for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
		tests[n++] = fixed[i];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
