/* Storage settings, layout detection and the dispatch of apply, verify and maintain to the two paths. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ace/pool.h"
#include "ace/storage.h"
#include "storage_private.h"

/*
 * A session-level advisory lock serializes apply and maintain between
 * ace-migrate processes, so that two cron runs never create or drop the same
 * partition at once.  Its key is the bytes "ace-stor" read as a big-endian
 * integer.
 */
#define STORAGE_LOCK_KEY "7017563890258308978"

static const char *const mode_names[] = {
	[ACE_STORAGE_AUTO] = "auto",
	[ACE_STORAGE_TIMESCALEDB] = "timescaledb",
	[ACE_STORAGE_PARTITIONED] = "partitioned",
};

static const char *const layout_names[] = {
	[ACE_LAYOUT_ABSENT] = "absent",
	[ACE_LAYOUT_PLAIN] = "plain",
	[ACE_LAYOUT_HYPERTABLE] = "hypertable",
	[ACE_LAYOUT_PARTITIONED] = "partitioned",
};

int
ace_storage_mode_parse(const char *text, int *mode)
{
	for (int i = 0; i < (int)(sizeof(mode_names) / sizeof(mode_names[0])); i++) {
		if (strcmp(text, mode_names[i]) == 0) {
			*mode = i;
			return 0;
		}
	}
	return -1;
}

const char *
ace_storage_mode_name(int mode)
{
	if (mode < 0 || mode > ACE_STORAGE_PARTITIONED)
		return "unknown";
	return mode_names[mode];
}

const char *
ace_storage_layout_name(int layout)
{
	if (layout < 0 || layout > ACE_LAYOUT_PARTITIONED)
		return "unknown";
	return layout_names[layout];
}

/* --- Column lists ------------------------------------------------------ */

static const char *
skip_space(const char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	return p;
}

/*
 * Copies the word at p (letters, digits, _ and $) into word and returns the
 * position after it.  A word too long for word comes back empty, which no
 * caller accepts.
 */
static const char *
read_word(const char *p, char *word, size_t len)
{
	size_t n = 0;

	while (isalnum((unsigned char)*p) || *p == '_' || *p == '$') {
		if (n + 1 < len)
			word[n] = *p;
		n++;
		p++;
	}
	word[n < len ? n : 0] = '\0';
	return p;
}

