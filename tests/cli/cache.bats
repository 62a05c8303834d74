#!/usr/bin/env bats
# Tests ace-cache against a real Redis and PostgreSQL: read-through, TTLs, invalidation, set, stats, filter mode, stampedes, listen and stats files.

bats_require_minimum_version 1.5.0

load helpers

setup_file() {
  ace_setup_servers
}

teardown_file() {
  ace_teardown_servers
}

setup() {
  ace_fresh_db cache
  ace-migrate up >/dev/null
  # Database 1 of the shared Redis, emptied per test, so SELECT runs and other files' keys stay apart.
  export REDIS_URL=redis://127.0.0.1:$ACE_REDIS_PORT/1
  rcli flushdb >/dev/null
  LISTEN_PID=
  ace_psql "INSERT INTO context_playbooks (agent_id, context, version, metadata) VALUES
    ('a1', '{\"steps\":[\"plan\"]}', 1, '{}'),
    ('a1', '{\"steps\":[\"plan\",\"act\"]}', 2, '{\"by\":\"ops\"}'),
    ('a2', '\"be brief\"', 1, '{}')"
  ace_psql "INSERT INTO performance_baselines (agent_id, task_type, stage, version, window_start, window_end, sample_size, success_rate_mean, duration_ms_p95) VALUES
    ('a1', 'refund', 'planning', 1, '2025-06-01Z', '2025-06-08Z', 40, 0.5, 900),
    ('a1', 'refund', 'planning', 2, '2025-06-08Z', '2025-06-15Z', 50, 0.9, 800),
    ('a1', 'refund', 'execution', 1, '2025-06-08Z', '2025-06-15Z', 50, 0.8, 2500),
    ('a1', 'lookup', 'planning', 1, '2025-06-08Z', '2025-06-15Z', 10, 1, 100)"
}

teardown() {
  if [[ -n ${LISTEN_PID:-} ]] && kill -0 "$LISTEN_PID" 2>/dev/null; then
    kill -KILL "$LISTEN_PID"
  fi
}

rcli() {
  redis-cli -u "$REDIS_URL" "$@"
}

# Prints the counter NAME of ace-cache stats.
stat() {
  ace-cache stats | awk -v name="$1" '$1 == name { print $2 }'
}

@test "miss reads through, then hits" {
  run --separate-stderr ace-cache --log-level debug get playbook a1
  expect_status 0
  expect_equal "$(jq -c '[.agent_id, .version, .context, .metadata]' <<<"$output")" \
    '["a1",2,{"steps":["plan","act"]},{"by":"ops"}]' "playbook fields"
  [[ $(jq -r .created_at <<<"$output") =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{6}Z$ ]]
  expect_equal "$(grep -c 'msg="postgresql load" key=ace:playbook:a1 status=ok' <<<"$stderr")" 1 "loads logged"
  expect_equal "$(rcli get ace:playbook:a1)" "$output" "stored value"
  local first=$output

  run --separate-stderr ace-cache --log-level debug get playbook a1
  expect_status 0
  expect_equal "$output" "$first" "second answer"
  expect_equal "$(grep -c 'postgresql load' <<<"$stderr")" 0 "loads on the hit"
  expect_equal "$(stat hits) $(stat misses) $(stat loads)" "1 1 1" "hits, misses, loads"
}

@test "hit serves the cached value" {
  ace-cache get playbook a2 >/dev/null
  # A value changed in Redis alone shows that the second answer comes from Redis.
  rcli set ace:playbook:a2 '{"context":"from redis"}' >/dev/null

  run --separate-stderr ace-cache get playbook a2
  expect_status 0
  expect_equal "$output" '{"context":"from redis"}' "stdout"
}

@test "baseline holds four stages" {
  run --separate-stderr ace-cache get baseline a1 refund
  expect_status 0
  expect_equal "$(jq -c '[.agent_id, .task_type, (.stages | keys)]' <<<"$output")" \
    '["a1","refund",["execution","planning","reflection","verification"]]' "shape"
  expect_equal "$(jq -c '[.stages.planning.version, .stages.planning.sample_size, .stages.planning.success_rate_mean, .stages.execution.duration_ms_p95, .stages.reflection, .stages.verification]' <<<"$output")" \
    '[2,50,0.9,2500,null,null]' "newest row per stage"
  expect_equal "$(jq -r .stages.planning.window_start <<<"$output")" "2025-06-08T00:00:00.000000Z" "window_start"
  expect_equal "$(rcli exists ace:baseline:a1:refund)" 1 "key"
  expect_equal "$(rcli exists ace:baseline:a1:lookup)" 0 "other task type"
}

