#!/usr/bin/env bats
# Tests the partitioned storage path on plain PostgreSQL: conversion, verify, policies, maintain, down and ingest.

bats_require_minimum_version 1.5.0

load helpers
load storage_helpers

setup_file() {
  ace_setup_servers
}

teardown_file() {
  ace_teardown_servers
}

setup() {
  ace_fresh_db storage
  unset ACE_STORAGE ACE_TIMESERIES_CHUNK_INTERVAL ACE_TIMESERIES_COMPRESS_AFTER \
    ACE_TIMESERIES_COMPRESS_SEGMENTBY ACE_TIMESERIES_COMPRESS_ORDERBY \
    ACE_TIMESERIES_RETENTION ACE_TIMESERIES_PREMAKE
}

# Prints the partitions of performance_metrics with their row counts, "name rows" a line, by name.
partition_rows() {
  ace_psql "SELECT c.relname || ' ' || (xpath('/row/n/text()',
              query_to_xml(format('SELECT count(*) AS n FROM %I', c.relname), false, true, '')))[1]::text
              FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'performance_metrics'::regclass ORDER BY c.relname"
}

# Prints the number of partitions, the default one included.
partition_count() {
  ace_psql "SELECT count(*) FROM pg_inherits WHERE inhparent = 'performance_metrics'::regclass"
}

default_rows() {
  ace_psql "SELECT count(*) FROM performance_metrics_default"
}

# Prints the name of the partition that holds day N days from today (negative: in the past).
day_partition() {
  ace_psql "SELECT 'performance_metrics_p' || to_char((now() AT TIME ZONE 'UTC') + interval '$1 days', 'YYYYMMDD')"
}

@test "up converts to range partitions" {
  export ACE_STORAGE=partitioned
  run --separate-stderr ace-migrate up
  expect_status 0
  expect_equal "$stderr" "" "stderr"
  expect_line "applied 0005_timeseries_storage"
  expect_line_equal "storage: partitioned"
  expect_equal "$(grep -c '^partition performance_metrics_p[0-9]\{8\}: created for \[' <<<"$output")" 8 "created partitions"

  expect_equal "$(ace_psql "SELECT relkind FROM pg_class WHERE oid = 'performance_metrics'::regclass")" p "relkind"
  expect_equal "$(partition_count)" 9 "partitions with the default one"
  expect_equal "$(ace_psql "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'performance_metrics_default'")" DEFAULT "default bound"
  expect_equal "$(metric_indexes)" "$METRIC_INDEXES" "indexes"
}

@test "auto falls back and says why" {
  run --separate-stderr ace-migrate up
  expect_status 0
  expect_line_equal 'storage: partitioned, because CREATE EXTENSION timescaledb failed: extension "timescaledb" is not available'
}

@test "timescaledb without extension fails" {
  export ACE_STORAGE=timescaledb
  run --separate-stderr ace-migrate up
  expect_status 70
  expect_equal "$stderr" 'ace-migrate: migration 0005_timeseries_storage up failed: storage is timescaledb, but CREATE EXTENSION timescaledb failed: extension "timescaledb" is not available (SQLSTATE P0001)' "stderr"
  expect_equal "$(ace_psql "SELECT max(version) FROM ace_schema_migrations")" 4 "newest applied migration"
  expect_equal "$(ace_psql "SELECT relkind FROM pg_class WHERE oid = 'performance_metrics'::regclass")" r "relkind"
}

@test "verify passes after up" {
  ace-migrate up >/dev/null

  run --separate-stderr ace-migrate verify
  expect_status 0
  expect_equal "$stderr" "" "stderr"
  expect_equal "${lines[0]}" "ok       storage: partitioned (range partitions on recorded_at)" "first line"
  expect_line_equal "ok       default partition: performance_metrics_default, no rows waiting"
  expect_line "ok       partitions ahead: 8 cover "
  expect_line "ok       retention: nothing before "
  expect_line_equal "ok       index performance_metrics_pkey"
  expect_equal "$(grep -c '^differs' <<<"$output")" 0 "differs lines"
}

