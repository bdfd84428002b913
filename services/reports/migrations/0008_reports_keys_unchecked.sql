-- A report is stored by the transaction that has just locked its period and its schedule (`ReportRepository.targets`,
-- the only writer of reports), and neither is ever deleted: a revoked permit's schedule is ended, its periods kept.
-- The two checks never had anything to find, and cost two queries a report, each planned anew at every execution:
-- at the batches of eight reports POST /reports commits under load, PostgreSQL spent 179-192 µs a report with them,
-- 150-158 without.
ALTER TABLE reports DROP CONSTRAINT reports_period_id_fkey;
ALTER TABLE reports DROP CONSTRAINT reports_permit_id_fkey;
