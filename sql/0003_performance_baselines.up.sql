-- Per agent, task type and stage: statistics of a window of metrics, one row per computed version.
CREATE TABLE performance_baselines (
    baseline_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id              text        NOT NULL,
    task_type             text        NOT NULL DEFAULT '',
    stage                 text        NOT NULL
        CHECK (stage IN ('planning', 'execution', 'reflection', 'verification')),
    version               integer     NOT NULL CHECK (version >= 1),
    window_start          timestamptz NOT NULL,
    window_end            timestamptz NOT NULL,
    sample_size           integer     NOT NULL CHECK (sample_size >= 0),
    success_rate_mean     double precision,
    success_rate_stddev   double precision,
    success_rate_ci_low   double precision,
    success_rate_ci_high  double precision,
    error_rate_mean       double precision,
    error_rate_stddev     double precision,
    error_rate_ci_low     double precision,
    error_rate_ci_high    double precision,
    duration_ms_mean      double precision,
    duration_ms_stddev    double precision,
    duration_ms_ci_low    double precision,
    duration_ms_ci_high   double precision,
    duration_ms_p50       double precision,
    duration_ms_p95       double precision,
    duration_ms_p99       double precision,
    action_count_mean     double precision,
    action_count_stddev   double precision,
    action_count_ci_low   double precision,
    action_count_ci_high  double precision,
    computed_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (window_end >= window_start),
    UNIQUE (agent_id, task_type, stage, version)
);

-- The current baseline of an agent and task type: the highest version per stage.
CREATE INDEX performance_baselines_lookup_idx
    ON performance_baselines (agent_id, task_type, stage, version DESC);