@test "absent value is cached as null" {
  run --separate-stderr ace-cache --log-level debug get playbook nobody
  expect_status 1
  expect_equal "$output" "" "stdout"
  expect_equal "$(grep -v 'level=debug' <<<"$stderr")" "ace-cache: playbook of 'nobody': not found" "stderr"
  expect_equal "$(rcli get ace:playbook:nobody)" "null" "cached value"
  local ttl
  ttl=$(rcli ttl ace:playbook:nobody)
  ((ttl >= 27 && ttl <= 30)) || { echo "negative TTL $ttl, expected 27 to 30"; return 1; }

  run --separate-stderr ace-cache --log-level debug get playbook nobody
  expect_status 1
  expect_equal "$(grep -c 'postgresql load' <<<"$stderr")" 0 "loads of the cached absence"

  run --separate-stderr ace-cache get baseline a1 nothing
  expect_status 1
  expect_equal "$stderr" "ace-cache: baseline of 'a1' for task type 'nothing': not found" "stderr"
}

@test "TTLs follow the settings" {
  local ttl
  ace-cache get playbook a1 >/dev/null
  ace-cache get baseline a1 refund >/dev/null
  ttl=$(rcli ttl ace:playbook:a1)
  # 600 s shortened by up to 10 % jitter.
  ((ttl >= 539 && ttl <= 600)) || { echo "playbook TTL $ttl, expected 540 to 600"; return 1; }
  ttl=$(rcli ttl ace:baseline:a1:refund)
  ((ttl >= 3239 && ttl <= 3600)) || { echo "baseline TTL $ttl, expected 3240 to 3600"; return 1; }

  rcli flushdb >/dev/null
  ACE_CACHE_PLAYBOOK_TTL_SECONDS=120 ACE_CACHE_BASELINE_TTL_SECONDS=240 ACE_CACHE_TTL_JITTER_PERCENT=0 \
    ace-cache get playbook a1 >/dev/null
  ACE_CACHE_BASELINE_TTL_SECONDS=240 ACE_CACHE_TTL_JITTER_PERCENT=0 ace-cache get baseline a1 refund >/dev/null
  ACE_CACHE_NEGATIVE_TTL_SECONDS=7 ACE_CACHE_TTL_JITTER_PERCENT=0 ace-cache get playbook nobody || true
  ttl=$(rcli pttl ace:playbook:a1)
  ((ttl > 119000 && ttl <= 120000)) || { echo "playbook PTTL $ttl"; return 1; }
  ttl=$(rcli pttl ace:baseline:a1:refund)
  ((ttl > 239000 && ttl <= 240000)) || { echo "baseline PTTL $ttl"; return 1; }
  ttl=$(rcli pttl ace:playbook:nobody)
  ((ttl > 6000 && ttl <= 7000)) || { echo "negative PTTL $ttl"; return 1; }
}

@test "jitter spreads keys written together" {
  local i ttls
  for i in 1 2 3 4 5 6 7 8; do
    ace_psql "INSERT INTO context_playbooks (agent_id, context, version) VALUES ('j$i', '{}', 1)"
  done
  run --separate-stderr ace-cache warm
  expect_status 0
  ttls=$(for i in 1 2 3 4 5 6 7 8; do rcli pttl "ace:playbook:j$i"; done | sort -u | wc -l)
  ((ttls >= 6)) || { echo "only $ttls distinct TTLs among 8 keys"; return 1; }
}

@test "expired key is loaded again" {
  ACE_CACHE_PLAYBOOK_TTL_SECONDS=1 ace-cache get playbook a1 >/dev/null
  expect_equal "$(rcli exists ace:playbook:a1)" 1 "key before expiry"
  sleep 1.2
  expect_equal "$(rcli exists ace:playbook:a1)" 0 "key after expiry"

  run --separate-stderr ace-cache --log-level debug get playbook a1
  expect_status 0
  expect_equal "$(grep -c 'msg="postgresql load" key=ace:playbook:a1' <<<"$stderr")" 1 "loads after expiry"
  expect_equal "$(stat loads)" 2 "loads counted"
}

