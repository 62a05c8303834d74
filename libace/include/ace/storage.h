/* Time-series storage of performance_metrics: a TimescaleDB hypertable or a table partitioned by range. */
#ifndef ACE_STORAGE_H
#define ACE_STORAGE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "ace/config.h"
#include "ace/error.h"

/*
 * Migration 0005 gives performance_metrics one of two layouts, chosen by the
 * setting "storage":
 *
 *   timescaledb  a hypertable on recorded_at with chunks of
 *                timeseries.chunk_interval, compressed by a compression
 *                policy and dropped by a retention policy, both TimescaleDB
 *                background jobs;
 *   partitioned  a table partitioned by range of recorded_at, one partition
 *                per chunk interval, aligned to the Unix epoch, and a default
 *                partition that takes rows no other partition covers.
 *                ace_storage_maintain() creates partitions ahead of time,
 *                moves rows out of the default partition and drops expired
 *                partitions.  There is no compression on this path.
 *   auto         timescaledb when CREATE EXTENSION timescaledb succeeds,
 *                else partitioned.
 *
 * Policies, compression settings and partitions are operational settings,
 * so they are applied after the migrations by ace_storage_apply() and can be
 * changed in ace.yaml at any time.
 *
 * Every function here works on a connection that the caller owns and leaves
 * idle in no transaction.  They block for as long as their statements run;
 * moving rows and decompressing can take long on a large table.
 */
enum ace_storage_mode {
	ACE_STORAGE_AUTO,
	ACE_STORAGE_TIMESCALEDB,
	ACE_STORAGE_PARTITIONED,
};

/* The layout that performance_metrics has in a database. */
enum ace_storage_layout {
	ACE_LAYOUT_ABSENT,		/* no table performance_metrics */
	ACE_LAYOUT_PLAIN,		/* an ordinary table: migration 0005 is not applied */
	ACE_LAYOUT_HYPERTABLE,
	ACE_LAYOUT_PARTITIONED,
};

/* Kinds of report lines. */
enum ace_storage_line {
	ACE_STORAGE_CHANGED,		/* something was created, changed, removed or run */
	ACE_STORAGE_UNCHANGED,		/* a setting already matched the configuration */
	ACE_STORAGE_OK,			/* verify: an object matches the configuration */
	ACE_STORAGE_DIFFERS,		/* verify: an object is missing or differs */
};

/*
 * Receives one line of text per action or check, without a newline.  The
 * text is valid only during the call.
 */
struct ace_storage_report {
	void (*line)(void *ctx, int kind, const char *text);
	void *ctx;
};

/* Parses "auto", "timescaledb" or "partitioned"; returns 0, or -1 for anything else. */
int ace_storage_mode_parse(const char *text, int *mode);

/* Returns "auto", "timescaledb" or "partitioned". */
const char *ace_storage_mode_name(int mode);

/* Returns "absent", "plain", "hypertable" or "partitioned". */
const char *ace_storage_layout_name(int layout);

/*
 * Checks the syntax of timeseries.compress_segmentby (column names separated
 * by commas, possibly none) and timeseries.compress_orderby (column names,
 * each optionally followed by ASC or DESC and NULLS FIRST or NULLS LAST).
 * Names must be lower-case unquoted identifiers; whether the columns exist
 * is checked against the database by ace_storage_apply().  Fails with
 * ACE_ERR_INVALID naming the key and the offending text.  No I/O.
 */
int ace_storage_check_config(const struct ace_config *cfg, struct ace_error *err);

/*
 * Sets the session settings ace.storage and ace.chunk_interval that
 * migration 0005 reads, so call it before ace_migrate_up().  Fails with the
 * server's error (ACE_ERR_RETRY when the connection was lost).
 */
int ace_storage_prepare(PGconn *pg, const struct ace_config *cfg, struct ace_error *err);

/*
 * Reads what migration 0005 chose in this session: path gets "timescaledb"
 * or "partitioned", or "" when the migration did not run on this
 * connection, and note why auto did not take TimescaleDB ("" otherwise).
 * Both are truncated to their sizes.
 */
int ace_storage_chosen(PGconn *pg, char *path, size_t path_len, char *note, size_t note_len,
    struct ace_error *err);

/* Stores the layout of performance_metrics in *layout (enum ace_storage_layout). */
int ace_storage_layout(PGconn *pg, int *layout, struct ace_error *err);

/*
 * Reconciles the database with the configuration and reports one line per
 * setting.  On a hypertable: the chunk interval of new chunks, the
 * compression settings, and the compression and retention policies (added,
 * changed or removed, so a second run changes nothing).  On a partitioned
 * table: creates the partitions from now to timeseries.premake intervals
 * ahead and a partition for every interval within retention that has rows in
 * the default partition, moving those rows; it drops nothing.  *changes
 * counts ACE_STORAGE_CHANGED lines.
 *
 * Fails with ACE_ERR_NOT_FOUND when performance_metrics is absent or not yet
 * converted (run the migrations first), ACE_ERR_CONFLICT when its layout is
 * not the configured one, ACE_ERR_INVALID when a compression column does not
 * exist, and the server's error otherwise.  Changes made before a failure
 * stay made.
 */
int ace_storage_apply(PGconn *pg, const struct ace_config *cfg,
    const struct ace_storage_report *report, int *changes, struct ace_error *err);

/*
 * Compares the database with the configuration without changing it, and
 * reports an ACE_STORAGE_OK or ACE_STORAGE_DIFFERS line per object: the
 * layout, chunk interval, compression settings, both policies and the status
 * of their jobs' last runs, and the indexes; or on a partitioned table the
 * default partition, the partitions from now to premake intervals ahead,
 * rows waiting in the default partition and anything older than retention.
 * *differences counts the DIFFERS lines.  Returns ACE_OK even when some
 * differ; fails only when the database cannot be read.
 */
int ace_storage_verify(PGconn *pg, const struct ace_config *cfg,
    const struct ace_storage_report *report, int *differences, struct ace_error *err);

/*
 * The periodic work, meant for cron.  On a partitioned table: what
 * ace_storage_apply() does, then drops partitions that end before now minus
 * timeseries.retention and deletes rows older than that from the default
 * partition.  On a hypertable: runs the compression and retention jobs now
 * with CALL run_job.  Each partition is created or dropped in a transaction
 * of its own, and *changes counts the actions.  Fails like
 * ace_storage_apply().
 */
int ace_storage_maintain(PGconn *pg, const struct ace_config *cfg,
    const struct ace_storage_report *report, int *changes, struct ace_error *err);

#endif
