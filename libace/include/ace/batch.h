/* A batch of COPY rows with the input lines they came from, and its flush rules. */
#ifndef ACE_BATCH_H
#define ACE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ace/buf.h"

enum ace_row_state {
	ACE_ROW_PENDING,
	ACE_ROW_WRITTEN,
	ACE_ROW_DUPLICATE,
	ACE_ROW_REJECTED,
};

struct ace_batch_row {
	size_t row_off, row_len;	/* the COPY row in rows */
	size_t raw_off, raw_len;	/* the input line in raw */
	const char *source;
	uint64_t line;
	int state;			/* enum ace_row_state */
};

/*
 * Rows in COPY text format, each with its input line, kept so that a row the
 * server rejects can be reported with its line number and content.  The
 * buffers are reused from batch to batch.
 */
struct ace_batch {
	uint64_t id;			/* sequence number, for log lines */
	struct ace_buf rows;
	struct ace_buf raw;
	struct ace_batch_row *row;
	size_t count;
	size_t cap;
	double first_at;		/* monotonic time of the first record; 0 when empty */
};

void ace_batch_init(struct ace_batch *b);
void ace_batch_release(struct ace_batch *b);

/* Empties the batch, keeping its memory. */
void ace_batch_reset(struct ace_batch *b);

/*
 * Adds a row whose COPY text has already been appended to b->rows starting at
 * row_off, and copies its input line.  now is the monotonic time, which
 * starts the batch's timeout when it is the first row.  Returns 0, or -1 when
 * memory runs out (the row is then removed from b->rows).
 */
int ace_batch_commit_row(struct ace_batch *b, size_t row_off, const char *source,
    uint64_t line, const char *raw, size_t raw_len, double now);

/* Returns whether the batch has batch_size rows or more. */
bool ace_batch_full(const struct ace_batch *b, int batch_size);

/* Monotonic time at which a non-empty batch is due: its first row's arrival plus timeout; 0 when empty. */
double ace_batch_deadline(const struct ace_batch *b, double timeout);

/* Whether the batch must be flushed at monotonic time now: full, or due. */
bool ace_batch_due(const struct ace_batch *b, int batch_size, double timeout, double now);

#endif
