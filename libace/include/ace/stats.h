/* Statistics of baselines and drift: Student's t quantiles, confidence intervals, z-scores and drift thresholds. */
#ifndef ACE_STATS_H
#define ACE_STATS_H

#include <stdbool.h>

/*
 * Returns the p quantile of Student's t distribution with df degrees of
 * freedom, for 0.5 <= p < 1 and df > 0 (NaN outside that range).  The
 * quantile is found by bisection on the distribution function, which is
 * computed from the regularized incomplete beta function by its continued
 * fraction.  Above 1000 degrees of freedom a Cornish-Fisher expansion around
 * the normal quantile takes over.  Against a 40-digit computation the
 * relative error is below 1e-12.  Thread-safe.
 */
double ace_stats_t_quantile(double p, double df);

/*
 * Returns the distribution function P(T <= t) of Student's t with df > 0
 * degrees of freedom.  Thread-safe.
 */
double ace_stats_t_cdf(double t, double df);

/* The critical value of a two-sided 95% interval: the 0.975 quantile with df degrees of freedom. */
double ace_stats_t_critical95(long df);

/*
 * Computes the two-sided 95% confidence interval of a mean from n samples
 * with sample standard deviation sd: mean -+ t(0.975, n - 1) * sd / sqrt(n).
 * Returns false, leaving *low and *high alone, when n < 2 or sd is not a
 * finite number >= 0.
 */
bool ace_stats_ci95(double mean, double sd, long n, double *low, double *high);

/*
 * Computes the z-score (value - mean) / sd into *z.  Returns false when sd
 * is 0, negative or not finite, because the score is then undefined.
 */
bool ace_stats_z(double value, double mean, double sd, double *z);

/* Where drift starts; a value exactly at a threshold is not drift. */
struct ace_drift_thresholds {
	double velocity_ratio;		/* velocity below ratio * baseline mean */
	double error_rate_ratio;	/* error rate above ratio * baseline mean */
	double min_success_rate;	/* success rate below this value, baseline or not */
};

/* The metrics that drift compares with a baseline. */
enum ace_drift_metric {
	ACE_DRIFT_SUCCESS_RATE,
	ACE_DRIFT_ERROR_RATE,
	ACE_DRIFT_DURATION_MS,
	ACE_DRIFT_ACTION_COUNT,
	ACE_DRIFT_VELOCITY,
	ACE_DRIFT_METRICS
};

/* One metric of a baseline: its sample mean and standard deviation. */
struct ace_drift_baseline {
	bool present;		/* the baseline has a mean for this metric */
	double mean;
	bool has_stddev;	/* false when the baseline had one sample, or none */
	double stddev;
};

/* One metric of a record compared with its baseline. */
struct ace_drift_check {
	bool has_value;		/* the record carries this metric */
	double value;
	bool has_deviation;	/* value and baseline mean are both known */
	double deviation;	/* value - mean */
	bool has_z;		/* the deviation and a non-zero standard deviation are known */
	double z;
	bool has_threshold;	/* this metric has a threshold that could be checked */
	double threshold;	/* the limit the value was compared with */
	bool crossed;		/* the value is beyond the threshold */
};

/* Returns the record field name of a metric, such as "stage_success_rate". */
const char *ace_drift_metric_name(int metric);

/*
 * Compares a record's values (has[i] says whether values[i] is given) with
 * its baseline (NULL when there is none) and fills checks[ACE_DRIFT_METRICS].
 * The success rate threshold is absolute and applies without a baseline;
 * the velocity and error rate thresholds are relative to the baseline mean.
 * Returns whether any threshold was crossed.
 */
bool ace_drift_evaluate(const bool *has, const double *values,
    const struct ace_drift_baseline *baseline, const struct ace_drift_thresholds *t,
    struct ace_drift_check *checks);

#endif