/* Returns whether word is a lower-case identifier of at most 63 bytes that PostgreSQL needs no quotes for. */
static bool
plain_identifier(const char *word)
{
	size_t n = strlen(word);

	if (n == 0 || n > 63 || !(islower((unsigned char)word[0]) || word[0] == '_'))
		return false;
	for (const char *p = word; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_' && *p != '$')
			return false;
	return true;
}

/* Parses the optional ASC/DESC and NULLS FIRST/LAST after an ordering column. */
static const char *
parse_direction(const char *p, struct storage_column *col, bool *ok)
{
	char word[16];

	col->descending = false;
	p = skip_space(p);
	if (isalpha((unsigned char)*p)) {
		const char *after = read_word(p, word, sizeof(word));

		if (strcasecmp(word, "desc") == 0 || strcasecmp(word, "asc") == 0) {
			col->descending = strcasecmp(word, "desc") == 0;
			p = skip_space(after);
		}
	}
	col->nulls_first = col->descending;
	if (isalpha((unsigned char)*p)) {
		p = skip_space(read_word(p, word, sizeof(word)));
		if (strcasecmp(word, "nulls") != 0) {
			*ok = false;
			return p;
		}
		p = skip_space(read_word(p, word, sizeof(word)));
		if (strcasecmp(word, "first") == 0)
			col->nulls_first = true;
		else if (strcasecmp(word, "last") == 0)
			col->nulls_first = false;
		else
			*ok = false;
		p = skip_space(p);
	}
	return p;
}

int
storage_parse_columns(const char *text, bool ordering, const char *key,
    struct storage_columns *out, struct ace_error *err)
{
	const char *p = skip_space(text ? text : "");

	out->count = 0;
	if (*p == '\0') {
		if (ordering)
			return ace_error_set(err, ACE_ERR_INVALID,
			    "%s: the list is empty (expected at least one column, such as 'recorded_at DESC')", key);
		return ACE_OK;
	}
	for (;;) {
		struct storage_column col;
		bool ok = true;

		memset(&col, 0, sizeof(col));
		p = read_word(skip_space(p), col.name, sizeof(col.name));
		ok = plain_identifier(col.name);
		if (ok && ordering)
			p = parse_direction(p, &col, &ok);
		p = skip_space(p);
		if (!ok || (*p != ',' && *p != '\0'))
			return ace_error_set(err, ACE_ERR_INVALID,
			    "%s: invalid column list '%s' (expected lower-case column names%s, "
			    "separated by commas)", key, text,
			    ordering ? ", each optionally followed by ASC or DESC and NULLS FIRST or LAST" : "");
		for (int i = 0; i < out->count; i++)
			if (strcmp(out->items[i].name, col.name) == 0)
				return ace_error_set(err, ACE_ERR_INVALID,
				    "%s: column '%s' is listed twice", key, col.name);
		if (out->count == STORAGE_MAX_COLUMNS)
			return ace_error_set(err, ACE_ERR_INVALID,
			    "%s: more than %d columns", key, STORAGE_MAX_COLUMNS);
		out->items[out->count++] = col;
		if (*p == '\0')
			return ACE_OK;
		p++;
	}
}

void
storage_format_columns(const struct storage_columns *cols, bool ordering, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < cols->count && used < len; i++) {
		const struct storage_column *c = &cols->items[i];
		const char *nulls = "";

		/* Only a NULLS clause that differs from PostgreSQL's default is written. */
		if (ordering && c->nulls_first != c->descending)
			nulls = c->nulls_first ? " NULLS FIRST" : " NULLS LAST";
		used += (size_t)snprintf(buf + used, len - used, "%s%s%s%s", i ? "," : "", c->name,
		    ordering ? (c->descending ? " DESC" : " ASC") : "", nulls);
	}
}

int
ace_storage_check_config(const struct ace_config *cfg, struct ace_error *err)
{
	struct storage_columns cols;
	int rc;

	rc = storage_parse_columns(cfg->compress_segmentby, false, "timeseries.compress_segmentby",
	    &cols, err);
	if (rc != ACE_OK)
		return rc;
	return storage_parse_columns(cfg->compress_orderby, true, "timeseries.compress_orderby",
	    &cols, err);
}

/* --- Formatting -------------------------------------------------------- */

void
storage_format_interval(long long seconds, char *buf, size_t len)
{
	if (seconds != 0 && seconds % 86400 == 0)
		snprintf(buf, len, "%lld day%s", seconds / 86400, seconds == 86400 ? "" : "s");
	else if (seconds != 0 && seconds % 3600 == 0)
		snprintf(buf, len, "%lld hour%s", seconds / 3600, seconds == 3600 ? "" : "s");
	else
		snprintf(buf, len, "%lld seconds", seconds);
}

void
storage_format_time(long long epoch, char *buf, size_t len)
{
	time_t t = (time_t)epoch;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S+00", &tm);
}

/* --- SQL helpers -------------------------------------------------------- */

PGresult *
storage_query(PGconn *pg, const char *sql, int nparams, const char *const *params,
    const char *what, struct ace_error *err)
{
	PGresult *res = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	ace_pg_error(err, pg, res, what);
	PQclear(res);
	return NULL;
}

int
storage_exec(PGconn *pg, const char *sql, const char *what, struct ace_error *err)
{
	PGresult *res = PQexec(pg, sql);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int rc = ACE_OK;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		rc = ace_pg_error(err, pg, res, what);
	PQclear(res);
	return rc;
}

