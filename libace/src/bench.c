/* Samples, summaries, target checks and the report that the benchmark suites fill. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ace/bench.h"

static const char *const suite_names[ACE_BENCH_SUITES] = {
	"batching", "cache", "pool", "overhead", "compression", "query",
};

const char *
ace_bench_suite_name(int suite)
{
	if (suite < 0 || suite >= ACE_BENCH_SUITES)
		return "unknown";
	return suite_names[suite];
}

int
ace_bench_suites_parse(const char *list, unsigned *mask, struct ace_error *err)
{
	const char *p = list;

	for (;;) {
		size_t n;
		int found = -1;

		while (*p == ' ')
			p++;
		n = strcspn(p, ",");
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == 3 && strncmp(p, "all", 3) == 0) {
			*mask |= ACE_BENCH_ALL;
			found = ACE_BENCH_SUITES;
		}
		for (int i = 0; found < 0 && i < ACE_BENCH_SUITES; i++)
			if (strlen(suite_names[i]) == n && strncmp(p, suite_names[i], n) == 0)
				found = i;
		if (found < 0)
			return ace_error_set(err, ACE_ERR_INVALID,
			    "unknown suite '%.*s' (expected all, batching, cache, pool, overhead, compression or query)",
			    (int)(n > 64 ? 64 : n), p);
		if (found < ACE_BENCH_SUITES)
			*mask |= 1u << found;
		p += strcspn(p, ",");
		if (*p == '\0')
			return ACE_OK;
		p++;
	}
}

/* --- Samples and summaries ------------------------------------------------ */

int
ace_bench_samples_add(struct ace_bench_samples *s, double value)
{
	if (s->count == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		double *grown = realloc(s->values, cap * sizeof(*grown));

		if (grown == NULL)
			return -1;
		s->values = grown;
		s->cap = cap;
	}
	s->values[s->count++] = value;
	return 0;
}

void
ace_bench_samples_release(struct ace_bench_samples *s)
{
	free(s->values);
	s->values = NULL;
	s->count = s->cap = 0;
}

