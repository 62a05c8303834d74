#!/usr/bin/env bats
# Tests ace-cache while Redis or PostgreSQL stops, hangs or restarts, on servers of its own because it stops them.

bats_require_minimum_version 1.5.0

load helpers

setup_file() {
  ace_own_servers
}

teardown_file() {
  ace_teardown_servers
}

setup() {
  ace_fresh_db cache_outage
  ace-migrate up >/dev/null
  redis-cli -u "$REDIS_URL" flushall >/dev/null
  ace_psql "INSERT INTO context_playbooks (agent_id, context, version) VALUES ('a1', '{\"steps\":1}', 1), ('a2', '{}', 1)"
  FILTER_PID=
  LISTEN_PID=
  WRITER=
  STOPPED_PID=
  export ACE_REDIS_CONNECT_TIMEOUT=0.5 ACE_REDIS_COMMAND_TIMEOUT=0.5
  export ACE_REDIS_BREAKER_FAILURES=2 ACE_REDIS_BREAKER_COOLDOWN=0.5
}

teardown() {
  local pid
  for pid in "${FILTER_PID:-}" "${LISTEN_PID:-}"; do
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid"
    fi
  done
  if [[ -n ${STOPPED_PID:-} ]]; then
    kill -CONT "$STOPPED_PID" 2>/dev/null || true
  fi
  # The next test needs both servers, whatever this one left.
  if [[ $(redis-cli -u "$REDIS_URL" ping 2>/dev/null) != PONG ]]; then
    ace_redis_start 3>&- >/dev/null 2>&1
  fi
  if ! pg_isready -q -h 127.0.0.1 -p "$ACE_PG_PORT"; then
    ace_pg_start 3>&- >/dev/null 2>&1
  fi
}

# Starts ace-cache filter with ARGS on a new FIFO held open in WRITER. Sets FILTER_PID.
start_filter() {
  local fifo=$BATS_TEST_TMPDIR/requests.fifo
  mkfifo "$fifo"
  ace-cache "$@" filter <"$fifo" >"$BATS_TEST_TMPDIR/filter.out" 2>"$BATS_TEST_TMPDIR/filter.err" 3>&- &
  FILTER_PID=$!
  exec {WRITER}<>"$fifo"
}

# Sends a get of AGENT's playbook and waits up to 10 s for its response.
# Sets RESPONSE and ELAPSED_MS, the time from sending to reading the response.
ask() {
  local before started tries
  before=$(wc -l <"$BATS_TEST_TMPDIR/filter.out")
  started=${EPOCHREALTIME/./}
  printf '{"op":"get","kind":"playbook","agent_id":"%s"}\n' "$1" >&"$WRITER"
  for ((tries = 0; tries < 10000; tries++)); do
    (($(wc -l <"$BATS_TEST_TMPDIR/filter.out") > before)) && break
    sleep 0.001
  done
  ELAPSED_MS=$(((${EPOCHREALTIME/./} - started) / 1000))
  RESPONSE=$(tail -n 1 "$BATS_TEST_TMPDIR/filter.out")
  if ((tries == 10000)); then
    echo "no response within 10 s; stderr:"
    cat "$BATS_TEST_TMPDIR/filter.err"
    return 1
  fi
}

# Fails unless the last response came from SOURCE with status ok.
expect_answer() {
  expect_equal "$(jq -r '.status + " " + .source' <<<"$RESPONSE")" "ok $1" "status and source (${ELAPSED_MS} ms)"
}

# Ends the filter's input and waits up to 10 s for it to exit; sets status and stderr.
finish_filter() {
  local tries
  exec {WRITER}>&-
  WRITER=
  for ((tries = 0; tries < 200; tries++)); do
    kill -0 "$FILTER_PID" 2>/dev/null || break
    sleep 0.05
  done
  status=0
  wait "$FILTER_PID" || status=$?
  FILTER_PID=
  stderr=$(<"$BATS_TEST_TMPDIR/filter.err")
}

# Polls FILE until it holds COUNT lines containing TEXT, and fails after SECONDS.
wait_for_lines() {
  local file=$1 text=$2 count=$3 seconds=$4 tries
  for ((tries = 0; tries < seconds * 20; tries++)); do
    (($(grep -cF -- "$text" "$file") >= count)) && return 0
    sleep 0.05
  done
  echo "$file has fewer than $count lines with '$text' after $seconds s:"
  cat "$file"
  return 1
}

redis_pid() {
  redis-cli -u "$REDIS_URL" info server | tr -d '\r' | sed -n 's/^process_id://p'
}

@test "redis stopped: answers from postgresql, breaker closes after restart" {
  local i slowest=0
  start_filter
  ask a1
  expect_answer postgresql
  ask a1
  expect_answer redis

  ace_redis_stop 3>&- {WRITER}>&-
  for i in 1 2 3 4 5 6 7 8; do
    ask a1
    expect_answer postgresql
    ((ELAPSED_MS > slowest)) && slowest=$ELAPSED_MS
  done
  # A stopped server refuses at once; no request may wait the 500 ms command timeout.
  ((slowest < 500)) || { echo "slowest answer took $slowest ms"; return 1; }
  wait_for_lines "$BATS_TEST_TMPDIR/filter.err" 'msg="redis circuit breaker opened: calls go to postgresql"' 1 2

  ace_redis_start 3>&- {WRITER}>&- >/dev/null
  for ((i = 0; i < 50; i++)); do
    ask a1
    [[ $(jq -r .source <<<"$RESPONSE") == redis ]] && break
    sleep 0.1
  done
  expect_answer redis

  finish_filter
  expect_status 0
  expect_equal "$(grep -c 'msg="redis circuit breaker closed"' <<<"$stderr")" 1 "breaker closed lines"
  expect_equal "$(grep -c 'msg="redis unavailable: serving from postgresql"' <<<"$stderr")" 1 "outage warnings"
}

