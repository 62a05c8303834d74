/* A benchmark run: server checks, its own schema and migrations, the suites in order, and cleanup. */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "ace/buf.h"
#include "ace/log.h"
#include "ace/migrate.h"
#include "ace/storage.h"
#include "bench_private.h"

/* --- Servers on this machine only ------------------------------------------------ */

/* Whether host is localhost or a numeric loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z). */
static bool
is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		    (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

/*
 * Checks each entry of a comma-separated libpq host or hostaddr list.  An
 * empty entry means the default, a unix socket; an entry starting with '/'
 * or '@' is a unix socket.
 */
static int
check_host_list(const char *list, const char *key, bool addresses, struct ace_error *err)
{
	const char *p = list;

	for (;;) {
		size_t n = strcspn(p, ",");
		char host[256];

		snprintf(host, sizeof(host), "%.*s", (int)(n < sizeof(host) ? n : sizeof(host) - 1), p);
		if (*host != '\0' && !(!addresses && (*host == '/' || *host == '@')) && !is_loopback(host))
			return ace_error_set(err, ACE_ERR_INVALID,
			    "%s: '%s' is not on this machine (expected localhost, a loopback address or "
			    "a unix socket); pass --allow-remote to benchmark it anyway", key, host);
		if (p[n] == '\0')
			return ACE_OK;
		p += n + 1;
	}
}

int
ace_bench_check_local_pg(const char *conninfo, struct ace_error *err)
{
	PQconninfoOption *opts;
	const char *host = NULL, *hostaddr = NULL, *service = NULL;
	char *message = NULL;
	int rc;

	opts = PQconninfoParse(conninfo != NULL ? conninfo : "", &message);
	if (opts == NULL) {
		rc = ace_error_set(err, ACE_ERR_INVALID, "database.url: invalid connection string: %s",
		    message != NULL ? message : "out of memory");
		PQfreemem(message);
		return rc;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || *o->val == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "service") == 0)
			service = o->val;
	}
	/* libpq reads these variables for what the string leaves out. */
	if (host == NULL)
		host = getenv("PGHOST");
	if (hostaddr == NULL)
		hostaddr = getenv("PGHOSTADDR");
	if (service == NULL)
		service = getenv("PGSERVICE");

	if (hostaddr != NULL && *hostaddr != '\0')
		rc = check_host_list(hostaddr, "database.url: hostaddr", true, err);
	else if (host != NULL && *host != '\0')
		rc = check_host_list(host, "database.url: host", false, err);
	else if (service != NULL && *service != '\0')
		rc = ace_error_set(err, ACE_ERR_INVALID,
		    "database.url: service '%s' may name any host; name the host in database.url, "
		    "or pass --allow-remote", service);
	else
		rc = ACE_OK;
	PQconninfoFree(opts);
	return rc;
}

int
ace_bench_check_local_redis(const char *url, struct ace_error *err)
{
	struct ace_redis_url u;
	int rc = ace_redis_url_parse(url, &u, err);

	if (rc != ACE_OK)
		return rc;
	if (*u.path != '\0' || is_loopback(u.host))
		return ACE_OK;
	return ace_error_set(err, ACE_ERR_INVALID,
	    "redis.url: '%s' is not on this machine (expected localhost, a loopback address or "
	    "a unix socket); pass --allow-remote to benchmark it anyway", u.host);
}

/* Checks the server a connection reached, which a service file or DNS may have chosen. */
static int
check_connected(PGconn *pg, struct ace_error *err)
{
	const char *host = PQhost(pg), *addr = PQhostaddr(pg), *shown = "?";

	if (host != NULL && (*host == '/' || *host == '@'))
		return ACE_OK;
	if (addr != NULL && *addr != '\0' && is_loopback(addr))
		return ACE_OK;
	if (addr != NULL && *addr != '\0')
		shown = addr;
	else if (host != NULL)
		shown = host;
	return ace_error_set(err, ACE_ERR_INVALID,
	    "database.url: connected to '%s', which is not on this machine; pass --allow-remote "
	    "to benchmark it anyway", shown);
}

/* --- Connection string with the run's schema ------------------------------------ */

/* Appends key='value' with backslashes and quotes escaped, as libpq parses it. */
static int
put_conn_param(struct ace_buf *out, const char *key, const char *value)
{
	int rc = ace_buf_printf(out, "%s%s='", out->len ? " " : "", key);

	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '\'')
			rc |= ace_buf_putc(out, '\\');
		rc |= ace_buf_putc(out, *p);
	}
	return rc | ace_buf_putc(out, '\'');
}

