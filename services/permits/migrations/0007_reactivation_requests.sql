-- Reactivation on conditions (SE 3/2021, issue #30 item 6): a frozen company files the reports it missed, states its
-- corrective action and asks; an operator approves or rejects with a reason.

-- The reports filed for our permits, as ReportSubmitted announced them: which period each answers, whether it came
-- late, whether the company declared it true. Read per permit and period (a freeze's missed periods filed) and per
-- report (a declared report a finding contradicts).
CREATE TABLE reports_filed (
    report_id  uuid PRIMARY KEY,
    permit_id  uuid NOT NULL,
    period_id  uuid NOT NULL,
    late       boolean NOT NULL,
    declared   boolean NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX reports_filed_permit_period ON reports_filed (permit_id, period_id);

CREATE TABLE reactivation_requests (
    request_id        uuid PRIMARY KEY,
    permit_id         uuid NOT NULL REFERENCES permits,
    seq               bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    status            text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    corrective_action text NOT NULL,
    missed_periods    uuid[] NOT NULL,
    freeze_count      int NOT NULL CHECK (freeze_count >= 0),
    conditions        jsonb NOT NULL,
    requested_by      text NOT NULL,
    requested_at      timestamptz NOT NULL,
    decided_by        text,
    decided_role      text,
    decided_at        timestamptz,
    decision_reason   text,
    CONSTRAINT reactivation_requests_decided_when_not_pending
        CHECK ((status = 'pending') = (decided_at IS NULL) AND (decided_at IS NULL) = (decided_by IS NULL))
);
-- The database holds the rule too: one request awaiting a decision per permit, whatever the code does.
CREATE UNIQUE INDEX reactivation_requests_one_open ON reactivation_requests (permit_id) WHERE status = 'pending';
CREATE INDEX reactivation_requests_permit ON reactivation_requests (permit_id, seq);
-- The review queue: requests in a status, oldest first.
CREATE INDEX reactivation_requests_status_seq ON reactivation_requests (status, seq);