void
storage_rollback(PGconn *pg)
{
	if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) != PQTRANS_IDLE)
		PQclear(PQexec(pg, "ROLLBACK"));
}

void
storage_say(struct storage_ctx *ctx, int kind, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (kind == ACE_STORAGE_CHANGED)
		ctx->changes++;
	else if (kind == ACE_STORAGE_DIFFERS)
		ctx->differences++;
	if (ctx->report != NULL && ctx->report->line != NULL)
		ctx->report->line(ctx->report->ctx, kind, text);
}

/* --- Session and layout ------------------------------------------------------ */

int
ace_storage_prepare(PGconn *pg, const struct ace_config *cfg, struct ace_error *err)
{
	char chunk[64];
	const char *params[] = { ace_storage_mode_name(cfg->storage), chunk };
	PGresult *res;

	storage_format_interval(llround(cfg->chunk_interval), chunk, sizeof(chunk));
	res = storage_query(pg, "SELECT set_config('ace.storage', $1, false), "
	    "set_config('ace.chunk_interval', $2, false), "
	    "set_config('ace.storage_path', '', false), set_config('ace.storage_note', '', false)",
	    2, params, "cannot set the storage settings of the session", err);
	if (res == NULL)
		return err->code;
	PQclear(res);
	return ACE_OK;
}

int
ace_storage_chosen(PGconn *pg, char *path, size_t path_len, char *note, size_t note_len,
    struct ace_error *err)
{
	PGresult *res = storage_query(pg, "SELECT coalesce(current_setting('ace.storage_path', true), ''), "
	    "coalesce(current_setting('ace.storage_note', true), '')", 0, NULL,
	    "cannot read the storage settings of the session", err);