double
ace_bench_percentile(const double *sorted, size_t n, double p)
{
	double rank, frac;
	size_t lo;

	if (n == 0)
		return 0;
	if (p <= 0)
		return sorted[0];
	if (p >= 100)
		return sorted[n - 1];
	rank = p / 100 * (double)(n - 1);
	lo = (size_t)rank;
	frac = rank - (double)lo;
	if (lo + 1 >= n)
		return sorted[n - 1];
	return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

static int
compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void
ace_bench_summarize(struct ace_bench_samples *s, struct ace_bench_summary *out)
{
	double sum = 0;

	memset(out, 0, sizeof(*out));
	if (s->count == 0)
		return;
	qsort(s->values, s->count, sizeof(*s->values), compare_doubles);
	for (size_t i = 0; i < s->count; i++)
		sum += s->values[i];
	out->count = s->count;
	out->min = s->values[0];
	out->max = s->values[s->count - 1];
	out->mean = sum / (double)s->count;
	out->median = ace_bench_percentile(s->values, s->count, 50);
	out->p95 = ace_bench_percentile(s->values, s->count, 95);
	out->p99 = ace_bench_percentile(s->values, s->count, 99);
}

/* --- Targets ------------------------------------------------------------ */

int
ace_bench_judge(const struct ace_bench_target *t, double actual)
{
	bool met;

	if (t->op == ACE_BENCH_NO_TARGET)
		return ACE_BENCH_INFO;
	if (isnan(actual))
		return ACE_BENCH_MISSED;
	switch (t->op) {
	case ACE_BENCH_LT: met = actual < t->value; break;
	case ACE_BENCH_LE: met = actual <= t->value; break;
	case ACE_BENCH_GT: met = actual > t->value; break;
	case ACE_BENCH_GE: met = actual >= t->value; break;
	case ACE_BENCH_EQ: met = actual == t->value; break;
	case ACE_BENCH_BETWEEN: met = actual >= t->value && actual <= t->upper; break;
	default: met = false; break;
	}
	return met ? ACE_BENCH_MET : ACE_BENCH_MISSED;
}

const char *
ace_bench_status_name(int status)
{
	switch (status) {
	case ACE_BENCH_MET: return "met";
	case ACE_BENCH_MISSED: return "missed";
	case ACE_BENCH_INFO: return "info";
	case ACE_BENCH_SKIPPED: return "skipped";
	}
	return "unknown";
}

/* --- Reports ------------------------------------------------------------ */

void
ace_bench_report_init(struct ace_bench_report *r)
{
	memset(r, 0, sizeof(*r));
}

void
ace_bench_report_release(struct ace_bench_report *r)
{
	for (size_t i = 0; i < r->nseries; i++)
		ace_bench_samples_release(&r->series[i].samples);
	free(r->rows);
	free(r->series);
	free(r->settings);
	memset(r, 0, sizeof(*r));
}

/* Makes room for one more element of size bytes in *items; returns 0 or -1. */
static int
grow(void **items, size_t count, size_t *cap, size_t size)
{
	size_t n;
	void *grown;

	if (count < *cap)
		return 0;
	n = *cap ? 2 * *cap : 16;
	grown = realloc(*items, n * size);
	if (grown == NULL)
		return -1;
	*items = grown;
	*cap = n;
	return 0;
}

struct ace_bench_row *
ace_bench_report_add_row(struct ace_bench_report *r, const struct ace_bench_row *row)
{
	struct ace_bench_row *copy;

	if (grow((void **)&r->rows, r->nrows, &r->rows_cap, sizeof(*r->rows)) < 0)
		return NULL;
	copy = &r->rows[r->nrows++];
	*copy = *row;
	if (copy->status != ACE_BENCH_SKIPPED)
		copy->status = ace_bench_judge(&copy->target, copy->actual);
	else
		copy->actual = NAN;
	return copy;
}

struct ace_bench_series *
ace_bench_report_add_series(struct ace_bench_report *r, int suite, const char *name, const char *unit)
{
	struct ace_bench_series *s;

	if (grow((void **)&r->series, r->nseries, &r->series_cap, sizeof(*r->series)) < 0)
		return NULL;
	s = &r->series[r->nseries++];
	memset(s, 0, sizeof(*s));
	s->suite = suite;
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->unit, sizeof(s->unit), "%s", unit);
	return s;
}

int
ace_bench_report_set(struct ace_bench_report *r, const char *name, const char *fmt, ...)
{
	struct ace_bench_setting *s;
	va_list ap;

	for (size_t i = 0; i < r->nsettings; i++) {
		if (strcmp(r->settings[i].name, name) == 0) {
			s = &r->settings[i];
			goto fill;
		}
	}
	if (grow((void **)&r->settings, r->nsettings, &r->settings_cap, sizeof(*r->settings)) < 0)
		return -1;
	s = &r->settings[r->nsettings++];
	snprintf(s->name, sizeof(s->name), "%s", name);
fill:
	va_start(ap, fmt);
	vsnprintf(s->value, sizeof(s->value), fmt, ap);
	va_end(ap);
	return 0;
}

void
ace_bench_report_finish(struct ace_bench_report *r)
{
	for (size_t i = 0; i < r->nseries; i++)
		ace_bench_summarize(&r->series[i].samples, &r->series[i].summary);
}

size_t
ace_bench_report_missed(const struct ace_bench_report *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->nrows; i++)
		n += r->rows[i].status == ACE_BENCH_MISSED;
	return n;
}

size_t
ace_bench_report_judged(const struct ace_bench_report *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->nrows; i++)
		n += r->rows[i].status == ACE_BENCH_MET || r->rows[i].status == ACE_BENCH_MISSED;
	return n;
}
