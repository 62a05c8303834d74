#!/usr/bin/env bats
# Tests ace-migrate against a real PostgreSQL: up, down, status, dry runs, drift, new, failures, locking and --wait.

bats_require_minimum_version 1.5.0

load helpers

setup_file() {
  ace_setup_servers
}

teardown_file() {
  ace_teardown_servers
}

setup() {
  ace_fresh_db migrate
}

# Prints the tables of the public schema, partitions left out, space-separated and sorted.
public_tables() {
  ace_psql "SELECT coalesce(string_agg(c.relname, ' ' ORDER BY c.relname), '') FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
}

# Prints the versions in the history table, space-separated.
history_versions() {
  ace_psql "SELECT coalesce(string_agg(version::text, ' ' ORDER BY version), '') FROM ace_schema_migrations"
}

# Prints "version state" per migration from the last run's status output.
status_states() {
  awk 'NR > 1 { print $1, $3 }' <<<"$output"
}

# Copies the built-in migrations to a new folder and sets MIGRATIONS to it.
# Copies the first three built-in migrations into a folder for --dir, so that
# the tests below keep their version numbers when more migrations are built in.
copy_migrations() {
  MIGRATIONS=$BATS_TEST_TMPDIR/sql
  mkdir "$MIGRATIONS"
  cp "$REPO"/sql/000[123]_*.sql "$MIGRATIONS"/
}

