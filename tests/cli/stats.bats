#!/usr/bin/env bats
# Tests ace-stats against a real PostgreSQL and Redis: baselines, publishing, drift, prom, health and report.

bats_require_minimum_version 1.5.0

load helpers

setup_file() {
  ace_setup_servers
}

teardown_file() {
  ace_teardown_servers
}

setup() {
  ace_fresh_db stats
  ace-migrate up >/dev/null
  # Database 2 of the shared Redis, emptied per test, so other files' keys stay apart.
  export REDIS_URL=redis://127.0.0.1:$ACE_REDIS_PORT/2
  export ACE_CACHE_TTL_JITTER_PERCENT=0
  rcli flushdb >/dev/null
}

rcli() {
  redis-cli -u "$REDIS_URL" "$@"
}

# The baseline fixture: agent, task type ("-" for none), stage, success rate,
# error rate, duration in ms, action count and velocity. Groups of 5, 3, 2
# and 1 records give the t values of 4, 2 and 1 degrees of freedom, which
# have closed forms, and one group too small for any baseline.
FIXTURE='a1 refund planning 0.9 0.1 1200 4 2.5
a1 refund planning 0.8 0.15 950 3 3.25
a1 refund planning 0.95 0 1830 6 1.75
a1 refund planning 0.7 0.3 640 2 4
a1 refund planning 0.85 0.05 1410 5 2.125
a1 - execution 1 0 300 1 10
a1 - execution 0.5 0.5 4500 12 0.5
a1 - execution 0.75 0.25 2250 7 4.5
a2 refund verification 0.6 0.2 800 2 1.5
a2 refund verification 0.4 0.35 1000 3 1.25
a3 lookup reflection 0.9 0.1 500 1 1'

# Writes the fixture as NDJSON records of the last hour to FILE.
write_fixture() {
  local when
  when=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
  awk -v when="$when" '{
    task = $2 == "-" ? "" : sprintf(",\"task_type\":\"%s\"", $2)
    printf "{\"agent_id\":\"%s\",\"task_id\":\"t%d\"%s,\"stage\":\"%s\",\"recorded_at\":\"%s\",", $1, NR, task, $3, when
    printf "\"stage_success_rate\":%s,\"stage_error_rate\":%s,\"stage_duration_ms\":%s,", $4, $5, $6
    printf "\"stage_action_count\":%s,\"overall_progress_velocity\":%s}\n", $7, $8
  }' <<<"$FIXTURE" >"$1"
}

# Prints, per group with at least MIN records, the expected baseline row as
# PostgreSQL columns would print them in the order of BASELINE_COLUMNS,
# computed here with awk: two-pass mean and sample standard deviation,
# the 0.975 t quantile from its closed form for 1, 2 and 4 degrees of
# freedom, and percentiles by linear interpolation between order statistics
# at (n - 1) p, as percentile_cont does.
expected_baselines() {
  awk -v min="$1" -v OFMT=%.17g -v CONVFMT=%.17g '
    function tq(df,   p, pi, a, q) {
      p = 0.975; pi = atan2(0, -1)
      if (df == 1) return sin(pi * (p - 0.5)) / cos(pi * (p - 0.5))
      if (df == 2) return (2 * p - 1) / sqrt(2 * p * (1 - p))
      if (df == 4) { a = 4 * p * (1 - p); q = cos(atan2(sqrt(1 - a), sqrt(a)) / 3) / sqrt(a); return 2 * sqrt(q - 1) }
      return "nan"
    }
    function stats(key, col,   i, n, s, m, d, sd, t) {
      n = count[key]; s = 0
      for (i = 1; i <= n; i++) s += v[key, i, col]
      m = s / n; d = 0
      for (i = 1; i <= n; i++) d += (v[key, i, col] - m) ^ 2
      sd = sqrt(d / (n - 1)); t = tq(n - 1)
      return m " " sd " " (m - t * sd / sqrt(n)) " " (m + t * sd / sqrt(n))
    }
    function pct(key, p,   i, j, n, x, pos, lo, tmp) {
      n = count[key]
      for (i = 1; i <= n; i++) x[i] = v[key, i, 6]
      for (i = 2; i <= n; i++) for (j = i; j > 1 && x[j - 1] > x[j]; j--) { tmp = x[j]; x[j] = x[j - 1]; x[j - 1] = tmp }
      pos = (n - 1) * p; lo = int(pos)
      if (lo + 1 >= n) return x[n]
      return x[lo + 1] + (pos - lo) * (x[lo + 2] - x[lo + 1])
    }
    {
      key = $1 " " ($2 == "-" ? "" : $2) " " $3
      n = ++count[key]
      for (c = 4; c <= 8; c++) v[key, n, c] = $c
      if (!(key in order)) { order[key] = ++keys; name[keys] = key }
    }
    END {
      for (k = 1; k <= keys; k++) {
        key = name[k]
        if (count[key] < min) continue
        print key, count[key], stats(key, 4), stats(key, 5), stats(key, 6), pct(key, 0.5), pct(key, 0.95), pct(key, 0.99), stats(key, 7), stats(key, 8)
      }
    }' <<<"$FIXTURE"
}

