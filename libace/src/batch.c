/* Batches of COPY rows and the rules that decide when one is flushed. */
#include <stdlib.h>
#include <string.h>

#include "ace/batch.h"

void
ace_batch_init(struct ace_batch *b)
{
	memset(b, 0, sizeof(*b));
}

void
ace_batch_release(struct ace_batch *b)
{
	ace_buf_release(&b->rows);
	ace_buf_release(&b->raw);
	free(b->row);
	memset(b, 0, sizeof(*b));
}

void
ace_batch_reset(struct ace_batch *b)
{
	ace_buf_reset(&b->rows);
	ace_buf_reset(&b->raw);
	b->count = 0;
	b->first_at = 0;
}

int
ace_batch_commit_row(struct ace_batch *b, size_t row_off, const char *source,
    uint64_t line, const char *raw, size_t raw_len, double now)
{
	struct ace_batch_row *r;

	if (b->count == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct ace_batch_row *grown = realloc(b->row, cap * sizeof(*grown));

		if (grown == NULL)
			goto fail;
		b->row = grown;
		b->cap = cap;
	}
	r = &b->row[b->count];
	r->raw_off = b->raw.len;
	if (ace_buf_append(&b->raw, raw, raw_len) < 0)
		goto fail;
	r->raw_len = raw_len;
	r->row_off = row_off;
	r->row_len = b->rows.len - row_off;
	r->source = source;
	r->line = line;
	r->state = ACE_ROW_PENDING;
	if (b->count == 0)
		b->first_at = now;
	b->count++;
	return 0;
fail:
	b->rows.len = row_off;
	if (b->rows.data != NULL)
		b->rows.data[row_off] = '\0';
	return -1;
}

bool
ace_batch_full(const struct ace_batch *b, int batch_size)
{
	return b->count >= (size_t)batch_size;
}

double
ace_batch_deadline(const struct ace_batch *b, double timeout)
{
	return b->count == 0 ? 0 : b->first_at + timeout;
}

bool
ace_batch_due(const struct ace_batch *b, int batch_size, double timeout, double now)
{
	if (b->count == 0)
		return false;
	return ace_batch_full(b, batch_size) || now >= b->first_at + timeout;
}
