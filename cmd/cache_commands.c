/* The one-shot commands of ace-cache (get, set, invalidate, warm, stats) and listen. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/buf.h"
#include "ace/cache.h"
#include "ace-cache.h"
#include "cli.h"

/* Maps a libace status to the exit status of a one-shot command. */
static int
exit_status_for(int code)
{
	switch (code) {
	case ACE_OK: return EXIT_OK;
	case ACE_ERR_NOT_FOUND: return EXIT_NOT_FOUND;
	case ACE_ERR_CONFLICT: return EXIT_CONFLICT;
	case ACE_ERR_INVALID:
	case ACE_ERR_DATA: return EXIT_DATAERR;
	case ACE_ERR_RETRY:
	case ACE_ERR_TIMEOUT: return EXIT_UNAVAILABLE;
	}
	return EXIT_SOFTWARE;
}

/* Returns what to do after an error: run the migrations when a table is missing (SQLSTATE 42P01). */
static const char *
hint(const char *message)
{
	return strstr(message, "SQLSTATE 42P01") != NULL ? "; run 'ace-migrate up' first" : "";
}

/* Parses "playbook" or "baseline". */
static int
parse_kind(const char *command, const char *word)
{
	if (word == NULL)
		cli_usage_error("%s: missing kind (playbook or baseline)", command);
	if (strcmp(word, "playbook") == 0)
		return ACE_CACHE_PLAYBOOK;
	if (strcmp(word, "baseline") == 0)
		return ACE_CACHE_BASELINE;
	cli_usage_error("%s: unknown kind '%s' (expected playbook or baseline)", command, word);
}

/* Describes a request for messages: "playbook of 'a1'" or "baseline of 'a1' for task type 't'". */
static void
describe(const struct ace_cache_request *req, char *out, size_t len)
{
	if (req->kind == ACE_CACHE_PLAYBOOK)
		snprintf(out, len, "playbook of '%.300s'", req->agent_id);
	else if (req->task_type == NULL)
		snprintf(out, len, "baselines of '%.300s'", req->agent_id);
	else
		snprintf(out, len, "baseline of '%.300s' for task type '%.200s'", req->agent_id, req->task_type);
}

/* --- get, set, invalidate, warm, stats ------------------------------------------- */

int
run_get(struct cli_clients *cl, int argc, char **argv)
{
	struct ace_cache_request req = { 0 };
	struct ace_cache_result res;
	char what[600];
	int status;

	req.kind = parse_kind("get", argc > 1 ? argv[1] : NULL);
	if (argc < 3)
		cli_usage_error("get: missing AGENT");
	if (req.kind == ACE_CACHE_BASELINE && argc < 4)
		cli_usage_error("get baseline: missing TASK_TYPE ('' for baselines without one)");
	if (argc > (req.kind == ACE_CACHE_BASELINE ? 4 : 3))
		cli_usage_error("get: unexpected argument '%s'", argv[req.kind == ACE_CACHE_BASELINE ? 4 : 3]);
	req.agent_id = argv[2];
	req.task_type = req.kind == ACE_CACHE_BASELINE ? argv[3] : NULL;
	describe(&req, what, sizeof(what));

	ace_cache_get(cl->cache, &req, 1, &res);
	/* An invalid agent id or task type came from the command line. */
	status = res.status == ACE_ERR_INVALID ? EXIT_USAGE : exit_status_for(res.status);
	if (res.status == ACE_OK)
		printf("%s\n", res.value);
	else if (res.status == ACE_ERR_NOT_FOUND)
		cli_error("%s: not found", what);
	else
		cli_error("cannot get the %s: %s%s", what, res.err.message, hint(res.err.message));
	ace_cache_result_release(&res);
	return status;
}

/* Reads a whole file (or standard input for NULL or "-") into buf. */
static int
read_document(const char *path, struct ace_buf *buf)
{
	FILE *fp = path == NULL || strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char chunk[65536];
	size_t n;

	if (fp == NULL) {
		cli_error("cannot open '%s': %s", path, strerror(errno));
		return EXIT_NOINPUT;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (ace_buf_append(buf, chunk, n) < 0) {
			cli_error("out of memory");
			return EXIT_SOFTWARE;
		}
	}
	if (ferror(fp)) {
		cli_error("cannot read '%s': %s", fp == stdin ? "<stdin>" : path, strerror(errno));
		return EXIT_IOERR;
	}
	if (fp != stdin)
		fclose(fp);
	return EXIT_OK;
}

