-- Every plant of a regency shares its weekly deadline, so every report of a regency's week updated the same
-- counter row, whose lock each submission held until its commit was on disk: submissions to one regency ran one
-- at a time (`make bench`, report ingestion: 92 requests/s with 6 of 20 connections waiting on that row).
-- Each counter is now split over 16 rows; a transaction adds to the row of its connection's shard, and readers
-- sum every row of a counter, as they already did over regencies and deadlines. A transaction still locks its
-- counters in key order in one statement, all in one shard, so two transactions cannot deadlock on them.
ALTER TABLE compliance_counts ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE compliance_counts DROP CONSTRAINT compliance_counts_pkey;
ALTER TABLE compliance_counts ADD PRIMARY KEY (regency_code, deadline, status, shard);

CREATE OR REPLACE FUNCTION compliance_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT *, 1 AS sign FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT *, -1 AS sign FROM old_rows'
        ELSE 'SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 FROM old_rows' END;
BEGIN
    EXECUTE format($sql$
        INSERT INTO compliance_counts AS c (regency_code, deadline, status, shard, province_code, periods, warnings)
        SELECT regency_code, deadline, status, pg_backend_pid() %% 16, min(province_code), sum(sign),
               coalesce(sum(sign) FILTER (WHERE warning_id IS NOT NULL), 0)
        FROM (%s) AS changed
        WHERE status IN ('submitted', 'late', 'overdue', 'excused')
        GROUP BY regency_code, deadline, status
        HAVING sum(sign) <> 0 OR coalesce(sum(sign) FILTER (WHERE warning_id IS NOT NULL), 0) <> 0
        ORDER BY regency_code, deadline, status
        ON CONFLICT (regency_code, deadline, status, shard) DO UPDATE
            SET periods = c.periods + EXCLUDED.periods, warnings = c.warnings + EXCLUDED.warnings
    $sql$, changes);
    RETURN NULL;
END $$;
