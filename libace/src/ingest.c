/* The ingest pipeline: the caller's thread parses into batches, workers write them. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ace/batch.h"
#include "ace/ingest.h"
#include "ace/log.h"
#include "ace/metric.h"
#include "copy.h"

struct ace_ingest {
	struct ace_ingest_options o;
	pthread_t *threads;
	int nthreads;

	/*
	 * Batches cycle free -> current (filled by the caller) -> ready
	 * (queued) -> a worker -> free.  Their number bounds memory: one being
	 * filled, one queued and one being written per worker.
	 */
	pthread_mutex_t lock;
	pthread_cond_t ready_cond;	/* a batch was queued, or closing */
	pthread_cond_t free_cond;	/* a batch was freed */
	struct ace_batch *batches;
	int nbatches;
	struct ace_batch **free_list;
	int nfree;
	struct ace_batch **ready;	/* FIFO ring */
	int ready_head, nready;
	int busy;			/* batches being written */
	struct ace_batch *current;
	uint64_t next_batch_id;
	bool closing;

	int fatal;			/* ACE_OK until the workers give up */
	struct ace_error fatal_err;
	bool outage;			/* the database is failing; logged once per change */
	double outage_since;
	struct ace_ingest_stats stats;

	pthread_mutex_t reject_lock;	/* serializes on_reject */
};

static int fatal_status(struct ace_ingest *ing, struct ace_error *err);

static void
report_reject(struct ace_ingest *ing, const struct ace_reject *r)
{
	pthread_mutex_lock(&ing->lock);
	ing->stats.rejected++;
	pthread_mutex_unlock(&ing->lock);
	if (ing->o.on_reject == NULL)
		return;
	pthread_mutex_lock(&ing->reject_lock);
	ing->o.on_reject(ing->o.ctx, r);
	pthread_mutex_unlock(&ing->reject_lock);
}

static void
reject_row(struct ace_ingest *ing, struct ace_batch *b, size_t i,
    const struct ace_copy_result *res)
{
	struct ace_batch_row *row = &b->row[i];
	struct ace_reject r = {
		.source = row->source,
		.line = row->line,
		.field = res->field,
		.reason = res->err.message,
		.record = b->raw.data + row->raw_off,
		.record_len = row->raw_len,
		.by_server = true,
	};

	row->state = ACE_ROW_REJECTED;
	report_reject(ing, &r);
}

static void
mark_rows(struct ace_batch *b, const size_t *idx, size_t n, int state)
{
	for (size_t i = 0; i < n; i++)
		b->row[idx[i]].state = state;
}

/*
 * Writes rows idx[0..n) in one transaction.  When the server rejects a
 * value, the rows are split in halves until each rejected row stands alone,
 * and the others are committed.  Rows already stored keep their state, so a
 * retry after ACE_ERR_RETRY writes only the rest.  Returns ACE_OK,
 * ACE_ERR_RETRY, or ACE_ERR_SERVER (a statement error that no row split fixes).
 */
static int
write_rows(struct ace_ingest *ing, PGconn *pg, struct ace_batch *b, size_t *idx,
    size_t n, struct ace_error *err)
{
	struct ace_copy_result res;
	int rc;

	if (n == 0)
		return ACE_OK;
	rc = ace_copy_direct(pg, b, idx, n, &res);
	if (rc == ACE_ERR_DATA && strcmp(res.sqlstate, "23505") == 0)
		rc = ace_copy_dedup(pg, b, idx, n, &res);
	if (rc == ACE_OK) {
		mark_rows(b, idx, n, ACE_ROW_WRITTEN);
		pthread_mutex_lock(&ing->lock);
		ing->stats.written += res.inserted;
		ing->stats.duplicates += n - res.inserted;
		pthread_mutex_unlock(&ing->lock);
		return ACE_OK;
	}
	if (rc != ACE_ERR_DATA) {
		*err = res.err;
		return rc;
	}
	if (n == 1) {
		reject_row(ing, b, idx[0], &res);
		return ACE_OK;
	}
	ace_log(ACE_LOG_DEBUG, "server rejected a row, splitting",
	    "batch", ACE_LOG_INT(b->id), "rows", ACE_LOG_INT(n), "error", res.err.message, NULL);
	rc = write_rows(ing, pg, b, idx, n / 2, err);
	if (rc != ACE_OK)
		return rc;
	return write_rows(ing, pg, b, idx + n / 2, n - n / 2, err);
}

