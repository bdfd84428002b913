-- A plant's duty to report, from PermitIssued until PermitRevoked.
CREATE TABLE schedules (
    permit_id          uuid PRIMARY KEY,
    facility_id        uuid NOT NULL,
    nib                text NOT NULL,
    province_code      text NOT NULL,
    regency_code       text NOT NULL,
    zone               text NOT NULL,
    issued_at          timestamptz NOT NULL,
    frozen             boolean NOT NULL DEFAULT false,
    freeze_count       int NOT NULL DEFAULT 0,
    closed             boolean NOT NULL DEFAULT false,
    ended_at           timestamptz,
    ladder_reset_seq   int NOT NULL DEFAULT 0,
    revoke_recommended boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_facility ON schedules (facility_id);
CREATE INDEX schedules_nib ON schedules (nib, permit_id);
-- The compliance counts of frozen and closed plants read these small partial indexes, not the table.
CREATE INDEX schedules_frozen ON schedules (province_code, regency_code) WHERE frozen AND ended_at IS NULL;
CREATE INDEX schedules_closed ON schedules (province_code, regency_code) WHERE closed AND ended_at IS NULL;

CREATE TABLE periods (
    period_id      uuid PRIMARY KEY,
    permit_id      uuid NOT NULL REFERENCES schedules,
    seq            int NOT NULL,
    regime         text NOT NULL,
    starts_at      timestamptz NOT NULL,
    deadline       timestamptz NOT NULL,
    status         text NOT NULL,
    next_action    text,
    next_action_at timestamptz,
    warning_id     uuid UNIQUE,
    warned_at      timestamptz,
    -- Copied from the schedule so that compliance aggregates read one index, without a join.
    province_code  text NOT NULL,
    regency_code   text NOT NULL,
    UNIQUE (permit_id, seq)
);
-- The deadline sweep reads only what is due now: never a scan of all schedules.
CREATE INDEX periods_next_action ON periods (next_action_at) WHERE next_action_at IS NOT NULL;
-- Compliance by region and window: index-only scans over (region, deadline).
CREATE INDEX periods_by_regency ON periods (regency_code, deadline) INCLUDE (status, warning_id);
CREATE INDEX periods_by_province ON periods (province_code, deadline) INCLUDE (status, warning_id);
CREATE INDEX periods_by_deadline ON periods (deadline) INCLUDE (status, warning_id);

-- Every report ever received; a correction supersedes the previous one, which stays as history.
CREATE TABLE reports (
    report_id          uuid PRIMARY KEY,
    period_id          uuid NOT NULL REFERENCES periods,
    permit_id          uuid NOT NULL REFERENCES schedules,
    submitted_at       timestamptz NOT NULL,
    late               boolean NOT NULL,
    actor              text NOT NULL,
    role               text NOT NULL,
    payload            jsonb NOT NULL,
    -- Deferred: the old report points at its successor before the successor's row exists.
    superseded_by      uuid REFERENCES reports DEFERRABLE INITIALLY DEFERRED,
    superseded_at      timestamptz
);
CREATE INDEX reports_permit ON reports (permit_id, submitted_at);
CREATE UNIQUE INDEX reports_current ON reports (period_id) WHERE superseded_by IS NULL;

-- Plant closures ordered by incidents: a closed plant is excused from reporting and from the rates.
CREATE TABLE closures (
    closure_id   uuid PRIMARY KEY,
    facility_id  uuid NOT NULL,
    ordered_at   timestamptz NOT NULL,
    reopened_at  timestamptz
);
CREATE INDEX closures_open ON closures (facility_id) WHERE reopened_at IS NULL;

-- Every sanction recommended, with the rule that fired and its evidence (audit).
CREATE TABLE sanctions (
    sanction_id  uuid PRIMARY KEY,
    permit_id    uuid NOT NULL REFERENCES schedules,
    action       text NOT NULL,
    rule         text NOT NULL,
    evidence     jsonb NOT NULL,
    at           timestamptz NOT NULL,
    causation_id text
);
CREATE INDEX sanctions_permit ON sanctions (permit_id, at);