@test "policies twice changes nothing" {
  ace-migrate up >/dev/null

  run --separate-stderr ace-migrate policies
  expect_status 0
  [[ $output == "partitions ahead: unchanged ("*")" ]]

  run --separate-stderr ace-migrate policies
  expect_status 0
  expect_equal "${#lines[@]}" 1 "stdout lines"
  [[ $output == "partitions ahead: unchanged ("*")" ]]
}

@test "verify names each difference" {
  ace-migrate up >/dev/null
  ace_psql "DROP TABLE $(day_partition 3)" \
    "INSERT INTO performance_metrics_default (metric_id, recorded_at, agent_id, task_id, stage)
     VALUES (gen_random_uuid(), now() - interval '200 days', 'a', 't', 'planning')" >/dev/null

  run --separate-stderr ace-migrate verify
  expect_status 65
  expect_line "differs  partitions ahead: 1 of 8 missing between "
  expect_line "differs  retention: the default partition holds 1 rows before "
  expect_equal "$(grep -c '^differs' <<<"$output")" 2 "differs lines"
  expect_equal "$stderr" "ace-migrate: verify: 2 differences from the configuration" "stderr"
}

@test "maintain creates future partitions" {
  ACE_TIMESERIES_PREMAKE=2 ace-migrate up >/dev/null
  expect_equal "$(partition_count)" 4 "partitions after up with premake 2"

  run --separate-stderr ace-migrate verify
  expect_status 65
  expect_line "differs  partitions ahead: 5 of 8 missing between "

  run --separate-stderr ace-migrate maintain
  expect_status 0
  expect_equal "${#lines[@]}" 5 "stdout lines"
  expect_line "partition $(day_partition 7): created for ["
  expect_equal "$(partition_count)" 9 "partitions after maintain"

  run --separate-stderr ace-migrate maintain
  expect_status 0
  expect_equal "$output" "nothing to do" "second maintain"
}

@test "maintain drains the default partition" {
  ace-migrate up >/dev/null
  insert_metrics -20 3
  insert_metrics -21 2
  insert_metrics 30 4
  insert_metrics 0 5
  expect_equal "$(count_rows)" 14 "rows before"
  expect_equal "$(default_rows)" 9 "rows in the default partition before"

  run --separate-stderr ace-migrate maintain
  expect_status 0
  expect_equal "${#lines[@]}" 3 "stdout lines"
  expect_line_equal "partition $(day_partition -21): created for [$(day_start -21), $(day_start -20)), moved 2 rows from performance_metrics_default"
  expect_line_equal "partition $(day_partition -20): created for [$(day_start -20), $(day_start -19)), moved 3 rows from performance_metrics_default"
  expect_line_equal "partition $(day_partition 30): created for [$(day_start 30), $(day_start 31)), moved 4 rows from performance_metrics_default"

  expect_equal "$(count_rows)" 14 "rows after"
  expect_equal "$(default_rows)" 0 "rows in the default partition after"
  expect_equal "$(partition_rows | grep "^$(day_partition -20) ")" "$(day_partition -20) 3" "rows of the partition 20 days back"
  expect_equal "$(partition_rows | grep "^$(day_partition 0) ")" "$(day_partition 0) 5" "rows of today's partition"

  run --separate-stderr ace-migrate verify
  expect_status 0
}

