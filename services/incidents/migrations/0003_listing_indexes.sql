-- GET /incidents at 1,000,000 plants: every shape of the listing (all, a province, a regency, a company, each
-- with or without a status) reads a partial index in facility order, stopped by the page's LIMIT, instead
-- of walking the primary key over every plant to find the few thousand with cases.
CREATE INDEX plants_cases ON plants (facility_id) WHERE cases_total > 0;
CREATE INDEX plants_province_cases ON plants (province_code, facility_id) WHERE cases_total > 0;
CREATE INDEX plants_regency_cases ON plants (regency_code, facility_id) WHERE cases_total > 0;
CREATE INDEX plants_nib_cases ON plants (nib, facility_id) WHERE cases_total > 0;
