/* Unit tests of Student's t quantiles, confidence intervals, z-scores and drift thresholds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ace/stats.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Fails unless actual is within rel (relative) of expected. */
#define assert_close(actual, expected, rel) do { \
	double a_ = (actual), e_ = (expected); \
	if (!(fabs(a_ - e_) <= (rel) * fabs(e_))) \
		fail_msg("%.17g is not within %g of %.17g", a_, (double)(rel), e_); \
} while (0)

/*
 * The 0.975 quantiles of Student's t, computed with mpmath at 40 digits by
 * bisection on 1 - I_x(df/2, 1/2)/2 (mpmath's betainc), shown to 17.
 */
static const struct {
	long df;
	double t;
} reference[] = {
	{ 1, 12.706204736174705 },
	{ 2, 4.3026527297494639 },
	{ 3, 3.1824463052837096 },
	{ 4, 2.7764451051977944 },
	{ 5, 2.5705818356363155 },
	{ 6, 2.4469118511449700 },
	{ 9, 2.2621571627982055 },
	{ 10, 2.2281388519862747 },
	{ 20, 2.0859634472658648 },
	{ 29, 2.0452296421327043 },
	{ 30, 2.0422724563012383 },
	{ 100, 1.9839715185235523 },
	{ 1000, 1.9623390808264085 },
	{ 1001, 1.9623367052808799 },
};

static void
test_t_critical_reference(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(reference); i++)
		assert_close(ace_stats_t_critical95(reference[i].df), reference[i].t, 1e-12);
}

/*
 * Degrees of freedom 1, 2 and 4 have closed forms: tan(pi (p - 1/2)) for 1,
 * (2p - 1) / sqrt(2p(1 - p)) for 2, and for 4 with a = 4p(1 - p) and
 * q = cos(acos(sqrt(a)) / 3) / sqrt(a): 2 sqrt(q - 1).
 */
static void
test_t_quantile_closed_forms(void **state)
{
	const double ps[] = { 0.6, 0.75, 0.9, 0.975, 0.995, 0.9995 };

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(ps); i++) {
		double p = ps[i], a = 4 * p * (1 - p);
		double q = cos(acos(sqrt(a)) / 3) / sqrt(a);

		assert_close(ace_stats_t_quantile(p, 1), tan(M_PI * (p - 0.5)), 1e-12);
		assert_close(ace_stats_t_quantile(p, 2), (2 * p - 1) / sqrt(2 * p * (1 - p)), 1e-12);
		assert_close(ace_stats_t_quantile(p, 4), 2 * sqrt(q - 1), 1e-12);
	}
}

/* The Cornish-Fisher branch above 1000 degrees of freedom meets the exact one below it. */
static void
test_t_quantile_branches_meet(void **state)
{
	(void)state;
	assert_close(ace_stats_t_quantile(0.975, 1000.5), ace_stats_t_quantile(0.975, 1000), 1e-6);
	/* The normal quantile is the limit; at 2e9 degrees of freedom the gap is about 1.2e-9. */
	assert_close(ace_stats_t_critical95(2000000000L), 1.959963984540054, 1e-9);
	assert_true(ace_stats_t_critical95(1001) < ace_stats_t_critical95(1000));
}

static void
test_t_quantile_invalid(void **state)
{
	(void)state;
	assert_true(isnan(ace_stats_t_critical95(0)));
	assert_true(isnan(ace_stats_t_critical95(-3)));
	assert_true(isnan(ace_stats_t_quantile(0.4, 5)));
	assert_true(isnan(ace_stats_t_quantile(1, 5)));
	assert_true(ace_stats_t_quantile(0.5, 5) == 0);
}

static void
test_t_cdf_symmetry(void **state)
{
	(void)state;
	assert_close(ace_stats_t_cdf(0, 7), 0.5, 1e-15);
	assert_close(ace_stats_t_cdf(-2.5, 7) + ace_stats_t_cdf(2.5, 7), 1, 1e-15);
	assert_close(ace_stats_t_cdf(ace_stats_t_critical95(7), 7), 0.975, 1e-13);
	assert_true(ace_stats_t_cdf(INFINITY, 3) == 1);
	assert_true(ace_stats_t_cdf(-INFINITY, 3) == 0);
}

static void
test_ci95_values(void **state)
{
	double low = 0, high = 0;

	(void)state;
	/* n = 5: df 4, half width t * sd / sqrt(5). */
	assert_true(ace_stats_ci95(10, 2, 5, &low, &high));
	assert_close(high - 10, 2.7764451051977944 * 2 / sqrt(5), 1e-12);
	assert_close(10 - low, 2.7764451051977944 * 2 / sqrt(5), 1e-12);
	/* A standard deviation of 0 gives an interval of width 0. */
	assert_true(ace_stats_ci95(3, 0, 8, &low, &high));
	assert_true(low == 3 && high == 3);
}

static void
test_ci95_undefined(void **state)
{
	double low = -1, high = -1;

	(void)state;
	assert_false(ace_stats_ci95(1, 0.5, 1, &low, &high));
	assert_false(ace_stats_ci95(1, NAN, 10, &low, &high));
	assert_false(ace_stats_ci95(1, -0.5, 10, &low, &high));
	assert_true(low == -1 && high == -1);
}

static void
test_z_score(void **state)
{
	double z = 0;

	(void)state;
	assert_true(ace_stats_z(13, 10, 2, &z));
	assert_true(z == 1.5);
	assert_true(ace_stats_z(7, 10, 2, &z));
	assert_true(z == -1.5);
	assert_false(ace_stats_z(7, 10, 0, &z));
	assert_false(ace_stats_z(7, 10, NAN, &z));
}

static const struct ace_drift_thresholds defaults = { 0.5, 2.0, 0.7 };