@test "maintain drops expired partitions" {
  # A long retention first, so that old days get partitions of their own.
  ACE_TIMESERIES_RETENTION=400d ace-migrate up >/dev/null
  insert_metrics -120 3
  insert_metrics -95 2
  insert_metrics -30 4
  ACE_TIMESERIES_RETENTION=400d ace-migrate maintain >/dev/null
  expect_equal "$(default_rows)" 0 "rows in the default partition with 400 days of retention"
  # Rows past the retention boundary that wait in the default partition are deleted too.
  ace_psql "INSERT INTO performance_metrics_default (metric_id, recorded_at, agent_id, task_id, stage)
            VALUES (gen_random_uuid(), now() - interval '300 days', 'a', 't', 'planning')" >/dev/null
  expect_equal "$(count_rows)" 10 "rows before"

  run --separate-stderr ace-migrate maintain
  expect_status 0
  expect_line "partition $(day_partition -120): dropped, its rows end at $(day_start -119), before the retention boundary "
  expect_line "partition $(day_partition -95): dropped, its rows end at $(day_start -94), before the retention boundary "
  expect_line "default partition: deleted 1 rows before the retention boundary "
  expect_equal "${#lines[@]}" 3 "stdout lines"

  expect_equal "$(count_rows)" 4 "rows after"
  expect_equal "$(ace_psql "SELECT count(*) FROM pg_class WHERE relname IN ('$(day_partition -120)', '$(day_partition -95)')")" 0 "dropped partitions left"
  expect_equal "$(partition_rows | grep "^$(day_partition -30) ")" "$(day_partition -30) 4" "rows of the partition within retention"

  run --separate-stderr ace-migrate verify
  expect_status 0
}

