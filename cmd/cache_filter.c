/* The filter mode of ace-cache: NDJSON requests in, one NDJSON response each out, in order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ace/buf.h"
#include "ace/cache.h"
#include "ace/lines.h"
#include "ace/procstats.h"
#include "ace-cache.h"
#include "cli.h"

enum {
	OP_BAD,
	OP_GET,
	OP_SET,
	OP_INVALIDATE,
};

/* One parsed request line; strings are owned. */
struct filter_request {
	unsigned long long line;
	double read_at;			/* ace_monotonic() when the line was taken from the input */
	char *id;			/* the "id" member as JSON text, echoed; NULL when absent */
	int op;
	struct ace_cache_request req;
	char *agent_id;
	char *task_type;		/* NULL when absent */
	char *pattern;
	struct ace_cache_playbook playbook;
	long expect_version;		/* -1: absent */
	char error[ACE_ERROR_MAX + 64];	/* OP_BAD: why */
};

/* Counts of the responses that decide the exit status. */
struct filter_totals {
	unsigned long long invalid;
	unsigned long long unavailable;
	unsigned long long failed;
};

static void
request_release(struct filter_request *r)
{
	free(r->id);
	free(r->agent_id);
	free(r->task_type);
	free(r->pattern);
	ace_cache_playbook_release(&r->playbook);
	memset(r, 0, sizeof(*r));
}

static int
bad(struct filter_request *r, const char *fmt, const char *arg)
{
	snprintf(r->error, sizeof(r->error), fmt, arg);
	r->op = OP_BAD;
	return -1;
}

/* Copies a string member into *out; fails when it is present but not a string. */
static int
take_string(struct filter_request *r, const cJSON *doc, const char *name, char **out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, name);

	*out = NULL;
	if (item == NULL)
		return 0;
	if (!cJSON_IsString(item))
		return bad(r, "field \"%s\" is not a string", name);
	*out = strdup(item->valuestring);
	if (*out == NULL)
		return bad(r, "%s", "out of memory");
	return 0;
}

/* Checks that every member of doc is one a request may have. */
static int
check_members(struct filter_request *r, const cJSON *doc)
{
	static const char *known[] = { "id", "op", "kind", "agent_id", "task_type", "pattern",
	    "context", "metadata", "expect_version" };
	const cJSON *item;

	cJSON_ArrayForEach(item, doc) {
		bool found = false;

		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !found; i++)
			found = strcmp(item->string, known[i]) == 0;
		if (!found)
			return bad(r, "unknown field \"%.100s\"", item->string);
	}
	return 0;
}

/* Parses the members of a set request into r->playbook and r->expect_version. */
static int
parse_set(struct filter_request *r, cJSON *doc)
{
	cJSON *body = cJSON_CreateObject();
	cJSON *context = cJSON_GetObjectItemCaseSensitive(doc, "context");
	cJSON *metadata = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
	cJSON *expect = cJSON_GetObjectItemCaseSensitive(doc, "expect_version");
	struct ace_error err;
	char *text = NULL;
	int rc = 0;

	if (expect != NULL) {
		if (!cJSON_IsNumber(expect) || expect->valuedouble < 0 || expect->valuedouble > 2147483647 ||
		    expect->valuedouble != (double)(long)expect->valuedouble) {
			rc = bad(r, "%s", "field \"expect_version\" is not an integer from 0 to 2147483647");
			goto out;
		}
		r->expect_version = (long)expect->valuedouble;
	}
	if (body == NULL ||
	    (context != NULL && !cJSON_AddItemReferenceToObject(body, "context", context)) ||
	    (metadata != NULL && !cJSON_AddItemReferenceToObject(body, "metadata", metadata)) ||
	    (text = cJSON_PrintUnformatted(body)) == NULL) {
		rc = bad(r, "%s", "out of memory");
		goto out;
	}
	if (ace_cache_parse_playbook(text, strlen(text), r->agent_id, &r->playbook, &err) != ACE_OK)
		rc = bad(r, "%s", err.message);
out:
	free(text);
	cJSON_Delete(body);
	return rc;
}

