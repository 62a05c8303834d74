/* Student's t distribution, confidence intervals, z-scores and the drift thresholds. */
#include <float.h>
#include <math.h>
#include <stddef.h>

#include "ace/stats.h"

/* Above this many degrees of freedom the Cornish-Fisher expansion is used. */
#define EXPANSION_DF 1000.0

#define FRACTION_STEPS 10000

/*
 * Evaluates the continued fraction of the regularized incomplete beta
 * function with the modified Lentz method.  It converges quickly when
 * x < (a + 1) / (a + b + 2), which the caller ensures.
 */
static double
beta_fraction(double x, double a, double b)
{
	const double tiny = 1e-300;
	double c = 1, d = 1 - (a + b) * x / (a + 1), h;

	if (fabs(d) < tiny)
		d = tiny;
	d = 1 / d;
	h = d;
	for (int m = 1; m <= FRACTION_STEPS; m++) {
		double m2 = 2.0 * m, coef, step;

		/* Even step: m (b - m) x / ((a + 2m - 1)(a + 2m)). */
		coef = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
		d = 1 + coef * d;
		c = 1 + coef / c;
		d = fabs(d) < tiny ? 1 / tiny : 1 / d;
		if (fabs(c) < tiny)
			c = tiny;
		h *= d * c;

		/* Odd step: -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)). */
		coef = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
		d = 1 + coef * d;
		c = 1 + coef / c;
		d = fabs(d) < tiny ? 1 / tiny : 1 / d;
		if (fabs(c) < tiny)
			c = tiny;
		step = d * c;
		h *= step;
		if (fabs(step - 1) < 1e-16)
			break;
	}
	return h;
}

/*
 * The regularized incomplete beta function I_x(a, b).  y is 1 - x, passed
 * separately so that a caller who knows it exactly loses no digits.
 */
static double
incomplete_beta(double x, double y, double a, double b)
{
	int sign;
	double log_front;

	if (x <= 0)
		return 0;
	if (y <= 0)
		return 1;
	log_front = lgamma_r(a + b, &sign) - lgamma_r(a, &sign) - lgamma_r(b, &sign) +
	    a * log(x) + b * log(y);
	if (x < (a + 1) / (a + b + 2))
		return exp(log_front) * beta_fraction(x, a, b) / a;
	return 1 - exp(log_front) * beta_fraction(y, b, a) / b;
}

double
ace_stats_t_cdf(double t, double df)
{
	double t2, tail;

	if (!(df > 0) || isnan(t))
		return NAN;
	if (isinf(t))
		return t > 0 ? 1 : 0;
	t2 = t * t;
	/* P(|T| > |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2). */
	tail = 0.5 * incomplete_beta(df / (df + t2), t2 / (df + t2), df / 2, 0.5);
	return t >= 0 ? 1 - tail : tail;
}

/* The p quantile of the standard normal distribution, for 0.5 <= p < 1, by bisection on erfc. */
static double
normal_quantile(double p)
{
	double lo = 0, hi = 40;

	for (int i = 0; i < 200 && hi - lo > 2 * DBL_EPSILON * hi; i++) {
		double mid = (lo + hi) / 2;

		if (0.5 * erfc(-mid / M_SQRT2) < p)
			lo = mid;
		else
			hi = mid;
	}
	return (lo + hi) / 2;
}

/*
 * The Cornish-Fisher expansion of the t quantile in powers of 1 / df around
 * the normal quantile z, to the fourth power.  Above EXPANSION_DF it agrees
 * with a 40-digit computation to 1e-12 (tests/unit/test_stats.c).
 */
static double
t_quantile_expansion(double p, double df)
{
	double z = normal_quantile(p);
	double z2 = z * z, z3 = z2 * z, z5 = z3 * z2, z7 = z5 * z2, z9 = z7 * z2;
	double g1 = (z3 + z) / 4;
	double g2 = (5 * z5 + 16 * z3 + 3 * z) / 96;
	double g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384;
	double g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160;

	return z + g1 / df + g2 / (df * df) + g3 / (df * df * df) + g4 / (df * df * df * df);
}

