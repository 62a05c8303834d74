#!/usr/bin/env bats
# Tests ace-ingest against a real PostgreSQL: stored values, batching, rejects, duplicates, errors and signals.

bats_require_minimum_version 1.5.0

load helpers

setup_file() {
  ace_setup_servers
}

teardown_file() {
  ace_teardown_servers
}

setup() {
  ace_fresh_db ingest
  ace-migrate up >/dev/null
  INGEST_PID=
}

teardown() {
  # A test that failed while ace-ingest ran in the background must not leave it behind.
  if [[ -n ${INGEST_PID:-} ]] && kill -0 "$INGEST_PID" 2>/dev/null; then
    kill -KILL "$INGEST_PID"
  fi
}

# Prints a valid record of task tN, with the JSON members in EXTRA added when given.
record() {
  local n=$1 extra=${2:-}
  printf '{"agent_id":"agent-1","task_id":"t%s","stage":"execution","stage_success_rate":0.9%s}\n' \
    "$n" "${extra:+,$extra}"
}

# Prints a valid record of task tN with a fixed metric_id and recorded_at, so that it can be sent twice.
record_with_id() {
  local n=$1
  record "$n" "$(printf '"metric_id":"00000000-0000-7000-8000-%012d","recorded_at":"2020-01-01T00:00:00Z"' "$n")"
}

# Writes records FIRST..LAST (made by GENERATOR, default record) to FILE.
write_records() {
  local file=$1 first=$2 last=$3 generator=${4:-record} n
  : >"$file"
  for ((n = first; n <= last; n++)); do
    "$generator" "$n" >>"$file"
  done
}

# Fails unless stderr has the line LINE.
expect_stderr_line() {
  local line
  for line in "${stderr_lines[@]}"; do
    [[ $line == "$1" ]] && return 0
  done
  echo "stderr has no line '$1'; stderr:"
  echo "$stderr"
  return 1
}

# Polls the table until it holds EXPECTED rows, and fails after SECONDS (an integer).
wait_for_rows() {
  local expected=$1 seconds=$2 count deadline
  deadline=$((${EPOCHREALTIME/./} + seconds * 1000000))
  while :; do
    count=$(count_rows)
    [[ $count == "$expected" ]] && return 0
    if ((${EPOCHREALTIME/./} > deadline)); then
      echo "expected $expected rows within $seconds s, found $count"
      return 1
    fi
    sleep 0.05
  done
}

# Starts ace-ingest in the background with ARGS on a new FIFO, then opens the
# FIFO read-write on the descriptor in WRITER, which never blocks. Sets INGEST_PID.
start_fifo_ingest() {
  local fifo=$BATS_TEST_TMPDIR/input.fifo
  mkfifo "$fifo"
  ace-ingest "$@" "$fifo" >"$BATS_TEST_TMPDIR/ingest.out" 2>"$BATS_TEST_TMPDIR/ingest.err" 3>&- &
  INGEST_PID=$!
  exec {WRITER}<>"$fifo"
}

# Fails unless the background ace-ingest is still running.
expect_ingest_running() {
  if ! kill -0 "$INGEST_PID" 2>/dev/null; then
    echo "ace-ingest exited early; stderr:"
    cat "$BATS_TEST_TMPDIR/ingest.err"
    return 1
  fi
}

# Waits up to 10 s for the background ace-ingest to exit, then sets status,
# output, stderr and stderr_lines as run --separate-stderr does.
wait_ingest() {
  local tries
  for ((tries = 0; tries < 200; tries++)); do
    kill -0 "$INGEST_PID" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$INGEST_PID" 2>/dev/null; then
    echo "ace-ingest (pid $INGEST_PID) still runs after 10 s"
    return 1
  fi
  status=0
  wait "$INGEST_PID" || status=$?
  INGEST_PID=
  output=$(<"$BATS_TEST_TMPDIR/ingest.out")
  stderr=$(<"$BATS_TEST_TMPDIR/ingest.err")
  mapfile -t stderr_lines <"$BATS_TEST_TMPDIR/ingest.err"
}

# Ends the input with end of file and waits for ace-ingest.
finish_fifo_ingest() {
  exec {WRITER}>&-
  wait_ingest
}

