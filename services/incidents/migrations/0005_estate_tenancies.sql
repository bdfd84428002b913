-- Industrial estates (SE Menperin 8/2020): which estate company confirmed each plant as lying inside its estate.
-- Keyed by the plant's facility, as the permits service's tenancy events are: a tenancy may be learnt before the
-- plant's permit, so it is kept apart from the plants and joined to them when read.
CREATE TABLE estate_tenancies (
    facility_id        uuid PRIMARY KEY,
    estate_facility_id uuid NOT NULL,
    estate_nib         text NOT NULL,
    confirmed_at       timestamptz NOT NULL,
    recorded_at        timestamptz NOT NULL
);
-- GET /incidents for an estate: its tenants (a few hundred at most), found by the estate company's NIB.
CREATE INDEX estate_tenancies_estate ON estate_tenancies (estate_nib, facility_id);
-- The listing's clusters of each plant on its page.
CREATE INDEX clusters_facility ON clusters (facility_id);
