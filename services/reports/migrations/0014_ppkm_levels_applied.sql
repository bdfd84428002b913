-- PPKM levels applied to the plants' allowances, and the plants of a region read in order (issue #31).

-- A region's plants, read a chunk at a time in (regency, permit) order when a level takes effect there, and the
-- regencies that have plants, read by skipping from one to the next: no scan of the whole table.
CREATE INDEX schedules_region ON schedules (province_code, regency_code, permit_id);

-- When the passing of a level's last day was applied to its region's allowances (the day after `effective_until`).
ALTER TABLE ppkm_levels ADD COLUMN lapse_applied_at timestamptz;
CREATE INDEX ppkm_levels_to_lapse ON ppkm_levels (effective_until)
    WHERE effective_until IS NOT NULL AND lapse_applied_at IS NULL;
-- A province's levels, newest first (GET /ppkm/levels).
CREATE INDEX ppkm_levels_province_recorded ON ppkm_levels (province_code, recorded_at DESC);

-- The audit is the table: a level once recorded is never changed or removed, only marked applied.
CREATE FUNCTION ppkm_levels_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (NEW.level_id, NEW.region_code, NEW.province_code, NEW.level, NEW.effective_from,
            NEW.effective_until, NEW.instruction, NEW.source, NEW.actor, NEW.reason, NEW.event_id, NEW.recorded_at)
        IS DISTINCT FROM (OLD.level_id, OLD.region_code, OLD.province_code, OLD.level, OLD.effective_from,
            OLD.effective_until, OLD.instruction, OLD.source, OLD.actor, OLD.reason, OLD.event_id, OLD.recorded_at)
    THEN
        RAISE EXCEPTION 'ppkm_levels is append-only: a level is recorded anew, never changed or removed';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ppkm_levels_append_only BEFORE UPDATE OR DELETE ON ppkm_levels
    FOR EACH ROW EXECUTE FUNCTION ppkm_levels_append_only();

-- The zones (Asia/Jakarta, …) whose plants were re-evaluated when the rule set's first day came there; `applied_at`
-- is set once every zone has been.
ALTER TABLE ppkm_rule_sets ADD COLUMN applied_zones text[] NOT NULL DEFAULT '{}';
