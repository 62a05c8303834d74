/* Per-process figures: latency histograms and the counter file each running ace process keeps in stats.dir. */
#ifndef ACE_PROCSTATS_H
#define ACE_PROCSTATS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "ace/buf.h"
#include "ace/error.h"

/*
 * When the setting stats.dir names a folder, a long-running ace process
 * (ace-ingest, and ace-cache in filter and listen mode) writes its figures
 * there as PROGRAM.PID.json, replaced atomically once a second and removed
 * when the process ends.
 * ace-stats prom reads every such file whose process is alive and whose
 * figures are fresh, and exports them labelled with program and pid.
 * ace-cache filter times its requests in the operations "get", "set" and
 * "invalidate", which ace_cache_operation_duration exports.
 */

/* Upper bounds in seconds of the histogram buckets; a last bucket, +Inf, takes the rest. */
#define ACE_HISTOGRAM_BOUNDS { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 }
#define ACE_HISTOGRAM_BUCKETS 12

/* Counts of durations, thread-safe.  Initialize with ace_histogram_init(). */
struct ace_histogram {
	pthread_mutex_t lock;
	unsigned long long counts[ACE_HISTOGRAM_BUCKETS + 1];	/* per bucket, not cumulative */
	double sum;
};

/* A histogram's figures at one moment, with cumulative counts as Prometheus exports them. */
struct ace_histogram_snapshot {
	unsigned long long cumulative[ACE_HISTOGRAM_BUCKETS + 1];	/* the last is the total count */
	double sum;
};

void ace_histogram_init(struct ace_histogram *h);

/* Counts one duration in seconds.  Thread-safe. */
void ace_histogram_observe(struct ace_histogram *h, double seconds);

void ace_histogram_read(struct ace_histogram *h, struct ace_histogram_snapshot *out);

void ace_histogram_destroy(struct ace_histogram *h);

/* Returns the upper bound of bucket i (INFINITY for the last). */
double ace_histogram_bound(int i);

#define ACE_PROCSTATS_OPERATIONS 8

/* The figures of one process, as written to and read from its file. */
struct ace_procstats {
	char program[32];
	long pid;
	double updated_at;		/* seconds since the epoch */

	bool has_pool;			/* the PostgreSQL pool figures below are set */
	int pool_size;			/* connections the pool keeps */
	int pool_max_overflow;		/* connections allowed above pool_size */
	int pool_open;			/* connections open now */
	int pool_checked_out;		/* connections in use now */
	int pool_waiting;		/* callers waiting for a connection */
	unsigned long long pool_checkouts;
	unsigned long long pool_timeouts;

	bool has_ingest;		/* the ingest figures below are set */
	int batch_size;			/* records per batch, as configured */
	unsigned long long flushes;	/* batches committed */
	unsigned long long records_written;
	unsigned long long records_rejected;

	size_t operations;		/* entries used in operation[] */
	struct {
		char name[32];		/* "get", "set", ... */
		struct ace_histogram_snapshot duration;
	} operation[ACE_PROCSTATS_OPERATIONS];
};

/* Appends s as one JSON object. */
int ace_procstats_format(const struct ace_procstats *s, struct ace_buf *out);

/* Parses what ace_procstats_format() wrote.  Fails with ACE_ERR_INVALID on anything else. */
int ace_procstats_parse(const char *text, struct ace_procstats *s, struct ace_error *err);

/* Fills the figures of a process; called once a second from the writer's thread. */
typedef void (*ace_procstats_fill_fn)(void *ctx, struct ace_procstats *s);

struct ace_procstats_writer;

/*
 * Starts a thread that calls fill and replaces DIR/PROGRAM.PID.json with
 * the figures once a second.  Fails with ACE_ERR_NOT_FOUND when dir is not
 * a writable folder, ACE_ERR_SYSTEM when the thread cannot start.  A write
 * that fails later is logged once and retried each second.
 */
struct ace_procstats_writer *ace_procstats_start(const char *dir, const char *program,
    ace_procstats_fill_fn fill, void *ctx, struct ace_error *err);

/* Stops the thread, after which fill is not called again, and removes the file.  NULL is ignored. */
void ace_procstats_stop(struct ace_procstats_writer *w);

/*
 * Reads every *.json file of dir into a new array (*out, freed with free(),
 * *count entries), skipping files whose process is gone or whose figures
 * are older than max_age seconds, and removing files of processes that are
 * gone.  Fails with ACE_ERR_NOT_FOUND when dir cannot be read.  At most
 * 10000 files are read.
 */
int ace_procstats_read_dir(const char *dir, double max_age, struct ace_procstats **out, size_t *count,
    struct ace_error *err);

#endif