/* Collects the indexes of rows still pending into idx and returns how many. */
static size_t
pending_rows(const struct ace_batch *b, size_t *idx)
{
	size_t n = 0;

	for (size_t i = 0; i < b->count; i++)
		if (b->row[i].state == ACE_ROW_PENDING)
			idx[n++] = i;
	return n;
}

/* Sleeps for seconds, waking early when the cancel flag is set. */
static void
backoff_sleep(struct ace_ingest *ing, double seconds)
{
	double until = ace_monotonic() + seconds;

	while (ace_monotonic() < until) {
		if (ing->o.cancel && *ing->o.cancel)
			return;
		usleep(20 * 1000);
	}
}

static double
backoff_delay(const struct ace_ingest *ing, int attempt)
{
	double delay = ing->o.retry_initial_delay;

	for (int i = 0; i < attempt && delay < ing->o.retry_max_delay; i++)
		delay *= 2;
	if (delay > ing->o.retry_max_delay)
		delay = ing->o.retry_max_delay;
	/* Equal jitter, a delay in [delay/2, delay), keeps workers from retrying in step. */
	return delay / 2 + delay / 2 * ((double)rand() / ((double)RAND_MAX + 1));
}

static void
note_outage(struct ace_ingest *ing, const struct ace_batch *b, const struct ace_error *err)
{
	bool changed = false;

	pthread_mutex_lock(&ing->lock);
	ing->stats.retries++;
	if (!ing->outage) {
		ing->outage = true;
		ing->outage_since = ace_monotonic();
		changed = true;
	}
	pthread_mutex_unlock(&ing->lock);
	if (changed)
		ace_log(ACE_LOG_WARNING, "database unavailable, retrying with backoff",
		    "batch", ACE_LOG_INT(b->id), "error", err->message, NULL);
}

static void
note_recovery(struct ace_ingest *ing, const struct ace_batch *b)
{
	double down = 0;
	bool changed = false;

	pthread_mutex_lock(&ing->lock);
	if (ing->outage) {
		ing->outage = false;
		down = ace_monotonic() - ing->outage_since;
		changed = true;
	}
	pthread_mutex_unlock(&ing->lock);
	if (changed)
		ace_log(ACE_LOG_NOTICE, "database available again",
		    "batch", ACE_LOG_INT(b->id), "down_seconds", ACE_LOG_NUM(down, 1), NULL);
}

static void
set_fatal(struct ace_ingest *ing, const struct ace_error *err)
{
	pthread_mutex_lock(&ing->lock);
	if (ing->fatal == ACE_OK) {
		ing->fatal = err->code == ACE_OK ? ACE_ERR_SYSTEM : err->code;
		ing->fatal_err = *err;
	}
	pthread_mutex_unlock(&ing->lock);
}

/* Writes one batch, retrying with backoff while the database is unreachable. */
static void
write_batch(struct ace_ingest *ing, struct ace_batch *b, size_t *idx)
{
	double first_failure = 0;
	struct ace_error err;
	int attempt = 0;
	size_t n;

	while ((n = pending_rows(b, idx)) > 0) {
		struct ace_conn *conn;
		int rc;

		if (fatal_status(ing, NULL) != ACE_OK)
			break;
		conn = ace_pool_checkout(ing->o.pool, &err);
		if (conn == NULL) {
			rc = err.code;
		} else {
			rc = write_rows(ing, ace_conn_pg(conn), b, idx, n, &err);
			ace_pool_checkin(ing->o.pool, conn, rc != ACE_OK);
		}
		if (rc == ACE_OK)
			continue;
		if (rc != ACE_ERR_RETRY && rc != ACE_ERR_TIMEOUT) {
			set_fatal(ing, &err);
			break;
		}
		if (first_failure == 0)
			first_failure = ace_monotonic();
		note_outage(ing, b, &err);
		if (ace_monotonic() - first_failure >= ing->o.retry_timeout) {
			ace_error_prefix(&err, "database unreachable for %.0f s", ing->o.retry_timeout);
			err.code = ACE_ERR_RETRY;
			set_fatal(ing, &err);
			break;
		}
		if (ing->o.cancel && *ing->o.cancel) {
			ace_error_prefix(&err, "retries interrupted");
			err.code = ACE_ERR_RETRY;
			set_fatal(ing, &err);
			break;
		}
		backoff_sleep(ing, backoff_delay(ing, attempt++));
	}

	n = pending_rows(b, idx);
	pthread_mutex_lock(&ing->lock);
	ing->stats.unwritten += n;
	if (n == 0)
		ing->stats.batches++;
	pthread_mutex_unlock(&ing->lock);
	if (n == 0)
		note_recovery(ing, b);
	else
		ace_log(ACE_LOG_ERROR, "batch not written", "batch", ACE_LOG_INT(b->id),
		    "rows", ACE_LOG_INT(n), NULL);
}

