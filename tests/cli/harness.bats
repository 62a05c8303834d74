#!/usr/bin/env bats
# Tests scripts/servers and the server helpers in helpers.bash.

load helpers

setup_file() {
  ace_own_servers
}

teardown_file() {
  ace_teardown_servers
}

# Fails unless PORT is bound on 127.0.0.1 alone.
assert_listens_on_loopback_only() {
  local port=$1 listeners
  listeners=$(ss -Htln "sport = :$port" | awk '{ print $4 }')
  echo "listeners on port $port: $listeners"
  [ "$listeners" = "127.0.0.1:$port" ]
}

@test "start exports urls and ports" {
  [ -f "$ACE_SERVERS_DIR/env" ]
  [ "$ACE_SERVERS_DIR" = "$ACE_OWN_SERVERS_DIR" ]
  [ "$DATABASE_URL" = "postgresql://ace@127.0.0.1:$ACE_PG_PORT/ace" ]
  [ "$REDIS_URL" = "redis://127.0.0.1:$ACE_REDIS_PORT/0" ]
  [ "$ACE_PG_PORT" != "$ACE_REDIS_PORT" ]
}

@test "postgres answers psql as ace" {
  run ace_psql "SELECT current_user, current_database(), version() LIKE 'PostgreSQL 15.%'"
  [ "$status" -eq 0 ]
  [ "$output" = "ace|ace|t" ]
}

@test "postgres settings suit the tests" {
  run ace_psql "SHOW max_connections" "SHOW fsync" "SHOW server_encoding" "SHOW listen_addresses"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" -ge 120 ]
  [ "${lines[1]}" = "off" ]
  [ "${lines[2]}" = "UTF8" ]
  [ "${lines[3]}" = "127.0.0.1" ]
}

@test "redis answers PING" {
  run redis-cli -u "$REDIS_URL" ping
  [ "$status" -eq 0 ]
  [ "$output" = "PONG" ]
}

@test "servers listen on loopback only" {
  assert_listens_on_loopback_only "$ACE_PG_PORT"
  assert_listens_on_loopback_only "$ACE_REDIS_PORT"
}

@test "status reports both running" {
  run "$REPO/scripts/servers" status "$ACE_SERVERS_DIR"
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == "postgresql  running  127.0.0.1:$ACE_PG_PORT "* ]]
  [[ ${lines[1]} == "redis       running  127.0.0.1:$ACE_REDIS_PORT "* ]]
}

@test "fresh_db gives empty isolated database" {
  ace_psql "CREATE TABLE IF NOT EXISTS shared_marker (x int)"
  ace_fresh_db "Harness-DB"
  [[ $ACE_DB_NAME == harness_db_* ]]
  [ "$DATABASE_URL" = "postgresql://ace@127.0.0.1:$ACE_PG_PORT/$ACE_DB_NAME" ]
  run ace_psql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
  [ "$status" -eq 0 ]
  [ "$output" = "0" ]
  local first=$ACE_DB_NAME
  ace_fresh_db "Harness-DB"
  [ "$ACE_DB_NAME" != "$first" ]
}

@test "psql helper stops on first error" {
  ace_fresh_db
  run ace_psql "CREATE TABLE t (x int)" "INSERT INTO t VALUES (1), ('nope')" "INSERT INTO t VALUES (2)"
  [ "$status" -ne 0 ]
  [[ $output == *"invalid input syntax"* ]]
  run ace_psql "SELECT count(*) FROM t"
  [ "$output" = "0" ]
}

@test "pg-stop immediate then pg-start keeps data" {
  ace_fresh_db keep
  ace_psql "CREATE TABLE kept (x int)" "INSERT INTO kept VALUES (42)"

  run ace_pg_stop --immediate
  [ "$status" -eq 0 ]
  run ace_psql "SELECT 1"
  [ "$status" -ne 0 ]
  [[ $output == *"Connection refused"* ]]
  run "$REPO/scripts/servers" status "$ACE_SERVERS_DIR"
  [ "$status" -eq 3 ]
  [[ ${lines[0]} == "postgresql  stopped  127.0.0.1:$ACE_PG_PORT"* ]]

  run ace_pg_start
  echo "$output"
  [ "$status" -eq 0 ]
  run ace_psql "SELECT x FROM kept"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = "42" ]
}