@test "invalidate removes one key" {
  ace-cache get playbook a1 >/dev/null
  ace-cache get playbook a2 >/dev/null

  run --separate-stderr ace-cache invalidate playbook a1
  expect_status 0
  expect_equal "$output" 1 "removed"
  expect_equal "$(rcli exists ace:playbook:a1) $(rcli exists ace:playbook:a2)" "0 1" "keys left"

  run --separate-stderr ace-cache invalidate playbook a1
  expect_status 0
  expect_equal "$output" 0 "removed the second time"
}

@test "invalidate baselines of an agent" {
  ace-cache get baseline a1 refund >/dev/null
  ace-cache get baseline a1 lookup >/dev/null
  ace-cache get playbook a1 >/dev/null

  run --separate-stderr ace-cache invalidate baseline a1 refund
  expect_status 0
  expect_equal "$output" 1 "removed with a task type"
  ace-cache get baseline a1 refund >/dev/null

  run --separate-stderr ace-cache invalidate baseline a1
  expect_status 0
  expect_equal "$output" 2 "removed without a task type"
  expect_equal "$(rcli exists ace:playbook:a1)" 1 "playbook kept"
}

@test "invalidate by pattern uses SCAN" {
  local i
  for i in $(seq 1 30); do
    ace_psql "INSERT INTO context_playbooks (agent_id, context, version) VALUES ('team-$i', '{}', 1)" >/dev/null
  done
  ace-cache warm >/dev/null
  ace-cache get playbook a1 >/dev/null
  rcli set ace:stats-like-but-not-ace-data x >/dev/null
  rcli set other:team-1 x >/dev/null

  run --separate-stderr ace-cache invalidate --pattern 'ace:playbook:team-*'
  expect_status 0
  expect_equal "$output" 30 "removed"
  expect_equal "$(rcli --scan --pattern 'ace:playbook:*' | sort | xargs)" "ace:playbook:a1 ace:playbook:a2" "playbook keys left"
  expect_equal "$(rcli exists other:team-1 ace:stats-like-but-not-ace-data)" 2 "other keys"

  run --separate-stderr ace-cache invalidate --pattern 'team-*'
  expect_status 64
  expect_equal "$stderr" "ace-cache: cannot invalidate the keys matching 'team-*': pattern 'team-*' does not start with 'ace:', so it could match keys of other programs" "stderr"

  run --separate-stderr ace-cache invalidate --pattern 'ace:*'
  expect_status 0
  expect_equal "$output" 4 "removed by ace:*: two playbooks and the two baselines that warm stored"
  expect_equal "$(rcli exists ace:stats)" 1 "statistics kept"
}

@test "set writes a new version and the key" {
  ace-cache get playbook a1 >/dev/null

  run --separate-stderr ace-cache set playbook a1 <<<'{"context":{"steps":["plan","act","check"]},"metadata":{"by":"test"}}'
  expect_status 0
  expect_equal "$(jq -c '[.version, .context.steps[2], .metadata.by]' <<<"$output")" '[3,"check","test"]' "stdout"
  expect_equal "$(rcli get ace:playbook:a1)" "$output" "cached value"
  expect_equal "$(ace_psql "SELECT max(version), count(*) FROM context_playbooks WHERE agent_id = 'a1'")" "3|3" "rows"

  run --separate-stderr ace-cache get playbook a1
  expect_equal "$(jq .version <<<"$output")" 3 "version read"
}

@test "stale expect-version is refused" {
  run --separate-stderr ace-cache set --expect-version 1 playbook a1 <<<'{"context":1}'
  expect_status 2
  expect_equal "$output" "" "stdout"
  expect_equal "$stderr" "ace-cache: cannot set the playbook of 'a1': current version is 2, not the expected 1" "stderr"
  expect_equal "$(ace_psql "SELECT max(version) FROM context_playbooks WHERE agent_id = 'a1'")" 2 "version"

  run --separate-stderr ace-cache set --expect-version 2 playbook a1 <<<'{"context":1}'
  expect_status 0
  expect_equal "$(jq .version <<<"$output")" 3 "version written"

  run --separate-stderr ace-cache set --expect-version 0 playbook new-agent <<<'{"context":1}'
  expect_status 0
  expect_equal "$(jq .version <<<"$output")" 1 "first version"
  run --separate-stderr ace-cache set --expect-version 0 playbook new-agent <<<'{"context":1}'
  expect_status 2
}