static void *
worker_main(void *arg)
{
	struct ace_ingest *ing = arg;
	size_t *idx = NULL;
	size_t cap = 0;

	for (;;) {
		struct ace_batch *b;

		pthread_mutex_lock(&ing->lock);
		while (ing->nready == 0 && !ing->closing)
			pthread_cond_wait(&ing->ready_cond, &ing->lock);
		if (ing->nready == 0) {
			pthread_mutex_unlock(&ing->lock);
			break;
		}
		b = ing->ready[ing->ready_head];
		ing->ready_head = (ing->ready_head + 1) % ing->nbatches;
		ing->nready--;
		ing->busy++;
		pthread_mutex_unlock(&ing->lock);

		if (b->count > cap) {
			size_t *grown = realloc(idx, b->count * sizeof(*idx));

			if (grown == NULL) {
				struct ace_error err;

				ace_error_set(&err, ACE_ERR_SYSTEM, "out of memory");
				set_fatal(ing, &err);
			} else {
				idx = grown;
				cap = b->count;
			}
		}
		if (b->count <= cap) {
			write_batch(ing, b, idx);
		} else {
			pthread_mutex_lock(&ing->lock);
			ing->stats.unwritten += b->count;
			pthread_mutex_unlock(&ing->lock);
		}

		ace_batch_reset(b);
		pthread_mutex_lock(&ing->lock);
		ing->busy--;
		ing->free_list[ing->nfree++] = b;
		pthread_cond_broadcast(&ing->free_cond);
		pthread_mutex_unlock(&ing->lock);
	}
	free(idx);
	return NULL;
}

struct ace_ingest *
ace_ingest_new(const struct ace_ingest_options *opts, struct ace_error *err)
{
	struct ace_ingest *ing;

	if (opts->pool == NULL || opts->batch_size < 1 || opts->workers < 1 ||
	    opts->batch_timeout <= 0) {
		ace_error_set(err, ACE_ERR_INVALID, "invalid ingest options");
		return NULL;
	}
	ing = calloc(1, sizeof(*ing));
	if (ing == NULL)
		goto nomem;
	ing->o = *opts;
	ing->nbatches = 2 * opts->workers + 1;
	ing->batches = calloc((size_t)ing->nbatches, sizeof(*ing->batches));
	ing->free_list = calloc((size_t)ing->nbatches, sizeof(*ing->free_list));
	ing->ready = calloc((size_t)ing->nbatches, sizeof(*ing->ready));
	ing->threads = calloc((size_t)opts->workers, sizeof(*ing->threads));
	if (!ing->batches || !ing->free_list || !ing->ready || !ing->threads)
		goto nomem;
	for (int i = 0; i < ing->nbatches; i++) {
		ace_batch_init(&ing->batches[i]);
		ing->free_list[ing->nfree++] = &ing->batches[i];
	}
	ing->current = ing->free_list[--ing->nfree];
	ing->current->id = ++ing->next_batch_id;
	pthread_mutex_init(&ing->lock, NULL);
	pthread_mutex_init(&ing->reject_lock, NULL);
	pthread_cond_init(&ing->ready_cond, NULL);
	pthread_cond_init(&ing->free_cond, NULL);
	srand((unsigned)ace_now_us());

	for (int i = 0; i < opts->workers; i++) {
		if (pthread_create(&ing->threads[i], NULL, worker_main, ing) != 0) {
			ace_error_set(err, ACE_ERR_SYSTEM, "cannot start worker thread");
			ace_ingest_finish(ing, NULL);
			ace_ingest_free(ing);
			return NULL;
		}
		ing->nthreads++;
	}
	return ing;
nomem:
	if (ing) {
		free(ing->batches);
		free(ing->free_list);
		free(ing->ready);
		free(ing->threads);
		free(ing);
	}
	ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	return NULL;
}