BASELINE_COLUMNS="agent_id, task_type, stage, sample_size,
  success_rate_mean, success_rate_stddev, success_rate_ci_low, success_rate_ci_high,
  error_rate_mean, error_rate_stddev, error_rate_ci_low, error_rate_ci_high,
  duration_ms_mean, duration_ms_stddev, duration_ms_ci_low, duration_ms_ci_high,
  duration_ms_p50, duration_ms_p95, duration_ms_p99,
  action_count_mean, action_count_stddev, action_count_ci_low, action_count_ci_high,
  velocity_mean, velocity_stddev, velocity_ci_low, velocity_ci_high"

# Prints the stored baselines of VERSION, space-separated, in the order of expected_baselines.
stored_baselines() {
  psql -X -A -t -q -F ' ' -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "SELECT $BASELINE_COLUMNS
    FROM performance_baselines WHERE version = ${1:-1} ORDER BY agent_id, task_type DESC, stage" |
    awk '{ if ($2 ~ /^(planning|execution|reflection|verification)$/) { $3 = $2 " " $3; $2 = "" } print }' |
    awk '{ $1 = $1; print }'
}

# Compares two lines of fields: strings exactly, numbers to 12 significant digits.
expect_same_numbers() {
  awk -v a="$1" -v b="$2" -v what="$3" 'BEGIN {
    n = split(a, x, " "); m = split(b, y, " ")
    if (n != m) { printf "%s: %d fields, expected %d\n%s\n%s\n", what, n, m, a, b; exit 1 }
    for (i = 1; i <= n; i++) {
      if (x[i] ~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ && y[i] ~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) {
        d = x[i] - y[i]; if (d < 0) d = -d
        s = y[i] < 0 ? -y[i] : y[i]
        if (d > 1e-12 * s && d > 1e-15) { printf "%s: field %d is %s, expected %s\n", what, i, x[i], y[i]; exit 1 }
      } else if (x[i] != y[i]) { printf "%s: field %d is \"%s\", expected \"%s\"\n", what, i, x[i], y[i]; exit 1 }
    }
  }'
}

@test "baselines match an independent computation" {
  local input=$BATS_TEST_TMPDIR/fixture.ndjson expected stored i
  write_fixture "$input"
  ace-ingest -q "$input"

  run --separate-stderr ace-stats baselines --min-samples 2
  expect_status 0
  [[ $output =~ ^groups=4\ stored=3\ too_small=1\ min_samples=2\ published=3\ window_start=[0-9T:.-]+Z\ window_end=[0-9T:.-]+Z$ ]]

  mapfile -t expected < <(expected_baselines 2)
  mapfile -t stored < <(stored_baselines 1)
  expect_equal "${#stored[@]}" 3 "stored groups"
  for i in 0 1 2; do
    expect_same_numbers "${stored[i]}" "${expected[i]}" "group $i"
  done
}

@test "baselines window is stored" {
  local input=$BATS_TEST_TMPDIR/fixture.ndjson
  write_fixture "$input"
  ace-ingest -q "$input"

  run --separate-stderr ace-stats baselines --min-samples 2 --window 2h
  expect_status 0
  expect_equal "$(ace_psql "SELECT DISTINCT round(extract(epoch FROM window_end - window_start)) FROM performance_baselines")" \
    7200 "window length"
  # Records older than the window count for nothing.
  run --separate-stderr ace-stats baselines --min-samples 2 --window 30m
  expect_status 0
  [[ $output == "groups=0 stored=0 too_small=0 min_samples=2 published=0 "* ]]
}