@test "read value edits and writes back" {
  local edited
  edited=$(ace-cache get playbook a1 | jq -c '.context.steps += ["review"]')

  run --separate-stderr ace-cache set --expect-version 2 playbook a1 <<<"$edited"
  expect_status 0
  expect_equal "$(jq -c '[.version, .context.steps]' <<<"$output")" '[3,["plan","act","review"]]' "written"
}

@test "set rejects a bad document" {
  run --separate-stderr ace-cache set playbook a1 <<<'{"contxt":{}}'
  expect_status 65
  expect_equal "$stderr" 'ace-cache: <stdin>: unknown field "contxt" (expected context and metadata)' "stderr"

  echo '{"metadata":{}}' >"$BATS_TEST_TMPDIR/p.json"
  run --separate-stderr ace-cache set playbook a1 "$BATS_TEST_TMPDIR/p.json"
  expect_status 65
  expect_equal "$stderr" "ace-cache: $BATS_TEST_TMPDIR/p.json: missing field \"context\"" "stderr"

  run --separate-stderr ace-cache set playbook a1 "$BATS_TEST_TMPDIR/absent.json"
  expect_status 66
  expect_equal "$(ace_psql "SELECT max(version) FROM context_playbooks WHERE agent_id = 'a1'")" 2 "version"
}

@test "stats count only ace keys" {
  local i
  for i in $(seq 1 25); do
    rcli set "session:$i" x >/dev/null
  done
  rcli hset user:1 name x >/dev/null
  rcli set "ace-other:1" x >/dev/null
  ace-cache get playbook a1 >/dev/null
  ace-cache get playbook a1 >/dev/null
  ace-cache get playbook a1 >/dev/null
  ace-cache get baseline a1 refund >/dev/null
  ace-cache get playbook nobody || true

  run --separate-stderr ace-cache stats
  expect_status 0
  expect_equal "$output" $'hits 2\nmisses 3\nhit_rate 0.4000\nloads 3\nkeys 3\nplaybook_keys 2\nbaseline_keys 1' "stats"
  expect_equal "$(rcli dbsize)" 31 "keys in the database, ace:stats included"

  run --separate-stderr ace-cache stats --json
  expect_status 0
  expect_equal "$output" '{"hits":2,"misses":3,"hit_rate":0.4000,"loads":3,"keys":3,"playbook_keys":2,"baseline_keys":1}' "JSON"
}

@test "filter keeps order with bad requests" {
  ace-cache get playbook a2 >/dev/null
  cat >"$BATS_TEST_TMPDIR/requests" <<'NDJSON'
{"id":1,"op":"get","kind":"playbook","agent_id":"a2"}
{"id":2,"op":"get","kind":"playbook","agent_id":"a1"}
not json
{"id":"four","op":"get","kind":"baseline","agent_id":"a1","task_type":"refund"}
{"id":5,"op":"get","kind":"playbook"}
{"id":6,"op":"get","kind":"playbook","agent_id":"nobody"}
{"id":7,"op":"fetch","kind":"playbook","agent_id":"a1"}
{"id":8,"op":"get","kind":"playbook","agent_id":"a1"}

{"id":10,"op":"get","kind":"baseline","agent_id":"a1"}
{"op":"get","kind":"playbook","agent_id":"a2","extra":1}
{"id":12,"op":"get","kind":"playbook","agent_id":"a2"}
NDJSON

  run --separate-stderr ace-cache filter <"$BATS_TEST_TMPDIR/requests"
  expect_status 65
  expect_equal "${#lines[@]}" 12 "responses"
  expect_equal "$(jq -c '[.id, .status, .source]' <<<"$output" | xargs -d '\n')" \
    '[1,"ok","redis"] [2,"ok","postgresql"] [null,"invalid",null] ["four","ok","postgresql"] [5,"invalid",null] [6,"not_found","postgresql"] [7,"invalid",null] [8,"ok","redis"] [null,"invalid",null] [10,"invalid",null] [null,"invalid",null] [12,"ok","redis"]' \
    "id, status and source of each response"
  expect_equal "$(jq -r 'select(.status == "invalid") | .error' <<<"$output" | xargs -d '\n' -n 1 echo)" \
    $'line 3: invalid JSON\nline 5: missing field "agent_id"\nline 7: unknown op "fetch" (expected get, set or invalidate)\nline 9: empty line\nline 10: missing field "task_type" ("" for baselines without one)\nline 11: unknown field "extra"' \
    "errors"
  expect_equal "$(jq -c '.value.version' <<<"${lines[1]}")" 2 "value of request 2"
  expect_equal "$(jq -c '.value.stages.planning.version' <<<"${lines[3]}")" 2 "value of request four"
  expect_equal "$stderr" "" "stderr"
}

