/* The TimescaleDB path: chunk interval, compression settings and policies of the hypertable. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/pool.h"
#include "storage_private.h"

/* Matches timescaledb_information rows to the performance_metrics that the search path finds. */
#define IS_OUR_HYPERTABLE OUR_HYPERTABLE("")
#define OUR_HYPERTABLE(alias) \
	"format('%I.%I', " alias "hypertable_schema, " alias "hypertable_name)::regclass = '" \
	STORAGE_TABLE "'::regclass"

/* One of the two policies, as TimescaleDB stores it and as ace.yaml sets it. */
struct policy {
	const char *label;		/* "compression policy" */
	const char *proc_name;		/* the job's procedure in timescaledb_information.jobs */
	const char *config_key;		/* the job's interval in its jsonb config */
	const char *setting;		/* the ace.yaml key */
	const char *add_sql;		/* $1: the interval */
	const char *remove_sql;
	long long seconds;		/* configured interval; 0: no policy */
};

/* A policy's job as found in the database. */
struct job {
	bool exists;
	char id[24];
	long long seconds;		/* the interval in its config */
	bool scheduled;
	char last_status[32];		/* "Success", "Failed" or "" when it never ran */
	char last_finish[40];
};

static void
init_policies(const struct storage_ctx *ctx, struct policy policies[2])
{
	policies[0] = (struct policy){
		"compression policy", "policy_compression", "compress_after",
		"timeseries.compress_after",
		"SELECT add_compression_policy('" STORAGE_TABLE "', compress_after => $1::interval)",
		"SELECT remove_compression_policy('" STORAGE_TABLE "', if_exists => true)",
		ctx->compress_after,
	};
	policies[1] = (struct policy){
		"retention policy", "policy_retention", "drop_after",
		"timeseries.retention",
		"SELECT add_retention_policy('" STORAGE_TABLE "', drop_after => $1::interval)",
		"SELECT remove_retention_policy('" STORAGE_TABLE "', if_exists => true)",
		ctx->retention,
	};
}

static int
read_job(struct storage_ctx *ctx, const struct policy *p, struct job *job, struct ace_error *err)
{
	static const char sql[] =
		"SELECT j.job_id, "
		"       round(extract(epoch FROM (j.config ->> $2)::interval))::bigint, "
		"       j.scheduled, coalesce(s.last_run_status, ''), "
		"       coalesce(to_char(s.last_run_started_at AT TIME ZONE 'UTC', "
		"                        'YYYY-MM-DD HH24:MI:SS+00'), '') "
		"  FROM timescaledb_information.jobs j "
		"  LEFT JOIN timescaledb_information.job_stats s USING (job_id) "
		" WHERE j.proc_name = $1 AND " OUR_HYPERTABLE("j.") " "
		" ORDER BY j.job_id LIMIT 1";
	const char *params[] = { p->proc_name, p->config_key };
	char what[128];
	PGresult *res;

	snprintf(what, sizeof(what), "cannot read the %s", p->label);
	res = storage_query(ctx->pg, sql, 2, params, what, err);
	if (res == NULL)
		return err->code;
	memset(job, 0, sizeof(*job));
	if (PQntuples(res) > 0) {
		job->exists = true;
		snprintf(job->id, sizeof(job->id), "%s", PQgetvalue(res, 0, 0));
		job->seconds = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		job->scheduled = PQgetvalue(res, 0, 2)[0] == 't';
		snprintf(job->last_status, sizeof(job->last_status), "%s", PQgetvalue(res, 0, 3));
		snprintf(job->last_finish, sizeof(job->last_finish), "%s", PQgetvalue(res, 0, 4));
	}
	PQclear(res);
	return ACE_OK;
}

/* Runs one statement that takes an interval as $1. */
static int
exec_with_interval(struct storage_ctx *ctx, const char *sql, long long seconds,
    const char *what, struct ace_error *err)
{
	char interval[64];
	const char *params[] = { interval };
	PGresult *res;

	storage_format_interval(seconds, interval, sizeof(interval));
	res = storage_query(ctx->pg, sql, 1, params, what, err);
	if (res == NULL)
		return err->code;
	PQclear(res);
	return ACE_OK;
}

/* --- Chunk interval -------------------------------------------------------- */