@test "groups under min-samples get none" {
  local input=$BATS_TEST_TMPDIR/fixture.ndjson
  write_fixture "$input"
  ace-ingest -q "$input"

  run --separate-stderr ace-stats baselines --min-samples 3
  expect_status 0
  [[ $output == "groups=4 stored=2 too_small=2 min_samples=3 published=2 "* ]]
  expect_equal "$(ace_psql "SELECT agent_id || '/' || stage FROM performance_baselines ORDER BY 1")" \
    $'a1/execution\na1/planning' "groups stored"

  ACE_STATS_MIN_SAMPLES=6 run --separate-stderr ace-stats baselines
  expect_status 0
  [[ $output == "groups=4 stored=0 too_small=4 min_samples=6 published=0 "* ]]
}

@test "second run adds a version" {
  local input=$BATS_TEST_TMPDIR/fixture.ndjson
  write_fixture "$input"
  ace-ingest -q "$input"
  ace-stats baselines --min-samples 2 >/dev/null
  ace-stats baselines --min-samples 2 >/dev/null
  expect_equal "$(ace_psql "SELECT version, count(*) FROM performance_baselines GROUP BY 1 ORDER BY 1")" \
    $'1|3\n2|3' "versions"
  expect_equal "$(stored_baselines 2)" "$(stored_baselines 1)" "same statistics"
}

@test "baselines published with TTL" {
  local input=$BATS_TEST_TMPDIR/fixture.ndjson ttl
  write_fixture "$input"
  ace-ingest -q "$input"
  rcli set ace:baseline:a1:refund null >/dev/null

  ACE_CACHE_BASELINE_TTL_SECONDS=120 run --separate-stderr ace-stats baselines --min-samples 2
  expect_status 0
  expect_equal "$(rcli --scan --pattern 'ace:baseline:*' | sort)" \
    $'ace:baseline:a1:\nace:baseline:a1:refund\nace:baseline:a2:refund' "keys"
  for key in ace:baseline:a1: ace:baseline:a1:refund; do
    ttl=$(rcli ttl "$key")
    ((ttl >= 119 && ttl <= 120)) || { echo "TTL of $key is $ttl"; return 1; }
  done
  expect_equal "$(rcli get ace:baseline:a1:refund | jq -c '[.agent_id, .task_type, .stages.planning.sample_size, .stages.planning.version, .stages.execution]')" \
    '["a1","refund",5,1,null]' "published value"
  expect_equal "$(rcli get ace:baseline:a1: | jq -r .stages.execution.velocity_mean)" 5 "velocity mean"
  # ace-cache serves the same value.
  expect_equal "$(ace-cache get baseline a1 refund)" "$(rcli get ace:baseline:a1:refund)" "ace-cache value"
}

@test "baselines default TTL and no-publish" {
  local input=$BATS_TEST_TMPDIR/fixture.ndjson ttl
  write_fixture "$input"
  ace-ingest -q "$input"

  run --separate-stderr ace-stats baselines --min-samples 2 --no-publish
  expect_status 0
  [[ $output == *" published=0 "* ]]
  expect_equal "$(rcli dbsize)" 0 "keys after --no-publish"

  run --separate-stderr ace-stats baselines --min-samples 2
  expect_status 0
  ttl=$(rcli ttl ace:baseline:a1:refund)
  ((ttl >= 3599 && ttl <= 3600)) || { echo "TTL is $ttl"; return 1; }
}

@test "baselines without migrations exits 70" {
  ace-migrate down 1 >/dev/null
  run --separate-stderr ace-stats baselines
  expect_status 70
  [[ $stderr == "ace-stats: inserting into performance_baselines: column \"velocity_mean\" of relation \"performance_baselines\" does not exist (SQLSTATE 42703); run 'ace-migrate up' first" ]]
}