@test "repeated key in one pipeline loads once" {
  run --separate-stderr ace-cache --log-level debug filter < <(for i in 1 2 3 4 5; do
    echo '{"op":"get","kind":"playbook","agent_id":"a1"}'
  done)
  expect_status 0
  expect_equal "$(jq -r .value.version <<<"$output" | xargs)" "2 2 2 2 2" "versions"
  expect_equal "$(grep -c 'msg="postgresql load"' <<<"$stderr")" 1 "loads"
  # The repeats are served by the one load, so they count as hits.
  expect_equal "$(stat hits) $(stat misses) $(stat loads)" "4 1 1" "hits, misses, loads"
}

@test "filter without command reads stdin" {
  run --separate-stderr ace-cache <<<'{"op":"get","kind":"playbook","agent_id":"a2"}'
  expect_status 0
  expect_equal "$(jq -c '[.status, .value.context]' <<<"$output")" '["ok","be brief"]' "response"
}

@test "filter runs set and invalidate in order" {
  cat >"$BATS_TEST_TMPDIR/requests" <<'NDJSON'
{"id":1,"op":"get","kind":"playbook","agent_id":"a1"}
{"id":2,"op":"set","kind":"playbook","agent_id":"a1","context":{"steps":[]},"expect_version":2}
{"id":3,"op":"get","kind":"playbook","agent_id":"a1"}
{"id":4,"op":"set","kind":"playbook","agent_id":"a1","context":{},"expect_version":2}
{"id":5,"op":"invalidate","kind":"playbook","agent_id":"a1"}
{"id":6,"op":"get","kind":"playbook","agent_id":"a1"}
{"id":7,"op":"invalidate","pattern":"ace:*"}
{"id":8,"op":"set","kind":"baseline","agent_id":"a1","context":{}}
NDJSON

  run --separate-stderr ace-cache <"$BATS_TEST_TMPDIR/requests"
  expect_status 65
  expect_equal "$(jq -c '[.id, .status, .source, .value.version, .removed]' <<<"$output" | xargs -d '\n')" \
    '[1,"ok","postgresql",2,null] [2,"ok",null,3,null] [3,"ok","redis",3,null] [4,"conflict",null,null,null] [5,"ok",null,null,1] [6,"ok","postgresql",3,null] [7,"ok",null,null,1] [8,"invalid",null,null,null]' \
    "responses"
  expect_equal "$(jq -r .error <<<"${lines[3]}")" "line 4: current version is 3, not the expected 2" "conflict error"
}

@test "fifty concurrent misses load once" {
  local i pids=() failed=0 holder
  # Hold a lock that blocks the load's SELECT, so that all 50 processes miss while the first loads.
  psql -X -q "$DATABASE_URL" -c "BEGIN; LOCK TABLE context_playbooks IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1.5); COMMIT" \
    >/dev/null 3>&- &
  holder=$!
  for i in $(seq 1 50); do
    [[ $(ace_psql "SELECT count(*) FROM pg_locks WHERE relation = 'context_playbooks'::regclass AND mode = 'AccessExclusiveLock' AND granted") == 1 ]] && break
    sleep 0.05
  done

  for i in $(seq 1 50); do
    ace-cache --log-level debug get playbook a1 >"$BATS_TEST_TMPDIR/out.$i" 2>"$BATS_TEST_TMPDIR/err.$i" 3>&- &
    pids+=($!)
  done
  for i in $(seq 1 50); do
    wait "${pids[i - 1]}" || { echo "ace-cache $i failed: $(<"$BATS_TEST_TMPDIR/err.$i")"; failed=1; }
  done
  wait "$holder"
  ((failed == 0))

  expect_equal "$(cat "$BATS_TEST_TMPDIR"/err.* | grep -c 'msg="postgresql load"')" 1 "loads logged by all 50"
  expect_equal "$(stat loads) $(stat misses) $(stat hits)" "1 50 0" "loads, misses and hits"
  expect_equal "$(cat "$BATS_TEST_TMPDIR"/out.* | sort -u | jq -c .version)" 2 "the one answer"
  expect_equal "$(cat "$BATS_TEST_TMPDIR"/out.* | wc -l)" 50 "answers"
}