double
ace_stats_t_quantile(double p, double df)
{
	double lo = 0, hi = 1;

	if (!(p >= 0.5 && p < 1) || !(df > 0))
		return NAN;
	if (p == 0.5)
		return 0;
	if (df > EXPANSION_DF)
		return t_quantile_expansion(p, df);
	while (ace_stats_t_cdf(hi, df) < p) {
		lo = hi;
		hi *= 2;
		if (hi > 1e300)
			return INFINITY;
	}
	for (int i = 0; i < 2000 && hi - lo > 2 * DBL_EPSILON * hi; i++) {
		double mid = lo + (hi - lo) / 2;

		if (ace_stats_t_cdf(mid, df) < p)
			lo = mid;
		else
			hi = mid;
	}
	return lo + (hi - lo) / 2;
}

double
ace_stats_t_critical95(long df)
{
	if (df < 1)
		return NAN;
	return ace_stats_t_quantile(0.975, (double)df);
}

bool
ace_stats_ci95(double mean, double sd, long n, double *low, double *high)
{
	double half;

	if (n < 2 || !isfinite(sd) || sd < 0 || !isfinite(mean))
		return false;
	half = ace_stats_t_critical95(n - 1) * sd / sqrt((double)n);
	*low = mean - half;
	*high = mean + half;
	return true;
}

bool
ace_stats_z(double value, double mean, double sd, double *z)
{
	if (!isfinite(sd) || sd <= 0)
		return false;
	*z = (value - mean) / sd;
	return true;
}

static const char *metric_names[ACE_DRIFT_METRICS] = {
	[ACE_DRIFT_SUCCESS_RATE] = "stage_success_rate",
	[ACE_DRIFT_ERROR_RATE] = "stage_error_rate",
	[ACE_DRIFT_DURATION_MS] = "stage_duration_ms",
	[ACE_DRIFT_ACTION_COUNT] = "stage_action_count",
	[ACE_DRIFT_VELOCITY] = "overall_progress_velocity",
};

const char *
ace_drift_metric_name(int metric)
{
	if (metric < 0 || metric >= ACE_DRIFT_METRICS)
		return "";
	return metric_names[metric];
}

bool
ace_drift_evaluate(const bool *has, const double *values,
    const struct ace_drift_baseline *baseline, const struct ace_drift_thresholds *t,
    struct ace_drift_check *checks)
{
	bool drift = false;

	for (int i = 0; i < ACE_DRIFT_METRICS; i++) {
		struct ace_drift_check *c = &checks[i];
		const struct ace_drift_baseline *b = baseline ? &baseline[i] : NULL;

		*c = (struct ace_drift_check){ .has_value = has[i], .value = values[i] };
		if (!c->has_value)
			continue;
		if (b != NULL && b->present) {
			c->has_deviation = true;
			c->deviation = c->value - b->mean;
			c->has_z = b->has_stddev && ace_stats_z(c->value, b->mean, b->stddev, &c->z);
		}
		switch (i) {
		case ACE_DRIFT_SUCCESS_RATE:
			c->has_threshold = true;
			c->threshold = t->min_success_rate;
			c->crossed = c->value < c->threshold;
			break;
		case ACE_DRIFT_ERROR_RATE:
			if (b == NULL || !b->present)
				break;
			c->has_threshold = true;
			c->threshold = t->error_rate_ratio * b->mean;
			c->crossed = c->value > c->threshold;
			break;
		case ACE_DRIFT_VELOCITY:
			if (b == NULL || !b->present)
				break;
			c->has_threshold = true;
			c->threshold = t->velocity_ratio * b->mean;
			c->crossed = c->value < c->threshold;
			break;
		}
		drift = drift || c->crossed;
	}
	return drift;
}
