-- The counters' trigger built its statement as text and ran it with EXECUTE, so PostgreSQL parsed and planned it
-- again for every statement that changed periods: 0.2 ms of the 0.7 ms a one-row period update took (pgbench,
-- 1,350 against 1,840 updates/s with the same statement written out), paid by every report submitted. Written out,
-- each statement is planned once per connection.
DROP TRIGGER compliance_counts_insert ON periods;
DROP TRIGGER compliance_counts_update ON periods;
DROP TRIGGER compliance_counts_delete ON periods;
DROP FUNCTION compliance_counts_apply();

-- Adds the rows an INSERT wrote (direction 1) or subtracts the rows a DELETE removed (direction -1), per counter,
-- in the shard of the connection; both triggers name their transition table changed_rows.
CREATE FUNCTION compliance_counts_add_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    direction int := TG_ARGV[0]::int;
BEGIN
    INSERT INTO compliance_counts AS c (regency_code, deadline, status, shard, province_code, periods, warnings)
    SELECT regency_code, deadline, status, pg_backend_pid() % 16, min(province_code), direction * count(*),
           direction * count(warning_id)
    FROM changed_rows
    WHERE status IN ('submitted', 'late', 'overdue', 'excused')
    GROUP BY regency_code, deadline, status
    ORDER BY regency_code, deadline, status
    ON CONFLICT (regency_code, deadline, status, shard) DO UPDATE
        SET periods = c.periods + EXCLUDED.periods, warnings = c.warnings + EXCLUDED.warnings;
    RETURN NULL;
END $$;

-- An UPDATE: the rows it wrote, less the rows they replaced.
CREATE FUNCTION compliance_counts_replace() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO compliance_counts AS c (regency_code, deadline, status, shard, province_code, periods, warnings)
    SELECT regency_code, deadline, status, pg_backend_pid() % 16, min(province_code), sum(sign),
           coalesce(sum(sign) FILTER (WHERE warning_id IS NOT NULL), 0)
    FROM (SELECT regency_code, deadline, status, province_code, warning_id, 1 AS sign FROM new_rows
          UNION ALL
          SELECT regency_code, deadline, status, province_code, warning_id, -1 FROM old_rows) AS changed
    WHERE status IN ('submitted', 'late', 'overdue', 'excused')
    GROUP BY regency_code, deadline, status
    HAVING sum(sign) <> 0 OR coalesce(sum(sign) FILTER (WHERE warning_id IS NOT NULL), 0) <> 0
    ORDER BY regency_code, deadline, status
    ON CONFLICT (regency_code, deadline, status, shard) DO UPDATE
        SET periods = c.periods + EXCLUDED.periods, warnings = c.warnings + EXCLUDED.warnings;
    RETURN NULL;
END $$;

CREATE TRIGGER compliance_counts_insert AFTER INSERT ON periods REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_counts_add_rows('1');
CREATE TRIGGER compliance_counts_update AFTER UPDATE ON periods REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_counts_replace();
CREATE TRIGGER compliance_counts_delete AFTER DELETE ON periods REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_counts_add_rows('-1');
