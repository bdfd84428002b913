-- A case entered by a company claims the placeholder a report created for it (domain.PlaceholderClaim):
-- placeholders keep the report period they were counted in; a claim records who made it, and the
-- placeholder's isolation timer is cancelled (kept, as the record) and set again from the real dates.
-- Placeholders created before this migration have no period and are never claimed.

ALTER TABLE cases
    ADD COLUMN report_period_first date,
    ADD COLUMN report_period_last  date,
    ADD COLUMN claimed_by          text,
    ADD COLUMN claimed_role        text,
    ADD COLUMN claimed_at          timestamptz;
-- POST /cases: the plant's unclaimed placeholders.
CREATE INDEX cases_unclaimed_placeholders ON cases (facility_id) WHERE source = 'report' AND claimed_by IS NULL;

ALTER TABLE timers ADD COLUMN cancelled_at timestamptz;
DROP INDEX timers_due;
CREATE INDEX timers_due ON timers (due_at) WHERE fired_at IS NULL AND cancelled_at IS NULL;