@test "listen removes a changed playbook" {
  ace-cache listen >"$BATS_TEST_TMPDIR/listen.out" 2>"$BATS_TEST_TMPDIR/listen.err" 3>&- &
  LISTEN_PID=$!
  wait_for_file_text "$BATS_TEST_TMPDIR/listen.err" 'msg="listening for playbook changes"' 5
  ace-cache get playbook a1 >/dev/null
  ace-cache get playbook a2 >/dev/null
  expect_equal "$(rcli exists ace:playbook:a1)" 1 "key before the change"

  ace_psql "UPDATE context_playbooks SET metadata = '{\"edited\":true}' WHERE agent_id = 'a1' AND version = 2"
  wait_for_key_gone ace:playbook:a1 1
  expect_equal "$(rcli exists ace:playbook:a2)" 1 "other agent's key"

  ace-cache get playbook a1 >/dev/null
  ace_psql "INSERT INTO context_playbooks (agent_id, context, version) VALUES ('a1', '{}', 3)"
  wait_for_key_gone ace:playbook:a1 1
  ace-cache get playbook a2 >/dev/null
  ace_psql "DELETE FROM context_playbooks WHERE agent_id = 'a2'"
  wait_for_key_gone ace:playbook:a2 1

  kill -TERM "$LISTEN_PID"
  status=0
  wait "$LISTEN_PID" || status=$?
  LISTEN_PID=
  expect_status 0
  expect_equal "$(xargs <"$BATS_TEST_TMPDIR/listen.out")" "ace:playbook:a1 ace:playbook:a1 ace:playbook:a2" "keys printed"
}

@test "filter stats file feeds prom" {
  local dir=$BATS_TEST_TMPDIR/procstats fifo=$BATS_TEST_TMPDIR/requests.fifo prom=$BATS_TEST_TMPDIR/out.prom
  local pid writer file labels sum
  command -v promtool >/dev/null || skip "promtool is not installed (Debian package prometheus)"
  mkdir "$dir"
  mkfifo "$fifo"
  ACE_STATS_DIR=$dir ace-cache filter <"$fifo" >"$BATS_TEST_TMPDIR/filter.out" 2>"$BATS_TEST_TMPDIR/filter.err" 3>&- &
  pid=$!
  exec {writer}<>"$fifo"
  file=$dir/ace-cache.$pid.json
  wait_for_file "$file" 5

  # Written at once, the three gets share one pipeline and the invalidate runs after them.
  printf '%s\n' '{"op":"get","kind":"playbook","agent_id":"a1"}' \
    '{"op":"get","kind":"baseline","agent_id":"a1","task_type":"refund"}' \
    '{"op":"get","kind":"playbook","agent_id":"nobody"}' \
    '{"op":"invalidate","kind":"playbook","agent_id":"a1"}' >&"$writer"
  wait_for_file_text "$BATS_TEST_TMPDIR/filter.out" '"removed":1' 10
  # The file is replaced once a second, so the counts show up within about a second.
  wait_for_json "$file" '.operations.get.cumulative[-1] == 3 and .operations.invalidate.cumulative[-1] == 1' 5

  ACE_STATS_DIR=$dir run --separate-stderr ace-stats prom
  expect_status 0
  printf '%s\n' "$output" >"$prom"
  labels="program=\"ace-cache\",pid=\"$pid\""
  grep -qxF "ace_cache_operation_duration_bucket{$labels,operation=\"get\",le=\"+Inf\"} 3" "$prom"
  grep -qxF "ace_cache_operation_duration_count{$labels,operation=\"get\"} 3" "$prom"
  grep -qxF "ace_cache_operation_duration_seconds_count{$labels,operation=\"invalidate\"} 1" "$prom"
  grep -qxF "ace_cache_operation_duration_seconds_count{$labels,operation=\"set\"} 0" "$prom"
  sum=$(awk -v key="ace_cache_operation_duration_sum{$labels,operation=\"get\"}" '$1 == key { print $2 }' "$prom")
  awk -v s="$sum" 'BEGIN { exit !(s > 0 && s < 10) }' || { echo "get duration sum '$sum', expected 0 to 10 s"; return 1; }
  grep -qxF "ace_database_pool_size{$labels} 10" "$prom"
  # The misses of playbook a1, baseline a1 refund and playbook nobody each loaded from PostgreSQL.
  grep -qxF "ace_database_pool_checkouts_total{$labels} 3" "$prom"
  run promtool check metrics <"$prom"
  expect_status 0
  run awk -f "$REPO/tests/cli/prom_check.awk" "$prom"
  expect_status 0

  exec {writer}>&-
  status=0
  wait "$pid" || status=$?
  expect_status 0
  [[ ! -e $file ]] || { echo "$file is left after ace-cache exited"; return 1; }
}