# Stores a baseline for agent d1, task type t, stage execution: success 0.9,
# error 0.1, velocity 10, duration 1000 ms with standard deviation 200.
insert_drift_baseline() {
  ace_psql "INSERT INTO performance_baselines (agent_id, task_type, stage, version, window_start, window_end,
      sample_size, success_rate_mean, success_rate_stddev, error_rate_mean, error_rate_stddev,
      duration_ms_mean, duration_ms_stddev, velocity_mean, velocity_stddev)
    VALUES ('d1', 't', 'execution', 1, now() - interval '1 day', now(), 50, 0.9, 0.05, 0.1, 0.02, 1000, 200, 10, 2)"
}

drift_record() {
  printf '{"agent_id":"d1","task_id":"x","task_type":"t","stage":"execution",%s}\n' "$1"
}

@test "drift flags above, at and below thresholds" {
  local input=$BATS_TEST_TMPDIR/drift.ndjson i
  insert_drift_baseline
  # Field, value, whether that metric drifts with the default thresholds.
  local cases=(
    'stage_success_rate 0.69 true'
    'stage_success_rate 0.7 false'
    'stage_success_rate 0.71 false'
    'stage_error_rate 0.21 true'
    'stage_error_rate 0.2 false'
    'stage_error_rate 0.19 false'
    'overall_progress_velocity 4.99 true'
    'overall_progress_velocity 5 false'
    'overall_progress_velocity 5.01 false'
  )
  : >"$input"
  for i in "${cases[@]}"; do
    set -- $i
    drift_record "\"$1\":$2" >>"$input"
  done

  run --separate-stderr ace-stats drift "$input"
  expect_status 1
  expect_equal "${#lines[@]}" "${#cases[@]}" "output lines"
  for i in "${!cases[@]}"; do
    set -- ${cases[i]}
    expect_equal "$(jq -c "[.drift, .metrics.$1.drift, .metrics.$1.value]" <<<"${lines[i]}")" "[$3,$3,$2]" "case $i: ${cases[i]}"
  done
  expect_equal "$(jq -c '.metrics.stage_error_rate | [.mean, .threshold]' <<<"${lines[3]}")" '[0.1,0.2]' "error threshold"
  expect_equal "$(jq -c '.metrics.overall_progress_velocity.threshold' <<<"${lines[6]}")" '5' "velocity threshold"
  expect_equal "$(jq -c '.record.task_id, .baseline.sample_size' <<<"${lines[0]}" | paste -sd' ')" '"x" 50' "record and baseline"
}

@test "drift deviation and z-score" {
  insert_drift_baseline
  run --separate-stderr ace-stats drift < <(drift_record '"stage_duration_ms":1300,"stage_success_rate":0.95')
  expect_status 0
  expect_equal "$(jq -c '.metrics.stage_duration_ms' <<<"$output")" '{"value":1300,"mean":1000,"deviation":300,"z":1.5}' "duration"
  expect_equal "$(jq -c '.metrics.stage_success_rate | [.deviation > 0.0499, .z > 0.999, .drift]' <<<"$output")" '[true,true,false]' "success rate"
}

@test "drift thresholds from settings" {
  insert_drift_baseline
  ACE_STATS_DRIFT_SUCCESS_RATE=0.5 ACE_STATS_DRIFT_ERROR_RATIO=3 ACE_STATS_DRIFT_VELOCITY_RATIO=0.2 \
    run --separate-stderr ace-stats drift < <(drift_record '"stage_success_rate":0.6,"stage_error_rate":0.25,"overall_progress_velocity":2.5')
  expect_status 0
  expect_equal "$(jq -c '[.drift, .metrics[].threshold]' <<<"$output")" '[false,0.5,0.30000000000000004,2]' "thresholds"
}

@test "drift passes records without baseline" {
  insert_drift_baseline
  {
    printf '%s\n' '{"agent_id":"new","task_id":"n1","stage":"planning","stage_success_rate":0.95}'
    printf '%s\n' '{"agent_id":"new","task_id":"n2","stage":"planning","stage_success_rate":0.5}'
    drift_record '"stage_success_rate":0.95'
    printf 'not json\n'
    drift_record '"stage_success_rate":0.1'
  } >"$BATS_TEST_TMPDIR/in.ndjson"

  run --separate-stderr ace-stats drift --only-drift "$BATS_TEST_TMPDIR/in.ndjson"
  expect_status 65
  expect_equal "$stderr" "ace-stats: $BATS_TEST_TMPDIR/in.ndjson:4: invalid JSON near byte 1" "stderr"
  expect_equal "${#lines[@]}" 3 "records passed"
  expect_equal "$(jq -c '[.record.task_id, .drift, .baseline, .reason]' <<<"${lines[0]}")" \
    "[\"n1\",false,null,\"no baseline for stage planning of task type ''\"]" "no baseline"
  expect_equal "$(jq -c '[.record.task_id, .drift]' <<<"${lines[1]}")" '["n2",true]' "absolute threshold"
  expect_equal "$(jq -c '[.record.task_id, .drift]' <<<"${lines[2]}")" '["x",true]' "drifting"
}