static int
read_chunk_interval(struct storage_ctx *ctx, long long *seconds, struct ace_error *err)
{
	static const char sql[] =
		"SELECT round(extract(epoch FROM time_interval))::bigint "
		"  FROM timescaledb_information.dimensions "
		" WHERE column_name = 'recorded_at' AND " IS_OUR_HYPERTABLE;
	PGresult *res = storage_query(ctx->pg, sql, 0, NULL,
	    "cannot read the chunk interval of " STORAGE_TABLE, err);

	if (res == NULL)
		return err->code;
	*seconds = PQntuples(res) > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	return ACE_OK;
}

static int
apply_chunk_interval(struct storage_ctx *ctx, struct ace_error *err)
{
	char want[64], had[64];
	long long current;
	int rc;

	rc = read_chunk_interval(ctx, &current, err);
	if (rc != ACE_OK)
		return rc;
	storage_format_interval(ctx->chunk, want, sizeof(want));
	if (current == ctx->chunk) {
		storage_say(ctx, ACE_STORAGE_UNCHANGED, "chunk interval: unchanged (%s)", want);
		return ACE_OK;
	}
	rc = exec_with_interval(ctx, "SELECT set_chunk_time_interval('" STORAGE_TABLE "', $1::interval)",
	    ctx->chunk, "cannot change the chunk interval", err);
	if (rc != ACE_OK)
		return rc;
	storage_format_interval(current, had, sizeof(had));
	storage_say(ctx, ACE_STORAGE_CHANGED, "chunk interval: changed from %s to %s (new chunks only)",
	    had, want);
	return ACE_OK;
}

/* --- Compression settings ------------------------------------------------------ */

/* Reads whether compression is on and its segment-by and order-by columns. */
static int
read_compression(struct storage_ctx *ctx, bool *enabled, struct storage_columns *segmentby,
    struct storage_columns *orderby, struct ace_error *err)
{
	static const char enabled_sql[] =
		"SELECT compression_enabled FROM timescaledb_information.hypertables "
		" WHERE " IS_OUR_HYPERTABLE;
	static const char settings_sql[] =
		"SELECT attname, segmentby_column_index IS NOT NULL, "
		"       coalesce(NOT orderby_asc, false), coalesce(orderby_nullsfirst, false) "
		"  FROM timescaledb_information.compression_settings "
		" WHERE " IS_OUR_HYPERTABLE " "
		"   AND (segmentby_column_index IS NOT NULL OR orderby_column_index IS NOT NULL) "
		" ORDER BY segmentby_column_index NULLS LAST, orderby_column_index";
	PGresult *res;

	res = storage_query(ctx->pg, enabled_sql, 0, NULL, "cannot read the compression settings", err);
	if (res == NULL)
		return err->code;
	*enabled = PQntuples(res) > 0 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);

	res = storage_query(ctx->pg, settings_sql, 0, NULL, "cannot read the compression settings", err);
	if (res == NULL)
		return err->code;
	segmentby->count = orderby->count = 0;
	for (int r = 0; r < PQntuples(res); r++) {
		struct storage_columns *list = PQgetvalue(res, r, 1)[0] == 't' ? segmentby : orderby;
		struct storage_column *c;

		if (list->count == STORAGE_MAX_COLUMNS)
			continue;
		c = &list->items[list->count++];
		snprintf(c->name, sizeof(c->name), "%s", PQgetvalue(res, r, 0));
		c->descending = PQgetvalue(res, r, 2)[0] == 't';
		c->nulls_first = PQgetvalue(res, r, 3)[0] == 't';
	}
	PQclear(res);
	return ACE_OK;
}

static bool
same_columns(const struct storage_columns *a, const struct storage_columns *b, bool ordering)
{
	if (a->count != b->count)
		return false;
	for (int i = 0; i < a->count; i++) {
		if (strcmp(a->items[i].name, b->items[i].name) != 0)
			return false;
		if (ordering && (a->items[i].descending != b->items[i].descending ||
		    a->items[i].nulls_first != b->items[i].nulls_first))
			return false;
	}
	return true;
}

