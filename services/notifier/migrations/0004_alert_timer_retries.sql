-- An alert whose escalation or digest close fails (a directory row the code cannot read, a bug in a rule) was
-- taken again at the next sweep, first in due order, and failed again: every alert due behind it waited forever.
-- A failure is now recorded on the alert, for each timer on its own, and its next attempt put later
-- (domain.TimerBackoff); the sweeps take alerts in the order of their next attempt.
ALTER TABLE alerts
    ADD COLUMN escalation_attempts        int NOT NULL DEFAULT 0
        CONSTRAINT alerts_escalation_attempts_not_negative CHECK (escalation_attempts >= 0),
    ADD COLUMN escalation_next_attempt_at timestamptz,  -- NULL until a failure: the first attempt is at escalate_at
    ADD COLUMN escalation_last_error      text,
    ADD COLUMN digest_attempts            int NOT NULL DEFAULT 0
        CONSTRAINT alerts_digest_attempts_not_negative CHECK (digest_attempts >= 0),
    ADD COLUMN digest_next_attempt_at     timestamptz,  -- NULL until a failure: the first attempt is at digest_closes_at
    ADD COLUMN digest_last_error          text;
DROP INDEX alerts_escalation_due;
CREATE INDEX alerts_escalation_due ON alerts ((coalesce(escalation_next_attempt_at, escalate_at)))
    WHERE status = 'open' AND escalate_at IS NOT NULL;
DROP INDEX alerts_digest_due;
CREATE INDEX alerts_digest_due ON alerts ((coalesce(digest_next_attempt_at, digest_closes_at)))
    WHERE digest_closes_at IS NOT NULL;
