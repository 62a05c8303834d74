#!/usr/bin/env bats
# Tests ace-ingest while PostgreSQL stops and restarts, on servers of its own because it stops them.

bats_require_minimum_version 1.5.0

load helpers

setup_file() {
  ace_own_servers
}

teardown_file() {
  ace_teardown_servers
}

setup() {
  ace_fresh_db outage
  ace-migrate up >/dev/null
  INGEST_PID=
  # Retry delays start at 0.1 s and double up to ingest.retry_max_delay (default 10 s).
  # A cap of 0.5 s lets ace-ingest notice the restart quickly.
  export ACE_INGEST_RETRY_MAX_DELAY=0.5
}

teardown() {
  if [[ -n ${INGEST_PID:-} ]] && kill -0 "$INGEST_PID" 2>/dev/null; then
    kill -KILL "$INGEST_PID"
  fi
  # The next test needs PostgreSQL running, whatever this one left.
  if ! pg_isready -q -h 127.0.0.1 -p "$ACE_PG_PORT"; then
    start_postgres
  fi
}

# Prints a record of task tN with a fixed metric_id, so that a duplicate write shows up as a duplicate key.
record_with_id() {
  printf '{"metric_id":"00000000-0000-7000-8000-%012d","recorded_at":"2020-01-01T00:00:00Z","agent_id":"agent-1","task_id":"t%s","stage":"execution"}\n' \
    "$1" "$1"
}

# Writes records FIRST..LAST to the FIFO, 20 ms apart, as a slow producer would.
feed_slowly() {
  local n
  for ((n = $1; n <= $2; n++)); do
    record_with_id "$n" >&"$WRITER"
    sleep 0.02
  done
}

# Starts PostgreSQL again. PostgreSQL must not inherit the FIFO, or ace-ingest
# would never see end of file, nor bats's descriptor 3, or bats would wait for it.
start_postgres() {
  if [[ -n ${WRITER:-} ]]; then
    ace_pg_start 3>&- {WRITER}>&-
  else
    ace_pg_start 3>&-
  fi
}

# Fails unless stderr has exactly COUNT lines containing TEXT.
expect_stderr_count() {
  local text=$1 count=$2 found
  found=$(grep -cF -- "$text" <<<"$stderr" || true)
  if [[ $found != "$count" ]]; then
    echo "expected $count stderr lines with '$text', found $found; stderr:"
    echo "$stderr"
    return 1
  fi
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

# Polls the stderr of the background ace-ingest until it contains TEXT, and fails after SECONDS.
wait_for_stderr() {
  local text=$1 seconds=$2 tries
  for ((tries = 0; tries < seconds * 20; tries++)); do
    grep -qF -- "$text" "$BATS_TEST_TMPDIR/ingest.err" && return 0
    sleep 0.05
  done
  echo "stderr has no '$text' after $seconds s; stderr:"
  cat "$BATS_TEST_TMPDIR/ingest.err"
  return 1
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

# Ends the input with end of file, waits up to 20 s for ace-ingest to exit,
# then sets status, output, stderr and stderr_lines as run --separate-stderr does.
finish_fifo_ingest() {
  local tries
  exec {WRITER}>&-
  WRITER=
  for ((tries = 0; tries < 400; tries++)); do
    kill -0 "$INGEST_PID" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$INGEST_PID" 2>/dev/null; then
    echo "ace-ingest (pid $INGEST_PID) still runs 20 s after end of input; stderr:"
    cat "$BATS_TEST_TMPDIR/ingest.err"
    return 1
  fi
  status=0
  wait "$INGEST_PID" || status=$?
  INGEST_PID=
  output=$(<"$BATS_TEST_TMPDIR/ingest.out")
  stderr=$(<"$BATS_TEST_TMPDIR/ingest.err")
  mapfile -t stderr_lines <"$BATS_TEST_TMPDIR/ingest.err"
}

@test "restart during ingest loses nothing" {
  start_fifo_ingest --batch-size 5 --batch-timeout 0.2 --retry-timeout 60
  feed_slowly 1 20
  wait_for_rows 20 5

  ace_pg_stop --immediate
  feed_slowly 21 40
  wait_for_stderr "database unavailable" 5
  start_postgres
  feed_slowly 41 60

  finish_fifo_ingest
  expect_status 0
  expect_equal "$(ace_psql "SELECT count(*), count(DISTINCT metric_id) FROM performance_metrics")" "60|60" \
    "rows and distinct metric_ids"
  expect_stderr_count 'msg="database unavailable, retrying with backoff"' 1
  expect_stderr_count 'msg="database available again"' 1
  expect_summary "read 60, written [0-9]+, duplicates [0-9]+, rejected 0, unwritten 0, batches [0-9]+"
}

@test "outage beyond retry timeout exits 69" {
  start_fifo_ingest --batch-size 5 --batch-timeout 0.2 --retry-timeout 2
  feed_slowly 1 10
  wait_for_rows 10 5

  ace_pg_stop --immediate
  feed_slowly 11 20
  finish_fifo_ingest
  expect_status 69
  expect_stderr_count "ace-ingest: database unreachable for 2 s: " 1
  expect_summary "read 20, written 10, duplicates 0, rejected 0, unwritten 10, batches 2"

  start_postgres
  expect_equal "$(count_rows)" 10 "rows after the restart"
}