/*
 * Rewrites the database URL as a key/value string whose options set
 * search_path, so that every table name the pool's connections use,
 * including ace-ingest's, resolves in the run's schema.
 */
static int
make_conninfo(const char *base, const char *path, char **out, struct ace_error *err)
{
	struct ace_buf buf = ACE_BUF_INIT;
	PQconninfoOption *opts;
	char *message = NULL, search_path[192];
	bool had_options = false;
	int rc = 0;

	opts = PQconninfoParse(base != NULL ? base : "", &message);
	if (opts == NULL) {
		rc = ace_error_set(err, ACE_ERR_INVALID, "database.url: invalid connection string: %s",
		    message != NULL ? message : "out of memory");
		PQfreemem(message);
		return rc;
	}
	snprintf(search_path, sizeof(search_path), "-c search_path=%s", path);
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || *o->val == '\0')
			continue;
		if (strcmp(o->keyword, "options") == 0) {
			char *both;

			if (asprintf(&both, "%s %s", o->val, search_path) < 0) {
				rc = -1;
				break;
			}
			rc |= put_conn_param(&buf, "options", both);
			free(both);
			had_options = true;
		} else {
			rc |= put_conn_param(&buf, o->keyword, o->val);
		}
	}
	if (!had_options)
		rc |= put_conn_param(&buf, "options", search_path);
	PQconninfoFree(opts);
	if (rc != 0) {
		ace_buf_release(&buf);
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	}
	*out = buf.data;
	return ACE_OK;
}

/* --- Machine and settings ------------------------------------------------------- */

/* Copies the value of the first "name<spaces>: value" line of a /proc file into out. */
static bool
read_proc_field(const char *path, const char *name, char *out, size_t len)
{
	FILE *fp = fopen(path, "r");
	char line[512];
	bool found = false;
	size_t n = strlen(name);

	if (fp == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		const char *colon = strchr(line, ':');

		if (strncmp(line, name, n) != 0 || colon == NULL)
			continue;
		colon++;
		while (*colon == ' ' || *colon == '\t')
			colon++;
		snprintf(out, len, "%.*s", (int)strcspn(colon, "\n"), colon);
		found = true;
	}
	fclose(fp);
	return found;
}

static void
read_machine(struct ace_bench_machine *m)
{
	struct utsname u;
	char mem[64];

	m->cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (!read_proc_field("/proc/cpuinfo", "model name", m->cpu_model, sizeof(m->cpu_model)))
		m->cpu_model[0] = '\0';
	if (read_proc_field("/proc/meminfo", "MemTotal", mem, sizeof(mem)))
		m->memory_gib = strtod(mem, NULL) / (1024.0 * 1024.0);	/* the file counts kB */
	if (uname(&u) == 0)
		snprintf(m->kernel, sizeof(m->kernel), "%.40s %.80s %.30s", u.sysname, u.release, u.machine);
}

static int
record_settings(struct bench *b)
{
	const struct ace_config *c = b->cfg;
	struct ace_bench_report *r = b->report;
	int rc = 0;

	rc |= ace_bench_report_set(r, "seed", "%d", c->bench_seed);
	rc |= ace_bench_report_set(r, "quick", "%s", b->o->quick ? "yes" : "no");
	rc |= ace_bench_report_set(r, "duration_s", "%g", b->duration);
	rc |= ace_bench_report_set(r, "agents", "%d", b->agents);
	rc |= ace_bench_report_set(r, "cache_requests", "%d", b->requests);
	rc |= ace_bench_report_set(r, "task_work_ms", "%g", c->bench_task_work * 1000);
	rc |= ace_bench_report_set(r, "batch_size", "%d", c->batch_size);
	rc |= ace_bench_report_set(r, "batch_timeout_s", "%g", c->batch_timeout);
	rc |= ace_bench_report_set(r, "workers", "%d", c->workers);
	rc |= ace_bench_report_set(r, "pool_size", "%d", c->pool_size);
	rc |= ace_bench_report_set(r, "max_overflow", "%d", c->pool_max_overflow);
	rc |= ace_bench_report_set(r, "pool_timeout_s", "%g", c->pool_timeout);
	rc |= ace_bench_report_set(r, "playbook_ttl_s", "%d", c->playbook_ttl);
	rc |= ace_bench_report_set(r, "baseline_ttl_s", "%d", c->baseline_ttl);
	rc |= ace_bench_report_set(r, "ttl_jitter_percent", "%d", c->ttl_jitter_percent);
	rc |= ace_bench_report_set(r, "redis_max_connections", "%d", c->redis_max_connections);
	return rc;
}

