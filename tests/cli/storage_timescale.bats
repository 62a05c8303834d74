#!/usr/bin/env bats
# Tests the TimescaleDB storage path against PGlite with TimescaleDB: hypertable, compression, policies, verify, maintain and down.
#
# PGlite runs one backend session for every client and crashes on COPY FROM
# STDIN, so rows are loaded with INSERT and ace-ingest's COPY is not run here;
# its staging-table statements are, by hand.

bats_require_minimum_version 1.5.0

load helpers
load storage_helpers

setup_file() {
  pglite_start
}

teardown_file() {
  pglite_stop
}

setup() {
  pglite_require
  pglite_reset
  unset ACE_STORAGE ACE_TIMESERIES_CHUNK_INTERVAL ACE_TIMESERIES_COMPRESS_AFTER \
    ACE_TIMESERIES_COMPRESS_SEGMENTBY ACE_TIMESERIES_COMPRESS_ORDERBY \
    ACE_TIMESERIES_RETENTION ACE_TIMESERIES_PREMAKE
}

# Prints "compressed total" chunk counts of performance_metrics.
chunk_counts() {
  ace_psql "SELECT count(*) FILTER (WHERE is_compressed) || ' ' || count(*)
              FROM timescaledb_information.chunks WHERE hypertable_name = 'performance_metrics'"
}

# Prints the policy jobs of performance_metrics as "proc_name interval", one a line.
policy_jobs() {
  ace_psql "SELECT proc_name || ' ' || coalesce(config ->> 'compress_after', config ->> 'drop_after')
              FROM timescaledb_information.jobs
             WHERE hypertable_name = 'performance_metrics' ORDER BY proc_name"
}

@test "up makes a compressed hypertable" {
  export ACE_STORAGE=timescaledb
  run --separate-stderr ace-migrate up
  expect_status 0
  expect_equal "$stderr" "" "stderr"
  expect_line "applied 0005_timeseries_storage"
  expect_line_equal "storage: timescaledb"
  expect_line_equal "compression: enabled (segment by agent_id,task_id; order by recorded_at DESC)"
  expect_line "compression policy: added (job "
  expect_line "retention policy: added (job "

  expect_equal "$(ace_psql "SELECT time_interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'performance_metrics' AND column_name = 'recorded_at'")" "1 day" "chunk interval"
  expect_equal "$(ace_psql "SELECT string_agg(attname || ':' || coalesce(segmentby_column_index::text, '') || ':' || coalesce(orderby_column_index::text, '') || ':' || coalesce(orderby_asc::text, ''), ' ' ORDER BY attname) FROM timescaledb_information.compression_settings WHERE hypertable_name = 'performance_metrics'")" \
    "agent_id:1:: recorded_at::1:false task_id:2::" "compression settings"
  expect_equal "$(policy_jobs)" $'policy_compression 7 days\npolicy_retention 90 days' "policy jobs"
  expect_equal "$(metric_indexes)" "$METRIC_INDEXES" "indexes"
}

@test "auto takes timescaledb" {
  run --separate-stderr ace-migrate up
  expect_status 0
  expect_line_equal "storage: timescaledb"
}

@test "verify passes after up" {
  ace-migrate up >/dev/null

  run --separate-stderr ace-migrate verify
  expect_status 0
  expect_equal "$stderr" "" "stderr"
  expect_equal "${lines[0]}" "ok       storage: timescaledb (hypertable)" "first line"
  expect_line_equal "ok       chunk interval: 1 day"
  expect_line_equal "ok       compression: segment by agent_id,task_id; order by recorded_at DESC"
  expect_line "ok       compression policy: job "
  expect_line "ok       retention policy: job "
  expect_line_equal "ok       index performance_metrics_pkey"
  expect_equal "$(grep -c '^differs' <<<"$output")" 0 "differs lines"
}

@test "policies twice changes nothing" {
  ace-migrate up >/dev/null

  run --separate-stderr ace-migrate policies
  expect_status 0
  expect_equal "${#lines[@]}" 4 "stdout lines"
  expect_equal "${lines[0]}" "chunk interval: unchanged (1 day)" "line 1"
  expect_equal "${lines[1]}" "compression: unchanged (segment by agent_id,task_id; order by recorded_at DESC)" "line 2"
  [[ ${lines[2]} =~ ^compression\ policy:\ unchanged\ \(job\ [0-9]+,\ 7\ days\)$ ]]
  [[ ${lines[3]} =~ ^retention\ policy:\ unchanged\ \(job\ [0-9]+,\ 90\ days\)$ ]]

  local first=$output
  run --separate-stderr ace-migrate policies
  expect_status 0
  expect_equal "$output" "$first" "second run"
}

