-- Adds the statistics of overall_progress_velocity to performance_baselines, which drift detection compares velocity with.
ALTER TABLE performance_baselines
    ADD COLUMN velocity_mean    double precision,
    ADD COLUMN velocity_stddev  double precision,
    ADD COLUMN velocity_ci_low  double precision,
    ADD COLUMN velocity_ci_high double precision;
