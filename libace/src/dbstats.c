/* The queries behind ace-stats prom, health and report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/dbstats.h"
#include "ace/metric.h"
#include "ace/pool.h"

/* Runs a query expected to return rows; returns NULL with err set otherwise. */
static PGresult *
query(PGconn *pg, const char *sql, const char *what, struct ace_error *err)
{
	PGresult *res = PQexec(pg, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		ace_pg_error(err, pg, res, what);
		PQclear(res);
		return NULL;
	}
	return res;
}

static bool
is_null(PGresult *res, int col)
{
	return PQntuples(res) == 0 || PQgetisnull(res, 0, col);
}

static double
number(PGresult *res, int col)
{
	return is_null(res, col) ? 0 : strtod(PQgetvalue(res, 0, col), NULL);
}

/* Reads which tables and extension exist, the layout and the connection limit. */
static int
read_catalog(PGconn *pg, struct ace_dbstats *out, struct ace_error *err)
{
	PGresult *res = query(pg,
	    "SELECT to_regclass('performance_metrics') IS NOT NULL, "
	    "to_regclass('performance_baselines') IS NOT NULL, "
	    "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'), "
	    "coalesce((SELECT relkind::text FROM pg_class WHERE oid = to_regclass('performance_metrics')), ''), "
	    "current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int",
	    "reading the catalog", err);

	if (res == NULL)
		return err->code;
	out->has_table = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	out->has_baselines_table = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	out->timescaledb = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	snprintf(out->layout, sizeof(out->layout), "%s",
	    strcmp(PQgetvalue(res, 0, 3), "p") == 0 ? "partitioned" : "plain");
	out->max_connections = atoi(PQgetvalue(res, 0, 4));
	PQclear(res);
	out->compression_policies = out->retention_policies = -1;
	if (!out->timescaledb || !out->has_table)
		return ACE_OK;

	res = query(pg,
	    "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables "
	    "WHERE hypertable_name = 'performance_metrics'), "
	    "(SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name = 'performance_metrics' "
	    "AND proc_name = 'policy_compression' AND scheduled), "
	    "(SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name = 'performance_metrics' "
	    "AND proc_name = 'policy_retention' AND scheduled)",
	    "reading TimescaleDB jobs", err);
	if (res == NULL)
		return err->code;
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		snprintf(out->layout, sizeof(out->layout), "hypertable");
	out->compression_policies = atoi(PQgetvalue(res, 0, 1));
	out->retention_policies = atoi(PQgetvalue(res, 0, 2));
	PQclear(res);
	return ACE_OK;
}

static int
read_size(PGconn *pg, struct ace_dbstats *out, struct ace_error *err)
{
	bool hyper = strcmp(out->layout, "hypertable") == 0;
	PGresult *res = query(pg, hyper ?
	    "SELECT hypertable_size('performance_metrics')" :
	    "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('performance_metrics')",
	    "reading the table size", err);

	if (res == NULL)
		return err->code;
	out->bytes = number(res, 0);
	PQclear(res);
	if (!hyper)
		return ACE_OK;

	res = query(pg, "SELECT before_compression_total_bytes, after_compression_total_bytes "
	    "FROM hypertable_compression_stats('performance_metrics')", "reading compression", err);
	if (res == NULL)
		return err->code;
	if (!is_null(res, 0) && !is_null(res, 1) && number(res, 1) > 0) {
		out->has_compression = true;
		out->compression_ratio = number(res, 0) / number(res, 1);
	}
	PQclear(res);
	return ACE_OK;
}

static int
read_rows(PGconn *pg, struct ace_dbstats *out, struct ace_error *err)
{
	PGresult *res = query(pg, "SELECT stage, count(*) FROM performance_metrics GROUP BY stage",
	    "counting rows", err);

	if (res == NULL)
		return err->code;
	for (int i = 0; i < PQntuples(res); i++) {
		long long n = strtoll(PQgetvalue(res, i, 1), NULL, 10);

		for (int s = 0; s < 4; s++)
			if (strcmp(PQgetvalue(res, i, 0), ace_stage_name(s)) == 0)
				out->stage_rows[s] = n;
		out->rows += n;
	}
	PQclear(res);

	/*
	 * Rows dated in the future (a producer's clock ahead) are left out, or
	 * one such row would make the lag negative and hide a stalled ingest.
	 */
	res = query(pg, "SELECT extract(epoch FROM now() - max(recorded_at))::float8 "
	    "FROM performance_metrics WHERE recorded_at <= now()",
	    "reading the ingest lag", err);
	if (res == NULL)
		return err->code;
	out->has_lag = !is_null(res, 0);
	out->lag_seconds = number(res, 0);
	PQclear(res);
	return ACE_OK;
}

