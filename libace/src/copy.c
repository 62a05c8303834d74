/* Writing batch rows to performance_metrics with COPY, isolating rows the server rejects. */
#include <stdio.h>
#include <string.h>

#include "ace/log.h"
#include "copy.h"

#define COPY_CHUNK (256 * 1024)

static const char copy_direct[] =
	"COPY performance_metrics (" ACE_METRIC_COPY_COLUMNS ") FROM STDIN";

/*
 * The staging table takes rows that may already exist: COPY cannot skip
 * duplicates, so they are copied here and moved with ON CONFLICT DO NOTHING.
 */
static const char stage_begin[] =
	"BEGIN; CREATE TEMP TABLE IF NOT EXISTS ace_ingest_stage "
	"(LIKE performance_metrics INCLUDING DEFAULTS) ON COMMIT DELETE ROWS";
static const char copy_stage[] =
	"COPY ace_ingest_stage (" ACE_METRIC_COPY_COLUMNS ") FROM STDIN";
static const char stage_move[] =
	"INSERT INTO performance_metrics (" ACE_METRIC_COPY_COLUMNS ") "
	"SELECT " ACE_METRIC_COPY_COLUMNS " FROM ace_ingest_stage ON CONFLICT DO NOTHING";

/* Records the failure of res in out (code, message, SQLSTATE, column or constraint). */
static int
record_failure(struct ace_copy_result *out, PGconn *pg, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *column = res ? PQresultErrorField(res, PG_DIAG_COLUMN_NAME) : NULL;
	const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	const char *field = "";

	/* Name the column when the server does, else the constraint. */
	if (column != NULL)
		field = column;
	else if (constraint != NULL)
		field = constraint;
	ace_pg_error(&out->err, pg, res, what);
	snprintf(out->sqlstate, sizeof(out->sqlstate), "%s", state ? state : "");
	snprintf(out->field, sizeof(out->field), "%s", field);
	return out->err.code;
}

/* Runs a statement that returns no rows; returns its affected-row count or -1. */
static long
exec_command(PGconn *pg, const char *sql, struct ace_copy_result *out, const char *what)
{
	PGresult *res = PQexec(pg, sql);
	long n = -1;

	if (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK) {
		const char *tuples = PQcmdTuples(res);

		n = *tuples ? strtol(tuples, NULL, 10) : 0;
	} else {
		record_failure(out, pg, res, what);
	}
	PQclear(res);
	return n;
}

/*
 * Streams rows idx[0..n) of b to a COPY ... FROM STDIN statement.
 * TODO: a server that accepts the connection but stops answering blocks the
 * worker here; a statement_timeout or TCP keepalive setting would bound it.
 */
static int
copy_in(PGconn *pg, const char *sql, const struct ace_batch *b, const size_t *idx,
    size_t n, struct ace_copy_result *out)
{
	PGresult *res = PQexec(pg, sql);
	int rc = ACE_OK;
	size_t i = 0;

	if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
		rc = record_failure(out, pg, res, "cannot start COPY");
		PQclear(res);
		return rc;
	}
	PQclear(res);

	/* Send runs of rows that lie next to each other in the buffer as one chunk. */
	while (i < n && rc == ACE_OK) {
		size_t start = b->row[idx[i]].row_off;
		size_t end = start + b->row[idx[i]].row_len;

		for (i++; i < n && b->row[idx[i]].row_off == end && end - start < COPY_CHUNK; i++)
			end += b->row[idx[i]].row_len;
		if (PQputCopyData(pg, b->rows.data + start, (int)(end - start)) != 1)
			rc = ACE_ERR_RETRY;
	}
	if (PQputCopyEnd(pg, NULL) != 1)
		rc = ACE_ERR_RETRY;

	/* Drain every result, keeping the first failure. */
	while ((res = PQgetResult(pg)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && out->err.code == ACE_OK)
			rc = record_failure(out, pg, res, "COPY failed");
		PQclear(res);
	}
	if (rc != ACE_OK && out->err.code == ACE_OK)
		rc = record_failure(out, pg, NULL, "COPY failed");
	return rc;
}

int
ace_copy_direct(PGconn *pg, const struct ace_batch *b, const size_t *idx, size_t n,
    struct ace_copy_result *out)
{
	memset(out, 0, sizeof(*out));
	if (copy_in(pg, copy_direct, b, idx, n, out) != ACE_OK)
		return out->err.code;
	out->inserted = n;
	return ACE_OK;
}

int
ace_copy_dedup(PGconn *pg, const struct ace_batch *b, const size_t *idx, size_t n,
    struct ace_copy_result *out)
{
	long inserted;

	memset(out, 0, sizeof(*out));
	if (exec_command(pg, stage_begin, out, "cannot prepare staging table") < 0)
		goto rollback;
	if (copy_in(pg, copy_stage, b, idx, n, out) != ACE_OK)
		goto rollback;
	inserted = exec_command(pg, stage_move, out, "INSERT failed");
	if (inserted < 0)
		goto rollback;
	if (exec_command(pg, "COMMIT", out, "COMMIT failed") < 0)
		goto rollback;
	out->inserted = (size_t)inserted;
	return ACE_OK;
rollback:
	if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) != PQTRANS_IDLE) {
		PGresult *res = PQexec(pg, "ROLLBACK");

		PQclear(res);
	}
	return out->err.code;
}
