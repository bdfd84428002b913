-- PPKM levels and staffing caps (issue #31).

-- Every level recorded, append-only (the audit is the table): an operator's (POST /ppkm/levels) or the agency's
-- (PpkmLevelSet on iomki.ppkm, `event_id`). `region_code` is a regency, or a province for all of its regencies.
-- The level of a regency on a day is the entry for it or its province that took effect last on or before the day,
-- the one recorded last among those of that day (services/reports/staffing.py `level_on`).
CREATE TABLE ppkm_levels (
    level_id        uuid PRIMARY KEY,
    region_code     text NOT NULL,
    province_code   text NOT NULL,
    level           text NOT NULL,
    effective_from  date NOT NULL,
    effective_until date,
    instruction     text NOT NULL,
    source          text NOT NULL,
    actor           text NOT NULL,
    reason          text,
    event_id        uuid UNIQUE,
    recorded_at     timestamptz NOT NULL,
    -- When the allowances of the region's plants were re-evaluated for it (on its first day).
    applied_at      timestamptz,
    CHECK (effective_until IS NULL OR effective_until >= effective_from)
);
CREATE INDEX ppkm_levels_region_day ON ppkm_levels (region_code, effective_from DESC, recorded_at DESC);
CREATE INDEX ppkm_levels_to_apply ON ppkm_levels (effective_from) WHERE applied_at IS NULL;

-- The staffing rule sets: the shipped ones (services/reports/ppkm_rules.toml, upserted at start) and those operators
-- published. `rules` holds the set as `rule_set_from_mapping` reads it.
CREATE TABLE ppkm_rule_sets (
    name          text PRIMARY KEY,
    starts_on     date NOT NULL UNIQUE,
    source        text NOT NULL,
    rules         jsonb NOT NULL,
    shipped       boolean NOT NULL,
    published_by  text NOT NULL,
    published_at  timestamptz NOT NULL,
    applied_at    timestamptz
);

-- The plant's sector class and export orientation, as the permits service last said them (PermitIssued,
-- SectorClassChanged), and its workforce at issue. Nullable without a default where unknown for plants issued before.
ALTER TABLE schedules ADD COLUMN sector_class text, ADD COLUMN export_oriented boolean NOT NULL DEFAULT false,
    ADD COLUMN workforce_total int;

-- Each plant's allowance as last evaluated (a level taking effect, a rule set starting, a class changing, a report):
-- what GET /plants/{id}/allowance shows and what compliance counts.
CREATE TABLE plant_allowances (
    permit_id        uuid PRIMARY KEY REFERENCES schedules,
    province_code    text NOT NULL,
    regency_code     text NOT NULL,
    day              date NOT NULL,
    level            text,
    rule_set         text,
    rule             text NOT NULL,
    lifted           boolean NOT NULL,
    production_share int NOT NULL,
    shift_share      int,
    max_shifts       int,
    office_share     int NOT NULL,
    workforce_total  int NOT NULL,
    evaluated_at     timestamptz NOT NULL
);
CREATE INDEX plant_allowances_regency ON plant_allowances (regency_code, level);
CREATE INDEX plant_allowances_province ON plant_allowances (province_code, level);

-- Every capacity breach found in a report, with the rule, level and excesses it was judged by.
CREATE TABLE capacity_breaches (
    breach_id      uuid PRIMARY KEY,
    permit_id      uuid NOT NULL REFERENCES schedules,
    report_id      uuid NOT NULL REFERENCES reports,
    period_id      uuid NOT NULL,
    province_code  text NOT NULL,
    regency_code   text NOT NULL,
    day            date NOT NULL,
    level          text NOT NULL,
    rule_set       text NOT NULL,
    rule           text NOT NULL,
    excesses       jsonb NOT NULL,
    warning_id     uuid NOT NULL UNIQUE,
    recorded_at    timestamptz NOT NULL,
    -- The capacity ladder's sanction that counted it: breaches before a sanction do not count again.
    sanction_id    uuid
);
CREATE INDEX capacity_breaches_permit ON capacity_breaches (permit_id, day);
CREATE INDEX capacity_breaches_regency ON capacity_breaches (regency_code, day);
CREATE INDEX capacity_breaches_province ON capacity_breaches (province_code, day);
