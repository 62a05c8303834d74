# Sourced by the storage bats files (load storage_helpers): test rows, assertions on output lines, and the PGlite server of the TimescaleDB tests.

# The key and indexes of performance_metrics, which every layout keeps.
METRIC_INDEXES="performance_metrics_agent_stage_time_idx performance_metrics_pkey performance_metrics_task_idx performance_metrics_type_time_idx"

# Prints the indexes of performance_metrics, space-separated and sorted.
metric_indexes() {
  ace_psql "SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_index i
              JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = 'performance_metrics'::regclass"
}

# Inserts COUNT rows on the UTC day DAYS days from today (negative: in the past), a minute apart after midnight.
insert_metrics() {
  local days=$1 count=$2
  ace_psql "INSERT INTO performance_metrics (metric_id, recorded_at, agent_id, task_id, stage)
            SELECT gen_random_uuid(),
                   (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
                     + interval '$days days' + g * interval '1 minute',
                   'agent-' || g % 3, 'task-' || g, 'execution'
              FROM generate_series(1, $count) g" >/dev/null
}

# Prints the partition name of the UTC day DAYS days from today.
day_partition() {
  echo "performance_metrics_p$(date -u -d "$1 days" +%Y%m%d)"
}

# Prints the start of the UTC day DAYS days from today as ace-migrate writes times.
day_start() {
  echo "$(date -u -d "$1 days" +%Y-%m-%d) 00:00:00+00"
}

# Prints how many applied migrations "down" must revert to revert 0005_timeseries_storage too.
steps_to_revert_storage() {
  ace_psql "SELECT count(*) FROM ace_schema_migrations WHERE version >= 5"
}

# Fails unless a line of the last run's stdout contains TEXT; prints stdout on failure.
expect_line() {
  local line
  for line in "${lines[@]}"; do
    [[ $line == *"$1"* ]] && return 0
  done
  echo "no stdout line contains '$1'; stdout:"
  echo "$output"
  return 1
}

# Fails unless a line of the last run's stdout is exactly LINE.
expect_line_equal() {
  local line
  for line in "${lines[@]}"; do
    [[ $line == "$1" ]] && return 0
  done
  echo "no stdout line is '$1'; stdout:"
  echo "$output"
  return 1
}

# --- PGlite ------------------------------------------------------------------

# Starts PGlite for this file with scripts/pglite and exports ACE_PGLITE_URL and
# ACE_PGLITE_DIR. When npm cannot install the packages, it records the reason
# in ACE_PGLITE_SKIP for pglite_require to skip with. Call it in setup_file.
pglite_start() {
  local dir env_lines status=0
  dir=$(mktemp -d "${BATS_FILE_TMPDIR:-${TMPDIR:-/tmp}}/pglite.XXXXXX") || return 1
  env_lines=$("$REPO/scripts/pglite" start "$dir" 2>"$dir.log") || status=$?
  case $status in
    0)
      eval "$env_lines"
      export ACE_PGLITE_URL ACE_PGLITE_DIR=$dir
      ;;
    3 | 4)
      export ACE_PGLITE_SKIP="PGlite with TimescaleDB is not available: $(tail -n 1 "$dir.log")"
      ;;
    *)
      cat "$dir.log" >&2
      return 1
      ;;
  esac
}

# Stops the PGlite of pglite_start. Call it in teardown_file.
pglite_stop() {
  [[ -n ${ACE_PGLITE_DIR:-} ]] || return 0
  "$REPO/scripts/pglite" stop "$ACE_PGLITE_DIR"
}

# Skips the test when pglite_start found no PGlite, else points DATABASE_URL at it.
pglite_require() {
  if [[ -n ${ACE_PGLITE_SKIP:-} ]]; then
    skip "$ACE_PGLITE_SKIP"
  fi
  export DATABASE_URL=$ACE_PGLITE_URL
}

# Drops the tables, views, functions and types of the public schema that are
# not TimescaleDB's, because PGlite has one database and dropping the
# extension needs a new server.
pglite_reset() {
  ace_psql "DO \$\$
    DECLARE statement text;
    BEGIN
      FOR statement IN
        SELECT format('DROP %s IF EXISTS %s CASCADE',
                      CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                     WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT c.relispartition
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
        UNION ALL
        SELECT format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure)
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
        UNION ALL
        SELECT format('DROP TYPE IF EXISTS %s CASCADE', t.oid::regtype)
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'public' AND t.typtype IN ('e', 'c', 'd') AND t.typrelid = 0
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
      LOOP
        EXECUTE statement;
      END LOOP;
    END \$\$" >/dev/null
}