/* A baseline of means 0.9 success, 0.1 error, 1000 ms, 5 actions and velocity 10. */
static void
make_baseline(struct ace_drift_baseline *b)
{
	const double means[ACE_DRIFT_METRICS] = { 0.9, 0.1, 1000, 5, 10 };
	const double sds[ACE_DRIFT_METRICS] = { 0.05, 0.02, 200, 1, 2 };

	for (int i = 0; i < ACE_DRIFT_METRICS; i++)
		b[i] = (struct ace_drift_baseline){ true, means[i], true, sds[i] };
}

/* One row of the drift table: a metric, a value, and whether it is drift. */
static const struct {
	int metric;
	double value;
	bool crossed;
} drift_cases[] = {
	{ ACE_DRIFT_SUCCESS_RATE, 0.69, true },		/* below 0.7 */
	{ ACE_DRIFT_SUCCESS_RATE, 0.7, false },		/* at 0.7 */
	{ ACE_DRIFT_SUCCESS_RATE, 0.71, false },
	{ ACE_DRIFT_ERROR_RATE, 0.21, true },		/* above 2 * 0.1 */
	{ ACE_DRIFT_ERROR_RATE, 0.2, false },		/* at 2 * 0.1 */
	{ ACE_DRIFT_ERROR_RATE, 0.19, false },
	{ ACE_DRIFT_VELOCITY, 4.99, true },		/* below 0.5 * 10 */
	{ ACE_DRIFT_VELOCITY, 5, false },		/* at 0.5 * 10 */
	{ ACE_DRIFT_VELOCITY, 5.01, false },
	{ ACE_DRIFT_DURATION_MS, 100000, false },	/* no threshold */
	{ ACE_DRIFT_ACTION_COUNT, 0, false },
};

static void
test_drift_thresholds_table(void **state)
{
	struct ace_drift_baseline b[ACE_DRIFT_METRICS];

	(void)state;
	make_baseline(b);
	for (size_t i = 0; i < ARRAY_LEN(drift_cases); i++) {
		bool has[ACE_DRIFT_METRICS] = { false };
		double values[ACE_DRIFT_METRICS] = { 0 };
		struct ace_drift_check checks[ACE_DRIFT_METRICS];
		int m = drift_cases[i].metric;
		bool drift;

		has[m] = true;
		values[m] = drift_cases[i].value;
		drift = ace_drift_evaluate(has, values, b, &defaults, checks);
		if (drift != drift_cases[i].crossed || checks[m].crossed != drift_cases[i].crossed)
			fail_msg("case %zu: %s = %g: expected crossed %d, got %d", i,
			    ace_drift_metric_name(m), drift_cases[i].value, drift_cases[i].crossed,
			    checks[m].crossed);
	}
}

static void
test_drift_deviation_and_z(void **state)
{
	struct ace_drift_baseline b[ACE_DRIFT_METRICS];
	bool has[ACE_DRIFT_METRICS] = { false, false, true, false, false };
	double values[ACE_DRIFT_METRICS] = { 0, 0, 1300, 0, 0 };
	struct ace_drift_check checks[ACE_DRIFT_METRICS];

	(void)state;
	make_baseline(b);
	assert_false(ace_drift_evaluate(has, values, b, &defaults, checks));
	assert_true(checks[ACE_DRIFT_DURATION_MS].has_deviation);
	assert_true(checks[ACE_DRIFT_DURATION_MS].deviation == 300);
	assert_true(checks[ACE_DRIFT_DURATION_MS].has_z);
	assert_true(checks[ACE_DRIFT_DURATION_MS].z == 1.5);
	assert_false(checks[ACE_DRIFT_DURATION_MS].has_threshold);
	assert_false(checks[ACE_DRIFT_SUCCESS_RATE].has_value);

	/* One sample in the baseline: a deviation but no z-score. */
	b[ACE_DRIFT_DURATION_MS].has_stddev = false;
	ace_drift_evaluate(has, values, b, &defaults, checks);
	assert_true(checks[ACE_DRIFT_DURATION_MS].has_deviation);
	assert_false(checks[ACE_DRIFT_DURATION_MS].has_z);
}

/* Without a baseline only the absolute success rate threshold applies. */
static void
test_drift_without_baseline(void **state)
{
	bool has[ACE_DRIFT_METRICS] = { true, true, false, false, true };
	double values[ACE_DRIFT_METRICS] = { 0.5, 0.9, 0, 0, 0 };
	struct ace_drift_check checks[ACE_DRIFT_METRICS];

	(void)state;
	assert_true(ace_drift_evaluate(has, values, NULL, &defaults, checks));
	assert_true(checks[ACE_DRIFT_SUCCESS_RATE].crossed);
	assert_false(checks[ACE_DRIFT_ERROR_RATE].has_threshold);
	assert_false(checks[ACE_DRIFT_ERROR_RATE].has_deviation);
	assert_false(checks[ACE_DRIFT_VELOCITY].has_threshold);
	values[ACE_DRIFT_SUCCESS_RATE] = 0.8;
	assert_false(ace_drift_evaluate(has, values, NULL, &defaults, checks));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_t_critical_reference),
		cmocka_unit_test(test_t_quantile_closed_forms),
		cmocka_unit_test(test_t_quantile_branches_meet),
		cmocka_unit_test(test_t_quantile_invalid),
		cmocka_unit_test(test_t_cdf_symmetry),
		cmocka_unit_test(test_ci95_values),
		cmocka_unit_test(test_ci95_undefined),
		cmocka_unit_test(test_z_score),
		cmocka_unit_test(test_drift_thresholds_table),
		cmocka_unit_test(test_drift_deviation_and_z),
		cmocka_unit_test(test_drift_without_baseline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
