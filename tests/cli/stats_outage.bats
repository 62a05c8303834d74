#!/usr/bin/env bats
# Tests ace-stats while Redis is stopped: health, prom, baselines and drift on private servers.

bats_require_minimum_version 1.5.0

load helpers

setup_file() {
  ace_own_servers
}

teardown_file() {
  ace_teardown_servers
}

setup() {
  ace_fresh_db stats_outage
  ace-migrate up >/dev/null
  ace_redis_start >/dev/null 2>&1 || true
  printf '{"agent_id":"o1","task_id":"t1","stage":"planning","stage_success_rate":0.9}\n' | ace-ingest -q
  printf '{"agent_id":"o1","task_id":"t2","stage":"planning","stage_success_rate":0.8}\n' | ace-ingest -q
}

teardown() {
  ace_redis_start >/dev/null 2>&1 || true
}

@test "health fails only redis when stopped" {
  ace_redis_stop

  run --separate-stderr ace-stats health
  expect_status 1
  expect_equal "$(grep '^fail ' <<<"$output")" "fail redis unreachable (reachable)" "failed checks"
  expect_equal "${lines[7]}" "skip cache_hit_rate - (>= 0.8)" "hit rate skipped"
  expect_equal "$(grep -c '^ok ' <<<"$output")" 5 "checks ok"
  [[ $stderr == "ace-stats: health: redis: redis://127.0.0.1:$ACE_REDIS_PORT/0: "* ]]
}

@test "prom without redis writes what it read" {
  local out=$BATS_TEST_TMPDIR/ace.prom
  ace_redis_stop

  run --separate-stderr ace-stats prom -o "$out"
  expect_status 69
  [[ $stderr == "ace-stats: cannot read the cache figures: "* ]]
  grep -qx 'ace_redis_up 0' "$out"
  grep -qx 'ace_database_up 1' "$out"
  grep -qx 'ace_metrics_rows 2' "$out"
  ! grep -q '^ace_cache_hits_total' "$out"
}

@test "baselines stored when redis is down" {
  ace_redis_stop

  run --separate-stderr ace-stats baselines --min-samples 2
  expect_status 75
  [[ $stderr == "ace-stats: baselines stored in postgresql, but not published to redis: "* ]]
  [[ $output == "groups=1 stored=1 too_small=0 min_samples=2 published=0 "* ]]
  expect_equal "$(ace_psql "SELECT count(*) FROM performance_baselines")" 1 "rows"
}

@test "drift reads postgresql when redis is down" {
  ace-stats baselines --min-samples 2 >/dev/null
  ace_redis_stop

  run --separate-stderr ace-stats drift < <(printf '{"agent_id":"o1","task_id":"x","stage":"planning","stage_success_rate":0.6}\n')
  expect_status 1
  expect_equal "$(jq -c '[.drift, .baseline.sample_size, .metrics.stage_success_rate.mean]' <<<"$output")" \
    '[true,2,0.85]' "drift from postgresql"
}
