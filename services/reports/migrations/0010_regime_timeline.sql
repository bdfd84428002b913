-- Regimes as data (issue #30): the timeline of reporting regimes, each with its circular's ladder, and every
-- change to it. The shipped entries (services/reports/regimes.toml) are upserted at start; an operator's scheduled
-- entries live here only.
CREATE TABLE regimes (
    name          text PRIMARY KEY,
    source        text NOT NULL,
    effective_on  date NOT NULL UNIQUE,
    rule          text NOT NULL,
    ladder        text NOT NULL,
    shipped       boolean NOT NULL,
    scheduled_by  text NOT NULL,
    scheduled_at  timestamptz NOT NULL
);

-- Who changed the timeline, when, and what: never updated, never deleted.
CREATE TABLE regime_changes (
    change_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL CHECK (action IN ('shipped', 'scheduled', 'withdrawn')),
    name       text NOT NULL,
    entry      jsonb NOT NULL
);

-- The regime a period opened under: its ladder judges the period if it is missed.
ALTER TABLE periods ADD COLUMN regime_name text;

-- Existing periods: the regime whose rule text they carry, else the shipped regime in force, in the plant's zone,
-- on the local day they opened (the shipped dates, as regimes.toml holds them when this migration was written).
UPDATE periods p SET regime_name = CASE
        WHEN p.regime = 'weekly:SAT@23:59' THEN 'SE-8/2020'
        WHEN p.regime = 'twice-weekly:TUE,FRI@23:59' THEN 'SE-3/2021'
        WHEN p.regime = 'weekly:FRI@23:59' THEN 'SE-5/2021'
        WHEN (p.starts_at AT TIME ZONE s.zone)::date >= DATE '2021-09-10' THEN 'SE-5/2021'
        WHEN (p.starts_at AT TIME ZONE s.zone)::date >= DATE '2021-07-30' THEN 'SE-3/2021'
        ELSE 'SE-8/2020'
    END
FROM schedules s WHERE s.permit_id = p.permit_id;

ALTER TABLE periods ALTER COLUMN regime_name SET NOT NULL;