/* Fails with ACE_ERR_INVALID naming the setting when a listed column is not in the table. */
static int
check_columns_exist(struct storage_ctx *ctx, struct ace_error *err)
{
	static const char sql[] =
		"SELECT attname FROM pg_attribute "
		" WHERE attrelid = '" STORAGE_TABLE "'::regclass AND attnum > 0 AND NOT attisdropped";
	const struct storage_columns *lists[] = { &ctx->segmentby, &ctx->orderby };
	const char *keys[] = { "timeseries.compress_segmentby", "timeseries.compress_orderby" };
	PGresult *res = storage_query(ctx->pg, sql, 0, NULL,
	    "cannot read the columns of " STORAGE_TABLE, err);
	int rc = ACE_OK;

	if (res == NULL)
		return err->code;
	for (int l = 0; l < 2 && rc == ACE_OK; l++) {
		for (int i = 0; i < lists[l]->count && rc == ACE_OK; i++) {
			bool found = false;

			for (int r = 0; r < PQntuples(res) && !found; r++)
				found = strcmp(PQgetvalue(res, r, 0), lists[l]->items[i].name) == 0;
			if (!found)
				rc = ace_error_set(err, ACE_ERR_INVALID, "%s: column '%s' does not exist in "
				    STORAGE_TABLE, keys[l], lists[l]->items[i].name);
		}
	}
	PQclear(res);
	return rc;
}

/*
 * Writes a column list with every name quoted by PQescapeIdentifier, as the
 * value of a timescaledb.compress_* option.  Returns -1 on out of memory.
 */
static int
quote_columns(PGconn *pg, const struct storage_columns *cols, bool ordering, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < cols->count; i++) {
		const struct storage_column *c = &cols->items[i];
		char *name = PQescapeIdentifier(pg, c->name, strlen(c->name));
		const char *direction = "", *nulls = "";

		if (name == NULL)
			return -1;
		if (ordering) {
			direction = c->descending ? " DESC" : " ASC";
			nulls = c->nulls_first ? " NULLS FIRST" : " NULLS LAST";
		}
		used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s%s%s%s",
		    i > 0 ? "," : "", name, direction, nulls);
		PQfreemem(name);
	}
	return used < len ? 0 : -1;
}

static int
set_compression(struct storage_ctx *ctx, struct ace_error *err)
{
	char segmentby[2048], orderby[2048], sql[8192];
	char *segmentby_literal = NULL, *orderby_literal = NULL;
	int rc;

	if (quote_columns(ctx->pg, &ctx->segmentby, false, segmentby, sizeof(segmentby)) < 0 ||
	    quote_columns(ctx->pg, &ctx->orderby, true, orderby, sizeof(orderby)) < 0)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	segmentby_literal = PQescapeLiteral(ctx->pg, segmentby, strlen(segmentby));
	orderby_literal = PQescapeLiteral(ctx->pg, orderby, strlen(orderby));
	if (segmentby_literal == NULL || orderby_literal == NULL) {
		rc = ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		goto out;
	}
	snprintf(sql, sizeof(sql), "ALTER TABLE " STORAGE_TABLE " SET (timescaledb.compress, "
	    "timescaledb.compress_segmentby = %s, timescaledb.compress_orderby = %s)",
	    segmentby_literal, orderby_literal);
	rc = storage_exec(ctx->pg, sql, "cannot set the compression settings", err);
out:
	PQfreemem(segmentby_literal);
	PQfreemem(orderby_literal);
	return rc;
}

/* Describes compression settings as "segment by agent_id,task_id; order by recorded_at DESC". */
static void
describe_compression(const struct storage_columns *segmentby, const struct storage_columns *orderby,
    char *buf, size_t len)
{
	char s[1024], o[1024];

	storage_format_columns(segmentby, false, s, sizeof(s));
	storage_format_columns(orderby, true, o, sizeof(o));
	snprintf(buf, len, "segment by %s; order by %s", *s ? s : "(none)", *o ? o : "(none)");
}

static int
apply_compression(struct storage_ctx *ctx, struct ace_error *err)
{
	struct storage_columns segmentby, orderby;
	char want[2100], had[2100];
	bool enabled;
	int rc;

	rc = check_columns_exist(ctx, err);
	if (rc == ACE_OK)
		rc = read_compression(ctx, &enabled, &segmentby, &orderby, err);
	if (rc != ACE_OK)
		return rc;
	describe_compression(&ctx->segmentby, &ctx->orderby, want, sizeof(want));
	if (enabled && same_columns(&segmentby, &ctx->segmentby, false) &&
	    same_columns(&orderby, &ctx->orderby, true)) {
		storage_say(ctx, ACE_STORAGE_UNCHANGED, "compression: unchanged (%s)", want);
		return ACE_OK;
	}
	rc = set_compression(ctx, err);
	if (rc != ACE_OK)
		return rc;
	if (!enabled) {
		storage_say(ctx, ACE_STORAGE_CHANGED, "compression: enabled (%s)", want);
	} else {
		describe_compression(&segmentby, &orderby, had, sizeof(had));
		storage_say(ctx, ACE_STORAGE_CHANGED, "compression: changed from (%s) to (%s); "
		    "chunks compressed before keep their old settings", had, want);
	}
	return ACE_OK;
}

