# Sourced by every bats file in tests/cli (load helpers): puts the ace binaries on PATH and provides servers and databases.
#
# A file that only needs a database calls ace_setup_servers in setup_file,
# ace_teardown_servers in teardown_file and ace_fresh_db in setup. A file that
# stops or restarts a server calls ace_own_servers instead of ace_setup_servers.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# scripts/check sets ACE_BIN to build-asan/bin for the sanitizer pass.
ACE_BIN=${ACE_BIN:-$REPO/build/bin}
case ":$PATH:" in
  *":$ACE_BIN:"*) ;;
  *) PATH=$ACE_BIN:$PATH ;;
esac
export REPO ACE_BIN PATH
ACE_SERVERS_SCRIPT=$REPO/scripts/servers

# Starts servers in a new directory under BATS_FILE_TMPDIR, exports the
# variables of DIR/env and records the directory in ACE_SERVERS_OWNED for
# ace_teardown_servers.
ace__start_servers() {
  local parent=${BATS_FILE_TMPDIR:-${TMPDIR:-/tmp}} dir env_lines
  dir=$(mktemp -d "$parent/servers.XXXXXX") || return 1
  if ! env_lines=$("$ACE_SERVERS_SCRIPT" start --fast "$dir"); then
    echo "helpers: scripts/servers start failed; its messages are above" >&2
    "$ACE_SERVERS_SCRIPT" stop "$dir" >/dev/null 2>&1 || rm -rf -- "$dir"
    return 1
  fi
  eval "$env_lines"
  export ACE_SERVERS_OWNED=$dir
}

# Uses the shared servers that scripts/check started (ACE_SERVERS_DIR,
# DATABASE_URL and REDIS_URL set), else starts servers for this file.
# Call it in setup_file.
ace_setup_servers() {
  if [[ -n ${ACE_SERVERS_OWNED:-} ]]; then
    return 0
  fi
  if [[ -n ${ACE_SERVERS_DIR:-} && -n ${DATABASE_URL:-} && -n ${REDIS_URL:-} ]]; then
    if ! pg_isready -q -t 5 -d "$DATABASE_URL"; then
      echo "helpers: PostgreSQL at $DATABASE_URL (servers in $ACE_SERVERS_DIR) does not accept connections; see scripts/servers status $ACE_SERVERS_DIR" >&2
      return 1
    fi
    if [[ $(redis-cli -u "$REDIS_URL" ping 2>&1) != PONG ]]; then
      echo "helpers: Redis at $REDIS_URL (servers in $ACE_SERVERS_DIR) does not answer PING; see scripts/servers status $ACE_SERVERS_DIR" >&2
      return 1
    fi
    return 0
  fi
  ace__start_servers
}

# Starts private servers for this file, even when shared ones exist, so its
# tests may stop and restart them with ace_pg_stop and the like. Call it in
# setup_file.
ace_own_servers() {
  if [[ -n ${ACE_OWN_SERVERS_DIR:-} ]]; then
    return 0
  fi
  ace__start_servers || return 1
  export ACE_OWN_SERVERS_DIR=$ACE_SERVERS_OWNED
}

# Stops the servers that ace_setup_servers or ace_own_servers started for this
# file, and leaves shared ones running. Call it in teardown_file.
ace_teardown_servers() {
  [[ -n ${ACE_SERVERS_OWNED:-} ]] || return 0
  "$ACE_SERVERS_SCRIPT" stop "$ACE_SERVERS_OWNED"
  unset ACE_SERVERS_OWNED ACE_OWN_SERVERS_DIR
}

# Runs a scripts/servers command on the private servers of ace_own_servers, so
# that no test stops the servers that other files share.
ace__servers_command() {
  if [[ -z ${ACE_OWN_SERVERS_DIR:-} ]]; then
    echo "helpers: ${FUNCNAME[1]} needs private servers; call ace_own_servers in setup_file" >&2
    return 1
  fi
  "$ACE_SERVERS_SCRIPT" "$@" "$ACE_OWN_SERVERS_DIR"
}

# Stops PostgreSQL, keeping its data and port. --immediate stops it as a crash would.
ace_pg_stop() {
  ace__servers_command pg-stop "$@"
}

ace_pg_start() {
  ace__servers_command pg-start
}

ace_redis_stop() {
  ace__servers_command redis-stop
}

# Starts Redis again on the same port, with no data.
ace_redis_start() {
  ace__servers_command redis-start
}

# Creates an empty database named PREFIX_<test number>_<pid>_<random> (PREFIX
# defaults to "test") and exports DATABASE_URL pointing at it and ACE_DB_NAME.
ace_fresh_db() {
  local prefix=${1:-test} name error attempt
  if [[ -z ${ACE_PG_PORT:-} ]]; then
    echo "helpers: ace_fresh_db needs servers; call ace_setup_servers or ace_own_servers in setup_file" >&2
    return 1
  fi
  # Keep names plain identifiers within PostgreSQL's limit of 63 bytes.
  prefix=${prefix,,}
  prefix=${prefix//[^a-z0-9_]/_}
  prefix=${prefix:0:32}
  for attempt in 1 2 3; do
    name=${prefix}_${BATS_TEST_NUMBER:-0}_$$_$RANDOM
    if error=$(psql -X -q -v ON_ERROR_STOP=1 "postgresql://ace@127.0.0.1:$ACE_PG_PORT/ace" \
        -c "CREATE DATABASE \"$name\"" 2>&1); then
      export ACE_DB_NAME=$name
      export DATABASE_URL=postgresql://ace@127.0.0.1:$ACE_PG_PORT/$name
      return 0
    fi
    # A name drawn twice is the only failure worth another try.
    [[ $error == *"already exists"* ]] || break
  done
  echo "helpers: could not create database $name: $error" >&2
  return 1
}

# Runs each argument as one SQL command on DATABASE_URL and prints the rows unaligned, without headers.
ace_psql() {
  local args=() sql
  for sql in "$@"; do
    args+=(-c "$sql")
  done
  psql -X -A -t -q -v ON_ERROR_STOP=1 "$DATABASE_URL" "${args[@]}"
}

# Assertions shared by the CLI tests; each prints what differed and fails.

count_rows() {
  ace_psql "SELECT count(*) FROM performance_metrics"
}

# Fails, printing stdout and stderr of the last run, unless its status is EXPECTED.
expect_status() {
  if [[ $status != "$1" ]]; then
    echo "expected status $1, got $status"
    echo "stdout: $output"
    echo "stderr: ${stderr:-}"
    return 1
  fi
}

# Fails unless ACTUAL equals EXPECTED, naming WHAT was compared.
expect_equal() {
  if [[ $1 != "$2" ]]; then
    echo "$3: expected '$2', got '$1'"
    return 1
  fi
}

# Fails unless the last stderr line of the run is the summary with COUNTS
# ("read 3, written 3, duplicates 0, rejected 0, unwritten 0, batches 1").
expect_summary() {
  local counts=$1 last=${stderr_lines[${#stderr_lines[@]} - 1]:-}
  if [[ ! $last =~ ^ace-ingest:\ $counts,\ [0-9]+\.[0-9]{3}\ s,\ [0-9]+\ records/s$ ]]; then
    echo "expected the summary 'ace-ingest: $counts, <seconds> s, <rate> records/s'"
    echo "last stderr line: $last"
    return 1
  fi
}
