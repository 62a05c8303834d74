/* Drift detection: the baseline memo and the output line of each record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/baseline.h"
#include "ace/drift.h"
#include "ace/pool.h"
#include "ace/prom.h"

#define MEMO_BUCKETS 1024
#define MEMO_MAX 4096		/* entries kept; past this the memo starts over */
#define FAILURE_REFRESH 5.0	/* seconds before a failed lookup is tried again */

/* One looked-up baseline value, per agent and task type. */
struct memo {
	struct memo *next;
	char *agent_id;
	char *task_type;
	double fetched;				/* ace_monotonic() of the lookup */
	int status;				/* ACE_OK, ACE_ERR_NOT_FOUND or the failure */
	char reason[ACE_ERROR_MAX];		/* the failure, for the output */
	struct ace_baseline_stage stages[ACE_BASELINE_STAGES];
};

struct ace_drift {
	struct ace_drift_options o;
	struct memo *buckets[MEMO_BUCKETS];
	size_t entries;
};

/* The record field of each drift metric, indexed by enum ace_drift_metric. */
static const int record_fields[ACE_DRIFT_METRICS] = {
	[ACE_DRIFT_SUCCESS_RATE] = ACE_M_SUCCESS_RATE,
	[ACE_DRIFT_ERROR_RATE] = ACE_M_ERROR_RATE,
	[ACE_DRIFT_DURATION_MS] = ACE_M_DURATION_MS,
	[ACE_DRIFT_ACTION_COUNT] = ACE_M_ACTION_COUNT,
	[ACE_DRIFT_VELOCITY] = ACE_M_VELOCITY,
};

struct ace_drift *
ace_drift_new(const struct ace_drift_options *o, struct ace_error *err)
{
	struct ace_drift *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		ace_error_set(err, ACE_ERR_SYSTEM, "out of memory");
		return NULL;
	}
	d->o = *o;
	return d;
}

static void
memo_free(struct memo *e)
{
	ace_baseline_release(e->stages);
	free(e->agent_id);
	free(e->task_type);
	free(e);
}

static void
memo_clear(struct ace_drift *d)
{
	for (size_t i = 0; i < MEMO_BUCKETS; i++) {
		while (d->buckets[i] != NULL) {
			struct memo *e = d->buckets[i];

			d->buckets[i] = e->next;
			memo_free(e);
		}
	}
	d->entries = 0;
}

void
ace_drift_free(struct ace_drift *d)
{
	if (d == NULL)
		return;
	memo_clear(d);
	free(d);
}

static size_t
memo_bucket(const char *agent, const char *task)
{
	unsigned long h = 14695981039346656037UL;	/* FNV-1a over agent, a NUL, task */

	for (const unsigned char *p = (const unsigned char *)agent; *p; p++)
		h = (h ^ *p) * 1099511628211UL;
	h *= 1099511628211UL;
	for (const unsigned char *p = (const unsigned char *)task; *p; p++)
		h = (h ^ *p) * 1099511628211UL;
	return h % MEMO_BUCKETS;
}

/* Looks the value up through the cache and stores what came back in e. */
static void
memo_fill(struct ace_drift *d, struct memo *e)
{
	struct ace_cache_request req = { ACE_CACHE_BASELINE, e->agent_id, e->task_type };
	struct ace_cache_result res;
	struct ace_error err;

	ace_baseline_release(e->stages);
	e->reason[0] = '\0';
	ace_cache_get(d->o.cache, &req, 1, &res);
	e->status = res.status;
	if (res.status == ACE_OK && ace_baseline_parse(res.value, e->stages, &err) != ACE_OK) {
		e->status = err.code;
		snprintf(e->reason, sizeof(e->reason), "%s", err.message);
	} else if (res.status != ACE_OK && res.status != ACE_ERR_NOT_FOUND) {
		snprintf(e->reason, sizeof(e->reason), "%s", res.err.message);
	}
	ace_cache_result_release(&res);
	e->fetched = ace_monotonic();
}