@test "listen stats file has pool only" {
  local dir=$BATS_TEST_TMPDIR/procstats file
  mkdir "$dir"
  ACE_STATS_DIR=$dir ace-cache listen >/dev/null 2>"$BATS_TEST_TMPDIR/listen.err" 3>&- &
  LISTEN_PID=$!
  file=$dir/ace-cache.$LISTEN_PID.json
  wait_for_file "$file" 5
  expect_equal "$(jq -c '[.program, .pool.size, .pool.checkouts, .operations]' "$file")" \
    '["ace-cache",10,0,{}]' "figures"

  kill -TERM "$LISTEN_PID"
  status=0
  wait "$LISTEN_PID" || status=$?
  LISTEN_PID=
  expect_status 0
  [[ ! -e $file ]] || { echo "$file is left after ace-cache exited"; return 1; }
}

@test "stats folder unused by one-shot commands" {
  local missing=$BATS_TEST_TMPDIR/missing
  # A folder that does not exist shows whether a writer was started: starting one logs a warning.
  ACE_STATS_DIR=$missing run --separate-stderr ace-cache get playbook a1
  expect_status 0
  expect_equal "$stderr" "" "stderr of get"

  ACE_STATS_DIR=$missing run --separate-stderr ace-cache filter <<<'{"op":"get","kind":"playbook","agent_id":"a2"}'
  expect_status 0
  expect_equal "$(jq -r .status <<<"$output")" ok "filter status"
  [[ $stderr == *'msg="process stats are not written"'*"stats folder '$missing' is not writable"* ]] ||
    { echo "stderr of filter: $stderr"; return 1; }
}

@test "ACL user authenticates" {
  redis-cli -p "$ACE_REDIS_PORT" acl setuser ace-cache-test on '>s3cret pw' '~*' '+@all' >/dev/null

  REDIS_URL=redis://ace-cache-test:s3cret%20pw@127.0.0.1:$ACE_REDIS_PORT/1 run --separate-stderr ace-cache get playbook a1
  expect_status 0
  expect_equal "$stderr" "" "stderr"
  expect_equal "$(rcli exists ace:playbook:a1)" 1 "key written through the ACL user"

  REDIS_URL=redis://ace-cache-test:wrong@127.0.0.1:$ACE_REDIS_PORT/1 run --separate-stderr ace-cache get playbook a2
  redis-cli -p "$ACE_REDIS_PORT" acl deluser ace-cache-test >/dev/null
  expect_status 0
  expect_equal "$(jq -r .context <<<"$output")" "be brief" "answer from postgresql"
  [[ $stderr == *'msg="redis unavailable: serving from postgresql" redis=redis://ace-cache-test:***@127.0.0.1:'*'error="AUTH rejected: WRONGPASS'* ]]
  [[ $stderr != *wrong@* ]]
}

