-- PPKM in compliance (issue #31): per regency, the live plants by sector class and the sums the dose-1 share is
-- taken from, kept exact by the transactions that change them, so that GET /compliance reads a few rows per regency
-- whatever the number of plants. Each counter is split over 16 shards, as compliance_counts is (0004): the reports
-- of one regency's plants add to its sums at the same time, each transaction in the shard of its connection.
CREATE TABLE ppkm_region_counts (
    regency_code    text NOT NULL,
    shard           smallint NOT NULL,
    province_code   text NOT NULL,
    critical        bigint NOT NULL,
    essential       bigint NOT NULL,
    non_essential   bigint NOT NULL,
    unknown         bigint NOT NULL,  -- no class known yet (issued before classes were derived)
    export_oriented bigint NOT NULL,  -- counted again beside their class
    reported        bigint NOT NULL,  -- plants whose latest report the sums count
    dose1           bigint NOT NULL,
    workforce       bigint NOT NULL,
    PRIMARY KEY (regency_code, shard)
);
CREATE INDEX ppkm_region_counts_province ON ppkm_region_counts (province_code);

-- Each plant's latest report as the dose-1 share counts it (the current report of its latest reported period,
-- services/reports/capacity.py `replaces`), written with the report; the report adds the change to its regency's
-- sums in the same statement. Read under the plant's lock, which every writer of a plant takes first. Its
-- PeduliLindungi answer too: a plant's allowance reads the same latest report for the conditions that lift its cap.
CREATE TABLE latest_vaccination (
    permit_id      uuid PRIMARY KEY,
    period_seq     int NOT NULL,
    dose1          int NOT NULL CHECK (dose1 >= 0),
    workforce      int NOT NULL CHECK (workforce >= 0),
    pedulilindungi boolean
);