static int
read_baselines(PGconn *pg, struct ace_dbstats *out, struct ace_error *err)
{
	PGresult *res = query(pg, "SELECT count(DISTINCT (agent_id, task_type, stage)), "
	    "extract(epoch FROM now() - max(computed_at))::float8 FROM performance_baselines",
	    "counting baselines", err);

	if (res == NULL)
		return err->code;
	out->baselines = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	out->has_baseline_age = !is_null(res, 1);
	out->baseline_age_seconds = number(res, 1);
	PQclear(res);
	return ACE_OK;
}

int
ace_dbstats_read(PGconn *pg, struct ace_dbstats *out, struct ace_error *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = read_catalog(pg, out, err);
	if (rc == ACE_OK && out->has_table)
		rc = read_size(pg, out, err);
	if (rc == ACE_OK && out->has_table)
		rc = read_rows(pg, out, err);
	if (rc == ACE_OK && out->has_baselines_table)
		rc = read_baselines(pg, out, err);
	return rc;
}

static const char report_sql[] =
	"SELECT agent_id, stage, count(*), "
	"percentile_cont(0.5) WITHIN GROUP (ORDER BY stage_duration_ms), "
	"percentile_cont(0.95) WITHIN GROUP (ORDER BY stage_duration_ms), "
	"avg(stage_success_rate::numeric)::float8, "
	"max(char_length(agent_id)) OVER () "
	"FROM performance_metrics "
	"WHERE recorded_at >= to_timestamp($1::float8 / 1e6) AND recorded_at < to_timestamp($2::float8 / 1e6) "
	"GROUP BY agent_id, stage "
	"ORDER BY agent_id, array_position(ARRAY['planning', 'execution', 'reflection', 'verification'], stage)";

int
ace_dbstats_report(PGconn *pg, int64_t since_us, int64_t until_us,
    int (*row)(void *ctx, const struct ace_report_row *r), void *ctx, struct ace_error *err)
{
	char since[32], until[32];
	const char *params[2] = { since, until };
	PGresult *res;
	int rc = ACE_OK;

	snprintf(since, sizeof(since), "%lld", (long long)since_us);
	snprintf(until, sizeof(until), "%lld", (long long)until_us);
	if (!PQsendQueryParams(pg, report_sql, 2, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(pg))
		return ace_pg_error(err, pg, NULL, "reading the report");
	/* Results are read to the end even after a failure, so the connection stays usable. */
	while ((res = PQgetResult(pg)) != NULL) {
		ExecStatusType st = PQresultStatus(res);

		if (rc == ACE_OK && st == PGRES_SINGLE_TUPLE) {
			struct ace_report_row r = {
				.agent_id = PQgetvalue(res, 0, 0),
				.stage = PQgetvalue(res, 0, 1),
				.count = strtoll(PQgetvalue(res, 0, 2), NULL, 10),
				.has_duration = !PQgetisnull(res, 0, 3),
				.duration_p50 = number(res, 3),
				.duration_p95 = number(res, 4),
				.has_success_rate = !PQgetisnull(res, 0, 5),
				.success_rate = number(res, 5),
				.agent_width = atoi(PQgetvalue(res, 0, 6)),
			};

			if (row(ctx, &r) != 0)
				rc = ace_error_set(err, ACE_ERR_SYSTEM, "writing the report failed");
		} else if (rc == ACE_OK && st != PGRES_TUPLES_OK) {
			rc = ace_pg_error(err, pg, res, "reading the report");
		}
		PQclear(res);
	}
	return rc;
}