@test "pg-stop fast then pg-start keeps port" {
  ace_pg_stop
  run pg_isready -q -h 127.0.0.1 -p "$ACE_PG_PORT"
  [ "$status" -ne 0 ]
  ace_pg_start
  run pg_isready -q -h 127.0.0.1 -p "$ACE_PG_PORT"
  [ "$status" -eq 0 ]
}

@test "pg-start after kill -9 recovers" {
  ace_fresh_db crash
  ace_psql "CREATE TABLE kept (x int)" "INSERT INTO kept VALUES (7)"
  local pid
  read -r pid <"$(sed -n 's/^PG_DATA=//p' "$ACE_SERVERS_DIR/state")/postmaster.pid"
  kill -KILL "$pid"

  run ace_pg_start
  echo "$output"
  [ "$status" -eq 0 ]
  run ace_psql "SELECT x FROM kept"
  echo "$output"
  [ "$output" = "7" ]
}

@test "redis-stop then redis-start keeps port" {
  ace_redis_stop
  run redis-cli -u "$REDIS_URL" ping
  [[ $output == *"Connection refused"* ]]
  ace_redis_start
  run redis-cli -u "$REDIS_URL" ping
  [ "$output" = "PONG" ]
}

@test "pg-start on taken port fails clearly" {
  ace_pg_stop
  # Holds the port the way another program would, until the test kills it.
  redis-server --bind 127.0.0.1 --port "$ACE_PG_PORT" --save "" --appendonly no \
    --daemonize yes --pidfile "$BATS_TEST_TMPDIR/squatter.pid" --logfile "$BATS_TEST_TMPDIR/squatter.log" 3>&-
  local squatter
  for _ in $(seq 50); do
    [ -s "$BATS_TEST_TMPDIR/squatter.pid" ] && break
    sleep 0.1
  done
  read -r squatter <"$BATS_TEST_TMPDIR/squatter.pid"

  run ace_pg_start
  kill "$squatter"
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"port $ACE_PG_PORT is now taken by another process"* ]]

  for _ in $(seq 50); do
    [ -z "$(ss -Htln "sport = :$ACE_PG_PORT")" ] && break
    sleep 0.1
  done
  ace_pg_start
}

@test "private-server helpers refuse shared servers" {
  run env -u ACE_OWN_SERVERS_DIR bash -c 'source "$REPO/tests/cli/helpers.bash"; ace_pg_stop'
  [ "$status" -ne 0 ]
  [[ $output == *"ace_pg_stop needs private servers"* ]]
}

@test "start refuses a non-empty directory" {
  local dir=$BATS_TEST_TMPDIR/busy
  mkdir "$dir"
  touch "$dir/file"
  run "$REPO/scripts/servers" start "$dir"
  [ "$status" -ne 0 ]
  [[ $output == *"is not empty"* ]]
  [ -f "$dir/file" ]
}

@test "durable start, then stop removes dir" {
  local dir=$BATS_TEST_TMPDIR/servers env_lines pg_port redis_port rundir
  env_lines=$("$REPO/scripts/servers" start "$dir")
  pg_port=$(sed -n 's/^export ACE_PG_PORT=//p' <<<"$env_lines")
  redis_port=$(sed -n 's/^export ACE_REDIS_PORT=//p' <<<"$env_lines")
  rundir=$(sed -n 's/^RUNDIR=//p' "$dir/state")
  [ -n "$pg_port" ]
  [ -n "$redis_port" ]
  [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping)" = "PONG" ]
  [ "$(psql -X -A -t -c "SHOW fsync" "postgresql://ace@127.0.0.1:$pg_port/ace")" = "on" ]

  run "$REPO/scripts/servers" stop "$dir"
  [ "$status" -eq 0 ]
  [ ! -e "$dir" ]
  [ ! -e "$rundir" ]
  [ -z "$(ss -Htln "sport = :$pg_port")" ]
  [ -z "$(ss -Htln "sport = :$redis_port")" ]

  run "$REPO/scripts/servers" stop "$dir"
  [ "$status" -eq 0 ]
}
