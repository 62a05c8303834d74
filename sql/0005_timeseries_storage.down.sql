-- Makes performance_metrics a plain table again and keeps every row. On a hypertable, policies go first, then compression, then the layout.
--
-- The timescaledb extension stays installed, because other objects may use
-- it and dropping it is a decision for the database's owner.
DO $$
DECLARE
    hypertable boolean := false;
    definitions text[];
    constraints text[];
    definition text;
BEGIN
    IF to_regclass('performance_metrics') IS NULL THEN
        RAISE EXCEPTION 'performance_metrics does not exist, so there is nothing to revert';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        SELECT count(*) > 0 INTO hypertable
          FROM timescaledb_information.hypertables
         WHERE format('%I.%I', hypertable_schema, hypertable_name)::regclass
               = 'performance_metrics'::regclass;
    END IF;

    IF hypertable THEN
        -- A policy job could otherwise compress or drop chunks mid-way.
        PERFORM remove_retention_policy('performance_metrics', if_exists => true);
        PERFORM remove_compression_policy('performance_metrics', if_exists => true);
        PERFORM decompress_chunk(c, if_compressed => true)
           FROM show_chunks('performance_metrics') c;
        IF (SELECT compression_enabled FROM timescaledb_information.hypertables
             WHERE format('%I.%I', hypertable_schema, hypertable_name)::regclass
                   = 'performance_metrics'::regclass) THEN
            ALTER TABLE performance_metrics SET (timescaledb.compress = false);
        END IF;
    ELSIF (SELECT relkind FROM pg_class WHERE oid = 'performance_metrics'::regclass) <> 'p' THEN
        RETURN;  -- already a plain table
    END IF;

    -- Both layouts are undone by copying the rows into a new plain table.
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

    CREATE TABLE performance_metrics_plain (
        LIKE performance_metrics INCLUDING DEFAULTS INCLUDING CONSTRAINTS
            INCLUDING STORAGE INCLUDING COMMENTS
    );
    INSERT INTO performance_metrics_plain SELECT * FROM performance_metrics;
    DROP TABLE performance_metrics;
    ALTER TABLE performance_metrics_plain RENAME TO performance_metrics;
    FOREACH definition IN ARRAY coalesce(constraints, '{}') || coalesce(definitions, '{}') LOOP
        EXECUTE definition;
    END LOOP;
END
$$;