@test "prom passes promtool and format rules" {
  local input=$BATS_TEST_TMPDIR/fixture.ndjson
  command -v promtool >/dev/null || skip "promtool is not installed (Debian package prometheus)"
  write_fixture "$input"
  ace-ingest -q "$input"
  ace-stats baselines --min-samples 2 >/dev/null
  ace-cache get baseline a1 refund >/dev/null

  run --separate-stderr ace-stats prom
  expect_status 0
  printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out.prom"
  run promtool check metrics <"$BATS_TEST_TMPDIR/out.prom"
  expect_status 0
  run awk -f "$REPO/tests/cli/prom_check.awk" "$BATS_TEST_TMPDIR/out.prom"
  expect_status 0

  grep -qx 'ace_metrics_rows 11' "$BATS_TEST_TMPDIR/out.prom"
  grep -qx 'ace_metrics_stage_rows{stage="planning"} 5' "$BATS_TEST_TMPDIR/out.prom"
  grep -qx 'ace_metrics_stage_rows{stage="reflection"} 1' "$BATS_TEST_TMPDIR/out.prom"
  grep -qx 'ace_baselines 3' "$BATS_TEST_TMPDIR/out.prom"
  grep -qx 'ace_cache_hits_total 1' "$BATS_TEST_TMPDIR/out.prom"
  grep -qx 'ace_cache_keys{kind="baseline"} 3' "$BATS_TEST_TMPDIR/out.prom"
  grep -qx 'ace_cache_hit_rate 1' "$BATS_TEST_TMPDIR/out.prom"
  grep -qE '^ace_ingest_lag_seconds 36[0-9]{2}(\.[0-9]+)?$' "$BATS_TEST_TMPDIR/out.prom"
  grep -qE '^ace_metrics_table_size_bytes [1-9][0-9]*$' "$BATS_TEST_TMPDIR/out.prom"
}

@test "format checker rejects broken output" {
  local cases=(
    $'# HELP a x\n# TYPE a gauge\na 1 1700000000000'
    $'# HELP a x\n# TYPE a counter\na 1'
    $'# HELP a x\n# TYPE a gauge\na{l="x} 1'
    $'# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na{x="y"} 2'
    $'a 1'
    $'# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1'
  )
  for text in "${cases[@]}"; do
    run awk -f "$REPO/tests/cli/prom_check.awk" <<<"$text"
    expect_status 1
  done
}

@test "prom output written atomically" {
  local dir=$BATS_TEST_TMPDIR/textfile inode
  mkdir "$dir"
  echo 'old' >"$dir/ace.prom"
  ln "$dir/ace.prom" "$dir/old.prom"
  inode=$(stat -c %i "$dir/ace.prom")

  run --separate-stderr ace-stats prom -o "$dir/ace.prom"
  expect_status 0
  expect_equal "$output" "" "stdout"
  # A new file took the name, and the old one was never written to.
  [[ $(stat -c %i "$dir/ace.prom") != "$inode" ]]
  expect_equal "$(cat "$dir/old.prom")" old "old file"
  expect_equal "$(stat -c %a "$dir/ace.prom")" 644 "mode"
  expect_equal "$(ls -A "$dir" | sort | paste -sd' ')" "ace.prom old.prom" "files left"
  grep -qx 'ace_database_up 1' "$dir/ace.prom"
}