/* Parses the op-specific members; r->agent_id and the rest are already taken. */
static int
parse_op(struct filter_request *r, cJSON *doc, const char *op, const char *kind)
{
	if (strcmp(op, "get") != 0 && strcmp(op, "set") != 0 && strcmp(op, "invalidate") != 0)
		return bad(r, "unknown op \"%.100s\" (expected get, set or invalidate)", op);
	if (strcmp(op, "invalidate") == 0 && r->pattern != NULL) {
		if (kind != NULL || r->agent_id != NULL)
			return bad(r, "%s", "\"pattern\" excludes \"kind\" and \"agent_id\"");
		r->op = OP_INVALIDATE;
		return 0;
	}
	if (r->pattern != NULL)
		return bad(r, "%s", "field \"pattern\" is for invalidate only");
	if (kind == NULL)
		return bad(r, "%s", "missing field \"kind\" (playbook or baseline)");
	if (strcmp(kind, "playbook") == 0)
		r->req.kind = ACE_CACHE_PLAYBOOK;
	else if (strcmp(kind, "baseline") == 0)
		r->req.kind = ACE_CACHE_BASELINE;
	else
		return bad(r, "unknown kind \"%.100s\" (expected playbook or baseline)", kind);
	if (r->agent_id == NULL)
		return bad(r, "%s", "missing field \"agent_id\"");
	r->req.agent_id = r->agent_id;
	r->req.task_type = r->task_type;
	if (r->req.kind == ACE_CACHE_PLAYBOOK && r->task_type != NULL)
		return bad(r, "%s", "field \"task_type\" is for baselines only");
	if (strcmp(op, "get") == 0) {
		if (r->req.kind == ACE_CACHE_BASELINE && r->task_type == NULL)
			return bad(r, "%s", "missing field \"task_type\" (\"\" for baselines without one)");
		r->op = OP_GET;
	} else if (strcmp(op, "set") == 0) {
		if (r->req.kind != ACE_CACHE_PLAYBOOK)
			return bad(r, "%s", "only playbooks can be set");
		r->op = OP_SET;
		return parse_set(r, doc);
	} else {
		r->op = OP_INVALIDATE;
	}
	if ((cJSON_GetObjectItemCaseSensitive(doc, "context") ||
	    cJSON_GetObjectItemCaseSensitive(doc, "metadata") ||
	    cJSON_GetObjectItemCaseSensitive(doc, "expect_version")))
		return bad(r, "%s", "fields \"context\", \"metadata\" and \"expect_version\" are for set only");
	return 0;
}

/* Parses one request line; a bad one becomes OP_BAD with the reason. */
static void
parse_request(struct filter_request *r, const char *line, size_t len, unsigned long long number)
{
	cJSON *doc;
	const cJSON *id;
	char *op = NULL, *kind = NULL;

	memset(r, 0, sizeof(*r));
	r->line = number;
	r->expect_version = -1;
	doc = cJSON_ParseWithLength(line, len);
	if (doc == NULL || !cJSON_IsObject(doc)) {
		if (len == 0)
			bad(r, "%s", "empty line");
		else if (doc == NULL)
			bad(r, "%s", "invalid JSON");
		else
			bad(r, "%s", "expected a JSON object");
		cJSON_Delete(doc);
		return;
	}
	id = cJSON_GetObjectItemCaseSensitive(doc, "id");
	if (id != NULL)
		r->id = cJSON_PrintUnformatted(id);
	if (check_members(r, doc) == 0 && take_string(r, doc, "op", &op) == 0 &&
	    take_string(r, doc, "kind", &kind) == 0 &&
	    take_string(r, doc, "agent_id", &r->agent_id) == 0 &&
	    take_string(r, doc, "task_type", &r->task_type) == 0 &&
	    take_string(r, doc, "pattern", &r->pattern) == 0) {
		if (op == NULL)
			bad(r, "%s", "missing field \"op\" (get, set or invalidate)");
		else
			parse_op(r, doc, op, kind);
	}
	free(op);
	free(kind);
	cJSON_Delete(doc);
}

static const char *
status_word(int code)
{
	switch (code) {
	case ACE_OK: return "ok";
	case ACE_ERR_NOT_FOUND: return "not_found";
	case ACE_ERR_CONFLICT: return "conflict";
	case ACE_ERR_INVALID:
	case ACE_ERR_DATA: return "invalid";
	case ACE_ERR_RETRY:
	case ACE_ERR_TIMEOUT: return "unavailable";
	}
	return "error";
}

