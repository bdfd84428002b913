-- Field supervision, the permits service's part: industrial-estate permits and their tenant plants, and the regional
-- offices' sanction requests in the ministry's review queue.

-- What a permit covers: a plant, or an industrial estate (SE Menperin 8/2020 names both holders). A plant's
-- `estate_nib` is the NIB of the estate that confirmed it as a tenant, while it is one: the estate's lists read
-- `nib = $x OR estate_nib = $x`, each side on its own index.
ALTER TABLE permits
    ADD COLUMN kind text NOT NULL DEFAULT 'plant',
    ADD COLUMN estate_nib text;
CREATE INDEX permits_estate_nib_seq ON permits (estate_nib, seq) WHERE estate_nib IS NOT NULL;

-- A plant's claim to lie in an estate (named in its application), the estate's answer, and its end; each move's
-- who, when and why kept as the record. Every claim comes with the tenant's application: one per tenant permit.
CREATE TABLE estate_tenancies (
    tenant_permit_id   uuid PRIMARY KEY REFERENCES permits,
    estate_permit_id   uuid NOT NULL REFERENCES permits,
    tenant_facility_id uuid NOT NULL,
    seq                bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    status             text NOT NULL CHECK (status IN ('pending', 'confirmed', 'declined', 'released')),
    claimed_by         text NOT NULL,
    claimed_at         timestamptz NOT NULL,
    decided_by         text,
    decided_role       text,
    decided_at         timestamptz,
    decision_reason    text,
    ended_by           text,
    ended_role         text,
    ended_at           timestamptz,
    end_cause          text CHECK (end_cause IN ('released', 'estate_revoked')),
    end_reason         text,
    province_code      text NOT NULL,
    regency_code       text NOT NULL,
    CONSTRAINT estate_tenancies_moves_recorded
        CHECK ((status = 'pending') = (decided_at IS NULL) AND (status = 'released') = (ended_at IS NOT NULL))
);
CREATE INDEX estate_tenancies_of_estate ON estate_tenancies (estate_permit_id, status, seq);
-- The database holds the rule too: a plant lies in one estate at a time.
CREATE UNIQUE INDEX estate_tenancies_one_estate ON estate_tenancies (tenant_facility_id) WHERE status = 'confirmed';

-- A regional office's request for a freeze or a revocation (SanctionRequested), pending until an operator decides
-- it, or declined at intake when its ground does not hold or the permit cannot take the action.
CREATE TABLE sanction_requests (
    request_id      uuid PRIMARY KEY,
    permit_id       uuid NOT NULL REFERENCES permits,
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    action          text NOT NULL CHECK (action IN ('freeze', 'revoke')),
    ground          jsonb NOT NULL,
    reason          text NOT NULL,
    office_region   text NOT NULL,
    inspection_id   uuid,
    requested_at    timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'approved', 'declined')),
    decided_by      text,
    decided_role    text,
    decided_at      timestamptz,
    decision_reason text,
    province_code   text NOT NULL,
    regency_code    text NOT NULL,
    CONSTRAINT sanction_requests_decided_when_not_pending
        CHECK ((status = 'pending') = (decided_at IS NULL) AND (decided_at IS NULL) = (decided_by IS NULL))
);
CREATE INDEX sanction_requests_status ON sanction_requests (status, seq);
CREATE INDEX sanction_requests_province ON sanction_requests (province_code, status, seq);
CREATE INDEX sanction_requests_regency ON sanction_requests (regency_code, status, seq);
CREATE INDEX sanction_requests_permit ON sanction_requests (permit_id, seq);
-- The worklist reads the pending alone, in arrival order (as migration 0009 does for the other kinds).
CREATE INDEX sanction_requests_pending ON sanction_requests (received_at, seq) WHERE status = 'pending';
CREATE INDEX sanction_requests_pending_province ON sanction_requests (province_code, received_at, seq)
    WHERE status = 'pending';
CREATE INDEX sanction_requests_pending_regency ON sanction_requests (regency_code, received_at, seq)
    WHERE status = 'pending';
