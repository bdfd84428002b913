CREATE TABLE permits (
    permit_id      uuid PRIMARY KEY,
    facility_id    uuid NOT NULL,
    nib            text NOT NULL,
    company_name   text NOT NULL,
    province_code  text NOT NULL,
    regency_code   text NOT NULL,
    sector_class   text NOT NULL,
    workforce_total int NOT NULL,
    status         text NOT NULL,
    permit_number  text UNIQUE,
    freeze_count   int NOT NULL DEFAULT 0,
    revoked_at     timestamptz,
    application    jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX permits_status ON permits (status, permit_id);
CREATE INDEX permits_nib ON permits (nib, permit_id);

CREATE TABLE permit_history (
    permit_id    uuid NOT NULL REFERENCES permits,
    seq          bigserial,
    from_status  text,
    to_status    text NOT NULL,
    action       text NOT NULL,
    actor        text NOT NULL,
    role         text NOT NULL,
    reason       text NOT NULL,
    at           timestamptz NOT NULL,
    causation_id text,
    PRIMARY KEY (permit_id, seq)
);

-- Gap-free numbering: one counter row per year, incremented under its row lock in the issuing transaction.
CREATE TABLE permit_number_counters (
    year      int PRIMARY KEY,
    last_used int NOT NULL
);