@test "maintain gives up on a held lock" {
  ace-migrate up >/dev/null
  insert_metrics -20 2
  # A long query on the default partition blocks the move of its rows.
  PGAPPNAME=lock-holder psql -X -q "$DATABASE_URL" \
    -c "BEGIN; LOCK TABLE performance_metrics_default IN ACCESS SHARE MODE; SELECT pg_sleep(30); COMMIT" \
    >/dev/null 2>&1 3>&- &
  local holder=$! tries
  for ((tries = 0; tries < 50; tries++)); do
    [[ $(ace_psql "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                    WHERE a.application_name = 'lock-holder' AND l.granted
                      AND l.relation = 'performance_metrics_default'::regclass") == 1 ]] && break
    sleep 0.1
  done

  run --separate-stderr ace-migrate maintain
  ace_psql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lock-holder'" >/dev/null
  wait "$holder" || true
  expect_status 70
  expect_equal "$stderr" "ace-migrate: maintain: cannot create partition $(day_partition -20): canceling statement due to lock timeout (SQLSTATE 55P03)" "stderr"
  expect_equal "$(default_rows)" 2 "rows in the default partition"
  expect_equal "$(ace_psql "SELECT count(*) FROM pg_class WHERE relname = '$(day_partition -20)'")" 0 "half-made partitions"
}

@test "down and up keep every row" {
  ace-migrate up >/dev/null
  insert_metrics -3 4
  insert_metrics -40 3
  insert_metrics 2 2
  ace-migrate maintain >/dev/null
  expect_equal "$(count_rows)" 9 "rows before down"

  run --separate-stderr ace-migrate down "$(steps_to_revert_storage)"
  expect_status 0
  expect_line "reverted 0005_timeseries_storage"
  expect_equal "$(ace_psql "SELECT relkind FROM pg_class WHERE oid = 'performance_metrics'::regclass")" r "relkind after down"
  expect_equal "$(count_rows)" 9 "rows after down"
  expect_equal "$(ace_psql "SELECT count(*) FROM pg_class WHERE relname ~ '^performance_metrics_(p[0-9]|default)'")" 0 "partitions left after down"
  expect_equal "$(metric_indexes)" "$METRIC_INDEXES" "indexes after down"

  run --separate-stderr ace-migrate up
  expect_status 0
  expect_line_equal "partition $(day_partition -40): created for [$(day_start -40), $(day_start -39)), moved 3 rows from performance_metrics_default"
  expect_equal "$(count_rows)" 9 "rows after up"
  expect_equal "$(default_rows)" 0 "rows in the default partition after up"

  run --separate-stderr ace-migrate verify
  expect_status 0
}

@test "ingest lands old and future rows" {
  ace-migrate up >/dev/null
  local old future
  old=$(date -u -d '-200 days' +%Y-%m-%dT%H:%M:%SZ)
  future=$(date -u -d '+60 days' +%Y-%m-%dT%H:%M:%SZ)
  {
    printf '{"metric_id":"00000000-0000-7000-8000-000000000001","agent_id":"a","task_id":"t","stage":"planning","recorded_at":"%s"}\n' "$old"
    printf '{"metric_id":"00000000-0000-7000-8000-000000000002","agent_id":"a","task_id":"t","stage":"planning","recorded_at":"%s"}\n' "$future"
    printf '{"metric_id":"00000000-0000-7000-8000-000000000003","agent_id":"a","task_id":"t","stage":"planning","recorded_at":"%s"}\n' "$(date -u +%Y-%m-%dT00:00:30Z)"
  } >"$BATS_TEST_TMPDIR/records.ndjson"

  run --separate-stderr ace-ingest "$BATS_TEST_TMPDIR/records.ndjson"
  expect_status 0
  expect_summary "read 3, written 3, duplicates 0, rejected 0, unwritten 0, batches 1"
  expect_equal "$(default_rows)" 2 "rows in the default partition"

  # The second load goes through the staging table and ON CONFLICT DO NOTHING.
  run --separate-stderr ace-ingest "$BATS_TEST_TMPDIR/records.ndjson"
  expect_status 0
  expect_summary "read 3, written 0, duplicates 3, rejected 0, unwritten 0, batches 1"
  expect_equal "$(count_rows)" 3 "rows after the second load"

  run --separate-stderr ace-migrate maintain
  expect_status 0
  expect_line "moved 1 rows from performance_metrics_default"
  expect_line "default partition: deleted 1 rows before the retention boundary "
  expect_equal "$(count_rows)" 2 "rows after maintain"
  expect_equal "$(default_rows)" 0 "rows in the default partition after maintain"
}

@test "invalid compression columns rejected" {
  local value
  for value in "agent_id; DROP TABLE x" "Agent_Id" "agent_id,agent_id" "agent_id DESC"; do
    ACE_TIMESERIES_COMPRESS_SEGMENTBY=$value run --separate-stderr ace-migrate verify
    expect_status 78
  done
  ACE_TIMESERIES_COMPRESS_SEGMENTBY="agent_id; DROP TABLE x" run --separate-stderr ace-migrate verify
  expect_equal "$stderr" "ace-migrate: timeseries.compress_segmentby: invalid column list 'agent_id; DROP TABLE x' (expected lower-case column names, separated by commas)" "stderr"
  ACE_TIMESERIES_COMPRESS_ORDERBY="recorded_at SIDEWAYS" run --separate-stderr ace-migrate verify
  expect_status 78
  ACE_STORAGE=columnar run --separate-stderr ace-migrate verify
  expect_status 78
  expect_equal "$stderr" "ace-migrate: ACE_STORAGE: storage: invalid storage 'columnar' (expected auto, timescaledb or partitioned)" "stderr"
}

@test "configured timescaledb on partitions conflicts" {
  ace-migrate up >/dev/null

  ACE_STORAGE=timescaledb run --separate-stderr ace-migrate policies
  expect_status 65
  expect_equal "$stderr" "ace-migrate: policies: storage is timescaledb in the configuration, but performance_metrics is a partitioned table; revert migration 0005 with 'ace-migrate down' and run 'ace-migrate up' to convert it" "stderr"

  ACE_STORAGE=timescaledb run --separate-stderr ace-migrate verify
  expect_status 65
  expect_equal "${lines[0]}" "differs  storage: configured timescaledb, but performance_metrics is a partitioned table" "first line"
}

@test "storage commands before up fail" {
  run --separate-stderr ace-migrate policies
  expect_status 70
  expect_equal "$stderr" "ace-migrate: policies: performance_metrics does not exist; run 'ace-migrate up' first" "stderr"

  run --separate-stderr ace-migrate verify
  expect_status 65
  expect_equal "$output" "differs  storage: performance_metrics does not exist; run 'ace-migrate up'" "stdout"
}