@test "prom output failure keeps old file" {
  local dir=$BATS_TEST_TMPDIR/textfile
  mkdir "$dir"
  echo 'old' >"$dir/ace.prom"
  chmod 555 "$dir"
  if touch "$dir/probe" 2>/dev/null; then
    rm -f "$dir/probe"
    chmod 755 "$dir"
    skip "running as root, which writes into read-only folders"
  fi
  run --separate-stderr ace-stats prom -o "$dir/ace.prom"
  chmod 755 "$dir"
  expect_status 73
  [[ $stderr == "ace-stats: cannot create a temporary file beside '$dir/ace.prom': Permission denied" ]]
  expect_equal "$(cat "$dir/ace.prom")" old "old file"
}

@test "prom output missing folder exits 73" {
  run --separate-stderr ace-stats prom -o "$BATS_TEST_TMPDIR/missing/ace.prom"
  expect_status 73
  expect_equal "$stderr" "ace-stats: cannot create a temporary file beside '$BATS_TEST_TMPDIR/missing/ace.prom': No such file or directory" "stderr"
}

@test "prom reads process stats files" {
  local dir=$BATS_TEST_TMPDIR/procstats fifo=$BATS_TEST_TMPDIR/in.fifo pid writer
  command -v promtool >/dev/null || skip "promtool is not installed (Debian package prometheus)"
  mkdir "$dir"
  mkfifo "$fifo"
  ACE_STATS_DIR=$dir ace-ingest -q -b 7 "$fifo" 3>&- &
  pid=$!
  exec {writer}<>"$fifo"
  for _ in {1..100}; do
    [[ -f $dir/ace-ingest.$pid.json ]] && break
    sleep 0.05
  done
  [[ -f $dir/ace-ingest.$pid.json ]] || { echo "no stats file"; kill "$pid"; return 1; }
  # A file left by a process that is gone is removed, and one that is stale is ignored.
  echo '{"program":"ace-ingest","pid":999999999,"updated_at":1,"operations":{}}' >"$dir/ace-ingest.999999999.json"

  ACE_STATS_DIR=$dir run --separate-stderr ace-stats prom
  expect_status 0
  printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out.prom"
  grep -qx "ace_database_pool_size{program=\"ace-ingest\",pid=\"$pid\"} 10" "$BATS_TEST_TMPDIR/out.prom"
  grep -qx "ace_metrics_batch_size{program=\"ace-ingest\",pid=\"$pid\"} 7" "$BATS_TEST_TMPDIR/out.prom"
  grep -qx "ace_metrics_flush_count{program=\"ace-ingest\",pid=\"$pid\"} 0" "$BATS_TEST_TMPDIR/out.prom"
  grep -qx "ace_database_pool_overflow{program=\"ace-ingest\",pid=\"$pid\"} 0" "$BATS_TEST_TMPDIR/out.prom"
  [[ ! -e $dir/ace-ingest.999999999.json ]]
  run promtool check metrics <"$BATS_TEST_TMPDIR/out.prom"
  expect_status 0

  exec {writer}>&-
  wait "$pid"
  # The file goes away with its process.
  [[ ! -e $dir/ace-ingest.$pid.json ]]
}