	if (res == NULL)
		return err->code;
	snprintf(path, path_len, "%s", PQgetvalue(res, 0, 0));
	snprintf(note, note_len, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return ACE_OK;
}

int
ace_storage_layout(PGconn *pg, int *layout, struct ace_error *err)
{
	/*
	 * TimescaleDB's catalog is read only when the extension exists, because
	 * naming its schema in a query would fail on a plain server.
	 */
	static const char sql[] =
		"SELECT c.relkind, "
		"       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') "
		"  FROM pg_class c "
		" WHERE c.oid = to_regclass('" STORAGE_TABLE "')";
	static const char hypertable_sql[] =
		"SELECT count(*) FROM timescaledb_information.hypertables "
		" WHERE format('%I.%I', hypertable_schema, hypertable_name)::regclass = "
		"       to_regclass('" STORAGE_TABLE "')";
	PGresult *res;
	bool extension;
	char kind;

	res = storage_query(pg, sql, 0, NULL, "cannot read the layout of " STORAGE_TABLE, err);
	if (res == NULL)
		return err->code;
	if (PQntuples(res) == 0) {
		PQclear(res);
		*layout = ACE_LAYOUT_ABSENT;
		return ACE_OK;
	}
	kind = PQgetvalue(res, 0, 0)[0];
	extension = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (kind == 'p') {
		*layout = ACE_LAYOUT_PARTITIONED;
		return ACE_OK;
	}
	*layout = ACE_LAYOUT_PLAIN;
	if (!extension)
		return ACE_OK;
	res = storage_query(pg, hypertable_sql, 0, NULL,
	    "cannot read the hypertables of TimescaleDB", err);
	if (res == NULL)
		return err->code;
	if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		*layout = ACE_LAYOUT_HYPERTABLE;
	PQclear(res);
	return ACE_OK;
}

/* --- Indexes ------------------------------------------------------------- */

int
storage_verify_indexes(struct storage_ctx *ctx, struct ace_error *err)
{
	/* The key and indexes of migration 0001, which both layouts keep. */
	static const char *const expected[] = {
		"performance_metrics_pkey",
		"performance_metrics_agent_stage_time_idx",
		"performance_metrics_task_idx",
		"performance_metrics_type_time_idx",
	};
	static const char sql[] =
		"SELECT c.relname, i.indisvalid FROM pg_index i "
		"  JOIN pg_class c ON c.oid = i.indexrelid "
		" WHERE i.indrelid = '" STORAGE_TABLE "'::regclass";
	PGresult *res = storage_query(ctx->pg, sql, 0, NULL,
	    "cannot read the indexes of " STORAGE_TABLE, err);

	if (res == NULL)
		return err->code;
	for (size_t k = 0; k < sizeof(expected) / sizeof(expected[0]); k++) {
		int row = -1;

		for (int r = 0; r < PQntuples(res); r++)
			if (strcmp(PQgetvalue(res, r, 0), expected[k]) == 0)
				row = r;
		if (row < 0)
			storage_say(ctx, ACE_STORAGE_DIFFERS, "index %s: missing", expected[k]);
		else if (PQgetvalue(res, row, 1)[0] != 't')
			storage_say(ctx, ACE_STORAGE_DIFFERS, "index %s: invalid (a failed build); "
			    "drop it and run the migrations again", expected[k]);
		else
			storage_say(ctx, ACE_STORAGE_OK, "index %s", expected[k]);
	}
	PQclear(res);
	return ACE_OK;
}

/* --- Entry points ----------------------------------------------------------- */

/* Fills ctx from the configuration; fails when a column list is malformed. */
static int
init_ctx(struct storage_ctx *ctx, PGconn *pg, const struct ace_config *cfg,
    const struct ace_storage_report *report, struct ace_error *err)
{
	int rc;

	memset(ctx, 0, sizeof(*ctx));
	ctx->pg = pg;
	ctx->cfg = cfg;
	ctx->report = report;
	ctx->chunk = llround(cfg->chunk_interval);
	ctx->compress_after = llround(cfg->compress_after);
	ctx->retention = llround(cfg->retention);
	rc = storage_parse_columns(cfg->compress_segmentby, false, "timeseries.compress_segmentby",
	    &ctx->segmentby, err);
	if (rc == ACE_OK)
		rc = storage_parse_columns(cfg->compress_orderby, true, "timeseries.compress_orderby",
		    &ctx->orderby, err);
	return rc;
}

/* Returns the layout as the object of a sentence, for a table that is converted. */
static const char *
layout_phrase(int layout)
{
	return layout == ACE_LAYOUT_HYPERTABLE ? "a hypertable" : "a partitioned table";
}

/*
 * Reads the layout and checks it against the configured mode.  verify
 * reports a mismatch as a difference; apply and maintain fail on it.
 */
static int
check_layout(struct storage_ctx *ctx, bool verifying, int *layout, struct ace_error *err)
{
	int mode = ctx->cfg->storage, rc;
	bool matches;

	rc = ace_storage_layout(ctx->pg, layout, err);
	if (rc != ACE_OK)
		return rc;
	if (*layout == ACE_LAYOUT_ABSENT || *layout == ACE_LAYOUT_PLAIN) {
		const char *problem = "does not exist";

		if (*layout == ACE_LAYOUT_PLAIN)
			problem = "is a plain table, not yet converted by migration 0005";
		if (verifying) {
			storage_say(ctx, ACE_STORAGE_DIFFERS, "storage: " STORAGE_TABLE " %s; "
			    "run 'ace-migrate up'", problem);
			return ACE_OK;
		}
		return ace_error_set(err, ACE_ERR_NOT_FOUND, STORAGE_TABLE " %s; run 'ace-migrate up' first",
		    problem);
	}
	matches = mode == ACE_STORAGE_AUTO ||
	    (mode == ACE_STORAGE_TIMESCALEDB && *layout == ACE_LAYOUT_HYPERTABLE) ||
	    (mode == ACE_STORAGE_PARTITIONED && *layout == ACE_LAYOUT_PARTITIONED);
	if (matches) {
		if (verifying)
			storage_say(ctx, ACE_STORAGE_OK, "storage: %s (%s)",
			    *layout == ACE_LAYOUT_HYPERTABLE ? "timescaledb" : "partitioned",
			    *layout == ACE_LAYOUT_HYPERTABLE ? "hypertable" : "range partitions on recorded_at");
		return ACE_OK;
	}
	if (verifying) {
		storage_say(ctx, ACE_STORAGE_DIFFERS, "storage: configured %s, but " STORAGE_TABLE
		    " is %s", ace_storage_mode_name(mode), layout_phrase(*layout));
		*layout = ACE_LAYOUT_ABSENT;	/* nothing below applies to the wrong layout */
		return ACE_OK;
	}
	return ace_error_set(err, ACE_ERR_CONFLICT,
	    "storage is %s in the configuration, but " STORAGE_TABLE " is %s; "
	    "revert migration 0005 with 'ace-migrate down' and run 'ace-migrate up' to convert it",
	    ace_storage_mode_name(mode), layout_phrase(*layout));
}

static int
lock_storage(PGconn *pg, struct ace_error *err)
{
	return storage_exec(pg, "SELECT pg_advisory_lock(" STORAGE_LOCK_KEY ")",
	    "cannot take the storage lock", err);
}

static void
unlock_storage(PGconn *pg)
{
	storage_rollback(pg);
	if (PQstatus(pg) == CONNECTION_OK)
		PQclear(PQexec(pg, "SELECT pg_advisory_unlock(" STORAGE_LOCK_KEY ")"));
}

/* Runs apply, or maintain when maintain is set, under the storage lock. */
static int
run_locked(PGconn *pg, const struct ace_config *cfg, const struct ace_storage_report *report,
    bool maintain, int *changes, struct ace_error *err)
{
	struct storage_ctx ctx;
	int layout, rc;

	*changes = 0;
	rc = init_ctx(&ctx, pg, cfg, report, err);
	if (rc != ACE_OK)
		return rc;
	rc = lock_storage(pg, err);
	if (rc != ACE_OK)
		return rc;
	rc = check_layout(&ctx, false, &layout, err);
	if (rc != ACE_OK)
		goto out;
	if (layout == ACE_LAYOUT_HYPERTABLE)
		rc = maintain ? storage_timescale_maintain(&ctx, err) : storage_timescale_apply(&ctx, err);
	else
		rc = storage_partition_apply(&ctx, maintain, err);
out:
	unlock_storage(pg);
	*changes = ctx.changes;
	return rc;
}

int
ace_storage_apply(PGconn *pg, const struct ace_config *cfg,
    const struct ace_storage_report *report, int *changes, struct ace_error *err)
{
	return run_locked(pg, cfg, report, false, changes, err);
}

int
ace_storage_maintain(PGconn *pg, const struct ace_config *cfg,
    const struct ace_storage_report *report, int *changes, struct ace_error *err)
{
	return run_locked(pg, cfg, report, true, changes, err);
}

int
ace_storage_verify(PGconn *pg, const struct ace_config *cfg,
    const struct ace_storage_report *report, int *differences, struct ace_error *err)
{
	struct storage_ctx ctx;
	int layout, rc;

	*differences = 0;
	rc = init_ctx(&ctx, pg, cfg, report, err);
	if (rc != ACE_OK)
		return rc;
	rc = check_layout(&ctx, true, &layout, err);
	if (rc == ACE_OK && layout == ACE_LAYOUT_HYPERTABLE)
		rc = storage_timescale_verify(&ctx, err);
	else if (rc == ACE_OK && layout == ACE_LAYOUT_PARTITIONED)
		rc = storage_partition_verify(&ctx, err);
	if (rc == ACE_OK && (layout == ACE_LAYOUT_HYPERTABLE || layout == ACE_LAYOUT_PARTITIONED))
		rc = storage_verify_indexes(&ctx, err);
	*differences = ctx.differences;
	return rc;
}
