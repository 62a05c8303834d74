/* The ingest pipeline: batches of validated records written by worker threads with COPY. */
#ifndef ACE_INGEST_H
#define ACE_INGEST_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ace/error.h"
#include "ace/pool.h"

/* A record that was not stored, as passed to the reject callback. */
struct ace_reject {
	const char *source;	/* input name given to ace_ingest_add(), e.g. "-" or a path */
	uint64_t line;		/* 1-based line number in that input */
	const char *field;	/* field at fault, or "" when the whole line is */
	const char *reason;
	const char *record;	/* the input line as read, not NUL-terminated */
	size_t record_len;
	bool by_server;		/* rejected by PostgreSQL rather than by validation */
};

struct ace_ingest_options {
	struct ace_pool *pool;		/* used by the workers; owned by the caller */
	int batch_size;			/* records per batch (at least 1) */
	double batch_timeout;		/* seconds from a batch's first record to its flush */
	int workers;			/* batches written at once (at least 1) */
	double retry_timeout;		/* seconds a batch is retried while the database is unreachable */
	double retry_initial_delay;	/* first backoff delay in seconds; doubles per attempt */
	double retry_max_delay;		/* backoff delays stop growing here */

	/*
	 * Called once per rejected record, from the reading thread or a
	 * worker, never two at once.  May be NULL.
	 */
	void (*on_reject)(void *ctx, const struct ace_reject *reject);
	void *ctx;

	/* When non-NULL and set non-zero (from a signal handler, say), retries stop. */
	volatile sig_atomic_t *cancel;
};

struct ace_ingest_stats {
	uint64_t read;		/* lines handed to ace_ingest_add() */
	uint64_t written;	/* rows committed */
	uint64_t duplicates;	/* rows skipped because the same metric_id and recorded_at exist */
	uint64_t rejected;	/* by validation or by the server */
	uint64_t unwritten;	/* valid rows never committed (database unreachable, fatal error) */
	uint64_t batches;	/* batches committed */
	uint64_t retries;	/* attempts repeated after a retryable failure */
};

struct ace_ingest;

/* Starts the workers.  Returns NULL with err set on bad options or no memory. */
struct ace_ingest *ace_ingest_new(const struct ace_ingest_options *opts, struct ace_error *err);

/*
 * Validates one input line (len bytes, NUL-terminated at line[len]) and adds
 * it to the current batch, or reports it to on_reject.  A full batch is
 * handed to the workers; when all of them are busy this blocks, so input is
 * never read faster than it can be written.  source must stay valid until
 * ace_ingest_finish() returns.  Returns ACE_OK, or the error that stopped
 * the workers (the database unreachable for retry_timeout, or a permanent
 * server error such as a missing table), after which nothing more is stored.
 */
int ace_ingest_add(struct ace_ingest *ing, const char *source, uint64_t line_no,
    const char *line, size_t len, struct ace_error *err);

/*
 * Reports a record rejected before validation (a line too long to read,
 * say): counts it and passes it to on_reject.
 */
void ace_ingest_reject(struct ace_ingest *ing, const struct ace_reject *reject);

/* Monotonic time (ace_monotonic()) at which the current batch is due, or 0 when it is empty. */
double ace_ingest_deadline(const struct ace_ingest *ing);

/* Hands the current batch to the workers now, if it has any rows.  May block like ace_ingest_add(). */
int ace_ingest_flush(struct ace_ingest *ing, struct ace_error *err);

/*
 * Flushes the current batch and waits until the workers have written or
 * given up on every batch.  Returns ACE_OK or the first fatal error.
 */
int ace_ingest_finish(struct ace_ingest *ing, struct ace_error *err);

void ace_ingest_stats(struct ace_ingest *ing, struct ace_ingest_stats *stats);

/* Frees the pipeline; call after ace_ingest_finish(). */
void ace_ingest_free(struct ace_ingest *ing);

#endif