# Writes MIXED (the input) mixing valid and invalid lines, and EXPECTED_REJECTS,
# the stderr line ace-ingest prints for each invalid one. Valid lines: 1, 3, 11, 14, 20.
write_mixed_input() {
  local huge nul_prefix utf8_prefix
  MIXED=$BATS_TEST_TMPDIR/mixed.ndjson
  huge=$(record 13 "\"padding\":\"$(printf '%1200s' '' | tr ' ' x)\"")
  nul_prefix='{"agent_id":"agent-1","task_id":"t16'
  utf8_prefix='{"agent_id":"agent-'

  {
    record 1
    printf '%s\n' '{"agent_id":"agent-1","task_id":"t2","stage":"plan'
    record 3
    record 4 '"stage_duration_ms":"fast"'
    printf '%s\n' '{"agent_id":42,"task_id":"t5","stage":"execution"}'
    record 6 '"stage_error_rate":1.5'
    record 7 '"stage_duration_ms":-5'
    printf '%s\n' '{"task_id":"t8","stage":"execution"}'
    printf '%s\n' '{"agent_id":"agent-1","stage":"execution"}'
    printf '%s\n' '{"agent_id":"agent-1","task_id":"t10"}'
    record 11
    printf '\n'
    printf '%s\n' "$huge"
    record 14
    printf '%s\xff","task_id":"t15","stage":"execution"}\n' "$utf8_prefix"
    printf '%s\0","stage":"execution"}\n' "$nul_prefix"
    printf '%s\n' '{"agent_id":"agent\u0001","task_id":"t17","stage":"execution"}'
    record 18 '"stage_error_rate":0.2'
    printf '%s\n' '{"agent_id":"agent-1","task_id":"t19","stage":"testing"}'
    # The last line has no newline, which must not lose it.
    record 20 | tr -d '\n'
  } >"$MIXED"

  # For a string cut off by the end of the line, cJSON points at the string's first byte.
  EXPECTED_REJECTS=(
    "ace-ingest: $MIXED:2: invalid JSON near byte 47"
    "ace-ingest: $MIXED:4: stage_duration_ms: expected a number, found a string"
    "ace-ingest: $MIXED:5: agent_id: expected a string, found a number"
    "ace-ingest: $MIXED:6: stage_error_rate: 1.5 is out of range (0 to 1)"
    "ace-ingest: $MIXED:7: stage_duration_ms: -5 is out of range (0 to 2147483647)"
    "ace-ingest: $MIXED:8: agent_id: required field is missing"
    "ace-ingest: $MIXED:9: task_id: required field is missing"
    "ace-ingest: $MIXED:10: stage: required field is missing"
    "ace-ingest: $MIXED:12: empty line"
    "ace-ingest: $MIXED:13: line is ${#huge} bytes long, more than the maximum of 1000"
    "ace-ingest: $MIXED:15: invalid UTF-8 at byte $((${#utf8_prefix} + 1))"
    "ace-ingest: $MIXED:16: contains a NUL byte at byte $((${#nul_prefix} + 1))"
    "ace-ingest: $MIXED:17: agent_id: contains a control character"
    "ace-ingest: $MIXED:18: stage_error_rate: stage_success_rate + stage_error_rate is 1.1, more than 1"
    "ace-ingest: $MIXED:19: stage: \"testing\" is not a stage (expected planning, execution, reflection or verification)"
  )
}

