/*
 * ace-cache: serves agent playbooks and performance baselines from Redis,
 * reading through to PostgreSQL on a miss.  It has one-shot commands (get,
 * set, invalidate, warm, stats) and a long-running listen.  With no command
 * it is a filter of NDJSON requests to NDJSON responses, pipelined to Redis.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ace/breaker.h"
#include "ace/buf.h"
#include "ace/cache.h"
#include "ace/config.h"
#include "ace/lines.h"
#include "ace/log.h"
#include "ace/pool.h"
#include "ace/procstats.h"
#include "ace/redis.h"
#include "cli.h"

#ifndef ACE_VERSION
#define ACE_VERSION "0.1.0"
#endif

/* Statuses of ace-cache besides the sysexits ones in cli.h. */
enum {
	EXIT_NOT_FOUND = 1,	/* PostgreSQL has no such playbook or baseline */
	EXIT_CONFLICT = 2,	/* --expect-version differs from the current version */
};

static const char usage_text[] =
"Usage: ace-cache [OPTION]... [filter]\n"
"   or: ace-cache [OPTION]... get playbook AGENT\n"
"   or: ace-cache [OPTION]... get baseline AGENT TASK_TYPE\n"
"   or: ace-cache [OPTION]... set playbook AGENT [FILE]\n"
"   or: ace-cache [OPTION]... invalidate playbook AGENT\n"
"   or: ace-cache [OPTION]... invalidate baseline AGENT [TASK_TYPE]\n"
"   or: ace-cache [OPTION]... invalidate --pattern PATTERN\n"
"   or: ace-cache [OPTION]... warm | stats | listen\n"
"Serve agent playbooks and baselines from Redis, read through from PostgreSQL.\n"
"\n"
"Commands:\n"
"  filter        read NDJSON requests on standard input, write one NDJSON response\n"
"                per request, in order (the default without a command)\n"
"  get           print the value as JSON; load and cache it on a miss\n"
"  set           write a new playbook version from FILE (or standard input), an\n"
"                object with \"context\" and optional \"metadata\"; print it\n"
"  invalidate    remove keys from Redis and print how many existed\n"
"  warm          store every current playbook and baseline in Redis\n"
"  stats         print hits, misses, hit rate and key counts of ace's keys\n"
"  listen        remove a playbook's key whenever its rows change in PostgreSQL,\n"
"                printing each key removed, until SIGINT or SIGTERM\n"
"\n"
"Options:\n"
"  -c, --config FILE          read settings from FILE (default: $ACE_CONFIG)\n"
"  -d, --database-url URL     PostgreSQL URI or key/value string (default: $DATABASE_URL,\n"
"                             then libpq's PG* variables)\n"
"  -r, --redis-url URL        redis://[user:password@]host:port/db or\n"
"                             unix:///path?db=N (default: $REDIS_URL,\n"
"                             then redis://127.0.0.1:6379/0)\n"
"  -e, --expect-version N     set: write only if the current version is N\n"
"                             (0: only if the agent has no playbook yet)\n"
"  -p, --pattern PATTERN      invalidate: remove the playbook and baseline keys\n"
"                             that match a Redis glob starting with 'ace:'\n"
"  -t, --command-timeout SECS\n"
"                             maximum wait for one Redis reply (default 0.5;\n"
"                             units ms, s, m, h accepted)\n"
"      --json                 stats: print one JSON object\n"
"      --log-level LEVEL      error, warning, notice, info or debug (default info)\n"
"      --log-format FORMAT    logfmt or json (default logfmt)\n"
"  -h, --help                 show this help and exit\n"
"  -V, --version              show the version and exit\n"
"\n"
"Exit status:\n"
"  0   success\n"
"  1   get: not found in PostgreSQL (the absence is cached briefly too)\n"
"  2   set: the current version differs from --expect-version\n"
"  64  invalid command or option\n"
"  65  invalid input: a bad playbook document, or in filter mode some requests\n"
"      were invalid (each got an error response)\n"
"  66  set: FILE cannot be opened\n"
"  69  unavailable: the value needed PostgreSQL, or the command needed Redis,\n"
"      and it could not be reached\n"
"  70  a server refused a statement or command (a missing table, permissions)\n"
"  74  writing standard output or reading input failed\n"
"  75  set: the playbook was written to PostgreSQL, but Redis was not updated\n"
"  78  invalid configuration\n";