/* --- Policies ------------------------------------------------------------------ */

static int
resume_job(struct storage_ctx *ctx, const struct job *job, const char *what, struct ace_error *err)
{
	const char *params[] = { job->id };
	PGresult *res = storage_query(ctx->pg, "SELECT alter_job($1::integer, scheduled => true)",
	    1, params, what, err);

	if (res == NULL)
		return err->code;
	PQclear(res);
	return ACE_OK;
}

static int
apply_policy(struct storage_ctx *ctx, const struct policy *p, struct ace_error *err)
{
	char want[64], had[64], what[128], old_id[24];
	struct job job;
	bool replaced;
	int rc;

	rc = read_job(ctx, p, &job, err);
	if (rc != ACE_OK)
		return rc;
	storage_format_interval(p->seconds, want, sizeof(want));
	storage_format_interval(job.seconds, had, sizeof(had));
	snprintf(what, sizeof(what), "cannot change the %s", p->label);

	if (!job.exists && p->seconds == 0) {
		storage_say(ctx, ACE_STORAGE_UNCHANGED, "%s: unchanged (none, as %s is 0)",
		    p->label, p->setting);
		return ACE_OK;
	}
	if (job.exists && p->seconds == job.seconds) {
		if (job.scheduled) {
			storage_say(ctx, ACE_STORAGE_UNCHANGED, "%s: unchanged (job %s, %s)",
			    p->label, job.id, want);
			return ACE_OK;
		}
		rc = resume_job(ctx, &job, what, err);
		if (rc == ACE_OK)
			storage_say(ctx, ACE_STORAGE_CHANGED, "%s: resumed (job %s, %s, was paused)",
			    p->label, job.id, want);
		return rc;
	}

	/* A changed interval replaces the job, which is simpler than editing its jsonb config. */
	replaced = job.exists;
	snprintf(old_id, sizeof(old_id), "%s", job.id);
	if (replaced) {
		rc = storage_exec(ctx->pg, p->remove_sql, what, err);
		if (rc != ACE_OK)
			return rc;
		if (p->seconds == 0) {
			storage_say(ctx, ACE_STORAGE_CHANGED, "%s: removed (job %s, %s, as %s is 0)",
			    p->label, old_id, had, p->setting);
			return ACE_OK;
		}
	}
	rc = exec_with_interval(ctx, p->add_sql, p->seconds, what, err);
	if (rc == ACE_OK)
		rc = read_job(ctx, p, &job, err);
	if (rc != ACE_OK)
		return rc;
	if (replaced)
		storage_say(ctx, ACE_STORAGE_CHANGED, "%s: changed from %s to %s (job %s replaced by job %s)",
		    p->label, had, want, old_id, job.id);
	else
		storage_say(ctx, ACE_STORAGE_CHANGED, "%s: added (job %s, %s)", p->label, job.id, want);
	return ACE_OK;
}

int
storage_timescale_apply(struct storage_ctx *ctx, struct ace_error *err)
{
	struct policy policies[2];
	int rc;

	init_policies(ctx, policies);
	rc = apply_chunk_interval(ctx, err);
	if (rc == ACE_OK)
		rc = apply_compression(ctx, err);
	for (int i = 0; i < 2 && rc == ACE_OK; i++)
		rc = apply_policy(ctx, &policies[i], err);
	return rc;
}

/* --- Verify ---------------------------------------------------------------------- */