static void
count_answer(struct filter_totals *t, int code)
{
	if (code == ACE_ERR_INVALID || code == ACE_ERR_DATA)
		t->invalid++;
	else if (code == ACE_ERR_RETRY || code == ACE_ERR_TIMEOUT)
		t->unavailable++;
	else if (code != ACE_OK && code != ACE_ERR_NOT_FOUND && code != ACE_ERR_CONFLICT)
		t->failed++;
}

/* Starts a response object: the echoed id and the status. */
static void
begin_response(struct ace_buf *out, const struct filter_request *r, int code)
{
	ace_buf_putc(out, '{');
	if (r->id != NULL)
		ace_buf_printf(out, "\"id\":%s,", r->id);
	ace_buf_printf(out, "\"status\":\"%s\"", status_word(code));
}

static void
put_error(struct ace_buf *out, const struct filter_request *r, const char *message)
{
	char text[ACE_ERROR_MAX + 64];

	snprintf(text, sizeof(text), "line %llu: %s", r->line, message);
	ace_buf_puts(out, ",\"error\":");
	ace_buf_put_json_string(out, text, strlen(text), NULL);
}

static void
answer_get(struct ace_buf *out, const struct filter_request *r, const struct ace_cache_result *res,
    struct filter_totals *t)
{
	begin_response(out, r, res->status);
	if (res->status == ACE_OK || res->status == ACE_ERR_NOT_FOUND)
		ace_buf_printf(out, ",\"source\":\"%s\"",
		    res->source == ACE_CACHE_FROM_REDIS ? "redis" : "postgresql");
	if (res->status == ACE_OK) {
		/* puts, not printf: a printf of a value of kilobytes is a hot spot of the filter. */
		ace_buf_puts(out, ",\"value\":");
		ace_buf_puts(out, res->value);
	}
	else if (res->status != ACE_ERR_NOT_FOUND)
		put_error(out, r, res->err.message);
	ace_buf_puts(out, "}\n");
	count_answer(t, res->status);
}

static void
answer_set(struct cli_clients *cl, struct ace_buf *out, const struct filter_request *r,
    struct filter_totals *t)
{
	struct ace_error err, cache_err;
	char *value = NULL;
	int rc = ace_cache_set_playbook(cl->cache, r->agent_id, &r->playbook, r->expect_version,
	    &value, &cache_err, &err);

	begin_response(out, r, rc);
	if (rc == ACE_OK) {
		ace_buf_printf(out, ",\"cache_updated\":%s,\"value\":",
		    cache_err.code == ACE_OK ? "true" : "false");
		ace_buf_puts(out, value);
	}
	else
		put_error(out, r, err.message);
	ace_buf_puts(out, "}\n");
	count_answer(t, rc);
	free(value);
}

static void
answer_invalidate(struct cli_clients *cl, struct ace_buf *out, const struct filter_request *r,
    struct filter_totals *t)
{
	struct ace_error err;
	long long removed = 0;
	int rc = r->pattern != NULL ?
	    ace_cache_invalidate_pattern(cl->cache, r->pattern, &removed, &err) :
	    ace_cache_invalidate(cl->cache, &r->req, &removed, &err);

	begin_response(out, r, rc);
	if (rc == ACE_OK)
		ace_buf_printf(out, ",\"removed\":%lld", removed);
	else
		put_error(out, r, err.message);
	ace_buf_puts(out, "}\n");
	count_answer(t, rc);
}

/*
 * Writes the responses to requests[0..n) in order.  Runs of gets share one
 * pipeline, and set and invalidate run alone.
 */
static void
answer_chunk(struct cli_clients *cl, struct filter_request *rs, size_t n, struct ace_buf *out,
    struct filter_totals *t)
{
	struct ace_cache_request *reqs = calloc(n, sizeof(*reqs));
	struct ace_cache_result *results = calloc(n, sizeof(*results));

