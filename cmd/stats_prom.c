/* The prom command of ace-stats: database, cache and process figures in the Prometheus text format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/buf.h"
#include "ace/cache.h"
#include "ace/dbstats.h"
#include "ace/metric.h"
#include "ace/pool.h"
#include "ace/procstats.h"
#include "ace/prom.h"
#include "ace-stats.h"
#include "cli.h"

/* Process stats files older than this are left out of prom: their writer stopped writing. */
#define PROCSTATS_MAX_AGE 10.0

/* Appends a family with one unlabelled sample. */
static int
prom_single(struct ace_buf *out, const char *name, const char *type, const char *help, double value)
{
	return ace_prom_family(out, name, type, help) | ace_prom_sample(out, name, NULL, 0, value);
}

static int
prom_database(struct ace_buf *out, const struct ace_dbstats *db)
{
	int rc = 0;

	if (!db->has_table)
		return 0;
	rc |= prom_single(out, "ace_metrics_rows", "gauge", "Rows in performance_metrics.", (double)db->rows);
	rc |= prom_single(out, "ace_metrics_table_size_bytes", "gauge",
	    "Bytes of performance_metrics with its indexes and TOAST, over every chunk or partition.",
	    db->bytes);
	rc |= ace_prom_family(out, "ace_metrics_stage_rows", "gauge", "Rows in performance_metrics per stage.");
	for (int s = 0; s < 4; s++) {
		const char *labels[] = { "stage", ace_stage_name(s) };

		rc |= ace_prom_sample(out, "ace_metrics_stage_rows", labels, 1, (double)db->stage_rows[s]);
	}
	if (db->has_lag)
		rc |= prom_single(out, "ace_ingest_lag_seconds", "gauge",
		    "Seconds from the newest recorded_at in performance_metrics to now.", db->lag_seconds);
	if (db->has_compression)
		rc |= prom_single(out, "ace_metrics_compression_ratio", "gauge",
		    "Bytes of the compressed chunks before compression divided by their bytes after.",
		    db->compression_ratio);
	if (db->has_baselines_table) {
		rc |= prom_single(out, "ace_baselines", "gauge",
		    "Agent, task type and stage groups that have a baseline.", (double)db->baselines);
		if (db->has_baseline_age)
			rc |= prom_single(out, "ace_baseline_age_seconds", "gauge",
			    "Seconds since the newest baseline was computed.", db->baseline_age_seconds);
	}
	return rc;
}

static int
prom_cache(struct ace_buf *out, const struct ace_cache_stats *st)
{
	const char *playbook[] = { "kind", "playbook" }, *baseline[] = { "kind", "baseline" };
	int rc = 0;

	rc |= prom_single(out, "ace_cache_hits_total", "counter",
	    "Lookups of ace keys that Redis answered, counted by every ace process.", (double)st->hits);
	rc |= prom_single(out, "ace_cache_misses_total", "counter",
	    "Lookups of ace keys that Redis did not have.", (double)st->misses);
	rc |= prom_single(out, "ace_cache_loads_total", "counter",
	    "Values loaded from PostgreSQL and offered to Redis.", (double)st->loads);
	if (st->gets > 0)
		rc |= prom_single(out, "ace_cache_hit_rate", "gauge",
		    "Hits divided by lookups of ace keys since the counters started.",
		    (double)st->hits / (double)st->gets);
	rc |= ace_prom_family(out, "ace_cache_keys", "gauge", "Playbook and baseline keys in Redis.");
	rc |= ace_prom_sample(out, "ace_cache_keys", playbook, 1, (double)st->playbook_keys);
	rc |= ace_prom_sample(out, "ace_cache_keys", baseline, 1, (double)st->baseline_keys);
	return rc;
}

/* The per-process figures of prom: a name, type, help, and which field of a process it reads. */
enum proc_field {
	PF_POOL_SIZE, PF_POOL_MAX_OVERFLOW, PF_POOL_CHECKED_OUT, PF_POOL_OVERFLOW, PF_POOL_CHECKOUTS,
	PF_POOL_TIMEOUTS, PF_BATCH_SIZE, PF_FLUSHES, PF_FLUSH_COUNT, PF_WRITTEN, PF_REJECTED,
};

