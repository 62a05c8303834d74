#!/usr/bin/env bats
# Tests ace-bench against a real Redis and PostgreSQL: table shape, units, status against target, exit status, formats, plot, cleanup and interruption.

bats_require_minimum_version 1.5.0

load helpers

setup_file() {
  ace_setup_servers
}

teardown_file() {
  ace_teardown_servers
}

setup() {
  ace_fresh_db bench
  ace-migrate up >/dev/null
  # Database 4 of the shared Redis, so that the keys left after a run can be listed.
  export REDIS_URL=redis://127.0.0.1:$ACE_REDIS_PORT/4
  rcli flushdb >/dev/null
  BENCH_PID=
  # Short timeouts and few agents keep a run of every suite to a few seconds.
  CONFIG=$BATS_TEST_TMPDIR/ace.yaml
  cat >"$CONFIG" <<'EOF'
ingest:
  batch_timeout: 200ms
bench:
  agents: 50
EOF
}

teardown() {
  if [[ -n ${BENCH_PID:-} ]] && kill -0 "$BENCH_PID" 2>/dev/null; then
    kill -KILL "$BENCH_PID"
  fi
}

rcli() {
  redis-cli -u "$REDIS_URL" "$@"
}

# Appends bench keys to the test's ace.yaml.
bench_config() {
  printf '%s\n' "$@" | sed 's/^/  /' >>"$CONFIG"
}

# Loose targets that any machine meets, so that a run can be expected to pass.
loose_targets() {
  bench_config "max_overhead_percent: 1000" "min_hit_rate_percent: 0" "min_records_per_hour: 1" \
    "max_cache_latency: 10s" "max_write_latency: 10s" "max_query_latency: 10s" \
    "min_concurrent_agents: 20" "flush_tolerance: 2s"
}

# Prints the names of schemas that ace-bench created and left behind.
bench_schemas() {
  ace_psql "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'ace\_bench\_%' ORDER BY 1"
}

# Prints the Redis keys of generated agents that were left behind.
bench_keys() {
  rcli --scan --pattern 'ace:*ace-bench-*'
}

