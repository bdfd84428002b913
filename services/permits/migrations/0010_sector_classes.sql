-- Sector classes from KBLI codes (issue #31): a plant's class and export orientation are the shipped table's reading
-- of its principal KBLI code (services/permits/kbli_sectors.toml), or a company's claim an operator accepted.

-- The class in force stays in `sector_class`. Its basis: `kbli_table` (re-derived when the table is revised),
-- `operator` (a claim accepted over the table in force, `class_table_version`), or `declared`: a plant recorded
-- before the table, its class as the company declared it, until the service's first start with a table derives it
-- (and opens a review of the declared class where the table reads the plant otherwise). The default stays
-- `declared`, so a row written by a replica still running the code of before is derived at the next start too.
ALTER TABLE permits
    ADD COLUMN export_oriented boolean NOT NULL DEFAULT false,
    ADD COLUMN class_basis text NOT NULL DEFAULT 'declared'
        CONSTRAINT permits_class_basis CHECK (class_basis IN ('declared', 'kbli_table', 'operator')),
    ADD COLUMN class_table_version text,
    ADD CONSTRAINT permits_sector_class CHECK (sector_class IN ('critical', 'essential', 'non_essential'));
CREATE INDEX permits_class_declared ON permits (permit_id) WHERE class_basis = 'declared';

-- The table applied here, row by row, so that every plant is derived at once in SQL; and each version applied.
CREATE TABLE kbli_sectors (
    prefix          text PRIMARY KEY CHECK (prefix ~ '^[0-9]{2,5}$'),
    sector_class    text NOT NULL CHECK (sector_class IN ('critical', 'essential', 'non_essential')),
    export_oriented boolean NOT NULL,
    name            text NOT NULL
);
CREATE TABLE kbli_table_revisions (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version    text NOT NULL,
    source     text NOT NULL,
    rows       int NOT NULL,
    applied_at timestamptz NOT NULL,
    changed    int NOT NULL,  -- plants whose class or basis it changed
    reviews    int NOT NULL,  -- reviews it opened for plants recorded before the table
    events     int NOT NULL   -- SectorClassChanged it announced
);

-- A company's claim against the table's reading of its plant, until an operator accepts or rejects it, with the
-- decision's who, when and why kept as the record.
CREATE TABLE class_reviews (
    review_id       uuid PRIMARY KEY,
    permit_id       uuid NOT NULL REFERENCES permits,
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    status          text NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    claimed_class   text NOT NULL CHECK (claimed_class IN ('critical', 'essential', 'non_essential')),
    claimed_export  boolean NOT NULL,
    derived_class   text NOT NULL CHECK (derived_class IN ('critical', 'essential', 'non_essential')),
    derived_export  boolean NOT NULL,
    table_version   text NOT NULL,
    origin          text NOT NULL CHECK (origin IN ('application', 'upgrade')),
    opened_by       text NOT NULL,
    opened_at       timestamptz NOT NULL,
    decided_by      text,
    decided_role    text,
    decided_at      timestamptz,
    decision_reason text,
    -- Its permit's company and region (a plant does not move), to list a company's or a region's.
    nib             text NOT NULL,
    province_code   text NOT NULL,
    regency_code    text NOT NULL,
    CHECK ((status = 'pending') = (decided_at IS NULL) AND (decided_at IS NULL) = (decided_by IS NULL)
           AND (decided_at IS NULL) = (decided_role IS NULL) AND (decided_at IS NULL) = (decision_reason IS NULL))
);
-- One claim awaiting a decision per permit, whatever the code does.
CREATE UNIQUE INDEX class_reviews_one_open ON class_reviews (permit_id) WHERE status = 'pending';
CREATE INDEX class_reviews_permit ON class_reviews (permit_id, seq);
CREATE INDEX class_reviews_status_seq ON class_reviews (status, seq);
CREATE INDEX class_reviews_nib ON class_reviews (nib, status, seq);
CREATE INDEX class_reviews_province ON class_reviews (province_code, status, seq);
CREATE INDEX class_reviews_regency ON class_reviews (regency_code, status, seq);
-- The worklist: pending reviews in arrival order, nationally and by region (as migration 0009's kinds).
CREATE INDEX class_reviews_pending ON class_reviews (opened_at, seq) WHERE status = 'pending';
CREATE INDEX class_reviews_pending_province ON class_reviews (province_code, opened_at, seq) WHERE status = 'pending';
CREATE INDEX class_reviews_pending_regency ON class_reviews (regency_code, opened_at, seq) WHERE status = 'pending';

-- A warning's cause (a missed report or a capacity breach) and, for a breach, which: a sanction on repeated breaches
-- lists the periods of its breaches by the deadlines their warnings gave.
ALTER TABLE permit_warnings
    ADD COLUMN cause text NOT NULL DEFAULT 'missed_report'
        CONSTRAINT permit_warnings_cause CHECK (cause IN ('missed_report', 'capacity_breach')),
    ADD COLUMN breach_id uuid;
CREATE INDEX permit_warnings_breach ON permit_warnings (permit_id, breach_id) WHERE breach_id IS NOT NULL;