# Prints the version that new gives: one above the highest built-in migration.
next_builtin_version() {
  local last
  last=$(ls "$REPO"/sql/*.up.sql | sed 's|.*/||; s|_.*||' | sort -n | tail -n 1)
  printf '%04d\n' $((10#$last + 1))
}

# Prints the first 12 hex digits of the SHA-256 of FILE, as drift messages show checksums.
short_checksum() {
  sha256sum "$1" | cut -c1-12
}

ALL_TABLES="ace_schema_migrations context_playbooks performance_baselines performance_metrics"

# The built-in migrations ("0001_performance_metrics", ...), read from the
# files that make compiles in, and their versions ("1 2 3 ...").
mapfile -t BUILTIN < <(cd "$REPO/sql" && ls -- *.up.sql | sed 's/\.up\.sql$//' | sort)
BUILTIN_VERSIONS=$(printf '%s\n' "${BUILTIN[@]}" | sed 's/_.*//; s/^0*//' | xargs)

# Prints "NNNN STATE" for every built-in migration.
builtin_states() {
  printf '%s\n' "${BUILTIN[@]}" | sed "s/_.*/ $1/"
}

@test "up creates tables and history" {
  local i
  run --separate-stderr ace-migrate up
  expect_status 0
  for i in "${!BUILTIN[@]}"; do
    [[ ${lines[i]} =~ ^applied\ ${BUILTIN[i]}\ \([0-9]+\.[0-9]\ ms\)$ ]]
  done
  # The storage step follows the migrations; storage_partitioned.bats tests its lines.
  [[ ${lines[${#BUILTIN[@]}]} == "storage: partitioned, because "* ]]
  expect_equal "$stderr" "" "stderr"

  expect_equal "$(public_tables)" "$ALL_TABLES" "tables"
  expect_equal "$(history_versions)" "$BUILTIN_VERSIONS" "history"
}

@test "second up is already up to date" {
  ace-migrate up >/dev/null

  run --separate-stderr ace-migrate up
  expect_status 0
  expect_equal "$output" "already up to date" "stdout"
  expect_equal "$(history_versions)" "$BUILTIN_VERSIONS" "history"
}

@test "status lists applied migrations" {
  ace-migrate up >/dev/null

  run --separate-stderr ace-migrate status
  expect_status 0
  [[ ${lines[0]} =~ ^version\ +name\ +state\ +applied_at\ +duration_ms$ ]]
  expect_equal "$(status_states)" "$(builtin_states applied)" "states"
  [[ ${lines[1]} =~ ^0001\ +performance_metrics\ +applied\ +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\ +[0-9]+\.[0-9]$ ]]
}

@test "down reverts newest first" {
  local above=$((${#BUILTIN[@]} - 3)) i
  ace-migrate up >/dev/null

  run --separate-stderr ace-migrate down
  expect_status 0
  [[ $output =~ ^reverted\ ${BUILTIN[-1]}\ \([0-9]+\.[0-9]\ ms\)$ ]]
  ace-migrate up >/dev/null

  # Down to 0003, whose tables are the last ones created.
  run --separate-stderr ace-migrate down "$above"
  expect_status 0
  expect_equal "${#lines[@]}" "$above" "stdout lines of down $above"
  for ((i = 0; i < above; i++)); do
    [[ ${lines[i]} == "reverted ${BUILTIN[-1 - i]} ("* ]]
  done
  expect_equal "$(public_tables)" "$ALL_TABLES" "tables after down"
  expect_equal "$(history_versions)" "1 2 3" "history after down"

  run --separate-stderr ace-migrate down 2
  expect_status 0
  expect_equal "${#lines[@]}" 2 "stdout lines of down 2"
  [[ ${lines[0]} == "reverted 0003_performance_baselines ("* ]]
  [[ ${lines[1]} == "reverted 0002_context_playbooks ("* ]]
  expect_equal "$(public_tables)" "ace_schema_migrations performance_metrics" "tables after down 2"

  run --separate-stderr ace-migrate status
  expect_status 0
  expect_equal "$(status_states)" "0001 applied"$'\n'"$(builtin_states pending | tail -n +2)" "states after down 2"

  run --separate-stderr ace-migrate up
  expect_status 0
  expect_equal "$(grep -c '^applied ' <<<"$output")" $((${#BUILTIN[@]} - 1)) "applied lines of the second up"
  expect_equal "$(public_tables)" "$ALL_TABLES" "tables after the second up"
}

@test "down with nothing applied" {
  run --separate-stderr ace-migrate down
  expect_status 0
  expect_equal "$output" "nothing to revert" "stdout"
}

@test "dry-run up prints SQL, creates no table" {
  run --separate-stderr ace-migrate --dry-run up
  expect_status 0
  [[ $output == "-- up 0001_performance_metrics"$'\n'"$(<"$REPO/sql/0001_performance_metrics.up.sql")"* ]]
  [[ $output == *"-- up 0003_performance_baselines"$'\n'* ]]
  [[ $output != *"applied "* ]]

  expect_equal "$(public_tables | tr ' ' '\n' | grep -v '^ace_schema_migrations$' | xargs)" "" "tables besides the history table"
}

@test "dry-run up leaves database untouched" {
  run --separate-stderr ace-migrate --dry-run up
  expect_status 0

  # "Change nothing" includes the history table, which a real up creates first.
  expect_equal "$(public_tables)" "" "tables"
}

@test "dry-run down prints SQL, drops nothing" {
  ace-migrate up >/dev/null

  run --separate-stderr ace-migrate --dry-run down
  expect_status 0
  expect_equal "$output" "-- down ${BUILTIN[-1]}"$'\n'"$(<"$REPO/sql/${BUILTIN[-1]}.down.sql")" "stdout"
  expect_equal "$(public_tables)" "$ALL_TABLES" "tables"
  expect_equal "$(history_versions)" "$BUILTIN_VERSIONS" "history"
}

@test "changed applied file is drift" {
  local old new
  copy_migrations
  ace-migrate --dir "$MIGRATIONS" up >/dev/null
  old=$(short_checksum "$MIGRATIONS/0002_context_playbooks.up.sql")
  echo "-- An edit after the migration was applied." >>"$MIGRATIONS/0002_context_playbooks.up.sql"
  new=$(short_checksum "$MIGRATIONS/0002_context_playbooks.up.sql")
  echo 'CREATE TABLE later (x int);' >"$MIGRATIONS/0004_later.up.sql"

  run --separate-stderr ace-migrate --dir "$MIGRATIONS" up
  expect_status 65
  expect_equal "$stderr" "ace-migrate: migration 0002_context_playbooks changed after it was applied (checksum $old applied, $new in the file); restore the file, or pass --allow-drift" "stderr"
  expect_equal "$(history_versions)" "1 2 3" "history"

  run --separate-stderr ace-migrate --dir "$MIGRATIONS" status
  expect_status 65
  expect_equal "$(status_states)" $'0001 applied\n0002 drift\n0003 applied\n0004 pending' "states"
}

@test "allow-drift applies pending ones" {
  copy_migrations
  ace-migrate --dir "$MIGRATIONS" up >/dev/null
  echo "-- An edit after the migration was applied." >>"$MIGRATIONS/0002_context_playbooks.up.sql"
  echo 'CREATE TABLE later (x int);' >"$MIGRATIONS/0004_later.up.sql"

  run --separate-stderr ace-migrate --dir "$MIGRATIONS" --allow-drift up
  expect_status 0
  [[ $output == "applied 0004_later ("* ]]
  expect_equal "$(history_versions)" "1 2 3 4" "history"
}

@test "applied migration without file is missing" {
  copy_migrations
  ace-migrate --dir "$MIGRATIONS" up >/dev/null
  rm "$MIGRATIONS"/0003_*

  run --separate-stderr ace-migrate --dir "$MIGRATIONS" up
  expect_status 65
  expect_equal "$stderr" "ace-migrate: migration 0003_performance_baselines is applied but has no file; use the matching ace-migrate or --dir, or pass --allow-drift" "stderr"

  run --separate-stderr ace-migrate --dir "$MIGRATIONS" status
  expect_status 65
  expect_equal "$(status_states)" $'0001 applied\n0002 applied\n0003 missing' "states"
}

@test "new creates next numbered pair" {
  copy_migrations

  local next
  next=$(next_builtin_version)

  run --separate-stderr ace-migrate --dir "$MIGRATIONS" new add_agent_index
  expect_status 0
  expect_equal "$output" "$MIGRATIONS/${next}_add_agent_index.up.sql"$'\n'"$MIGRATIONS/${next}_add_agent_index.down.sql" "stdout"
  [ -f "$MIGRATIONS/${next}_add_agent_index.up.sql" ]
  [ -f "$MIGRATIONS/${next}_add_agent_index.down.sql" ]

  # An empty or missing folder also numbers above the built-in migrations.
  run --separate-stderr ace-migrate --dir "$BATS_TEST_TMPDIR/new-folder" new first
  expect_status 0
  [ -f "$BATS_TEST_TMPDIR/new-folder/${next}_first.up.sql" ]
  [ -f "$BATS_TEST_TMPDIR/new-folder/${next}_first.down.sql" ]

  run --separate-stderr ace-migrate --dir "$MIGRATIONS" new add_agent_index
  expect_status 64
  [[ $stderr == "ace-migrate: a migration named 'add_agent_index' exists already: "* ]]
}

@test "new pair applies and reverts" {
  copy_migrations
  ace-migrate --dir "$MIGRATIONS" new empty_step >/dev/null

  # The files that new writes hold only comments, so they run as they are.
  run --separate-stderr ace-migrate --dir "$MIGRATIONS" up
  expect_status 0
  expect_equal "$(history_versions)" "1 2 3 $((10#$(next_builtin_version)))" "history after up"

  run --separate-stderr ace-migrate --dir "$MIGRATIONS" down
  expect_status 0
  expect_equal "$(history_versions)" "1 2 3" "history after down"
}

@test "new rejects invalid name" {
  local name
  for name in Add-Index "with space" ""; do
    run --separate-stderr ace-migrate --dir "$BATS_TEST_TMPDIR" new "$name"
    expect_status 64
  done
  run --separate-stderr ace-migrate --dir "$BATS_TEST_TMPDIR" new Add-Index
  expect_equal "$stderr" "ace-migrate: invalid migration name 'Add-Index' (use lower-case letters, digits and _)" "stderr"
  expect_equal "$(find "$BATS_TEST_TMPDIR" -name '*.sql' | wc -l)" 0 "files created"
}

@test "failing migration exits 70" {
  copy_migrations
  echo 'CREATE TABLE good_step (x int);' >"$MIGRATIONS/0004_good_step.up.sql"
  printf 'CREATE TABLE half_done (x int);\nCREATE TABLE broken (x int;\n' >"$MIGRATIONS/0005_broken.up.sql"
  echo 'CREATE TABLE after_broken (x int);' >"$MIGRATIONS/0006_after_broken.up.sql"

  run --separate-stderr ace-migrate --dir "$MIGRATIONS" up
  expect_status 70
  expect_equal "$stderr" 'ace-migrate: migration 0005_broken up failed: syntax error at or near ";" (SQLSTATE 42601)' "stderr"
  expect_equal "${#lines[@]}" 4 "applied lines"
  [[ ${lines[3]} == "applied 0004_good_step ("* ]]

  expect_equal "$(history_versions)" "1 2 3 4" "history"
  # The first statement of 0005 ran in the same transaction, so it was rolled back.
  expect_equal "$(public_tables)" "ace_schema_migrations context_playbooks good_step performance_baselines performance_metrics" "tables"
}

@test "no-transaction migration builds index concurrently" {
  copy_migrations
  printf -- '-- ace:no-transaction\nCREATE INDEX CONCURRENTLY pm_cost_idx ON performance_metrics ((attributes->>%s));\n' "'cost'" \
    >"$MIGRATIONS/0004_cost_index.up.sql"
  printf -- '-- ace:no-transaction\nDROP INDEX CONCURRENTLY pm_cost_idx;\n' >"$MIGRATIONS/0004_cost_index.down.sql"

  run --separate-stderr ace-migrate --dir "$MIGRATIONS" up
  expect_status 0
  [[ ${lines[3]} == "applied 0004_cost_index ("* ]]
  expect_equal "$(ace_psql "SELECT indisvalid FROM pg_index WHERE indexrelid = 'pm_cost_idx'::regclass")" t "index valid"
  expect_equal "$(history_versions)" "1 2 3 4" "history"

  run --separate-stderr ace-migrate --dir "$MIGRATIONS" --dry-run down
  expect_status 0
  [[ ${lines[0]} == "-- down 0004_cost_index (no transaction)" ]]

  run --separate-stderr ace-migrate --dir "$MIGRATIONS" down
  expect_status 0
  expect_equal "$(ace_psql "SELECT count(*) FROM pg_class WHERE relname = 'pm_cost_idx'")" 0 "index after down"
}

@test "five concurrent ups apply once" {
  local pids=() i failed=0 run_status applied
  for i in 1 2 3 4 5; do
    ace-migrate up >"$BATS_TEST_TMPDIR/out.$i" 2>"$BATS_TEST_TMPDIR/err.$i" 3>&- &
    pids+=($!)
  done
  for i in 1 2 3 4 5; do
    run_status=0
    wait "${pids[i - 1]}" || run_status=$?
    if ((run_status != 0)); then
      echo "ace-migrate $i exited with $run_status; stderr: $(<"$BATS_TEST_TMPDIR/err.$i")"
      failed=1
    fi
  done
  ((failed == 0))

  expect_equal "$(ace_psql "SELECT count(*), count(DISTINCT version) FROM ace_schema_migrations")" "${#BUILTIN[@]}|${#BUILTIN[@]}" "history rows"
  expect_equal "$(public_tables)" "$ALL_TABLES" "tables"
  applied=$(cat "$BATS_TEST_TMPDIR"/out.* | grep -c '^applied ')
  expect_equal "$applied" "${#BUILTIN[@]}" "applied lines across all runs"
}

@test "wait gives up after its timeout" {
  local started elapsed_ms
  started=${EPOCHREALTIME/./}
  run --separate-stderr ace-migrate --wait=3 -d postgresql://ace@127.0.0.1:1/x up
  elapsed_ms=$(((${EPOCHREALTIME/./} - started) / 1000))
  expect_status 69
  expect_equal "$stderr" "ace-migrate: cannot connect to 'postgresql://ace@127.0.0.1:1/x': server not reachable after 3 s" "stderr"
  if ((elapsed_ms < 2800 || elapsed_ms > 6000)); then
    echo "expected about 3 s of waiting, took $elapsed_ms ms"
    return 1
  fi
}

@test "closed port without wait fails fast" {
  local started elapsed_ms
  started=${EPOCHREALTIME/./}
  run --separate-stderr ace-migrate -d postgresql://ace@127.0.0.1:1/x up
  elapsed_ms=$(((${EPOCHREALTIME/./} - started) / 1000))
  expect_status 69
  [[ $stderr == "ace-migrate: cannot connect to 'postgresql://ace@127.0.0.1:1/x': "*"Connection refused"* ]]
  if ((elapsed_ms > 2000)); then
    echo "expected a failure within 2 s, took $elapsed_ms ms"
    return 1
  fi
}

@test "unknown command exits 64" {
  run --separate-stderr ace-migrate sideways
  expect_status 64
  expect_equal "${stderr_lines[0]}" "ace-migrate: unknown command 'sideways' (expected up, down, status, new, policies, verify or maintain)" "first stderr line"
}
