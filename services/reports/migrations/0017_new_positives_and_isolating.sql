-- A report's positives, named: the workers newly confirmed positive since the plant's previous report, and the
-- workers isolating on the report's date whenever they were confirmed. Incidents counts the first as new cases and
-- matches the second against the cases it knows to be isolating.

-- Reports stored before this migration stated only `confirmed_positive`, which is the new positives; whether any
-- worker was isolating they did not say: NULL.
ALTER TABLE reports ADD COLUMN new_positives int, ADD COLUMN isolating_workers int,
    ADD CONSTRAINT reports_new_positives_not_negative CHECK (new_positives >= 0),
    ADD CONSTRAINT reports_isolating_workers_not_negative CHECK (isolating_workers >= 0);
UPDATE reports SET new_positives = (payload ->> 'confirmed_positive')::int;