int
run_set(struct cli_clients *cl, const struct options *o, int argc, char **argv)
{
	struct ace_buf doc = ACE_BUF_INIT;
	struct ace_cache_playbook playbook;
	struct ace_error err, cache_err;
	const char *agent, *path;
	char *value = NULL;
	int status, rc;

	if (parse_kind("set", argc > 1 ? argv[1] : NULL) != ACE_CACHE_PLAYBOOK)
		cli_usage_error("set: only playbooks can be set; baselines come from ace-stats");
	if (argc < 3)
		cli_usage_error("set: missing AGENT");
	if (argc > 4)
		cli_usage_error("set: unexpected argument '%s'", argv[4]);
	agent = argv[2];
	path = argc == 4 ? argv[3] : NULL;

	status = read_document(path, &doc);
	if (status != EXIT_OK)
		goto out;
	if (ace_cache_parse_playbook(doc.data ? doc.data : "", doc.len, agent, &playbook, &err) != ACE_OK) {
		cli_error("%s: %s", path && strcmp(path, "-") != 0 ? path : "<stdin>", err.message);
		status = EXIT_DATAERR;
		goto out;
	}
	rc = ace_cache_set_playbook(cl->cache, agent, &playbook, o->expect_version, &value,
	    &cache_err, &err);
	ace_cache_playbook_release(&playbook);
	if (rc != ACE_OK) {
		cli_error("cannot set the playbook of '%s': %s%s", agent, err.message, hint(err.message));
		status = exit_status_for(rc);
		goto out;
	}
	printf("%s\n", value);
	if (cache_err.code != ACE_OK) {
		cli_error("playbook of '%s' written to postgresql, but redis was not updated: %s",
		    agent, cache_err.message);
		status = EXIT_TEMPFAIL;
	}
out:
	free(value);
	ace_buf_release(&doc);
	return status;
}

int
run_invalidate(struct cli_clients *cl, const struct options *o, int argc, char **argv)
{
	struct ace_cache_request req = { 0 };
	struct ace_error err;
	long long removed = 0;
	char what[600];
	int rc;

	if (o->pattern != NULL) {
		if (argc > 1)
			cli_usage_error("invalidate: --pattern takes no other argument, found '%s'", argv[1]);
		rc = ace_cache_invalidate_pattern(cl->cache, o->pattern, &removed, &err);
		snprintf(what, sizeof(what), "keys matching '%.500s'", o->pattern);
	} else {
		req.kind = parse_kind("invalidate", argc > 1 ? argv[1] : NULL);
		if (argc < 3)
			cli_usage_error("invalidate: missing AGENT");
		if (argc > (req.kind == ACE_CACHE_BASELINE ? 4 : 3))
			cli_usage_error("invalidate: unexpected argument '%s'",
			    argv[req.kind == ACE_CACHE_BASELINE ? 4 : 3]);
		req.agent_id = argv[2];
		req.task_type = argc == 4 ? argv[3] : NULL;
		describe(&req, what, sizeof(what));
		rc = ace_cache_invalidate(cl->cache, &req, &removed, &err);
	}
	if (rc != ACE_OK) {
		cli_error("cannot invalidate the %s: %s", what, err.message);
		return rc == ACE_ERR_INVALID ? EXIT_USAGE : exit_status_for(rc);
	}
	printf("%lld\n", removed);
	return EXIT_OK;
}

int
run_warm(struct cli_clients *cl)
{
	struct ace_cache_warm_result w;
	struct ace_error err;
	int rc = ace_cache_warm(cl->cache, &w, &err);

	if (rc != ACE_OK) {
		cli_error("cannot warm the cache: %s%s (stored %lld playbooks and %lld baselines before that)",
		    err.message, hint(err.message), w.playbooks, w.baselines);
		return exit_status_for(rc);
	}
	printf("playbooks: %lld, baselines: %lld, seconds: %.3f\n", w.playbooks, w.baselines, w.seconds);
	return EXIT_OK;
}

int
run_stats(struct cli_clients *cl, const struct options *o)
{
	struct ace_cache_stats st;
	struct ace_error err;
	double rate;
	int rc = ace_cache_stats(cl->cache, &st, &err);

	if (rc != ACE_OK) {
		cli_error("cannot read cache statistics: %s", err.message);
		return exit_status_for(rc);
	}
	rate = st.gets > 0 ? (double)st.hits / (double)st.gets : 0;
	if (o->json) {
		printf("{\"hits\":%lld,\"misses\":%lld,\"hit_rate\":%.4f,\"loads\":%lld,\"keys\":%lld,"
		    "\"playbook_keys\":%lld,\"baseline_keys\":%lld}\n", st.hits, st.misses, rate,
		    st.loads, st.playbook_keys + st.baseline_keys, st.playbook_keys, st.baseline_keys);
	} else {
		printf("hits %lld\nmisses %lld\nhit_rate %.4f\nloads %lld\nkeys %lld\n"
		    "playbook_keys %lld\nbaseline_keys %lld\n", st.hits, st.misses, rate, st.loads,
		    st.playbook_keys + st.baseline_keys, st.playbook_keys, st.baseline_keys);
	}
	return EXIT_OK;
}

/* --- listen ---------------------------------------------------------------------- */

static void
print_key(void *ctx, const char *key)
{
	(void)ctx;
	if (key == NULL)
		return;
	printf("%s\n", key);
	fflush(stdout);
}

int
run_listen(struct cli_clients *cl)
{
	struct ace_cache_listen_options lo = {
		.conninfo = cl->cfg.database_url,
		.connect_timeout = cl->cfg.connect_timeout,
		.stop = &stop_requested,
		.wake_fd = wake_pipe[0],
		.on_key = print_key,
	};
	struct ace_error err;

	if (ace_cache_listen(cl->cache, &lo, &err) != ACE_OK) {
		cli_error("cannot listen for playbook changes: %s", err.message);
		return err.code == ACE_ERR_INVALID ? EXIT_CONFIG : exit_status_for(err.code);
	}
	return EXIT_OK;
}
