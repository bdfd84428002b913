-- The notifier's directory (task forces, their division contacts, subscriptions, company contacts), its
-- alerts with their durable escalation timers, and every delivery with every attempt.

CREATE TABLE task_forces (
    task_force_id uuid PRIMARY KEY,
    level         text NOT NULL,
    region_code   text NOT NULL,  -- '' for the national task force
    name          text NOT NULL,
    created_by    text NOT NULL,
    created_role  text NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX task_forces_region ON task_forces (region_code, level);

CREATE TABLE task_force_contacts (
    task_force_id uuid NOT NULL REFERENCES task_forces,
    position      int NOT NULL,
    division      text NOT NULL,
    email         text,
    webhook       text,
    secret        text,
    PRIMARY KEY (task_force_id, position)
);

CREATE TABLE subscriptions (
    subscription_id uuid PRIMARY KEY,
    task_force_id   uuid NOT NULL REFERENCES task_forces,
    channel         text NOT NULL,
    target          text NOT NULL,
    secret          text,
    event_types     text[] NOT NULL,
    created_by      text NOT NULL,
    created_role    text NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX subscriptions_task_force ON subscriptions (task_force_id);

-- Company contact details arrive on the internal topic only; they never leave this schema except as the
-- address of a company-facing notice.
CREATE TABLE company_contacts (
    facility_id  uuid PRIMARY KEY,
    permit_id    uuid NOT NULL,
    nib          text NOT NULL,
    company_name text NOT NULL,
    email        text,
    phone        text,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE alerts (
    alert_id          uuid PRIMARY KEY,
    alert_key         text NOT NULL,
    event_type        text NOT NULL,
    severity          text NOT NULL,
    facility_id       uuid NOT NULL,
    province_code     text NOT NULL,
    regency_code      text NOT NULL,
    level             text NOT NULL,
    status            text NOT NULL,
    count             int NOT NULL,
    first_seen_at     timestamptz NOT NULL,
    last_seen_at      timestamptz NOT NULL,
    group_until       timestamptz NOT NULL,
    escalate_at       timestamptz,  -- the durable escalation timer
    digest_closes_at  timestamptz,  -- set while a digest is still counting
    notified_levels   text[] NOT NULL,
    acknowledged_at   timestamptz,
    acknowledged_by   text,
    acknowledged_role text,
    details           jsonb NOT NULL
);
CREATE INDEX alerts_grouping ON alerts (alert_key, group_until) WHERE status = 'open';
CREATE INDEX alerts_escalation_due ON alerts (escalate_at) WHERE status = 'open' AND escalate_at IS NOT NULL;
CREATE INDEX alerts_digest_due ON alerts (digest_closes_at) WHERE digest_closes_at IS NOT NULL;
CREATE INDEX alerts_listing ON alerts (status, first_seen_at DESC);

-- One row per step reached: the primary key is what makes "never escalated twice for the same step" hold.
CREATE TABLE escalations (
    alert_id   uuid NOT NULL REFERENCES alerts,
    to_level   text NOT NULL,
    from_level text NOT NULL,
    at         timestamptz NOT NULL,
    PRIMARY KEY (alert_id, to_level)
);

CREATE TABLE deliveries (
    delivery_id     uuid PRIMARY KEY,
    alert_id        uuid NOT NULL REFERENCES alerts,
    channel         text NOT NULL,
    recipient_kind  text NOT NULL,  -- task_force | company
    task_force_id   uuid,
    level           text,
    target          text NOT NULL,
    secret          text,
    subject         text NOT NULL,
    body            bytea NOT NULL,  -- the exact bytes signed and sent on every attempt
    status          text NOT NULL,
    attempts        int NOT NULL,
    next_attempt_at timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_alert ON deliveries (alert_id, created_at);

CREATE TABLE delivery_attempts (
    delivery_id uuid NOT NULL REFERENCES deliveries,
    attempt     int NOT NULL,
    at          timestamptz NOT NULL,
    succeeded   boolean NOT NULL,
    error       text,
    PRIMARY KEY (delivery_id, attempt)
);