/* Returns the memo entry of an agent and task type, looked up now when missing or stale, or NULL without memory. */
static struct memo *
memo_get(struct ace_drift *d, const char *agent, const char *task)
{
	size_t b = memo_bucket(agent, task);
	struct memo *e;
	double now = ace_monotonic();

	for (e = d->buckets[b]; e != NULL; e = e->next)
		if (strcmp(e->agent_id, agent) == 0 && strcmp(e->task_type, task) == 0)
			break;
	if (e != NULL) {
		double age = now - e->fetched;
		bool failed = e->status != ACE_OK && e->status != ACE_ERR_NOT_FOUND;

		if (age >= d->o.refresh || (failed && age >= FAILURE_REFRESH))
			memo_fill(d, e);
		return e;
	}
	if (d->entries >= MEMO_MAX) {
		memo_clear(d);
		b = memo_bucket(agent, task);
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->agent_id = strdup(agent);
	e->task_type = strdup(task);
	if (e->agent_id == NULL || e->task_type == NULL) {
		memo_free(e);
		return NULL;
	}
	memo_fill(d, e);
	e->next = d->buckets[b];
	d->buckets[b] = e;
	d->entries++;
	return e;
}

static int
put_number(struct ace_buf *out, const char *name, double value)
{
	char text[40];

	ace_prom_format_value(value, text, sizeof(text));
	return ace_buf_printf(out, ",\"%s\":%s", name, text);
}

/* Appends the "metrics" object. */
static int
put_metrics(struct ace_buf *out, const struct ace_drift_check *checks, const struct ace_drift_baseline *b)
{
	bool first = true;
	int rc = ace_buf_puts(out, ",\"metrics\":{");

	for (int i = 0; i < ACE_DRIFT_METRICS; i++) {
		const struct ace_drift_check *c = &checks[i];
		char text[40];

		if (!c->has_value)
			continue;
		ace_prom_format_value(c->value, text, sizeof(text));
		rc |= ace_buf_printf(out, "%s\"%s\":{\"value\":%s", first ? "" : ",",
		    ace_drift_metric_name(i), text);
		first = false;
		if (b != NULL && b[i].present)
			rc |= put_number(out, "mean", b[i].mean);
		if (c->has_deviation)
			rc |= put_number(out, "deviation", c->deviation);
		if (c->has_z)
			rc |= put_number(out, "z", c->z);
		if (c->has_threshold) {
			rc |= put_number(out, "threshold", c->threshold);
			rc |= ace_buf_printf(out, ",\"drift\":%s", c->crossed ? "true" : "false");
		}
		rc |= ace_buf_putc(out, '}');
	}
	return rc | ace_buf_putc(out, '}');
}

int
ace_drift_check(struct ace_drift *d, const char *line, size_t len, const struct ace_metric *m,
    struct ace_buf *out, struct ace_drift_outcome *outcome)
{
	const char *task = m->task_type ? m->task_type : "";
	struct memo *e = memo_get(d, m->agent_id, task);
	const struct ace_baseline_stage *stage = NULL;
	bool has[ACE_DRIFT_METRICS];
	double values[ACE_DRIFT_METRICS];
	struct ace_drift_check checks[ACE_DRIFT_METRICS];
	char reason[ACE_ERROR_MAX + 1024] = "";
	int rc = 0;

	if (e == NULL)
		return -1;
	memset(outcome, 0, sizeof(*outcome));
	outcome->lookup_status = e->status;
	if (e->status == ACE_OK && e->stages[m->stage].present)
		stage = &e->stages[m->stage];
	if (e->status == ACE_OK || e->status == ACE_ERR_NOT_FOUND) {
		if (stage == NULL)
			snprintf(reason, sizeof(reason), "no baseline for stage %s of task type '%.300s'",
			    ace_stage_name(m->stage), task);
	} else {
		snprintf(reason, sizeof(reason), "baseline unavailable: %s", e->reason);
	}
	outcome->has_baseline = stage != NULL;

	for (int i = 0; i < ACE_DRIFT_METRICS; i++) {
		has[i] = (m->present & (1u << record_fields[i])) != 0;
		values[i] = m->numbers[record_fields[i]];
	}
	outcome->drift = ace_drift_evaluate(has, values, stage ? stage->metrics : NULL,
	    &d->o.thresholds, checks);

	rc |= ace_buf_puts(out, "{\"record\":");
	rc |= ace_buf_append(out, line, len);
	rc |= ace_buf_printf(out, ",\"baseline\":%s", stage ? stage->json : "null");
	rc |= ace_buf_printf(out, ",\"drift\":%s", outcome->drift ? "true" : "false");
	rc |= put_metrics(out, checks, stage ? stage->metrics : NULL);
	if (*reason != '\0') {
		rc |= ace_buf_puts(out, ",\"reason\":");
		rc |= ace_buf_put_json_string(out, reason, strlen(reason), NULL);
	}
	rc |= ace_buf_puts(out, "}\n");
	return rc ? -1 : 0;
}