/* Chooses the workload sizes: the settings, or small fixed ones with quick. */
static void
size_workloads(struct bench *b)
{
	const struct ace_config *c = b->cfg;

	b->duration = c->bench_duration;
	b->agents = c->bench_agents;
	if (b->o->quick) {
		b->duration = fmin(b->duration, 1.0);
		b->agents = b->agents < 100 ? b->agents : 100;
		b->requests = 2000;
		b->flush_repeats = 2;
		b->pool_cycles = 3;
		b->tasks = 10;
		b->query_runs = 100;
		b->metric_rows = 5000;
		b->history_rows = 5000;
		return;
	}
	b->requests = b->agents * 20 < 100000 ? b->agents * 20 : 100000;
	b->flush_repeats = 5;
	b->pool_cycles = 1000;
	b->tasks = 1000;
	b->query_runs = 1000;
	b->metric_rows = 100L * b->agents < 1000000 ? 100L * b->agents : 1000000;
	b->history_rows = 200000;
}

/* --- Schema ------------------------------------------------------------------------- */

/*
 * Creates the run's schema and applies the built-in migrations inside it, so
 * that the suites work on tables of their own.  The notify triggers of
 * context_playbooks are disabled there, because their notifications go to
 * every listener of the database, production's ace-cache listen included.
 */
static int
setup_schema(struct bench *b, bool *created, struct ace_error *err)
{
	struct ace_migration_set set = { 0 };
	char sql[512], path[32];
	double found;
	int applied = 0, changes, rc;

	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", b->schema);
	rc = bench_exec(b->pg, sql, err);
	if (rc != ACE_OK)
		return ace_error_prefix(err, "cannot create schema %s", b->schema);
	*created = true;
	snprintf(sql, sizeof(sql), "SET search_path = %s", b->search_path);
	rc = bench_exec(b->pg, sql, err);
	if (rc == ACE_OK)
		rc = ace_storage_check_config(b->cfg, err);
	if (rc == ACE_OK)
		rc = ace_storage_prepare(b->pg, b->cfg, err);
	if (rc == ACE_OK)
		rc = ace_migrations_load_embedded(&set, err);
	if (rc == ACE_OK)
		rc = ace_migrate_up(b->pg, &set, NULL, &applied, err);
	ace_migrations_release(&set);
	if (rc == ACE_OK)
		rc = ace_storage_chosen(b->pg, path, sizeof(path), b->storage_note, sizeof(b->storage_note), err);
	if (rc == ACE_OK)
		rc = ace_storage_layout(b->pg, &b->layout, err);
	/* As ace-migrate up does: partitions ahead of now, or the hypertable's policies. */
	if (rc == ACE_OK && (b->layout == ACE_LAYOUT_HYPERTABLE || b->layout == ACE_LAYOUT_PARTITIONED))
		rc = ace_storage_apply(b->pg, b->cfg, NULL, &changes, err);
	if (rc != ACE_OK)
		return ace_error_prefix(err, "cannot create the tables in schema %s", b->schema);

	/* Every later statement names tables without a schema, so they must all be here. */
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM pg_tables WHERE schemaname = '%s' AND tablename IN "
	    "('performance_metrics', 'context_playbooks', 'performance_baselines')", b->schema);
	rc = bench_query_number(b->pg, sql, &found, err);
	if (rc != ACE_OK)
		return rc;
	if (found != 3)
		return ace_error_set(err, ACE_ERR_SERVER,
		    "the migrations left schema %s without its three tables", b->schema);
	return bench_exec(b->pg, "ALTER TABLE context_playbooks DISABLE TRIGGER USER", err);
}

/*
 * Sets the search path: the run's schema, then the schema of TimescaleDB's
 * functions when the extension is installed elsewhere (usually public), so
 * that migration 0005 and the compression suite find them.  Tables resolve
 * in the run's schema first, and every table the suites name is created
 * there.
 */