static int
fatal_status(struct ace_ingest *ing, struct ace_error *err)
{
	int rc;

	pthread_mutex_lock(&ing->lock);
	rc = ing->fatal;
	if (rc != ACE_OK && err != NULL)
		*err = ing->fatal_err;
	pthread_mutex_unlock(&ing->lock);
	return rc;
}

int
ace_ingest_flush(struct ace_ingest *ing, struct ace_error *err)
{
	struct ace_batch *b = ing->current;

	if (b == NULL || b->count == 0)
		return fatal_status(ing, err);
	pthread_mutex_lock(&ing->lock);
	ing->ready[(ing->ready_head + ing->nready) % ing->nbatches] = b;
	ing->nready++;
	pthread_cond_signal(&ing->ready_cond);

	/* Wait for a free batch: this is where a slow database slows the reader. */
	while (ing->nfree == 0)
		pthread_cond_wait(&ing->free_cond, &ing->lock);
	ing->current = ing->free_list[--ing->nfree];
	ing->current->id = ++ing->next_batch_id;
	pthread_mutex_unlock(&ing->lock);
	return fatal_status(ing, err);
}

int
ace_ingest_add(struct ace_ingest *ing, const char *source, uint64_t line_no,
    const char *line, size_t len, struct ace_error *err)
{
	struct ace_batch *b = ing->current;
	struct ace_metric_error me;
	size_t off = b->rows.len;
	int rc;

	/* One critical section per record: check for a fatal error and count the line. */
	pthread_mutex_lock(&ing->lock);
	rc = ing->fatal;
	if (rc != ACE_OK && err != NULL)
		*err = ing->fatal_err;
	else if (rc == ACE_OK)
		ing->stats.read++;
	pthread_mutex_unlock(&ing->lock);
	if (rc != ACE_OK)
		return rc;

	if (ace_metric_line_to_row(line, len, ace_now_us(), &b->rows, &me) < 0) {
		struct ace_reject r = {
			.source = source, .line = line_no, .field = me.field,
			.reason = me.reason, .record = line, .record_len = len,
		};

		b->rows.len = off;
		if (b->rows.data != NULL)
			b->rows.data[off] = '\0';
		report_reject(ing, &r);
		return ACE_OK;
	}
	if (ace_batch_commit_row(b, off, source, line_no, line, len, ace_monotonic()) < 0)
		return ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
	if (ace_batch_full(b, ing->o.batch_size))
		return ace_ingest_flush(ing, err);
	return ACE_OK;
}

void
ace_ingest_reject(struct ace_ingest *ing, const struct ace_reject *reject)
{
	pthread_mutex_lock(&ing->lock);
	ing->stats.read++;
	pthread_mutex_unlock(&ing->lock);
	report_reject(ing, reject);
}

double
ace_ingest_deadline(const struct ace_ingest *ing)
{
	return ace_batch_deadline(ing->current, ing->o.batch_timeout);
}

int
ace_ingest_finish(struct ace_ingest *ing, struct ace_error *err)
{
	if (ing->current != NULL && ing->current->count > 0)
		ace_ingest_flush(ing, NULL);
	pthread_mutex_lock(&ing->lock);
	ing->closing = true;
	pthread_cond_broadcast(&ing->ready_cond);
	pthread_mutex_unlock(&ing->lock);
	for (int i = 0; i < ing->nthreads; i++)
		pthread_join(ing->threads[i], NULL);
	ing->nthreads = 0;
	return fatal_status(ing, err);
}

void
ace_ingest_stats(struct ace_ingest *ing, struct ace_ingest_stats *stats)
{
	pthread_mutex_lock(&ing->lock);
	*stats = ing->stats;
	pthread_mutex_unlock(&ing->lock);
}

void
ace_ingest_free(struct ace_ingest *ing)
{
	if (ing == NULL)
		return;
	for (int i = 0; i < ing->nbatches; i++)
		ace_batch_release(&ing->batches[i]);
	pthread_mutex_destroy(&ing->lock);
	pthread_mutex_destroy(&ing->reject_lock);
	pthread_cond_destroy(&ing->ready_cond);
	pthread_cond_destroy(&ing->free_cond);
	free(ing->batches);
	free(ing->free_list);
	free(ing->ready);
	free(ing->threads);
	free(ing);
}
