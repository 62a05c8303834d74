ALTER TABLE performance_baselines
    DROP COLUMN velocity_mean,
    DROP COLUMN velocity_stddev,
    DROP COLUMN velocity_ci_low,
    DROP COLUMN velocity_ci_high;
