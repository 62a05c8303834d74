-- Makes performance_metrics a TimescaleDB hypertable or a table partitioned by range of recorded_at, keeping every row.
--
-- One file serves both layouts, because a migration's checksum is fixed.
-- Before it runs migrations, ace-migrate copies storage (auto, timescaledb
-- or partitioned) and timeseries.chunk_interval from ace.yaml into the
-- session settings ace.storage and ace.chunk_interval, which this block
-- reads.  Under psql they are unset, and the block takes auto and 1 day.
-- It leaves the layout it chose in ace.storage_path, and the reason in
-- ace.storage_note, for ace-migrate to report.  Compression, policies and
-- the partitions themselves are operational settings, which ace-migrate
-- applies after its migrations ("ace-migrate policies" and "maintain").
DO $$
DECLARE
    mode  text := coalesce(nullif(current_setting('ace.storage', true), ''), 'auto');
    chunk interval := coalesce(nullif(current_setting('ace.chunk_interval', true), ''), '1 day')::interval;
    note  text := '';
    use_timescaledb boolean := false;
    definitions text[];
    constraints text[];
    definition text;
BEGIN
    IF mode NOT IN ('auto', 'timescaledb', 'partitioned') THEN
        RAISE EXCEPTION 'invalid ace.storage ''%''', mode
            USING HINT = 'Expected auto, timescaledb or partitioned.';
    END IF;

    IF mode <> 'partitioned' THEN
        -- Only creating the extension proves that it works:
        -- pg_available_extensions also lists an installed TimescaleDB whose
        -- library is missing from shared_preload_libraries.  The inner block
        -- is a savepoint, so a failure here rolls back nothing else.
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
            use_timescaledb := true;
        EXCEPTION WHEN OTHERS THEN
            IF mode = 'timescaledb' THEN
                RAISE EXCEPTION 'storage is timescaledb, but CREATE EXTENSION timescaledb failed: %', SQLERRM
                    USING HINT = 'Install TimescaleDB and add it to shared_preload_libraries, '
                        'or set storage to auto or partitioned.';
            END IF;
            note := 'CREATE EXTENSION timescaledb failed: ' || SQLERRM;
        END;
    END IF;

    IF use_timescaledb THEN
        -- The primary key (metric_id, recorded_at) already contains the time
        -- column, as TimescaleDB requires of every unique index.  No extra
        -- index on recorded_at is made, so both layouts keep the same indexes.
        PERFORM create_hypertable('performance_metrics', by_range('recorded_at', chunk),
            create_default_indexes => false, migrate_data => true);
        PERFORM set_config('ace.storage_path', 'timescaledb', false);
        PERFORM set_config('ace.storage_note', '', false);
        RETURN;
    END IF;

    -- A plain table cannot become partitioned in place, so the rows move to a
    -- new partitioned table.  Every row lands in the default partition, and
    -- ace-migrate then creates the partitions and moves the rows into them.
    -- Indexes and key constraints are read first and created again under
    -- their own names once the old table is gone.
    SELECT array_agg(pg_get_indexdef(i.indexrelid) ORDER BY c.relname)
      INTO definitions
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = 'performance_metrics'::regclass
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid);
    SELECT array_agg(format('ALTER TABLE performance_metrics ADD CONSTRAINT %I %s',
                            conname, pg_get_constraintdef(oid)) ORDER BY conname)
      INTO constraints
      FROM pg_constraint
     WHERE conrelid = 'performance_metrics'::regclass AND contype IN ('p', 'u');

    CREATE TABLE performance_metrics_partitioned (
        LIKE performance_metrics INCLUDING DEFAULTS INCLUDING CONSTRAINTS
            INCLUDING STORAGE INCLUDING COMMENTS
    ) PARTITION BY RANGE (recorded_at);
    CREATE TABLE performance_metrics_default
        PARTITION OF performance_metrics_partitioned DEFAULT;
    INSERT INTO performance_metrics_partitioned SELECT * FROM performance_metrics;

    -- Dropping the old table first frees the names of its key and indexes,
    -- so the definitions read above apply unchanged to the new table.  A
    -- partitioned table's unique keys must contain recorded_at, as the
    -- primary key (metric_id, recorded_at) does.
    DROP TABLE performance_metrics;
    ALTER TABLE performance_metrics_partitioned RENAME TO performance_metrics;
    FOREACH definition IN ARRAY coalesce(constraints, '{}') || coalesce(definitions, '{}') LOOP
        EXECUTE definition;
    END LOOP;

    PERFORM set_config('ace.storage_path', 'partitioned', false);
    PERFORM set_config('ace.storage_note', note, false);
END
$$;
