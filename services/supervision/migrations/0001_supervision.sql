-- Supervision: the plants as the permits topic tells them, their risk since their last inspection, inspections
-- (with the inspectors' names and photos), the public's complaints (with their words and contacts) and the regional
-- offices' sanction requests. None of the personal data here leaves this schema: events carry ids and counts.

CREATE TABLE plants (
    facility_id    uuid PRIMARY KEY,
    permit_id      uuid NOT NULL,
    permit_number  text NOT NULL,
    nib            text NOT NULL,
    company_name   text NOT NULL,
    province_code  text NOT NULL,
    regency_code   text NOT NULL,
    status         text NOT NULL,  -- issued | frozen | revoked
    issued_on      date NOT NULL,
    updated_at     timestamptz NOT NULL
);
-- A complaint naming a permit number is matched at once.
CREATE INDEX plants_permit_number ON plants (permit_number);

-- Counts since the plant's last inspection (or its permit), kept by each event that changes one, and the rank they
-- give (services/supervision/domain.py, RiskScore). A row may come before its plant's PermitIssued (another topic):
-- it is listed once the permit is known, and leaves the worklist when the permit is revoked.
CREATE TABLE plant_risk (
    facility_id        uuid PRIMARY KEY,
    province_code      text NOT NULL,
    regency_code       text NOT NULL,
    listed             boolean NOT NULL DEFAULT false,
    missed_reports     int NOT NULL DEFAULT 0 CHECK (missed_reports >= 0),
    late_reports       int NOT NULL DEFAULT 0 CHECK (late_reports >= 0),
    protocol_lapses    int NOT NULL DEFAULT 0 CHECK (protocol_lapses >= 0),
    capacity_breaches  int NOT NULL DEFAULT 0 CHECK (capacity_breaches >= 0),
    cases              int NOT NULL DEFAULT 0 CHECK (cases >= 0),
    clusters           int NOT NULL DEFAULT 0 CHECK (clusters >= 0),
    complaints         int NOT NULL DEFAULT 0 CHECK (complaints >= 0),
    open_complaints    int NOT NULL DEFAULT 0 CHECK (open_complaints >= 0),
    since_on           date NOT NULL,
    last_inspected_on  date,
    rank_key           double precision NOT NULL
);
-- GET /worklist at 1,000,000 plants: each shape (a regency, a province, the country) reads its partial index
-- backwards from the highest rank, the keyset (rank_key, facility_id) as the start, stopped by the page's LIMIT.
CREATE INDEX plant_risk_regency_rank ON plant_risk (regency_code, rank_key, facility_id) WHERE listed;
CREATE INDEX plant_risk_province_rank ON plant_risk (province_code, rank_key, facility_id) WHERE listed;
CREATE INDEX plant_risk_rank ON plant_risk (rank_key, facility_id) WHERE listed;

-- Reports the company declared true, for the contradiction rule: only what it needs (the items answered no).
CREATE TABLE declared_reports (
    report_id         uuid PRIMARY KEY,
    facility_id       uuid NOT NULL,
    period_starts_on  date NOT NULL,
    protocol_lapses   text[] NOT NULL
);
CREATE INDEX declared_reports_facility ON declared_reports (facility_id, period_starts_on);

CREATE TABLE inspection_sequences (
    year  int PRIMARY KEY,
    last  int NOT NULL
);

CREATE TABLE inspections (
    inspection_id           uuid PRIMARY KEY,
    reference               text NOT NULL UNIQUE,
    facility_id             uuid NOT NULL REFERENCES plants,
    permit_id               uuid NOT NULL,
    province_code           text NOT NULL,
    regency_code            text NOT NULL,
    status                  text NOT NULL,  -- planned | recorded
    planned_on              date NOT NULL,
    team                    jsonb NOT NULL,  -- [{name, body}]: inspectors' names stay here
    purpose                 text NOT NULL,
    planned_by              text NOT NULL,
    planned_role            text NOT NULL,
    planned_at              timestamptz NOT NULL,
    inspected_on            date,
    findings                jsonb,
    violations              int,
    notes                   text,
    contradicted_report_id  uuid,
    recorded_by             text,
    recorded_role           text,
    recorded_at             timestamptz
);
CREATE INDEX inspections_regency ON inspections (regency_code, inspection_id);
CREATE INDEX inspections_province ON inspections (province_code, inspection_id);
CREATE INDEX inspections_facility ON inspections (facility_id);

CREATE TABLE inspection_photos (
    photo_id       uuid PRIMARY KEY,
    inspection_id  uuid NOT NULL REFERENCES inspections,
    content_type   text NOT NULL,
    data           bytea NOT NULL,  -- re-encoded: no EXIF, no GPS
    width          int NOT NULL,
    height         int NOT NULL,
    uploaded_by    text NOT NULL,
    uploaded_at    timestamptz NOT NULL
);
CREATE INDEX inspection_photos_inspection ON inspection_photos (inspection_id);

CREATE TABLE complaints (
    complaint_id          uuid PRIMARY KEY,
    reference_hash        bytea NOT NULL UNIQUE,  -- SHA-256 of the filer's reference: the reference is a key
    status                text NOT NULL,
    category              text NOT NULL,
    text                  text NOT NULL,
    permit_number_given   text,
    address               text,
    province_code         text,  -- NULL when neither a known permit nor a regency locates it
    regency_code          text,
    facility_id           uuid REFERENCES plants,
    permit_id             uuid,
    contact_email         text,
    contact_phone         text,
    filed_at              timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    note                  text,
    updated_by            text
);
CREATE INDEX complaints_regency ON complaints (regency_code, complaint_id);
CREATE INDEX complaints_province ON complaints (province_code, complaint_id);
CREATE INDEX complaints_facility ON complaints (facility_id);

CREATE TABLE inspection_complaints (
    inspection_id  uuid NOT NULL REFERENCES inspections,
    complaint_id   uuid NOT NULL REFERENCES complaints,
    PRIMARY KEY (inspection_id, complaint_id)
);

CREATE TABLE sanction_requests (
    request_id       uuid PRIMARY KEY,
    facility_id      uuid NOT NULL REFERENCES plants,
    permit_id        uuid NOT NULL,
    province_code    text NOT NULL,
    regency_code     text NOT NULL,
    action           text NOT NULL,
    ground           jsonb NOT NULL,
    reason           text NOT NULL,
    office_region    text NOT NULL,
    inspection_id    uuid REFERENCES inspections,
    requested_by     text NOT NULL,
    requested_at     timestamptz NOT NULL,
    status           text NOT NULL,  -- pending | approved | declined
    decision_reason  text,
    decided_at       timestamptz
);
CREATE INDEX sanction_requests_regency ON sanction_requests (regency_code, request_id);
CREATE INDEX sanction_requests_province ON sanction_requests (province_code, request_id);