static const struct {
	const char *name;
	const char *type;
	const char *help;
	int field;
} proc_families[] = {
	{ "ace_database_pool_size", "gauge", "Connections the process's PostgreSQL pool keeps.", PF_POOL_SIZE },
	{ "ace_database_pool_max_overflow", "gauge", "Connections the pool may open above its size.", PF_POOL_MAX_OVERFLOW },
	{ "ace_database_pool_checked_out", "gauge", "Pool connections in use now.", PF_POOL_CHECKED_OUT },
	{ "ace_database_pool_overflow", "gauge", "Pool connections open above the pool size now.", PF_POOL_OVERFLOW },
	{ "ace_database_pool_checkouts_total", "counter", "Connections taken from the pool.", PF_POOL_CHECKOUTS },
	{ "ace_database_pool_timeouts_total", "counter", "Checkouts that waited the whole pool timeout and failed.", PF_POOL_TIMEOUTS },
	{ "ace_metrics_batch_size", "gauge", "Records per batch that ace-ingest is configured with.", PF_BATCH_SIZE },
	{ "ace_ingest_flushes_total", "counter", "Batches ace-ingest committed.", PF_FLUSHES },
	{ "ace_metrics_flush_count", "untyped", "Batches ace-ingest committed; the older name of ace_ingest_flushes_total.", PF_FLUSH_COUNT },
	{ "ace_ingest_records_written_total", "counter", "Records ace-ingest committed.", PF_WRITTEN },
	{ "ace_ingest_records_rejected_total", "counter", "Records ace-ingest rejected.", PF_REJECTED },
};

/* Returns whether process p has the field, and its value in *v. */
static bool
proc_value(const struct ace_procstats *p, int field, double *v)
{
	bool pool = p->has_pool, ingest = p->has_ingest;

	switch (field) {
	case PF_POOL_SIZE: *v = p->pool_size; return pool;
	case PF_POOL_MAX_OVERFLOW: *v = p->pool_max_overflow; return pool;
	case PF_POOL_CHECKED_OUT: *v = p->pool_checked_out; return pool;
	case PF_POOL_OVERFLOW: *v = p->pool_open > p->pool_size ? p->pool_open - p->pool_size : 0; return pool;
	case PF_POOL_CHECKOUTS: *v = (double)p->pool_checkouts; return pool;
	case PF_POOL_TIMEOUTS: *v = (double)p->pool_timeouts; return pool;
	case PF_BATCH_SIZE: *v = p->batch_size; return ingest;
	case PF_FLUSHES:
	case PF_FLUSH_COUNT: *v = (double)p->flushes; return ingest;
	case PF_WRITTEN: *v = (double)p->records_written; return ingest;
	case PF_REJECTED: *v = (double)p->records_rejected; return ingest;
	}
	return false;
}

/* Appends one histogram family of the operations of every process. */
static int
prom_histogram(struct ace_buf *out, const char *name, const char *help,
    const struct ace_procstats *procs, size_t n)
{
	char bucket[128], sum[128], count[128];
	bool any = false;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		any |= procs[i].operations > 0;
	if (!any)
		return 0;
	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	snprintf(sum, sizeof(sum), "%s_sum", name);
	snprintf(count, sizeof(count), "%s_count", name);
	rc |= ace_prom_family(out, name, "histogram", help);
	for (size_t i = 0; i < n; i++) {
		char pid[24];

		snprintf(pid, sizeof(pid), "%ld", procs[i].pid);
		for (size_t k = 0; k < procs[i].operations; k++) {
			const struct ace_histogram_snapshot *h = &procs[i].operation[k].duration;
			const char *labels[8] = { "program", procs[i].program, "pid", pid,
			    "operation", procs[i].operation[k].name, "le", NULL };

			for (int b = 0; b <= ACE_HISTOGRAM_BUCKETS; b++) {
				char le[32];

				ace_prom_format_value(ace_histogram_bound(b), le, sizeof(le));
				labels[7] = le;
				rc |= ace_prom_sample(out, bucket, labels, 4, (double)h->cumulative[b]);
			}
			rc |= ace_prom_sample(out, sum, labels, 3, h->sum);
			rc |= ace_prom_sample(out, count, labels, 3, (double)h->cumulative[ACE_HISTOGRAM_BUCKETS]);
		}
	}
	return rc;
}

