/* Drift detection: each metric record compared with its baseline, looked up once per agent and task type. */
#ifndef ACE_DRIFT_H
#define ACE_DRIFT_H

#include <stdbool.h>
#include <stddef.h>

#include "ace/buf.h"
#include "ace/cache.h"
#include "ace/error.h"
#include "ace/metric.h"
#include "ace/stats.h"

struct ace_drift_options {
	struct ace_cache *cache;		/* baselines: Redis first, PostgreSQL on a miss */
	struct ace_drift_thresholds thresholds;
	double refresh;				/* seconds a looked-up baseline is reused */
};

struct ace_drift;

/* Creates a checker over the caller's cache.  Returns NULL with ACE_ERR_SYSTEM when memory runs out. */
struct ace_drift *ace_drift_new(const struct ace_drift_options *o, struct ace_error *err);

void ace_drift_free(struct ace_drift *d);

/* The result of ace_drift_check() for one record. */
struct ace_drift_outcome {
	bool drift;		/* some threshold was crossed */
	bool has_baseline;	/* the record's stage has a baseline */
	int lookup_status;	/* ACE_OK, ACE_ERR_NOT_FOUND, or why the baseline could not be read */
};

/*
 * Compares the parsed record m, read from line (len bytes, the JSON object
 * as given), with the baseline of its agent, task type and stage, and
 * appends one NDJSON line to out:
 *
 *   {"record":<line>,"baseline":<row or null>,"drift":BOOL,
 *    "metrics":{"stage_success_rate":{"value":..,"mean":..,"deviation":..,
 *    "z":..,"threshold":..,"drift":BOOL},...},"reason":".."}
 *
 * "metrics" has the metrics the record carries, each member only when it
 * is known.  "reason" is present when there is no baseline, or it could
 * not be read; the absolute success rate threshold still applies then.
 * A baseline is looked up once per agent and task type and reused for the
 * refresh time.  A failed lookup is retried after at most 5 seconds.
 * Returns 0, or -1 when memory runs out.
 */
int ace_drift_check(struct ace_drift *d, const char *line, size_t len, const struct ace_metric *m,
    struct ace_buf *out, struct ace_drift_outcome *outcome);

#endif