@test "policies follow changed settings" {
  ace-migrate up >/dev/null
  export ACE_TIMESERIES_CHUNK_INTERVAL=2d ACE_TIMESERIES_COMPRESS_AFTER=3d \
    ACE_TIMESERIES_COMPRESS_SEGMENTBY=agent_id ACE_TIMESERIES_COMPRESS_ORDERBY="recorded_at DESC, task_id" \
    ACE_TIMESERIES_RETENTION=0

  run --separate-stderr ace-migrate verify
  expect_status 65
  expect_line_equal "differs  chunk interval: 1 day, expected 2 days; run 'ace-migrate policies'"
  expect_line_equal "differs  compression: segment by agent_id,task_id; order by recorded_at DESC, expected segment by agent_id; order by recorded_at DESC,task_id ASC; run 'ace-migrate policies'"
  expect_line "differs  compression policy: job "
  expect_line "differs  retention policy: job "
  expect_equal "$stderr" "ace-migrate: verify: 4 differences from the configuration" "stderr"

  run --separate-stderr ace-migrate policies
  expect_status 0
  expect_line_equal "chunk interval: changed from 1 day to 2 days (new chunks only)"
  expect_line_equal "compression: changed from (segment by agent_id,task_id; order by recorded_at DESC) to (segment by agent_id; order by recorded_at DESC,task_id ASC); chunks compressed before keep their old settings"
  expect_line "compression policy: changed from 7 days to 3 days (job "
  expect_line "retention policy: removed (job "
  expect_equal "$(policy_jobs)" "policy_compression 3 days" "policy jobs"

  run --separate-stderr ace-migrate verify
  expect_status 0
  expect_line_equal "ok       retention policy: none, as timeseries.retention is 0"

  unset ACE_TIMESERIES_CHUNK_INTERVAL ACE_TIMESERIES_COMPRESS_AFTER ACE_TIMESERIES_COMPRESS_SEGMENTBY \
    ACE_TIMESERIES_COMPRESS_ORDERBY ACE_TIMESERIES_RETENTION
  run --separate-stderr ace-migrate policies
  expect_status 0
  expect_line "retention policy: added (job "
  expect_equal "$(policy_jobs)" $'policy_compression 7 days\npolicy_retention 90 days' "policy jobs restored"
}

@test "maintain runs the policy jobs" {
  ace-migrate up >/dev/null
  insert_metrics -120 3
  insert_metrics -10 4
  insert_metrics 0 5
  expect_equal "$(count_rows)" 12 "rows before"

  run --separate-stderr ace-migrate maintain
  expect_status 0
  expect_equal "${#lines[@]}" 2 "stdout lines"
  [[ ${lines[0]} =~ ^compression\ policy:\ ran\ job\ [0-9]+$ ]]
  [[ ${lines[1]} =~ ^retention\ policy:\ ran\ job\ [0-9]+$ ]]

  # The retention job dropped the chunk of 120 days ago, and compression took the one of 10 days ago.
  expect_equal "$(count_rows)" 9 "rows after"
  expect_equal "$(chunk_counts)" "1 2" "compressed and all chunks"
}

@test "staging insert skips duplicates" {
  ace-migrate up >/dev/null
  insert_metrics -10 4
  ace-migrate maintain >/dev/null
  expect_equal "$(chunk_counts)" "1 1" "compressed and all chunks"

  # ace-ingest's fallback for duplicates, as libace/src/copy.c runs it, into a compressed chunk.
  run --separate-stderr ace_psql \
    "BEGIN; CREATE TEMP TABLE ace_ingest_stage (LIKE performance_metrics INCLUDING DEFAULTS) ON COMMIT DELETE ROWS" \
    "INSERT INTO ace_ingest_stage (metric_id, recorded_at, agent_id, task_id, stage)
       SELECT metric_id, recorded_at, agent_id, task_id, stage FROM performance_metrics
       UNION ALL SELECT gen_random_uuid(), now(), 'agent-9', 'task-9', 'planning'" \
    "INSERT INTO performance_metrics SELECT * FROM ace_ingest_stage ON CONFLICT DO NOTHING" \
    "COMMIT"
  expect_status 0
  expect_equal "$(count_rows)" 5 "rows after the staging insert"
}

@test "down and up keep every row" {
  ace-migrate up >/dev/null
  insert_metrics -30 3
  insert_metrics -10 4
  insert_metrics -1 2
  ace-migrate maintain >/dev/null
  expect_equal "$(chunk_counts)" "2 3" "compressed and all chunks before down"
  expect_equal "$(count_rows)" 9 "rows before down"

  run --separate-stderr ace-migrate down "$(steps_to_revert_storage)"
  expect_status 0
  expect_line "reverted 0005_timeseries_storage"
  expect_equal "$(count_rows)" 9 "rows after down"
  expect_equal "$(ace_psql "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'performance_metrics'")" 0 "hypertables after down"
  expect_equal "$(policy_jobs)" "" "policy jobs after down"
  expect_equal "$(metric_indexes)" "$METRIC_INDEXES" "indexes after down"

  run --separate-stderr ace-migrate up
  expect_status 0
  expect_line_equal "storage: timescaledb"
  expect_equal "$(count_rows)" 9 "rows after up"
  expect_equal "$(chunk_counts)" "0 3" "compressed and all chunks after up"

  run --separate-stderr ace-migrate verify
  expect_status 0
}

@test "configured partitioned on hypertable conflicts" {
  ace-migrate up >/dev/null

  ACE_STORAGE=partitioned run --separate-stderr ace-migrate maintain
  expect_status 65
  expect_equal "$stderr" "ace-migrate: maintain: storage is partitioned in the configuration, but performance_metrics is a hypertable; revert migration 0005 with 'ace-migrate down' and run 'ace-migrate up' to convert it" "stderr"
}
