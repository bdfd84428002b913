-- The company's e-mail about a warning, a freeze or a revocation carries its letter. The public event and the
-- letter (on the internal topic) arrive in either order; one row per public event pairs them, and whichever half
-- comes second plans the e-mail, under the plant's lock. A letter that does not come by `wait_until` lets the
-- e-mail go without it, and follows on its own when it comes.
CREATE TABLE company_letters (
    cause_event_id  uuid PRIMARY KEY,   -- the public event (WarningIssued, PermitFrozen, PermitRevoked)
    facility_id     uuid NOT NULL,
    alert_id        uuid REFERENCES alerts,  -- set when the public event has arrived
    event_type      text,
    wait_until      timestamptz,
    letter_number   text,               -- set when the letter has arrived
    letter_kind     text,
    letter_issued_at timestamptz,
    pdf             bytea,              -- dropped once it went out: the delivery holds what was sent
    notice_planned  boolean NOT NULL DEFAULT false,
    letter_sent     boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX company_letters_waiting ON company_letters (wait_until)
    WHERE NOT notice_planned AND alert_id IS NOT NULL;

-- A delivery may carry one attachment (the letter), sent as it is on every attempt.
ALTER TABLE deliveries
    ADD COLUMN attachment_name text,
    ADD COLUMN attachment      bytea,
    ADD CONSTRAINT deliveries_attachment_named CHECK ((attachment IS NULL) = (attachment_name IS NULL));
