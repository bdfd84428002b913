-- Incidents: plants under monitoring (learned from PermitIssued), cases, clusters, closures, durable timers.
-- No worker's name, NIK, phone or address is stored anywhere: a case is a pseudonymous reference and counts.

CREATE TABLE plants (
    facility_id          uuid PRIMARY KEY,
    permit_id            uuid NOT NULL,
    nib                  text,            -- NULL until PermitIssued arrives (a report may come first)
    province_code        text NOT NULL,
    regency_code         text NOT NULL,
    workforce_total      int,
    monitored            boolean NOT NULL DEFAULT true,
    active_isolations    int NOT NULL DEFAULT 0,
    active_quarantines   int NOT NULL DEFAULT 0,
    active_room_closures int NOT NULL DEFAULT 0,
    plant_closure_id     uuid,
    status               text NOT NULL DEFAULT 'open',
    cases_total          int NOT NULL DEFAULT 0,
    updated_at           timestamptz NOT NULL
);
-- GET /incidents: by province and status, keyset on facility_id.
CREATE INDEX plants_province_status ON plants (province_code, status, facility_id) WHERE cases_total > 0;
CREATE INDEX plants_status ON plants (status, facility_id) WHERE cases_total > 0;

CREATE TABLE cases (
    case_id                     uuid PRIMARY KEY,
    facility_id                 uuid NOT NULL REFERENCES plants,
    case_ref                    text NOT NULL,
    confirmed_on                date NOT NULL,
    symptomatic                 boolean NOT NULL,
    close_contacts              int NOT NULL CHECK (close_contacts >= 0),
    source                      text NOT NULL,
    tested_on                   date,
    contacts_exit_test_negative boolean NOT NULL,
    isolation_starts_on         date NOT NULL,
    isolation_ends_on           date NOT NULL,
    quarantine_ends_on          date,
    status                      text NOT NULL,
    cluster_id                  uuid,
    report_id                   uuid,
    recorded_by                 text NOT NULL,
    recorded_role               text NOT NULL,
    recorded_at                 timestamptz NOT NULL,
    closed_on                   date,
    closed_by                   text,
    closed_role                 text,
    UNIQUE (facility_id, case_ref)
);
-- Cases of a plant by confirmation date: report reconciliation and cluster detection.
CREATE INDEX cases_facility_confirmed ON cases (facility_id, confirmed_on);

CREATE TABLE clusters (
    cluster_id        uuid PRIMARY KEY,
    facility_id       uuid NOT NULL REFERENCES plants,
    case_count        int NOT NULL,
    first_confirmed_on date NOT NULL,
    last_confirmed_on  date NOT NULL,
    declared_at       timestamptz NOT NULL
);

CREATE TABLE closures (
    closure_id   uuid PRIMARY KEY,
    facility_id  uuid NOT NULL REFERENCES plants,
    scope        text NOT NULL,
    reason       text NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    status       text NOT NULL,
    cluster_id   uuid REFERENCES clusters,
    reopened_at  timestamptz,
    cleared_by   text,
    cleared_role text
);
CREATE INDEX closures_facility ON closures (facility_id, status);

-- Durable timers: written in the transaction that decides them, fired once by the sweep (SKIP LOCKED lets
-- several instances sweep side by side), kept after firing as the record of when they fired.
CREATE TABLE timers (
    timer_id    uuid PRIMARY KEY,
    kind        text NOT NULL,
    facility_id uuid NOT NULL REFERENCES plants,
    subject_id  uuid NOT NULL,
    due_at      timestamptz NOT NULL,
    fired_at    timestamptz
);
CREATE INDEX timers_due ON timers (due_at) WHERE fired_at IS NULL;
