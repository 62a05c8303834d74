/* Private: COPY of a set of batch rows, directly or through a staging table. */
#ifndef ACE_COPY_H
#define ACE_COPY_H

#include <libpq-fe.h>
#include <stdlib.h>

#include "ace/batch.h"
#include "ace/error.h"
#include "ace/metric.h"
#include "ace/pool.h"

struct ace_copy_result {
	size_t inserted;	/* rows stored; the rest of n were duplicates */
	struct ace_error err;	/* err.code is ACE_OK on success */
	char sqlstate[6];
	char field[64];		/* column or constraint named by the server, or "" */
};

/*
 * Copies rows idx[0..n) of b into performance_metrics in one statement
 * (one transaction).  Fails with ACE_ERR_DATA on a rejected value or a
 * duplicate key (SQLSTATE 23505), ACE_ERR_RETRY on a lost connection.
 */
int ace_copy_direct(PGconn *pg, const struct ace_batch *b, const size_t *idx, size_t n,
    struct ace_copy_result *out);

/*
 * Like ace_copy_direct() but skips rows whose key already exists, through a
 * temporary staging table, in one transaction.
 */
int ace_copy_dedup(PGconn *pg, const struct ace_batch *b, const size_t *idx, size_t n,
    struct ace_copy_result *out);

#endif