static int
prom_processes(struct ace_buf *out, const struct ace_procstats *procs, size_t n)
{
	int rc = 0;

	for (size_t f = 0; f < sizeof(proc_families) / sizeof(proc_families[0]); f++) {
		bool family = false;

		for (size_t i = 0; i < n; i++) {
			char pid[24];
			const char *labels[] = { "program", procs[i].program, "pid", pid };
			double v;

			if (!proc_value(&procs[i], proc_families[f].field, &v))
				continue;
			if (!family)
				rc |= ace_prom_family(out, proc_families[f].name, proc_families[f].type,
				    proc_families[f].help);
			family = true;
			snprintf(pid, sizeof(pid), "%ld", procs[i].pid);
			rc |= ace_prom_sample(out, proc_families[f].name, labels, 2, v);
		}
	}
	rc |= prom_histogram(out, "ace_cache_operation_duration_seconds",
	    "Seconds each cache operation of ace-cache took.", procs, n);
	rc |= prom_histogram(out, "ace_cache_operation_duration",
	    "Seconds each cache operation took; the older name of ace_cache_operation_duration_seconds.",
	    procs, n);
	return rc;
}

int
run_prom(struct cli_clients *cl, const struct options *o)
{
	struct ace_buf out = ACE_BUF_INIT;
	struct ace_dbstats db;
	struct ace_cache_stats cs;
	struct ace_error err;
	bool db_up = false, redis_up = false;
	int status = EXIT_OK, rc = 0;
	PGconn *pg = connect_db(cl, &status);

	if (pg != NULL) {
		db_up = ace_dbstats_read(pg, &db, &err) == ACE_OK;
		if (!db_up) {
			report_pg_error(&err);
			status = exit_status_for(err.code);
		}
		PQfinish(pg);
	}
	redis_up = ace_cache_stats(cl->cache, &cs, &err) == ACE_OK;
	if (!redis_up) {
		cli_error("cannot read the cache figures: %s", err.message);
		if (status == EXIT_OK)
			status = exit_status_for(err.code);
	}

	rc |= prom_single(&out, "ace_database_up", "gauge",
	    "1 when ace-stats could read its figures from PostgreSQL, else 0.", db_up);
	rc |= prom_single(&out, "ace_redis_up", "gauge",
	    "1 when ace-stats could read its figures from Redis, else 0.", redis_up);
	if (db_up)
		rc |= prom_database(&out, &db);
	if (redis_up)
		rc |= prom_cache(&out, &cs);
	if (cl->cfg.stats_dir != NULL) {
		struct ace_procstats *procs;
		size_t n;

		if (ace_procstats_read_dir(cl->cfg.stats_dir, PROCSTATS_MAX_AGE, &procs, &n, &err) != ACE_OK) {
			cli_error("%s", err.message);
			if (status == EXIT_OK)
				status = EXIT_CONFIG;
		} else {
			rc |= prom_processes(&out, procs, n);
			free(procs);
		}
	}
	if (rc != 0) {
		cli_error("out of memory");
		ace_buf_release(&out);
		return EXIT_SOFTWARE;
	}
	if (o->output != NULL && strcmp(o->output, "-") != 0) {
		if (ace_prom_write_file(o->output, out.data, out.len, &err) != ACE_OK) {
			cli_error("%s", err.message);
			status = EXIT_CANTCREAT;
		}
	} else if (fwrite(out.data, 1, out.len, stdout) != out.len) {
		status = EXIT_IOERR;
	}
	ace_buf_release(&out);
	return status;
}
