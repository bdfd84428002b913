-- A deadline falling for every plant at once opens a million next periods (`make bench`), and the foreign key's
-- check cost a query per row: a third of the statement. Periods are opened only by this service, each from a
-- schedule it has just added or holds locked, and schedules are never deleted (a revoked permit's schedule is
-- ended, not removed), so the check never had anything to find.
ALTER TABLE periods DROP CONSTRAINT periods_permit_id_fkey;