static int
choose_search_path(struct bench *b, struct ace_error *err)
{
	PGresult *res = PQexec(b->pg, "SELECT n.nspname FROM pg_extension e "
	    "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'timescaledb'");
	const char *ext;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		int rc = ace_pg_error(err, b->pg, res, "cannot read the installed extensions");

		PQclear(res);
		return rc;
	}
	ext = PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "";
	/* Only a plain name fits unquoted into the connection's options. */
	if (*ext != '\0' && strspn(ext, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(ext))
		snprintf(b->search_path, sizeof(b->search_path), "%s,%s", b->schema, ext);
	else
		snprintf(b->search_path, sizeof(b->search_path), "%s", b->schema);
	PQclear(res);
	return ACE_OK;
}

/* Removes the Redis keys of the run's agents, and their load locks. */
static int
remove_keys(struct bench *b, struct ace_error *err)
{
	static const char *const prefixes[] = { ACE_CACHE_PLAYBOOK_PREFIX, ACE_CACHE_BASELINE_PREFIX };
	struct ace_cache *cache = NULL;
	struct ace_pool *pool;
	char escaped[256], pattern[320];
	long long removed;
	int rc = ACE_OK;

	/* A cache needs a pool, which opens no connection here. */
	pool = bench_pool_new(b, 1, 0, err);
	if (pool != NULL)
		cache = bench_cache_new(b, pool, b->redis, err);
	if (cache == NULL) {
		ace_pool_free(pool);
		return err->code;
	}
	ace_cache_escape_glob(b->agent_prefix, escaped, sizeof(escaped));
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]) && rc == ACE_OK; i++) {
		snprintf(pattern, sizeof(pattern), "%s%s*", prefixes[i], escaped);
		rc = ace_cache_invalidate_pattern(cache, pattern, &removed, err);
	}
	ace_cache_free(cache);
	ace_pool_free(pool);
	return rc;
}

/* Drops the schema and removes the keys, on a new connection when the old one broke. */
static int
cleanup(struct bench *b, bool schema_created, struct ace_error *err)
{
	struct ace_error e;
	char sql[128];
	int rc = ACE_OK;

	if (schema_created) {
		if (b->pg != NULL && PQstatus(b->pg) != CONNECTION_OK)
			PQreset(b->pg);
		if (b->pg != NULL && PQtransactionStatus(b->pg) == PQTRANS_INERROR)
			bench_exec(b->pg, "ROLLBACK", &e);
		snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", b->schema);
		if (b->pg == NULL || PQstatus(b->pg) != CONNECTION_OK)
			rc = ace_error_set(err, ACE_ERR_RETRY, "cannot drop schema %s: %s", b->schema,
			    b->pg ? PQerrorMessage(b->pg) : "no connection");
		else if (bench_exec(b->pg, sql, &e) != ACE_OK)
			rc = ace_error_set(err, e.code, "cannot drop schema %s: %s", b->schema, e.message);
	}
	if (b->redis != NULL && remove_keys(b, &e) != ACE_OK && rc == ACE_OK)
		rc = ace_error_set(err, e.code, "cannot remove the Redis keys of agents '%s*': %s",
		    b->agent_prefix, e.message);
	return rc;
}

/* --- The run ------------------------------------------------------------------------- */

typedef int (*suite_fn)(struct bench *b, struct ace_error *err);

static const suite_fn suites[ACE_BENCH_SUITES] = {
	[ACE_BENCH_BATCHING] = bench_batching,
	[ACE_BENCH_CACHE] = bench_cache,
	[ACE_BENCH_POOL] = bench_pool,
	[ACE_BENCH_OVERHEAD] = bench_overhead,
	[ACE_BENCH_COMPRESSION] = bench_compression,
	[ACE_BENCH_QUERY] = bench_query,
};

static int
run_suites(struct bench *b, struct ace_error *err)
{
	double started;
	int rc = ACE_OK;

	for (int s = 0; s < ACE_BENCH_SUITES && rc == ACE_OK; s++) {
		if (!(b->o->suites & (1u << s)))
			continue;
		if (bench_cancelled(b))
			break;
		b->suite = s;
		bench_progress(b, 0);
		ace_log(ACE_LOG_DEBUG, "suite started", "suite", ace_bench_suite_name(s), NULL);
		started = ace_monotonic();
		rc = suites[s](b, err);
		ace_log(ACE_LOG_DEBUG, "suite finished", "suite", ace_bench_suite_name(s),
		    "seconds", ACE_LOG_NUM(ace_monotonic() - started, 3), "status", ace_status_name(rc), NULL);
		if (rc != ACE_OK) {
			ace_error_prefix(err, "%s", ace_bench_suite_name(s));
			break;
		}
		if (!bench_cancelled(b))
			b->report->suites |= 1u << s;
		bench_progress(b, 1);
	}
	return rc;
}

