-- The time series of agent performance: one row per stage of one task of one agent.
CREATE TABLE performance_metrics (
    metric_id                  uuid        NOT NULL,
    recorded_at                timestamptz NOT NULL,
    agent_id                   text        NOT NULL
        CHECK (char_length(agent_id) BETWEEN 1 AND 255),
    task_id                    text        NOT NULL
        CHECK (char_length(task_id) BETWEEN 1 AND 255),
    task_type                  text
        CHECK (char_length(task_type) <= 100),
    stage                      text        NOT NULL
        CHECK (stage IN ('planning', 'execution', 'reflection', 'verification')),
    stage_success_rate         real CHECK (stage_success_rate BETWEEN 0 AND 1),
    stage_error_rate           real CHECK (stage_error_rate BETWEEN 0 AND 1),
    stage_duration_ms          integer CHECK (stage_duration_ms >= 0),
    stage_action_count         integer CHECK (stage_action_count >= 0),
    overall_progress_velocity  real CHECK (overall_progress_velocity >= 0),
    error_accumulation_rate    real CHECK (error_accumulation_rate >= 0),
    context_staleness_score    real CHECK (context_staleness_score BETWEEN 0 AND 1),
    intervention_effectiveness real CHECK (intervention_effectiveness BETWEEN 0 AND 1),
    baseline_delta             jsonb
        CHECK (baseline_delta IS NULL OR jsonb_typeof(baseline_delta) = 'object'),
    attributes                 jsonb       NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(attributes) = 'object'),
    ingested_at                timestamptz NOT NULL DEFAULT now(),
    -- The same tolerance as ace-ingest's check, for float rounding of the sum.
    CONSTRAINT performance_metrics_rates_sum_check
        CHECK (stage_success_rate + stage_error_rate <= 1.000001),
    PRIMARY KEY (metric_id, recorded_at)
);

-- Recent metrics of an agent, per stage (baselines, drift, dashboards).
CREATE INDEX performance_metrics_agent_stage_time_idx
    ON performance_metrics (agent_id, stage, recorded_at DESC);

-- All stages of one task.
CREATE INDEX performance_metrics_task_idx
    ON performance_metrics (task_id, recorded_at);

-- Baselines group by task type over a time window.
CREATE INDEX performance_metrics_type_time_idx
    ON performance_metrics (task_type, recorded_at DESC);