	if (reqs == NULL || results == NULL) {
		cli_error("out of memory");
		exit(EXIT_SOFTWARE);
	}
	for (size_t i = 0; i < n;) {
		size_t j = i;

		if (rs[i].op == OP_BAD) {
			begin_response(out, &rs[i], ACE_ERR_INVALID);
			put_error(out, &rs[i], rs[i].error);
			ace_buf_puts(out, "}\n");
			t->invalid++;
			i++;
			continue;
		}
		if (rs[i].op == OP_SET) {
			answer_set(cl, out, &rs[i++], t);
			continue;
		}
		if (rs[i].op == OP_INVALIDATE) {
			answer_invalidate(cl, out, &rs[i++], t);
			continue;
		}
		while (j < n && rs[j].op == OP_GET) {
			reqs[j - i] = rs[j].req;
			j++;
		}
		ace_cache_get(cl->cache, reqs, j - i, results);
		for (size_t k = i; k < j; k++) {
			answer_get(out, &rs[k], &results[k - i], t);
			ace_cache_result_release(&results[k - i]);
		}
		i = j;
	}
	free(reqs);
	free(results);
}

/*
 * Counts, per op, the seconds from reading each request of a chunk to
 * answered_at, when the chunk's responses were written.  A request waits
 * for the requests before it in its chunk, because the gets of a run share
 * one Redis pipeline and all responses are written together.  Invalid
 * requests are not counted.
 * NOTE: time spent in the pipe, or in the read buffer while an earlier full
 * chunk was processed, is not counted, so a backlog of input is not visible.
 */
static void
observe_durations(struct figures *f, const struct filter_request *rs, size_t n, double answered_at)
{
	for (size_t i = 0; i < n; i++) {
		double seconds = answered_at - rs[i].read_at;

		switch (rs[i].op) {
		case OP_GET: ace_histogram_observe(&f->get, seconds); break;
		case OP_SET: ace_histogram_observe(&f->set, seconds); break;
		case OP_INVALIDATE: ace_histogram_observe(&f->invalidate, seconds); break;
		}
	}
}

/*
 * Reads requests from standard input and writes a response to each, until
 * the input ends or a signal arrives.  figures is NULL when no stats file
 * is written.
 */
int
run_filter(struct cli_clients *cl, struct figures *figures)
{
	size_t max = (size_t)cl->cfg.cache_pipeline_size;
	struct filter_request *rs = calloc(max, sizeof(*rs));
	struct ace_lines *lines = ace_lines_new(STDIN_FILENO, (size_t)cl->cfg.max_line_bytes);
	struct ace_buf out = ACE_BUF_INIT;
	struct filter_totals t = { 0 };
	bool eof = false, input_failed = false, output_failed = false;

	if (rs == NULL || lines == NULL) {
		cli_error("out of memory");
		return EXIT_SOFTWARE;
	}
	ace_lines_set_wake_fd(lines, wake_pipe[0]);
	while (!eof && !stop_requested && !output_failed) {
		size_t n = 0;
		double timeout = -1;	/* the first line of a chunk may take as long as it takes */

		while (n < max) {
			const char *line;
			size_t len;
			int rc = ace_lines_next(lines, timeout, &line, &len);

			if (rc == ACE_LINES_OK) {
				parse_request(&rs[n], line, len, ace_lines_number(lines));
			} else if (rc == ACE_LINES_TOO_LONG) {
				char reason[128];

				memset(&rs[n], 0, sizeof(rs[n]));
				rs[n].line = ace_lines_number(lines);
				snprintf(reason, sizeof(reason), "line is %zu bytes long, more than the maximum of %ld",
				    len, cl->cfg.max_line_bytes);
				bad(&rs[n], "%s", reason);
			} else {
				if (rc == ACE_LINES_EOF)
					eof = true;
				else if (rc == ACE_LINES_ERROR) {
					cli_error("cannot read standard input: %s", strerror(errno));
					input_failed = eof = true;
				}
				break;	/* a timeout: answer what has arrived */
			}
			rs[n].read_at = ace_monotonic();
			n++;
			timeout = 0;
		}
		answer_chunk(cl, rs, n, &out, &t);
		if (out.len > 0 && (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0)) {
			cli_error("cannot write to standard output: %s", strerror(errno));
			output_failed = true;
		} else if (figures != NULL) {
			observe_durations(figures, rs, n, ace_monotonic());
		}
		for (size_t i = 0; i < n; i++)
			request_release(&rs[i]);
		ace_buf_reset(&out);
	}
	ace_buf_release(&out);
	ace_lines_free(lines);
	free(rs);
	if (output_failed || input_failed)
		return EXIT_IOERR;
	if (t.unavailable > 0)
		return EXIT_UNAVAILABLE;
	if (t.failed > 0)
		return EXIT_SOFTWARE;
	return t.invalid > 0 ? EXIT_DATAERR : EXIT_OK;
}