-- A plant counts while its permit is live (its schedule not ended): issued, classified, revoked or reinstated, its
-- class and its latest report move in or out of its regency's counts with the statement that changed its schedule.
-- An INSERT adds the rows it wrote (direction 1), a DELETE subtracts those it removed (direction -1). The functions
-- keep this schema as their search path: a statement on the schedules from another (an operator's session, a test)
-- still counts here.
CREATE FUNCTION ppkm_region_counts_add_rows() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    direction int := TG_ARGV[0]::int;
BEGIN
    INSERT INTO ppkm_region_counts AS c (regency_code, shard, province_code, critical, essential, non_essential,
                                         unknown, export_oriented, reported, dose1, workforce)
    SELECT s.regency_code, pg_backend_pid() % 16, min(s.province_code),
           direction * count(*) FILTER (WHERE s.sector_class = 'critical'),
           direction * count(*) FILTER (WHERE s.sector_class = 'essential'),
           direction * count(*) FILTER (WHERE s.sector_class = 'non_essential'),
           direction * count(*) FILTER (WHERE s.sector_class IS NULL
                                        OR s.sector_class NOT IN ('critical', 'essential', 'non_essential')),
           direction * count(*) FILTER (WHERE s.export_oriented),
           direction * count(v.permit_id), direction * coalesce(sum(v.dose1), 0),
           direction * coalesce(sum(v.workforce), 0)
    FROM changed_rows s LEFT JOIN latest_vaccination v ON v.permit_id = s.permit_id
    WHERE s.ended_at IS NULL
    GROUP BY s.regency_code
    ORDER BY s.regency_code
    ON CONFLICT (regency_code, shard) DO UPDATE
        SET critical = c.critical + EXCLUDED.critical, essential = c.essential + EXCLUDED.essential,
            non_essential = c.non_essential + EXCLUDED.non_essential, unknown = c.unknown + EXCLUDED.unknown,
            export_oriented = c.export_oriented + EXCLUDED.export_oriented, reported = c.reported + EXCLUDED.reported,
            dose1 = c.dose1 + EXCLUDED.dose1, workforce = c.workforce + EXCLUDED.workforce;
    RETURN NULL;
END $$;

-- An UPDATE: the rows it wrote, less the rows they replaced. Most updates (a freeze, a closure) change nothing
-- counted and write nothing.
CREATE FUNCTION ppkm_region_counts_replace() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO ppkm_region_counts AS c (regency_code, shard, province_code, critical, essential, non_essential,
                                         unknown, export_oriented, reported, dose1, workforce)
    SELECT * FROM (
        SELECT s.regency_code, (pg_backend_pid() % 16)::smallint AS shard, min(s.province_code) AS province_code,
               coalesce(sum(s.sign) FILTER (WHERE s.sector_class = 'critical'), 0) AS critical,
               coalesce(sum(s.sign) FILTER (WHERE s.sector_class = 'essential'), 0) AS essential,
               coalesce(sum(s.sign) FILTER (WHERE s.sector_class = 'non_essential'), 0) AS non_essential,
               coalesce(sum(s.sign) FILTER (WHERE s.sector_class IS NULL
                                            OR s.sector_class NOT IN ('critical', 'essential', 'non_essential')),
                        0) AS unknown,
               coalesce(sum(s.sign) FILTER (WHERE s.export_oriented), 0) AS export_oriented,
               coalesce(sum(s.sign) FILTER (WHERE v.permit_id IS NOT NULL), 0) AS reported,
               coalesce(sum(s.sign * v.dose1), 0) AS dose1, coalesce(sum(s.sign * v.workforce), 0) AS workforce
        FROM (SELECT permit_id, regency_code, province_code, sector_class, export_oriented, 1 AS sign
              FROM new_rows WHERE ended_at IS NULL
              UNION ALL
              SELECT permit_id, regency_code, province_code, sector_class, export_oriented, -1
              FROM old_rows WHERE ended_at IS NULL) AS s
        LEFT JOIN latest_vaccination v ON v.permit_id = s.permit_id
        GROUP BY s.regency_code) AS changed
    WHERE (critical, essential, non_essential, unknown, export_oriented, reported, dose1, workforce)
          <> (0, 0, 0, 0, 0, 0, 0, 0)
    ORDER BY regency_code
    ON CONFLICT (regency_code, shard) DO UPDATE
        SET critical = c.critical + EXCLUDED.critical, essential = c.essential + EXCLUDED.essential,
            non_essential = c.non_essential + EXCLUDED.non_essential, unknown = c.unknown + EXCLUDED.unknown,
            export_oriented = c.export_oriented + EXCLUDED.export_oriented, reported = c.reported + EXCLUDED.reported,
            dose1 = c.dose1 + EXCLUDED.dose1, workforce = c.workforce + EXCLUDED.workforce;
    RETURN NULL;
END $$;

-- No schedule or report changes while the counts are first filled. The latest reports stored so far: the current
-- report of each plant's latest reported period, as its payload states its figures.
LOCK TABLE schedules, reports IN SHARE MODE;
INSERT INTO latest_vaccination (permit_id, period_seq, dose1, workforce, pedulilindungi)
SELECT DISTINCT ON (r.permit_id) r.permit_id, p.seq, (r.payload #>> '{vaccinated,dose1}')::int,
       (r.payload #>> '{workforce,total}')::int, (r.payload #>> '{protocol_checklist,pedulilindungi_scan}')::boolean
FROM reports r JOIN periods p ON p.period_id = r.period_id
WHERE r.superseded_by IS NULL AND r.payload #>> '{vaccinated,dose1}' IS NOT NULL
  AND r.payload #>> '{workforce,total}' IS NOT NULL
ORDER BY r.permit_id, p.seq DESC;

INSERT INTO ppkm_region_counts (regency_code, shard, province_code, critical, essential, non_essential, unknown,
                                export_oriented, reported, dose1, workforce)
SELECT s.regency_code, 0, min(s.province_code),
       count(*) FILTER (WHERE s.sector_class = 'critical'), count(*) FILTER (WHERE s.sector_class = 'essential'),
       count(*) FILTER (WHERE s.sector_class = 'non_essential'),
       count(*) FILTER (WHERE s.sector_class IS NULL
                        OR s.sector_class NOT IN ('critical', 'essential', 'non_essential')),
       count(*) FILTER (WHERE s.export_oriented), count(v.permit_id), coalesce(sum(v.dose1), 0),
       coalesce(sum(v.workforce), 0)
FROM schedules s LEFT JOIN latest_vaccination v ON v.permit_id = s.permit_id
WHERE s.ended_at IS NULL
GROUP BY s.regency_code;

CREATE TRIGGER ppkm_region_counts_insert AFTER INSERT ON schedules REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ppkm_region_counts_add_rows('1');
CREATE TRIGGER ppkm_region_counts_update AFTER UPDATE ON schedules REFERENCING OLD TABLE AS old_rows
    NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ppkm_region_counts_replace();
CREATE TRIGGER ppkm_region_counts_delete AFTER DELETE ON schedules REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ppkm_region_counts_add_rows('-1');
