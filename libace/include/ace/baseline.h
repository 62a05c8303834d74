/* Baselines: computed from performance_metrics in PostgreSQL, stored as versions, published to Redis. */
#ifndef ACE_BASELINE_H
#define ACE_BASELINE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "ace/cache.h"
#include "ace/error.h"
#include "ace/redis.h"
#include "ace/stats.h"

/*
 * A baseline is one row of performance_baselines per agent, task type (''
 * for records without one) and stage.  It stores the sample size of a
 * window of metrics and, per metric, the mean, the sample standard
 * deviation and the two-sided 95% confidence interval of the mean.  The
 * interval uses Student's t with n - 1 degrees of freedom, where n counts
 * the records that carry the metric.  The duration also gets p50, p95 and
 * p99 (percentile_cont, which interpolates linearly).
 * Each computation adds a version: the highest version of a group is its
 * current baseline.  Rates and velocity, stored as real, enter the
 * aggregates as the decimal numbers they print as, so sums are exact.
 */

struct ace_baseline_options {
	double window;		/* seconds of metrics, back from the transaction's now() */
	long min_samples;	/* groups with fewer records get no baseline (at least 2) */
};

struct ace_baseline_summary {
	long long groups;	/* agent, task type and stage groups with records in the window */
	long long stored;	/* baselines inserted */
	long long too_small;	/* groups with fewer than min_samples records */
	char window_start[40];	/* RFC 3339 in UTC with microseconds */
	char window_end[40];
};

/*
 * Computes the baselines of every group with records in the window and
 * inserts them in one transaction, serialized with other runs by an
 * advisory lock, so that concurrent runs never number two versions alike.
 * The aggregates run in PostgreSQL; the client only computes one t value
 * per distinct sample size, so memory does not grow with the table.  The
 * groups that got a baseline stay in the session's temporary table
 * ace_baseline_groups for ace_baseline_publish().  pg must be idle and is
 * left idle.  Fails with ACE_ERR_RETRY when the connection was lost,
 * ACE_ERR_SERVER when a statement was refused (a missing table or column:
 * run the migrations), and nothing is stored then.
 */
int ace_baseline_compute(PGconn *pg, const struct ace_baseline_options *o,
    struct ace_baseline_summary *out, struct ace_error *err);

/* The targets and TTL of ace_baseline_publish(). */
struct ace_baseline_publish_options {
	struct ace_cache *loader;	/* a cache without Redis: reads values from PostgreSQL */
	struct ace_redis *redis;	/* where the values go */
	int ttl;			/* seconds */
	int jitter_percent;		/* each TTL is shortened by a random 0 to this percent */
};

/*
 * Stores the current value of ace:baseline:<agent_id>:<task_type> in Redis
 * for every agent and task type that ace_baseline_compute() just gave a
 * baseline on the same connection, with SET ... PX in pipelines, and
 * removes each key's load lock so that a load in progress cannot put an
 * older value back.  The values come from the loader, in the format that
 * ace-cache serves.  *keys counts the keys written.  Fails with the Redis
 * failure (ACE_ERR_RETRY, ACE_ERR_TIMEOUT) or the PostgreSQL one; keys
 * written before it stay.
 */
int ace_baseline_publish(PGconn *pg, const struct ace_baseline_publish_options *o,
    long long *keys, struct ace_error *err);

/* One stage of a baseline value, as ace_baseline_parse() reads it. */
struct ace_baseline_stage {
	bool present;		/* the value has a row for this stage */
	long version;
	long sample_size;
	struct ace_drift_baseline metrics[ACE_DRIFT_METRICS];
	char *json;		/* the stage's row as JSON text, or NULL; owned */
};

#define ACE_BASELINE_STAGES 4

/*
 * Reads the rows of the four stages, indexed by enum ace_stage, from a
 * baseline value as ace-cache stores it: {"agent_id", "task_type",
 * "stages": {stage: row or null}}.  A stage without a row has present
 * false.  Fails with ACE_ERR_INVALID when the value is not such an object,
 * and ACE_ERR_SYSTEM when memory runs out; nothing needs releasing then.
 * Otherwise release with ace_baseline_release().
 */
int ace_baseline_parse(const char *value, struct ace_baseline_stage stages[ACE_BASELINE_STAGES],
    struct ace_error *err);

void ace_baseline_release(struct ace_baseline_stage stages[ACE_BASELINE_STAGES]);

#endif