@test "values stored per column" {
  local input=$BATS_TEST_TMPDIR/values.ndjson row
  {
    printf '%s' '{"metric_id":"0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b","recorded_at":"2020-03-04T07:06:07.123456+02:00",'
    printf '%s' '"agent_id":"agent-1","task_id":"task-1","task_type":"retail","stage":"planning",'
    printf '%s' '"stage_success_rate":0.75,"stage_error_rate":0.25,"stage_duration_ms":1200,"stage_action_count":3,'
    printf '%s' '"overall_progress_velocity":1.5,"error_accumulation_rate":0.125,"context_staleness_score":0.5,'
    printf '%s' '"intervention_effectiveness":0.25,"baseline_delta":{"stage_success_rate":-0.05},'
    printf '%s\n' '"tokens":512,"model":"m-1","cost":0.0042,"attributes":{"region":"eu","tokens":1}}'
    printf '%s\n' '{"recorded_at":1583298367.25,"agent_id":"agent-2","task_id":"task-2","stage":"verification"}'
    printf '%s\n' '{"recorded_at":"2020-12-31T23:59:59Z","agent_id":"agent-3","task_id":"task-3","stage":"reflection"}'
  } >"$input"

  run --separate-stderr ace-ingest "$input"
  expect_status 0
  expect_equal "$(count_rows)" 3 "row count"

  row=$(ace_psql "SELECT metric_id, recorded_at = '2020-03-04T05:06:07.123456Z', agent_id, task_id,
      task_type, stage, stage_success_rate, stage_error_rate, stage_duration_ms, stage_action_count,
      overall_progress_velocity, error_accumulation_rate, context_staleness_score,
      intervention_effectiveness FROM performance_metrics WHERE task_id = 'task-1'")
  expect_equal "$row" "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b|t|agent-1|task-1|retail|planning|0.75|0.25|1200|3|1.5|0.125|0.5|0.25" \
    "columns of task-1"
  expect_equal "$(ace_psql "SELECT baseline_delta FROM performance_metrics WHERE task_id = 'task-1'")" \
    '{"stage_success_rate": -0.05}' "baseline_delta of task-1"
  # Unknown fields are kept and the input attributes object is merged. A top-level field
  # wins a name clash, and the clashing member stays in a nested attributes object.
  expect_equal "$(ace_psql "SELECT attributes FROM performance_metrics WHERE task_id = 'task-1'")" \
    '{"cost": 0.0042, "model": "m-1", "region": "eu", "tokens": 512, "attributes": {"tokens": 1}}' "attributes of task-1"

  row=$(ace_psql "SELECT recorded_at = to_timestamp(1583298367.25), task_type IS NULL,
      stage_success_rate IS NULL, stage_duration_ms IS NULL, baseline_delta IS NULL, attributes
      FROM performance_metrics WHERE task_id = 'task-2'")
  expect_equal "$row" 't|t|t|t|t|{}' "recorded_at from epoch seconds and absent fields of task-2"

  expect_equal "$(ace_psql "SELECT recorded_at = '2020-12-31T23:59:59Z' FROM performance_metrics WHERE task_id = 'task-3'")" \
    t "recorded_at of task-3"
}

@test "metric_id kept or generated" {
  local input=$BATS_TEST_TMPDIR/ids.ndjson
  {
    record 1 '"metric_id":"0190A5B2-7C3D-7E4F-8A1B-2C3D4E5F6A7B"'
    record 2
    record 3
  } >"$input"

  run --separate-stderr ace-ingest "$input"
  expect_status 0

  expect_equal "$(ace_psql "SELECT metric_id FROM performance_metrics WHERE task_id = 't1'")" \
    0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b "given metric_id"
  # Generated ids are time-ordered UUIDs: version 7, RFC 4122 variant.
  expect_equal "$(ace_psql "SELECT count(DISTINCT metric_id) FROM performance_metrics
      WHERE task_id IN ('t2', 't3')
      AND metric_id::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'")" \
    2 "distinct version 7 ids generated for t2 and t3"
}

@test "absent recorded_at is read time" {
  local before row
  start_fifo_ingest --batch-size 1000 --batch-timeout 2
  before=$EPOCHREALTIME
  record 1 >&"$WRITER"
  wait_for_rows 1 6
  finish_fifo_ingest
  expect_status 0

  # The batch was written about 2 s after the record was read, and recorded_at must be the read time.
  row=$(ace_psql "SELECT recorded_at >= to_timestamp($before),
      recorded_at < to_timestamp($before) + interval '1 second',
      ingested_at - recorded_at >= interval '1.5 seconds'
      FROM performance_metrics")
  expect_equal "$row" 't|t|t' "recorded_at after the write, within 1 s of it, and 1.5 s or more before the flush"
}

@test "batch size flushes full batches" {
  local input=$BATS_TEST_TMPDIR/records.ndjson
  write_records "$input" 1 25
  start_fifo_ingest --batch-size 10 --batch-timeout 60
  cat "$input" >&"$WRITER"

  wait_for_rows 20 5
  expect_ingest_running
  # The last 5 records wait for more input, end of file or the 60 s timeout.
  sleep 0.3
  expect_equal "$(count_rows)" 20 "rows while 5 records wait in a partial batch"

  finish_fifo_ingest
  expect_status 0
  expect_equal "$(count_rows)" 25 "rows after end of input"
  expect_summary "read 25, written 25, duplicates 0, rejected 0, unwritten 0, batches 3"
}

@test "batch timeout flushes partial batch" {
  local input=$BATS_TEST_TMPDIR/records.ndjson
  write_records "$input" 1 3
  start_fifo_ingest --batch-size 1000 --batch-timeout 0.5
  cat "$input" >&"$WRITER"

  wait_for_rows 3 2
  expect_ingest_running

  finish_fifo_ingest
  expect_status 0
  expect_summary "read 3, written 3, duplicates 0, rejected 0, unwritten 0, batches 1"
}

@test "bad lines reported, valid neighbours stored" {
  write_mixed_input

  run --separate-stderr ace-ingest --max-line-bytes 1000 "$MIXED"
  expect_status 65

  diff -u <(printf '%s\n' "${EXPECTED_REJECTS[@]}") <(printf '%s\n' "${stderr_lines[@]:0:${#stderr_lines[@]}-1}")
  expect_summary "read 20, written 5, duplicates 0, rejected 15, unwritten 0, batches 1"
  expect_equal "$(ace_psql "SELECT string_agg(task_id, ' ' ORDER BY task_id) FROM performance_metrics")" \
    "t1 t11 t14 t20 t3" "tasks stored"
}

@test "rejects file holds each rejected line" {
  local rejects=$BATS_TEST_TMPDIR/rejects.ndjson
  write_mixed_input

  run --separate-stderr ace-ingest --max-line-bytes 1000 --rejects "$rejects" "$MIXED"
  expect_status 65

  expect_equal "$(wc -l <"$rejects")" 15 "lines in the rejects file"
  # Each object gives the same source, line, field and error as the stderr line.
  diff -u <(printf '%s\n' "${EXPECTED_REJECTS[@]}") \
    <(jq -r '"ace-ingest: \(.source):\(.line): \(if .field == "" then "" else .field + ": " end)\(.error)"' "$rejects")
  expect_equal "$(jq -r 'select(.line == 4) | .record' "$rejects")" "$(sed -n 4p "$MIXED")" "record of line 4"
  expect_equal "$(jq -r 'select(.line == 19) | .record' "$rejects")" "$(sed -n 19p "$MIXED")" "record of line 19"
  expect_equal "$(jq -r 'select(.line == 12) | .record' "$rejects")" "" "record of the empty line 12"
}

@test "rejects file is valid UTF-8" {
  local rejects=$BATS_TEST_TMPDIR/rejects.ndjson input=$BATS_TEST_TMPDIR/latin1.ndjson
  printf '{"agent_id":"caf\xe9","task_id":"t1","stage":"execution"}\n' >"$input"

  run --separate-stderr ace-ingest --rejects "$rejects" "$input"
  expect_status 65

  # JSON text must be UTF-8 (RFC 8259, section 8.1), so the invalid byte may not be copied as is.
  run --separate-stderr iconv -f UTF-8 -t UTF-8 -o /dev/null "$rejects"
  expect_status 0
}

@test "rejects record keeps bytes after NUL" {
  local rejects=$BATS_TEST_TMPDIR/rejects.ndjson input=$BATS_TEST_TMPDIR/nul.ndjson
  printf '{"agent_id":"agent-1","task_id":"t\0","stage":"execution"}\n' >"$input"

  run --separate-stderr ace-ingest --rejects "$rejects" "$input"
  expect_status 65

  expect_equal "$(jq -r '.record | length' "$rejects")" "$(($(wc -c <"$input") - 1))" \
    "characters in the record of the NUL line"
}

@test "same file twice stored once" {
  local input=$BATS_TEST_TMPDIR/records.ndjson
  write_records "$input" 1 20 record_with_id

  run --separate-stderr ace-ingest "$input"
  expect_status 0
  expect_summary "read 20, written 20, duplicates 0, rejected 0, unwritten 0, batches 1"

  run --separate-stderr ace-ingest "$input"
  expect_status 0
  expect_summary "read 20, written 0, duplicates 20, rejected 0, unwritten 0, batches 1"
  expect_equal "$(count_rows)" 20 "rows after the second run"
}

@test "duplicates inside one batch stored once" {
  local input=$BATS_TEST_TMPDIR/records.ndjson
  write_records "$input" 1 5 record_with_id
  write_records "$BATS_TEST_TMPDIR/again.ndjson" 3 7 record_with_id
  cat "$BATS_TEST_TMPDIR/again.ndjson" >>"$input"

  run --separate-stderr ace-ingest "$input"
  expect_status 0
  expect_summary "read 10, written 7, duplicates 3, rejected 0, unwritten 0, batches 1"
  expect_equal "$(count_rows)" 7 "rows"
}

@test "server check rejects only its rows" {
  local input=$BATS_TEST_TMPDIR/records.ndjson n line
  ace_psql "ALTER TABLE performance_metrics ADD CONSTRAINT no_banned CHECK (agent_id <> 'banned')"
  for ((n = 1; n <= 50; n++)); do
    case $n in
      7 | 23 | 41) record_with_id "$n" | sed 's/"agent-1"/"banned"/' ;;
      *) record_with_id "$n" ;;
    esac
  done >"$input"

  run --separate-stderr ace-ingest --batch-size 100 "$input"
  expect_status 65

  expect_equal "$(count_rows)" 47 "rows"
  # The records of 2020 land in the default partition, which the server names.
  for line in 7 23 41; do
    expect_stderr_line "ace-ingest: $input:$line: no_banned: rejected by the server: COPY failed: new row for relation \"performance_metrics_default\" violates check constraint \"no_banned\" (SQLSTATE 23514)"
  done
  expect_summary "read 50, written 47, duplicates 0, rejected 3, unwritten 0, batches 1"
}

@test "missing table exits 70" {
  local input=$BATS_TEST_TMPDIR/records.ndjson
  write_records "$input" 1 5
  ace_fresh_db unmigrated

  run --separate-stderr ace-ingest "$input"
  expect_status 70
  expect_stderr_line "ace-ingest: cannot start COPY: relation \"performance_metrics\" does not exist (SQLSTATE 42P01); run 'ace-migrate up' first"
  expect_summary "read 5, written 0, duplicates 0, rejected 0, unwritten 5, batches 0"
}

@test "unreachable database exits 69" {
  local input=$BATS_TEST_TMPDIR/records.ndjson
  write_records "$input" 1 3

  run --separate-stderr ace-ingest -d postgresql://ace@127.0.0.1:1/x --retry-timeout 1 "$input"
  expect_status 69
  [[ $stderr == *'msg="database unavailable, retrying with backoff"'* ]]
  [[ $stderr == *"ace-ingest: database unreachable for 1 s: "* ]]
  expect_summary "read 3, written 0, duplicates 0, rejected 0, unwritten 3, batches 0"
}

# Sends SIGNAL to an ace-ingest that holds 5 records in a partial batch, then checks that they were written.
check_signal_writes_read_records() {
  local signal=$1 input=$BATS_TEST_TMPDIR/records.ndjson
  write_records "$input" 1 15
  start_fifo_ingest --batch-size 10 --batch-timeout 60
  cat "$input" >&"$WRITER"

  # cat wrote the 15 records (under PIPE_BUF bytes) in one write, so 10 stored
  # rows show that ace-ingest has read all 15.
  wait_for_rows 10 5
  expect_ingest_running
  kill -"$signal" "$INGEST_PID"
  wait_ingest
  exec {WRITER}>&-

  expect_status 0
  expect_equal "$(count_rows)" 15 "rows after SIG$signal"
  [[ $stderr == *'msg="signal received: writing the records already read, then exiting"'* ]]
  expect_summary "read 15, written 15, duplicates 0, rejected 0, unwritten 0, batches 2"
}

@test "SIGTERM writes records already read" {
  check_signal_writes_read_records TERM
}

@test "SIGINT writes records already read" {
  check_signal_writes_read_records INT
}

@test "files and stdin all read" {
  local first=$BATS_TEST_TMPDIR/first.ndjson second=$BATS_TEST_TMPDIR/second.ndjson stdin=$BATS_TEST_TMPDIR/stdin.ndjson
  write_records "$first" 1 2
  { record 3; printf '{"broken\n'; } >"$stdin"
  { record 4; printf '{"broken\n'; record 5; } >"$second"

  run --separate-stderr ace-ingest "$first" - "$second" <"$stdin"
  expect_status 65

  expect_equal "$(ace_psql "SELECT string_agg(task_id, ' ' ORDER BY task_id) FROM performance_metrics")" \
    "t1 t2 t3 t4 t5" "tasks stored"
  # Line numbers count from 1 in each input.
  expect_stderr_line "ace-ingest: <stdin>:2: invalid JSON near byte 3"
  expect_stderr_line "ace-ingest: $second:2: invalid JSON near byte 3"
  expect_summary "read 7, written 5, duplicates 0, rejected 2, unwritten 0, batches 1"
}

@test "nonexistent file exits 66 first" {
  local input=$BATS_TEST_TMPDIR/records.ndjson
  write_records "$input" 1 3

  run --separate-stderr ace-ingest "$input" "$BATS_TEST_TMPDIR/missing.ndjson"
  expect_status 66
  expect_equal "$stderr" "ace-ingest: cannot open '$BATS_TEST_TMPDIR/missing.ndjson': No such file or directory" "stderr"
  expect_equal "$(count_rows)" 0 "rows"
}

@test "help lists every option" {
  local option options
  run --separate-stderr ace-ingest --help
  expect_status 0
  expect_equal "$stderr" "" "stderr"
  [[ ${lines[0]} == "Usage: ace-ingest [OPTION]... [FILE]..." ]]

  # Every long option the parser accepts, read from its table in the source.
  options=$(sed -n 's/^\t{ "\([a-z-]*\)", .*/\1/p' "$REPO/cmd/ace-ingest.c")
  expect_equal "$(wc -w <<<"$options")" 13 "long options in cmd/ace-ingest.c"
  for option in $options; do
    if [[ $output != *"--$option"* ]]; then
      echo "--help does not list --$option"
      return 1
    fi
  done
}

@test "invalid option exits 64" {
  run --separate-stderr ace-ingest --no-such-option
  expect_status 64
  expect_equal "${stderr_lines[0]}" "ace-ingest: unrecognized option '--no-such-option'" "first stderr line"
  expect_equal "${stderr_lines[1]}" "Try 'ace-ingest --help' for more information." "second stderr line"
}

@test "batch size 0 exits 64 naming range" {
  local input=$BATS_TEST_TMPDIR/records.ndjson
  write_records "$input" 1 3

  run --separate-stderr ace-ingest --batch-size 0 "$input"
  expect_status 64
  [[ ${stderr_lines[0]} == "ace-ingest: --batch-size: ingest.batch_size: 0 is out of range (1 to "*" records)" ]]
  expect_equal "$(count_rows)" 0 "rows"
}

@test "unknown config key exits 78" {
  local input=$BATS_TEST_TMPDIR/records.ndjson config=$BATS_TEST_TMPDIR/ace.yaml
  write_records "$input" 1 3
  printf 'ingest:\n  batch_size: 10\n  batch_colour: blue\n' >"$config"

  run --separate-stderr ace-ingest --config "$config" "$input"
  expect_status 78
  expect_equal "$stderr" "ace-ingest: $config:3: unknown key 'ingest.batch_colour'" "stderr with --config"

  ACE_CONFIG=$config run --separate-stderr ace-ingest "$input"
  expect_status 78
  expect_equal "$stderr" "ace-ingest: $config:3: unknown key 'ingest.batch_colour'" "stderr with ACE_CONFIG"
  expect_equal "$(count_rows)" 0 "rows"
}

@test "summary line format" {
  local input=$BATS_TEST_TMPDIR/records.ndjson
  write_records "$input" 1 3

  run --separate-stderr ace-ingest "$input"
  expect_status 0
  expect_equal "${#stderr_lines[@]}" 1 "stderr lines"
  expect_summary "read 3, written 3, duplicates 0, rejected 0, unwritten 0, batches 1"
  expect_equal "$output" "" "stdout"
}

@test "quiet silences summary and rejects" {
  local input=$BATS_TEST_TMPDIR/records.ndjson
  { record 1; printf '{"broken\n'; } >"$input"

  run --separate-stderr ace-ingest -q "$input"
  expect_status 65
  expect_equal "$stderr" "" "stderr"
  expect_equal "$(count_rows)" 1 "rows"
}