static int
verify_policy(struct storage_ctx *ctx, const struct policy *p, struct ace_error *err)
{
	char want[64], had[64], last[96];
	struct job job;
	int rc;

	rc = read_job(ctx, p, &job, err);
	if (rc != ACE_OK)
		return rc;
	storage_format_interval(p->seconds, want, sizeof(want));
	storage_format_interval(job.seconds, had, sizeof(had));
	if (!job.exists) {
		if (p->seconds == 0)
			storage_say(ctx, ACE_STORAGE_OK, "%s: none, as %s is 0", p->label, p->setting);
		else
			storage_say(ctx, ACE_STORAGE_DIFFERS, "%s: missing (expected %s); "
			    "run 'ace-migrate policies'", p->label, want);
		return ACE_OK;
	}
	if (p->seconds == 0) {
		storage_say(ctx, ACE_STORAGE_DIFFERS, "%s: job %s exists (%s), but %s is 0; "
		    "run 'ace-migrate policies'", p->label, job.id, had, p->setting);
		return ACE_OK;
	}
	if (job.seconds != p->seconds) {
		storage_say(ctx, ACE_STORAGE_DIFFERS, "%s: job %s has %s, expected %s; "
		    "run 'ace-migrate policies'", p->label, job.id, had, want);
		return ACE_OK;
	}
	if (!job.scheduled) {
		storage_say(ctx, ACE_STORAGE_DIFFERS, "%s: job %s is paused; run 'ace-migrate policies'",
		    p->label, job.id);
		return ACE_OK;
	}
	/*
	 * NOTE: job_stats is written by TimescaleDB's scheduler.  PGlite's build
	 * left it empty after CALL run_job, so runs by "ace-migrate maintain" may
	 * not show here.
	 */
	if (strcmp(job.last_status, "Failed") == 0) {
		storage_say(ctx, ACE_STORAGE_DIFFERS, "%s: job %s (%s) failed in its last run, "
		    "started %s; see timescaledb_information.job_errors", p->label, job.id, want,
		    job.last_finish);
		return ACE_OK;
	}
	if (job.last_status[0] == '\0')
		snprintf(last, sizeof(last), "no run yet");
	else
		snprintf(last, sizeof(last), "last run %s, started %s", job.last_status, job.last_finish);
	storage_say(ctx, ACE_STORAGE_OK, "%s: job %s, %s, %s", p->label, job.id, want, last);
	return ACE_OK;
}

int
storage_timescale_verify(struct storage_ctx *ctx, struct ace_error *err)
{
	struct storage_columns segmentby, orderby;
	struct policy policies[2];
	char want[2100], had[2100];
	long long chunk;
	bool enabled;
	int rc;

	rc = read_chunk_interval(ctx, &chunk, err);
	if (rc != ACE_OK)
		return rc;
	storage_format_interval(ctx->chunk, want, sizeof(want));
	storage_format_interval(chunk, had, sizeof(had));
	if (chunk == ctx->chunk)
		storage_say(ctx, ACE_STORAGE_OK, "chunk interval: %s", want);
	else
		storage_say(ctx, ACE_STORAGE_DIFFERS, "chunk interval: %s, expected %s; "
		    "run 'ace-migrate policies'", had, want);

	rc = read_compression(ctx, &enabled, &segmentby, &orderby, err);
	if (rc != ACE_OK)
		return rc;
	describe_compression(&ctx->segmentby, &ctx->orderby, want, sizeof(want));
	describe_compression(&segmentby, &orderby, had, sizeof(had));
	if (!enabled)
		storage_say(ctx, ACE_STORAGE_DIFFERS, "compression: not enabled (expected %s); "
		    "run 'ace-migrate policies'", want);
	else if (!same_columns(&segmentby, &ctx->segmentby, false) ||
	    !same_columns(&orderby, &ctx->orderby, true))
		storage_say(ctx, ACE_STORAGE_DIFFERS, "compression: %s, expected %s; "
		    "run 'ace-migrate policies'", had, want);
	else
		storage_say(ctx, ACE_STORAGE_OK, "compression: %s", want);

	init_policies(ctx, policies);
	for (int i = 0; i < 2 && rc == ACE_OK; i++)
		rc = verify_policy(ctx, &policies[i], err);
	return rc;
}

/* --- Maintain ---------------------------------------------------------------------- */

int
storage_timescale_maintain(struct storage_ctx *ctx, struct ace_error *err)
{
	struct policy policies[2];
	int rc = ACE_OK;

	init_policies(ctx, policies);
	for (int i = 0; i < 2 && rc == ACE_OK; i++) {
		char sql[64], what[128];
		struct job job;

		rc = read_job(ctx, &policies[i], &job, err);
		if (rc != ACE_OK || !job.exists)
			continue;
		/* CALL runs the job in this session and commits as it goes, outside any transaction. */
		snprintf(sql, sizeof(sql), "CALL run_job(%lld)", strtoll(job.id, NULL, 10));
		snprintf(what, sizeof(what), "%s: job %s failed", policies[i].label, job.id);
		rc = storage_exec(ctx->pg, sql, what, err);
		if (rc == ACE_OK)
			storage_say(ctx, ACE_STORAGE_CHANGED, "%s: ran job %s", policies[i].label, job.id);
	}
	return rc;
}