@test "hung redis: no wait beyond the command timeout" {
  ace-cache get playbook a1 >/dev/null
  STOPPED_PID=$(redis_pid)
  kill -STOP "$STOPPED_PID"

  local started elapsed
  started=${EPOCHREALTIME/./}
  run --separate-stderr ace-cache get playbook a1
  elapsed=$(((${EPOCHREALTIME/./} - started) / 1000))
  expect_status 0
  expect_equal "$(jq -c .context <<<"$output")" '{"steps":1}' "answer from postgresql"
  [[ $stderr == *'error="no reply within 0.5 s"'* ]]
  # The Redis wait is bounded by the 500 ms timeout; the rest is start-up and the PostgreSQL query.
  ((elapsed >= 450 && elapsed < 900)) || { echo "get took $elapsed ms"; return 1; }
}

@test "hung redis: breaker stops the waits" {
  local i times=()
  export ACE_REDIS_BREAKER_COOLDOWN=60
  start_filter
  ask a1
  STOPPED_PID=$(redis_pid)
  kill -STOP "$STOPPED_PID"

  for i in 1 2 3 4 5 6; do
    ask a2
    expect_answer postgresql
    times+=("$ELAPSED_MS")
  done
  # Two timed-out requests open the breaker; later ones never wait on Redis.
  for i in 0 1; do
    ((times[i] >= 450 && times[i] < 900)) || { echo "request $i took ${times[i]} ms: ${times[*]}"; return 1; }
  done
  for i in 2 3 4 5; do
    ((times[i] < 200)) || { echo "request $i took ${times[i]} ms with the breaker open: ${times[*]}"; return 1; }
  done
  kill -CONT "$STOPPED_PID"
  STOPPED_PID=

  finish_filter
  expect_status 0
  expect_equal "$(grep -c 'msg="redis circuit breaker opened: calls go to postgresql"' <<<"$stderr")" 1 "breaker opened lines"
}

@test "both servers down exits 69" {
  ace_redis_stop 3>&-
  ace_pg_stop 3>&-

  run --separate-stderr ace-cache get playbook a1
  expect_status 69
  [[ ${stderr_lines[-1]} == "ace-cache: cannot get the playbook of 'a1': postgresql: "* ]]

  run --separate-stderr ace-cache stats
  expect_status 69
  [[ $stderr == "ace-cache: cannot read cache statistics: redis redis://127.0.0.1:$ACE_REDIS_PORT/0: cannot connect: Connection refused" ]]

  run --separate-stderr ace-cache filter <<<'{"op":"get","kind":"playbook","agent_id":"a1"}'
  expect_status 69
  expect_equal "$(jq -r .status <<<"$output")" unavailable "response status"
}

@test "listen reconnects after a postgresql restart" {
  ace-cache listen >"$BATS_TEST_TMPDIR/listen.out" 2>"$BATS_TEST_TMPDIR/listen.err" 3>&- &
  LISTEN_PID=$!
  wait_for_lines "$BATS_TEST_TMPDIR/listen.err" 'msg="listening for playbook changes"' 1 5
  ace-cache get playbook a1 >/dev/null

  ace_pg_stop 3>&-
  wait_for_lines "$BATS_TEST_TMPDIR/listen.err" 'msg="postgresql connection lost; reconnecting"' 1 5
  ace_pg_start 3>&- >/dev/null
  wait_for_lines "$BATS_TEST_TMPDIR/listen.err" 'msg="listening for playbook changes"' 2 10
  # Changes made while it was away were never notified, so every playbook key goes.
  wait_for_lines "$BATS_TEST_TMPDIR/listen.out" 'ace:playbook:*' 1 5
  expect_equal "$(redis-cli -u "$REDIS_URL" exists ace:playbook:a1)" 0 "key after the reconnect"

  ace-cache get playbook a1 >/dev/null
  ace_psql "UPDATE context_playbooks SET context = '{\"steps\":2}' WHERE agent_id = 'a1'"
  wait_for_lines "$BATS_TEST_TMPDIR/listen.out" 'ace:playbook:a1' 1 1
  expect_equal "$(redis-cli -u "$REDIS_URL" exists ace:playbook:a1)" 0 "key after the change"
}

@test "listen retries removals while redis is down" {
  ace-cache listen >"$BATS_TEST_TMPDIR/listen.out" 2>"$BATS_TEST_TMPDIR/listen.err" 3>&- &
  LISTEN_PID=$!
  wait_for_lines "$BATS_TEST_TMPDIR/listen.err" 'msg="listening for playbook changes"' 1 5
  STOPPED_PID=$(redis_pid)
  ace-cache get playbook a1 >/dev/null
  kill -STOP "$STOPPED_PID"

  ace_psql "UPDATE context_playbooks SET context = '{\"steps\":3}' WHERE agent_id = 'a1'"
  wait_for_lines "$BATS_TEST_TMPDIR/listen.err" 'msg="redis unavailable: keys are removed once it answers"' 1 5
  kill -CONT "$STOPPED_PID"
  STOPPED_PID=
  wait_for_lines "$BATS_TEST_TMPDIR/listen.out" 'ace:playbook:a1' 1 5
  expect_equal "$(redis-cli -u "$REDIS_URL" exists ace:playbook:a1)" 0 "key after redis came back"
}