/*
 * Fills the run's names from the pid and a random number, so that concurrent
 * runs never share them.
 * TODO: a run killed by SIGKILL or a second signal leaves its schema behind.
 * Each run could hold an advisory lock named after its schema, so that a
 * later run drops the ace_bench_* schemas whose lock is free.
 */
static void
name_run(struct bench *b)
{
	unsigned int tag;

	if (getrandom(&tag, sizeof(tag), 0) != (ssize_t)sizeof(tag))
		tag = (unsigned int)time(NULL) ^ (unsigned int)clock();
	tag &= 0xffffff;
	snprintf(b->schema, sizeof(b->schema), "ace_bench_%ld_%06x", (long)getpid(), tag);
	snprintf(b->agent_prefix, sizeof(b->agent_prefix), "ace-bench-%ld-%06x-", (long)getpid(), tag);
}

static bool
needs_redis(unsigned suites_mask)
{
	return (suites_mask & ((1u << ACE_BENCH_CACHE) | (1u << ACE_BENCH_OVERHEAD))) != 0;
}

int
ace_bench_run(const struct ace_bench_options *o, struct ace_bench_report *report, struct ace_error *err)
{
	struct bench b = { .o = o, .cfg = o->cfg, .report = report };
	struct ace_error cleanup_err;
	bool schema_created = false;
	double started = ace_monotonic();
	time_t now = time(NULL);
	struct tm tm;
	int rc = ACE_OK, crc;

	gmtime_r(&now, &tm);
	strftime(report->started_at, sizeof(report->started_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	b.rng = (uint64_t)o->cfg->bench_seed;
	size_workloads(&b);
	read_machine(&report->machine);
	if (record_settings(&b) != 0)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");

	if (!o->allow_remote) {
		rc = ace_bench_check_local_pg(o->cfg->database_url, err);
		if (rc == ACE_OK && needs_redis(o->suites))
			rc = ace_bench_check_local_redis(o->cfg->redis_url, err);
		if (rc != ACE_OK)
			return rc;
	}
	name_run(&b);
	b.pg = ace_pg_connect(o->cfg->database_url, "ace-bench", o->cfg->connect_timeout, err);
	if (b.pg == NULL) {
		rc = err->code;
		goto out;
	}
	if (!o->allow_remote && (rc = check_connected(b.pg, err)) != ACE_OK)
		goto out;
	rc = choose_search_path(&b, err);
	if (rc == ACE_OK)
		rc = make_conninfo(o->cfg->database_url, b.search_path, &b.conninfo, err);
	if (rc != ACE_OK)
		goto out;
	snprintf(report->machine.postgresql, sizeof(report->machine.postgresql), "%s",
	    PQparameterStatus(b.pg, "server_version") ? PQparameterStatus(b.pg, "server_version") : "");

	rc = setup_schema(&b, &schema_created, err);
	if (rc == ACE_OK && needs_redis(o->suites))
		rc = bench_redis_open(&b, err);
	if (rc == ACE_OK)
		rc = run_suites(&b, err);
	report->interrupted = bench_cancelled(&b);
	/*
	 * A Ctrl-C reaches the whole process group, ace-ingest included, so a
	 * suite may fail because of the interruption itself, say with a broken
	 * pipe.  Such a failure is not reported; a failed cleanup still is.
	 */
	if (report->interrupted)
		rc = ACE_OK;

out:
	crc = cleanup(&b, schema_created, &cleanup_err);
	if (crc != ACE_OK && rc == ACE_OK) {
		*err = cleanup_err;
		rc = crc;
	} else if (crc != ACE_OK) {
		size_t n = strlen(err->message);

		snprintf(err->message + n, sizeof(err->message) - n, "; also %s", cleanup_err.message);
	}
	if (b.pg != NULL)
		PQfinish(b.pg);
	ace_redis_free(b.redis);
	free(b.conninfo);
	report->seconds = ace_monotonic() - started;
	ace_bench_report_finish(report);
	return rc;
}
