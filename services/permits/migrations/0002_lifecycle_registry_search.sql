-- Plant identity: the normalised address within its regency ("one IOMKI per plant address").
ALTER TABLE permits ADD COLUMN plant_key text NOT NULL DEFAULT '';
ALTER TABLE permits ADD COLUMN issued_at timestamptz;
-- Application order, for keyset pagination (a uuid has no useful order).
ALTER TABLE permits ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE permits ADD CONSTRAINT permits_seq_unique UNIQUE (seq);

-- The database enforces the rule too: at most one active permit per plant, whatever the code does.
CREATE UNIQUE INDEX permits_one_active_per_plant ON permits (plant_key)
    WHERE status IN ('SUBMITTED', 'ISSUED', 'FROZEN') AND plant_key <> '';
CREATE INDEX permits_plant ON permits (plant_key, seq);

-- One index per search filter, each ending in the keyset column so a filtered page is an index range scan.
DROP INDEX permits_status;
DROP INDEX permits_nib;
CREATE INDEX permits_status_seq ON permits (status, seq);
CREATE INDEX permits_nib_seq ON permits (nib, seq);
CREATE INDEX permits_province_seq ON permits (province_code, seq);
CREATE INDEX permits_regency_seq ON permits (regency_code, seq);
CREATE INDEX permits_sector_seq ON permits (sector_class, seq);

-- Closures ordered by incidents, per plant: shown on the permit and the registry, never a freeze.
CREATE TABLE facility_closures (
    closure_id   uuid PRIMARY KEY,
    facility_id  uuid NOT NULL,
    scope        text NOT NULL,
    reason       text NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    reopened_at  timestamptz,
    cause_event  uuid NOT NULL
);
CREATE INDEX facility_closures_open ON facility_closures (facility_id) WHERE reopened_at IS NULL;