@test "usage errors exit 64" {
  local args
  for args in "get" "get playbook" "get baseline a1" "get recipe a1" "get playbook a1 extra" \
    "set baseline a1" "invalidate" "stats extra" "dance" "--expect-version 1 get playbook a1" \
    "--expect-version x set playbook a1" "--pattern ace:* get playbook a1" "--json warm"; do
    # shellcheck disable=SC2086
    run --separate-stderr ace-cache $args </dev/null
    if [[ $status != 64 ]]; then
      echo "ace-cache $args: expected status 64, got $status; stderr: $stderr"
      return 1
    fi
    [[ $stderr == *"Try 'ace-cache --help' for more information." ]]
  done
  run --separate-stderr ace-cache get playbook $'bad\tagent'
  expect_status 64
  expect_equal "$stderr" "ace-cache: cannot get the playbook of 'bad	agent': agent_id contains a control character" "stderr"
}

@test "invalid settings exit 78" {
  REDIS_URL=rediss://127.0.0.1:1 run --separate-stderr ace-cache get playbook a1
  expect_status 78
  expect_equal "$stderr" "ace-cache: invalid Redis URL: rediss:// (TLS) is not supported by the hiredis that ace uses" "stderr"

  ACE_CACHE_TTL_JITTER_PERCENT=95 run --separate-stderr ace-cache get playbook a1
  expect_status 78
  expect_equal "$stderr" "ace-cache: ACE_CACHE_TTL_JITTER_PERCENT: cache.ttl_jitter_percent: 95 is out of range (0 to 90 percent)" "stderr"
}

@test "missing schema exits 70 with a hint" {
  ace_fresh_db cache_empty

  run --separate-stderr ace-cache get playbook a1
  expect_status 70
  [[ $stderr == "ace-cache: cannot get the playbook of 'a1': postgresql: loading a value: relation \"context_playbooks\" does not exist (SQLSTATE 42P01); run 'ace-migrate up' first" ]]
}

@test "help lists commands and exit statuses" {
  run --separate-stderr ace-cache --help
  expect_status 0
  [[ $output == "Usage: ace-cache [OPTION]... [filter]"* ]]
  [[ $output == *"  2   set: the current version differs from --expect-version"* ]]
  expect_equal "$stderr" "" "stderr"
}

@test "unix socket URL reaches Redis" {
  local socket=$BATS_TEST_TMPDIR/redis.sock
  # A second Redis on a socket only, started and stopped by this test.
  redis-server --port 0 --unixsocket "$socket" --unixsocketperm 700 --save '' --appendonly no \
    --daemonize yes --pidfile "$BATS_TEST_TMPDIR/redis.pid" --logfile "$BATS_TEST_TMPDIR/redis.log" 3>&-
  for _ in $(seq 1 50); do [[ -S $socket ]] && break; sleep 0.05; done

  REDIS_URL="unix://$socket?db=3" run --separate-stderr ace-cache get playbook a2
  local answer
  answer=$(redis-cli -s "$socket" -n 3 get ace:playbook:a2)
  kill "$(<"$BATS_TEST_TMPDIR/redis.pid")"
  expect_status 0
  expect_equal "$stderr" "" "stderr"
  expect_equal "$answer" "$output" "value in database 3 behind the socket"
}

# Polls FILE until it contains TEXT, and fails after SECONDS.
wait_for_file_text() {
  local file=$1 text=$2 seconds=$3 tries
  for ((tries = 0; tries < seconds * 20; tries++)); do
    grep -qF -- "$text" "$file" && return 0
    sleep 0.05
  done
  echo "$file has no '$text' after $seconds s:"
  cat "$file"
  return 1
}

# Polls until FILE exists, and fails after SECONDS.
wait_for_file() {
  local file=$1 seconds=$2 tries
  for ((tries = 0; tries < seconds * 20; tries++)); do
    [[ -e $file ]] && return 0
    sleep 0.05
  done
  echo "$file does not exist after $seconds s"
  return 1
}

# Polls the JSON file FILE until the jq expression EXPR is true, and fails after SECONDS.
wait_for_json() {
  local file=$1 expr=$2 seconds=$3 tries
  for ((tries = 0; tries < seconds * 20; tries++)); do
    jq -e "$expr" "$file" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$file has no '$expr' after $seconds s:"
  cat "$file"
  return 1
}

# Polls Redis until KEY is gone, and fails after SECONDS.
wait_for_key_gone() {
  local key=$1 seconds=$2 tries
  for ((tries = 0; tries < seconds * 50; tries++)); do
    [[ $(rcli exists "$key") == 0 ]] && return 0
    sleep 0.02
  done
  echo "$key still exists $seconds s after the change"
  return 1
}