enum {
	OPT_JSON = 256,
	OPT_LOG_LEVEL,
	OPT_LOG_FORMAT,
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "database-url", required_argument, NULL, 'd' },
	{ "redis-url", required_argument, NULL, 'r' },
	{ "expect-version", required_argument, NULL, 'e' },
	{ "pattern", required_argument, NULL, 'p' },
	{ "command-timeout", required_argument, NULL, 't' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

struct options {
	const char *config;
	const char *pattern;
	long expect_version;	/* -1: not given */
	bool json;
	struct cli_flags flags;
};

static volatile sig_atomic_t stop_requested;
static int wake_pipe[2] = { -1, -1 };

static void
on_signal(int sig)
{
	int saved = errno;

	(void)sig;
	stop_requested = 1;
	if (wake_pipe[1] >= 0 && write(wake_pipe[1], "", 1) < 0) {
		/* A full pipe already wakes the waiter. */
	}
	errno = saved;
}

static void
install_signals(void)
{
	struct sigaction sa;

	if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		wake_pipe[0] = wake_pipe[1] = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static long
parse_version(const char *text)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (*text == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 2147483647)
		cli_usage_error("--expect-version: invalid version '%s' (expected 0 to 2147483647)", text);
	return v;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	int c;

	o->expect_version = -1;
	while ((c = getopt_long(argc, argv, "c:d:r:e:p:t:hV", long_options, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'd': cli_flags_add(&o->flags, "database.url", "--database-url", optarg); break;
		case 'r': cli_flags_add(&o->flags, "redis.url", "--redis-url", optarg); break;
		case 'e': o->expect_version = parse_version(optarg); break;
		case 'p': o->pattern = optarg; break;
		case 't': cli_flags_add(&o->flags, "redis.command_timeout", "--command-timeout", optarg); break;
		case OPT_JSON: o->json = true; break;
		case OPT_LOG_LEVEL: cli_flags_add(&o->flags, "log.level", "--log-level", optarg); break;
		case OPT_LOG_FORMAT: cli_flags_add(&o->flags, "log.format", "--log-format", optarg); break;
		case 'h':
			fputs(usage_text, stdout);
			exit(cli_close_stdout(EXIT_OK));
		case 'V':
			printf("ace-cache %s\n", ACE_VERSION);
			exit(cli_close_stdout(EXIT_OK));
		default:
			fprintf(stderr, "Try '%s --help' for more information.\n", cli_program);
			exit(EXIT_USAGE);
		}
	}
}

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

static void
open_clients(struct cli_clients *cl, const struct options *o)
{
	cli_load_config(&cl->cfg, o->config);
	cli_flags_apply(&cl->cfg, &o->flags);
	cli_setup_log(&cl->cfg);
	cli_open_clients(cl, cl->cfg.pool_size, cl->cfg.pool_max_overflow);
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

static int
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

static int
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

static int
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

static int
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

static int
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

static int
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

/* --- the stats file --------------------------------------------------------------- */

/* The sources of the stats file of ace-cache, read from the writer's thread. */
struct figures {
	struct ace_pool *pool;
	const struct ace_config *cfg;
	bool timed;			/* true in filter mode, which observes and writes the histograms */
	/* Seconds from reading a filter request to writing its response, per op. */
	struct ace_histogram get;
	struct ace_histogram set;
	struct ace_histogram invalidate;
};

static void
add_operation(struct ace_procstats *s, const char *name, struct ace_histogram *h)
{
	snprintf(s->operation[s->operations].name, sizeof(s->operation[s->operations].name), "%s", name);
	ace_histogram_read(h, &s->operation[s->operations].duration);
	s->operations++;
}

static void
fill_figures(void *ctx, struct ace_procstats *s)
{
	struct figures *f = ctx;
	struct ace_pool_stats ps;

	ace_pool_stats(f->pool, &ps);
	s->has_pool = true;
	s->pool_size = f->cfg->pool_size;
	s->pool_max_overflow = f->cfg->pool_max_overflow;
	s->pool_open = ps.open;
	s->pool_checked_out = ps.in_use;
	s->pool_waiting = ps.waiting;
	s->pool_checkouts = ps.checkouts;
	s->pool_timeouts = ps.timeouts;
	if (f->timed) {
		add_operation(s, "get", &f->get);
		add_operation(s, "set", &f->set);
		add_operation(s, "invalidate", &f->invalidate);
	}
}

/*
 * Starts the writer of the stats file in stats.dir.  Returns NULL, after
 * logging why, when it cannot start: the command then runs without a file.
 */
static struct ace_procstats_writer *
start_figures(struct cli_clients *cl, struct figures *f, bool timed)
{
	struct ace_procstats_writer *w;
	struct ace_error err;

	f->pool = cl->pool;
	f->cfg = &cl->cfg;
	f->timed = timed;
	ace_histogram_init(&f->get);
	ace_histogram_init(&f->set);
	ace_histogram_init(&f->invalidate);
	w = ace_procstats_start(cl->cfg.stats_dir, "ace-cache", fill_figures, f, &err);
	if (w == NULL) {
		ace_log(ACE_LOG_WARNING, "process stats are not written", "error", err.message, NULL);
		ace_histogram_destroy(&f->get);
		ace_histogram_destroy(&f->set);
		ace_histogram_destroy(&f->invalidate);
	}
	return w;
}

/* Stops the writer, which removes the file.  NULL is ignored. */
static void
stop_figures(struct ace_procstats_writer *w, struct figures *f)
{
	if (w == NULL)
		return;
	ace_procstats_stop(w);
	ace_histogram_destroy(&f->get);
	ace_histogram_destroy(&f->set);
	ace_histogram_destroy(&f->invalidate);
}

/* --- filter mode ------------------------------------------------------------------ */

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
static int
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

/* --- main ---------------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	struct options o = { 0 };
	struct cli_clients cl = { 0 };
	struct figures figures = { 0 };
	struct ace_procstats_writer *writer = NULL;
	const char *command;
	int status;

	cli_program = "ace-cache";
	parse_options(argc, argv, &o);
	argc -= optind;
	argv += optind;
	command = argc > 0 ? argv[0] : "filter";

	if (strcmp(command, "filter") != 0 && strcmp(command, "get") != 0 &&
	    strcmp(command, "set") != 0 && strcmp(command, "invalidate") != 0 &&
	    strcmp(command, "warm") != 0 && strcmp(command, "stats") != 0 &&
	    strcmp(command, "listen") != 0)
		cli_usage_error("unknown command '%s' (expected filter, get, set, invalidate, warm, stats or listen)",
		    command);
	if ((strcmp(command, "filter") == 0 || strcmp(command, "warm") == 0 ||
	    strcmp(command, "stats") == 0 || strcmp(command, "listen") == 0) && argc > 1)
		cli_usage_error("%s: unexpected argument '%s'", command, argv[1]);
	if (o.pattern != NULL && strcmp(command, "invalidate") != 0)
		cli_usage_error("--pattern applies to invalidate only");
	if (o.expect_version >= 0 && strcmp(command, "set") != 0)
		cli_usage_error("--expect-version applies to set only");
	if (o.json && strcmp(command, "stats") != 0)
		cli_usage_error("--json applies to stats only");

	install_signals();
	open_clients(&cl, &o);
	/*
	 * Only the long-running commands write a stats file.  get, set,
	 * invalidate and stats end within milliseconds, so a scrape would
	 * almost never see their file, and warm prints its totals when it ends.
	 */
	if (cl.cfg.stats_dir != NULL && (strcmp(command, "filter") == 0 || strcmp(command, "listen") == 0))
		writer = start_figures(&cl, &figures, strcmp(command, "filter") == 0);
	if (strcmp(command, "get") == 0)
		status = run_get(&cl, argc, argv);
	else if (strcmp(command, "set") == 0)
		status = run_set(&cl, &o, argc, argv);
	else if (strcmp(command, "invalidate") == 0)
		status = run_invalidate(&cl, &o, argc, argv);
	else if (strcmp(command, "warm") == 0)
		status = run_warm(&cl);
	else if (strcmp(command, "stats") == 0)
		status = run_stats(&cl, &o);
	else if (strcmp(command, "listen") == 0)
		status = run_listen(&cl);
	else
		status = run_filter(&cl, writer != NULL ? &figures : NULL);
	stop_figures(writer, &figures);
	cli_close_clients(&cl);
	return cli_close_stdout(status);
}