# Fails unless markdown output has, for each suite named, a heading followed
# by the header row, the separator row and at least one row of four cells.
expect_tables() {
  local suite line expected
  for suite in "$@"; do
    if ! grep -qx "## $suite" <<<"$output"; then
      echo "missing the heading '## $suite'"
      return 1
    fi
    expected=$(printf '## %s\n\n| Metric | Target | Actual | Status |\n|--------|--------|--------|--------|' "$suite")
    if [[ $output != *"$expected"* ]]; then
      echo "the table of $suite does not start with the heading, header and separator rows"
      return 1
    fi
  done
  while IFS= read -r line; do
    # Four cells have five unescaped pipes.
    if [[ $(sed 's/\\|//g' <<<"$line" | tr -cd '|' | wc -c) != 5 ]]; then
      echo "table row without four cells: $line"
      return 1
    fi
  done < <(grep '^|' <<<"$output")
  if [[ $(grep -c '^| [A-Z]' <<<"$output") -lt $(( $# + 1 )) ]]; then
    echo "too few result rows"
    return 1
  fi
}

# Checks every markdown result row: the Actual cell is a number with a unit
# (or "skipped: reason"), its unit is the target's unit, and Status follows
# from Actual and Target. A row whose rounded Actual equals its rounded bound
# cannot be judged from the text and is left out of the last check.
expect_status_follows() {
  awk -F' [|] ' '
    function number(text) { gsub(/,/, "", text); return text + 0 }
    function unit_of(text,   u) { u = text; sub(/^[-0-9.,]+ ?/, "", u); return u }
    /^\| / && !/^\| Metric / {
      metric = substr($1, 3); target = $2; actual = $3; status = $4; sub(/ \|$/, "", status)
      if (actual ~ /^skipped: ./) {
        if (status != "-") { print "skipped row with status " status ": " $0; bad = 1 }
        next
      }
      value = actual; sub(/ \(.*$/, "", value)
      if (value !~ /^-?[0-9][0-9,]*(\.[0-9]+)?( [a-zµ\/]+|%)$/) { print "Actual without number and unit: " $0; bad = 1; next }
      if (target == "-") {
        if (status != "-") { print "row without target has status " status ": " $0; bad = 1 }
        next
      }
      if (target ~ / to /) {
        split(target, parts, / to /); op = "between"; low = number(parts[1]); high = number(parts[2])
        unit = unit_of(parts[2])
      } else {
        op = target; sub(/ .*/, "", op); bound = target; sub(/^[<>=]+ /, "", bound)
        high = low = number(bound); unit = unit_of(bound)
      }
      if (unit_of(value) != unit) { print "Actual unit " unit_of(value) " differs from Target unit " unit ": " $0; bad = 1 }
      x = number(value)
      if (x == low || x == high) next
      met = (op == "<" && x < high) || (op == "<=" && x <= high) || (op == ">" && x > low) ||
            (op == ">=" && x >= low) || (op == "=" && x == low) || (op == "between" && x >= low && x <= high)
      if ((met && status != "✅") || (!met && status != "❌")) { print "status does not follow: " $0; bad = 1 }
      judged++
    }
    END { if (judged == 0) { print "no row was judged"; bad = 1 } exit bad }
  ' <<<"$output"
}

# Fails unless the exit status is 1 when a row missed its target and 0 otherwise.
expect_status_matches_rows() {
  if grep -q '| ❌ |$' <<<"$output"; then
    expect_status 1
  else
    expect_status 0
  fi
}

# Counts the fields of each CSV line, honoring quotes, and prints the counts that differ from N.
csv_bad_lines() {
  awk -v n="$1" '
    {
      fields = 1; quoted = 0
      for (i = 1; i <= length($0); i++) {
        c = substr($0, i, 1)
        if (c == "\"") quoted = !quoted
        else if (c == "," && !quoted) fields++
      }
      if (fields != n || quoted) print NR ": " fields " fields: " $0
    }
  '
}

@test "help lists options and exit statuses" {
  run --separate-stderr ace-bench --help
  expect_status 0
  [[ $output == *"Usage: ace-bench [OPTION]..."* ]]
  [[ $output == *"--suite NAME[,NAME]"* ]]
  [[ $output == *"--plot FILE"* ]]
  [[ $output == *"  1   at least one target was missed"* ]]
  [[ $output == *"  78  invalid configuration, or a server that is not on this machine"* ]]
  expect_equal "$stderr" "" "stderr"
}

@test "invalid options exit 64" {
  run --separate-stderr ace-bench --suite cache,bogus
  expect_status 64
  expect_equal "${stderr_lines[0]}" "ace-bench: --suite: unknown suite 'bogus' (expected all, batching, cache, pool, overhead, compression or query)" "message"

  run --separate-stderr ace-bench --format xml
  expect_status 64
  expect_equal "${stderr_lines[0]}" "ace-bench: --format: invalid format 'xml' (expected markdown, json or csv)" "message"

  run --separate-stderr ace-bench extra
  expect_status 64
  expect_equal "${stderr_lines[0]}" "ace-bench: unexpected argument 'extra'" "message"

  run --separate-stderr ace-bench --duration soon
  expect_status 64
  expect_equal "${stderr_lines[0]}" "ace-bench: --duration: bench.duration: invalid duration 'soon' (seconds, or a number with ms, s, m, h or d)" "message"
}

@test "server elsewhere is rejected before connecting" {
  DATABASE_URL=postgresql://ace@192.0.2.1:5432/ace run --separate-stderr ace-bench --quick
  expect_status 78
  expect_equal "$stderr" "ace-bench: database.url: host: '192.0.2.1' is not on this machine (expected localhost, a loopback address or a unix socket); pass --allow-remote to benchmark it anyway" "message"
  expect_equal "$output" "" "stdout"

  REDIS_URL=redis://cache.example.com:6379/0 run --separate-stderr ace-bench --quick --suite cache
  expect_status 78
  expect_equal "$stderr" "ace-bench: redis.url: 'cache.example.com' is not on this machine (expected localhost, a loopback address or a unix socket); pass --allow-remote to benchmark it anyway" "message"
}

@test "unreachable database exits 69" {
  run --separate-stderr ace-bench --quick --suite pool --database-url "postgresql://ace@127.0.0.1:1/ace?connect_timeout=2"
  expect_status 69
  [[ ${stderr_lines[0]} == "ace-bench: "*"127.0.0.1"*"refused"* ]]
}

@test "unreachable Redis exits 69" {
  run --separate-stderr ace-bench --quick --suite cache --redis-url redis://127.0.0.1:1/0
  expect_status 69
  [[ ${stderr_lines[0]} == "ace-bench: redis redis://127.0.0.1:1/0: "* ]]
  expect_equal "$(bench_schemas)" "" "schemas left"
}

@test "every suite in markdown, loose targets met" {
  loose_targets
  run --separate-stderr ace-bench --config "$CONFIG" --quick
  expect_status 0
  expect_equal "$stderr" "" "stderr"
  expect_tables batching cache pool overhead compression query
  expect_status_follows
  [[ ${lines[0]} == "# ace-bench" ]]
  grep -qE '^Run at [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z for [0-9.]+ s\.$' <<<"$output"
  grep -qE '^- Machine: [0-9]+ CPUs, .*, [0-9.]+ GiB RAM, Linux ' <<<"$output"
  grep -qE '^- PostgreSQL: 15\.' <<<"$output"
  grep -qE '^- Redis: [0-9]+\.' <<<"$output"
  grep -qE '^- Settings: seed=1, quick=yes, duration_s=1, agents=50, ' <<<"$output"
  ! grep -q '| ❌ |$' <<<"$output"
  grep -qE '^[0-9]+ of [0-9]+ targets met\.$' <<<"$output"

  # Rows and units that each suite must report.
  grep -qE '^\| Flush at batch_size \| = 100 records \| 100 records \(committed [0-9.]+ ms after the last record\) \| ✅ \|$' <<<"$output"
  grep -qE '^\| Partial batch flushed after batch_timeout \| 0\.2 to 2\.2 s \| 0\.2[0-9]* s \(worst of 2; error \+' <<<"$output"
  grep -qE '^\| Sustained ingest rate \| >= 1 records/h \| [0-9,]+ records/h ' <<<"$output"
  grep -qE '^\| CPU per record in the producer process \| - \| [0-9.]+ µs ' <<<"$output"
  grep -qE '^\| Hit rate, skewed over agents \| > 0% \| [0-9.]+% \(2000 lookups from an empty cache, ' <<<"$output"
  grep -qE '^\| Playbook TTL as stored \| 539 to 600 s \| [0-9.]+ s ' <<<"$output"
  grep -qE '^\| Concurrent agents served \| >= 20 agents \| 20 agents ' <<<"$output"
  grep -qE '^\| Connections open at peak \| 10 to 50 connections \| [0-9]+ connections ' <<<"$output"
  grep -qE '^\| End-to-end overhead \| < 1000% \| -?[0-9.]+% ' <<<"$output"
  grep -qE '^\| Storage reduction by compression \| - \| skipped: TimescaleDB is absent ' <<<"$output"
  grep -qE '^\| Rows a chunk past retention after maintenance \| = 0 rows \| 0 rows ' <<<"$output"
  grep -qE '^\| Recent metrics of an agent p95 \| < 10,000 ms \| [0-9.]+ ms ' <<<"$output"
}

@test "impossible target fails the run" {
  bench_config "max_query_latency: 0.000001"
  run --separate-stderr ace-bench --config "$CONFIG" --quick --suite query
  expect_status 1
  expect_tables query
  expect_status_follows
  expect_equal "$(grep -c '| ❌ |$' <<<"$output")" 3 "missed rows"
  grep -qE '^\| Latest playbook p95 \| < 0\.001 ms \| [0-9.]+ ms \(p50 [0-9.]+ ms over [0-9]+ runs\) \| ❌ \|$' <<<"$output"
  expect_equal "$stderr" "ace-bench: 3 of 3 targets missed: Latest playbook p95 (query), Baseline lookup p95 (query), Recent metrics of an agent p95 (query)" "stderr"
  grep -qx '0 of 3 targets met.' <<<"$output"
}

@test "exit status follows the rows at default targets" {
  run --separate-stderr ace-bench --config "$CONFIG" --quick --suite cache,pool
  expect_status_matches_rows
  expect_tables cache pool
  expect_status_follows
}

@test "json carries rows, summaries, machine and settings" {
  run --separate-stderr ace-bench --config "$CONFIG" --quick --format json
  expect_status_matches_rows
  jq -e . <<<"$output" >/dev/null
  expect_equal "$(jq -c .suites <<<"$output")" '["batching","cache","pool","overhead","compression","query"]' "suites"
  jq -e '.machine | (.cpus >= 1) and (.memory_gib > 0) and (.kernel | startswith("Linux"))
    and (.postgresql | startswith("15.")) and (.redis | length > 0)' <<<"$output" >/dev/null
  jq -e '.settings | .seed == 1 and .quick == "yes" and .agents == 50 and .batch_size == 100
    and .batch_timeout_s == 0.2' <<<"$output" >/dev/null
  jq -e '.started_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")' <<<"$output" >/dev/null

  # Every series has the whole summary, in order.
  jq -e '.summaries | length >= 10' <<<"$output" >/dev/null
  jq -e '[.summaries[] | keys_unsorted == ["suite","name","unit","count","min","median","mean","p95","p99","max"]] | all' \
    <<<"$output" >/dev/null
  jq -e '[.summaries[] | select(.count > 0) | .min <= .median and .median <= .p95 and .p95 <= .p99 and .p99 <= .max
    and .min <= .mean and .mean <= .max] | all' <<<"$output" >/dev/null
  jq -e '.summaries[] | select(.name == "cache hit latency") | .count > 100' <<<"$output" >/dev/null

  # The status of every row follows from its target and actual value, at full precision.
  jq -e '[.results[] | select(.status != "skipped") |
      .actual as $a | .target as $t |
      (if $t.op == "none" then "info"
       elif ($t.op == "<" and $a < $t.value) or ($t.op == "<=" and $a <= $t.value)
         or ($t.op == ">" and $a > $t.value) or ($t.op == ">=" and $a >= $t.value)
         or ($t.op == "=" and $a == $t.value) or ($t.op == "between" and $a >= $t.value and $a <= $t.upper)
       then "met" else "missed" end) == .status] | all' <<<"$output" >/dev/null
  expect_equal "$(jq '.targets.missed' <<<"$output")" "$(jq '[.results[] | select(.status == "missed")] | length' <<<"$output")" "missed count"
  expect_equal "$(jq -r '.results[] | select(.metric == "Storage reduction by compression") | .status' <<<"$output")" skipped "compression row"
  expect_equal "$(jq -r '.results[] | select(.metric == "Hit latency p95") | .unit' <<<"$output")" ms "latency unit"
}

@test "csv has a header and seven fields a line" {
  run --separate-stderr ace-bench --config "$CONFIG" --quick --suite cache --format csv
  expect_status_matches_rows
  expect_equal "${lines[0]}" "suite,metric,target,actual,unit,status,note" "header"
  expect_equal "${#lines[@]}" 7 "lines"
  expect_equal "$(csv_bad_lines 7 <<<"$output")" "" "lines with another field count"
  grep -qE '^cache,"Hit rate, skewed over agents",>80,[0-9.]+,%,(ok|FAIL),"2000 lookups from an empty cache, [0-9]+ misses, Zipf exponent 1\.0"$' <<<"$output"
  grep -qE '^cache,Hit latency p95,<10,[0-9.]+,ms,(ok|FAIL),$' <<<"$output"
  grep -qE '^cache,Playbook TTL as stored,539\.\.600,[0-9.]+,s,ok,"configured 600 s, jitter up to 10%"$' <<<"$output"
}

@test "flush rows skipped without ace-ingest" {
  # A copy of ace-bench alone, with a PATH that has no ace-ingest either.
  cp "$ACE_BIN/ace-bench" "$BATS_TEST_TMPDIR/"
  PATH=/usr/bin:/bin run --separate-stderr "$BATS_TEST_TMPDIR/ace-bench" --config "$CONFIG" --quick \
    --suite batching --format csv
  expect_status_matches_rows
  expect_equal "${lines[1]}" "batching,Flush at batch_size,=100,,records,skip,ace-ingest was not found" "size row"
  expect_equal "${lines[2]}" "batching,Partial batch flushed after batch_timeout,0.2..0.3,,s,skip,ace-ingest was not found" "timeout row"
  grep -q '^batching,Sustained ingest rate,>=10000,[0-9]*,records/h,ok,' <<<"$output"
}

@test "plot is an SVG with one curve per latency" {
  run --separate-stderr ace-bench --config "$CONFIG" --quick --suite cache,query --plot "$BATS_TEST_TMPDIR/latency.svg"
  expect_status_matches_rows
  xmllint --noout "$BATS_TEST_TMPDIR/latency.svg"
  expect_equal "$(xmllint --xpath 'local-name(/*)' "$BATS_TEST_TMPDIR/latency.svg")" svg "root element"
  # Two cache series and three query series, all in milliseconds.
  expect_equal "$(grep -c '<polyline ' "$BATS_TEST_TMPDIR/latency.svg")" 5 "curves"
  grep -q '>query: recent metrics query</text>' "$BATS_TEST_TMPDIR/latency.svg"
  grep -q '>cache: cache hit latency</text>' "$BATS_TEST_TMPDIR/latency.svg"
}

@test "plot path that cannot be created exits 73 before the run" {
  run --separate-stderr ace-bench --quick --plot "$BATS_TEST_TMPDIR/missing/latency.svg"
  expect_status 73
  expect_equal "$stderr" "ace-bench: cannot create '$BATS_TEST_TMPDIR/missing/latency.svg': No such file or directory" "message"
  expect_equal "$(bench_schemas)" "" "schemas"
}

@test "run leaves production rows and keys alone" {
  ace_psql "INSERT INTO context_playbooks (agent_id, context, version) VALUES ('prod-1', '{\"steps\":1}', 1)"
  ace_psql "INSERT INTO performance_metrics (metric_id, recorded_at, agent_id, task_id, stage)
            VALUES ('00000000-0000-7000-8000-000000000001', now(), 'prod-1', 't1', 'planning')"
  rcli set ace:playbook:prod-1 '{"kept":true}' >/dev/null
  loose_targets
  run --separate-stderr ace-bench --config "$CONFIG" --quick --suite batching,cache,overhead
  expect_status 0
  expect_equal "$(bench_schemas)" "" "schemas left"
  expect_equal "$(bench_keys)" "" "keys left"
  expect_equal "$(ace_psql 'SELECT count(*) FROM performance_metrics')" 1 "production metrics"
  expect_equal "$(ace_psql 'SELECT count(*) FROM context_playbooks')" 1 "production playbooks"
  expect_equal "$(rcli get ace:playbook:prod-1)" '{"kept":true}' "production key"
}

@test "same seed, same workload" {
  run --separate-stderr ace-bench --config "$CONFIG" --quick --suite cache --seed 7 --format csv
  local first
  first=$(grep '^cache,"Hit rate' <<<"$output" | cut -d, -f8-)
  run --separate-stderr ace-bench --config "$CONFIG" --quick --suite cache --seed 7 --format csv
  expect_equal "$(grep '^cache,"Hit rate' <<<"$output" | cut -d, -f8-)" "$first" "misses with seed 7"
  run --separate-stderr ace-bench --config "$CONFIG" --quick --suite cache --seed 8 --format csv
  [[ $(grep '^cache,"Hit rate' <<<"$output" | cut -d, -f8-) != "$first" ]]
}

@test "SIGINT stops the run and cleans up" {
  ace-bench --config "$CONFIG" --suite batching --duration 60 \
    >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
  BENCH_PID=$!
  local waited=0
  until [[ -n $(bench_schemas) ]]; do
    sleep 0.1
    waited=$(( waited + 1 ))
    (( waited < 100 )) || { echo "no schema appeared"; return 1; }
  done
  # Into the sustained run, which would take 60 s.
  sleep 3
  kill -INT "$BENCH_PID"
  local started=$SECONDS status=0
  wait "$BENCH_PID" || status=$?
  BENCH_PID=
  expect_equal "$status" 75 "exit status"
  (( SECONDS - started < 15 ))
  expect_equal "$(cat "$BATS_TEST_TMPDIR/err")" "ace-bench: interrupted; the benchmark schema and keys were removed" "stderr"
  grep -q 'interrupted before its end' "$BATS_TEST_TMPDIR/out"
  expect_equal "$(bench_schemas)" "" "schemas left"
}

@test "progress bar only on a terminal" {
  loose_targets
  run script -qefc "ace-bench --config '$CONFIG' --quick --suite pool" /dev/null
  expect_status 0
  [[ $output == *"ace-bench: ["*"] "*"% pool"* ]]

  run --separate-stderr ace-bench --config "$CONFIG" --quick --suite pool
  expect_status 0
  expect_equal "$stderr" "" "stderr when not a terminal"
}
