-- Objections to a freeze or a revocation (UU 30/2014 Pasal 77): the company's statement, the sanction it is
-- against (its row in the permit's history), and the operator's decision with its reasons, kept as the record.
CREATE TABLE objections (
    objection_id   uuid PRIMARY KEY,
    permit_id      uuid NOT NULL,
    sanction_seq   bigint NOT NULL,
    sanction       text NOT NULL CHECK (sanction IN ('freeze', 'revoke')),
    sanction_from  text NOT NULL,
    sanctioned_at  timestamptz NOT NULL,
    last_day       date NOT NULL,
    statement      text NOT NULL,
    filed_by       text NOT NULL,
    filed_role     text NOT NULL,
    filed_at       timestamptz NOT NULL,
    outcome        text CHECK (outcome IN ('upheld', 'overturned', 'partly')),
    reason         text,
    decided_by     text,
    decided_role   text,
    decided_at     timestamptz,
    seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    FOREIGN KEY (permit_id, sanction_seq) REFERENCES permit_history (permit_id, seq),
    -- One objection per sanction, whatever the code does.
    UNIQUE (permit_id, sanction_seq),
    -- A decision is whole: its outcome, reasons, who and when, or none of them.
    CHECK ((outcome IS NULL) = (reason IS NULL) AND (outcome IS NULL) = (decided_by IS NULL)
           AND (outcome IS NULL) = (decided_role IS NULL) AND (outcome IS NULL) = (decided_at IS NULL))
);
-- The review queue: pending objections, oldest first.
CREATE INDEX objections_pending ON objections (filed_at, seq) WHERE outcome IS NULL;