@test "health ok with fresh data" {
  local input=$BATS_TEST_TMPDIR/now.ndjson
  printf '{"agent_id":"h1","task_id":"t1","stage":"planning"}\n' >"$input"
  ace-ingest -q "$input"

  run --separate-stderr ace-stats health
  expect_status 0
  expect_equal "$output" "ok   database reachable (reachable)
ok   redis reachable (reachable)
ok   migrations_pending 0 (== 0)
ok   pool_connections 50 (<= 197)
ok   pool_workers 1 (<= 50)
skip compression_policy - (active)
skip retention_policy - (active)
skip cache_hit_rate - (>= 0.8)
ok   ingest_lag ${lines[8]#ok   ingest_lag }" "checks"
  [[ ${lines[8]} =~ ^ok\ \ \ ingest_lag\ [0-9]+\.[0-9]\ \(\<=\ 300\ s\)$ ]]
  expect_equal "$stderr" "" "stderr"
}

@test "health fails on pending migration" {
  printf '{"agent_id":"h1","task_id":"t1","stage":"planning"}\n' | ace-ingest -q
  ace-migrate down 1 >/dev/null

  run --separate-stderr ace-stats health
  expect_status 1
  expect_equal "$(grep -c '^fail ' <<<"$output")" 1 "failed checks"
  expect_equal "${lines[2]}" "fail migrations_pending 1 (== 0)" "migrations line"
  [[ $stderr == "ace-stats: health: migrations_pending: "*"_baseline_velocity is pending; run ace-migrate up" ]]
}

@test "health fails on high lag" {
  printf '{"agent_id":"h1","task_id":"t1","stage":"planning","recorded_at":"%s"}\n' \
    "$(date -u -d '-10 minutes' +%Y-%m-%dT%H:%M:%SZ)" | ace-ingest -q

  run --separate-stderr ace-stats health
  expect_status 1
  expect_equal "$(grep -c '^fail ' <<<"$output")" 1 "failed checks"
  [[ ${lines[8]} =~ ^fail\ ingest_lag\ 6[0-9][0-9]\.[0-9]\ \(\<=\ 300\ s\)$ ]]

  ACE_STATS_HEALTH_MAX_LAG=1h run --separate-stderr ace-stats health
  expect_status 0
}

@test "future row hides no lag" {
  # A producer whose clock runs ahead must not make a stalled ingest look current.
  {
    printf '{"agent_id":"h1","task_id":"t1","stage":"planning","recorded_at":"%s"}\n' \
      "$(date -u -d '-10 minutes' +%Y-%m-%dT%H:%M:%SZ)"
    printf '{"agent_id":"h2","task_id":"t2","stage":"planning","recorded_at":"%s"}\n' \
      "$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)"
  } >"$BATS_TEST_TMPDIR/records.ndjson"
  ace-ingest -q "$BATS_TEST_TMPDIR/records.ndjson"

  run --separate-stderr ace-stats health
  expect_status 1
  [[ ${lines[8]} =~ ^fail\ ingest_lag\ 6[0-9][0-9]\.[0-9]\ \(\<=\ 300\ s\)$ ]]
}

@test "health fails on low hit rate" {
  printf '{"agent_id":"h1","task_id":"t1","stage":"planning"}\n' | ace-ingest -q
  ace-cache get baseline nobody x >/dev/null 2>&1 || true

  run --separate-stderr ace-stats health --json
  expect_status 1
  expect_equal "$(jq -c '[.ok, (.checks[] | select(.status == "fail") | [.name, .value, .threshold])]' <<<"$output")" \
    '[false,["cache_hit_rate","0.0000",">= 0.8"]]' "json"
  ACE_STATS_HEALTH_MIN_HIT_RATE=0 run --separate-stderr ace-stats health --json
  expect_status 0
  expect_equal "$(jq -r .ok <<<"$output")" true "ok"
}

@test "report formats" {
  local input=$BATS_TEST_TMPDIR/fixture.ndjson
  write_fixture "$input"
  ace-ingest -q "$input"

  run --separate-stderr ace-stats report --since 2h
  expect_status 0
  expect_equal "$output" "agent  stage              count      p50_ms      p95_ms  success_rate
a1     planning               5      1200.0      1746.0        0.8400
a1     execution              3      2250.0      4275.0        0.7500
a2     verification           2       900.0       990.0        0.5000
a3     reflection             1       500.0       500.0        0.9000" "table"

  run --separate-stderr ace-stats report --since 2h --format csv
  expect_status 0
  expect_equal "${lines[0]}" "agent_id,stage,count,duration_p50_ms,duration_p95_ms,success_rate" "csv header"
  expect_equal "${lines[3]}" "a2,verification,2,900.0,990.0,0.5000" "csv row"

  run --separate-stderr ace-stats report --since 2h --format json
  expect_status 0
  expect_equal "$(jq -c '.[1]' <<<"$output")" \
    '{"agent_id":"a1","stage":"execution","count":3,"duration_p50_ms":2250,"duration_p95_ms":4275,"success_rate":0.75}' "json row"

  run --separate-stderr ace-stats report --since 30m --format json
  expect_status 0
  expect_equal "$output" "[]" "empty range"
}

@test "usage errors exit 64" {
  local cases=(
    ''
    'frobnicate'
    'prom --only-drift'
    'prom --only-drift -o out.prom'
    'health extra'
    'report --format xml'
    'report --since yesterday'
    'baselines --min-samples 1'
    'baselines --window soon'
  )
  for args in "${cases[@]}"; do
    run --separate-stderr ace-stats $args
    expect_status 64
  done
}
