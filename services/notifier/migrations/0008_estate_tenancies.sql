-- Industrial estates (SE Menperin 8/2020): which estate confirmed each plant as its tenant, so that an alert about
-- the plant reaches the estate company too, at the contact the estate's own facility holds in company_contacts.
-- Keyed by the plant's facility, as the permits service's tenancy events are; either may arrive first.
CREATE TABLE estate_tenancies (
    facility_id        uuid PRIMARY KEY,
    estate_facility_id uuid NOT NULL,
    estate_nib         text NOT NULL,
    estate_name        text NOT NULL,
    confirmed_at       timestamptz NOT NULL,
    recorded_at        timestamptz NOT NULL
);
