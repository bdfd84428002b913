-- Warnings the reports service issued, as this service recorded them: a freeze's or revocation's letter shows the
-- periods its ground rests on by their deadlines, which only the warnings told us.
CREATE TABLE permit_warnings (
    warning_id     uuid PRIMARY KEY,
    permit_id      uuid NOT NULL REFERENCES permits,
    period_id      uuid NOT NULL,
    deadline       timestamptz NOT NULL,
    consecutive    int NOT NULL CHECK (consecutive >= 0),
    recorded_at    timestamptz NOT NULL
);
CREATE INDEX permit_warnings_period ON permit_warnings (permit_id, period_id);

-- Each warning's and sanction's letter: the facts it states, so that its PDF is printed again the same on request.
-- Numbered per permit and kind without gaps: drawn under the permit's row lock in the transaction that records the
-- warning or the sanction, and held unique here whatever the code does.
CREATE TABLE permit_letters (
    letter_id      uuid PRIMARY KEY,
    permit_id      uuid NOT NULL REFERENCES permits,
    kind           text NOT NULL CHECK (kind IN ('warning', 'freeze', 'revocation')),
    sequence       int NOT NULL CHECK (sequence > 0),
    number         text NOT NULL UNIQUE,
    permit_number  text NOT NULL,
    company_name   text NOT NULL,
    nib            text NOT NULL,
    regency_code   text NOT NULL,
    issued_at      timestamptz NOT NULL,
    ground         jsonb NOT NULL,  -- code, ladder, rule, text
    periods        jsonb NOT NULL,  -- [{period_id, deadline}], the latest listed
    more_periods   int NOT NULL DEFAULT 0 CHECK (more_periods >= 0),
    cause_event_id uuid NOT NULL,   -- the public event the letter accompanies
    warning_id     uuid,
    consecutive    int,
    seq            bigint GENERATED ALWAYS AS IDENTITY,  -- the order they were issued in
    -- For the company's e-mail (it gave an address): printed and sent to the notifier after the transaction that
    -- issued it, so that printing never holds a consumer's batch or a permit's lock.
    to_send        boolean NOT NULL,
    correlation_id text NOT NULL,       -- of the event it accompanies, which the letter's event shares
    sent_at        timestamptz,
    UNIQUE (permit_id, kind, sequence)
);
CREATE INDEX permit_letters_of_permit ON permit_letters (permit_id, seq);
CREATE INDEX permit_letters_to_send ON permit_letters (seq) WHERE to_send AND sent_at IS NULL;

-- An issued letter to send wakes the sender when its transaction commits, instead of waiting for its next tick.
CREATE FUNCTION permit_letters_wake_sender() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_letters', '');
    RETURN NULL;
END $$;
CREATE TRIGGER permit_letters_wake_sender AFTER INSERT ON permit_letters
    FOR EACH STATEMENT EXECUTE FUNCTION permit_letters_wake_sender();
