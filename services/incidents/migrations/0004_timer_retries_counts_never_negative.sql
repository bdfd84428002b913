-- A timer whose firing fails (a missing case, a bug in a rule) was claimed again at the next sweep, first in due
-- order, and failed again: every timer due behind it waited forever. A failure is now recorded on the timer and
-- its next attempt put later (domain.TimerRetry); the sweep takes timers in the order of their next attempt.
ALTER TABLE timers
    ADD COLUMN attempts        int NOT NULL DEFAULT 0 CONSTRAINT timers_attempts_not_negative CHECK (attempts >= 0),
    ADD COLUMN next_attempt_at timestamptz,  -- NULL until a failure: the first attempt is at due_at
    ADD COLUMN last_error      text;
DROP INDEX timers_due;
CREATE INDEX timers_due ON timers ((coalesce(next_attempt_at, due_at)))
    WHERE fired_at IS NULL AND cancelled_at IS NULL;

-- Counts are never negative. The domain already stops a plant's active counts at zero; a count written below
-- zero by any path is now refused by the database instead of shown on the dashboard.
UPDATE plants SET active_isolations = greatest(active_isolations, 0),
                  active_quarantines = greatest(active_quarantines, 0),
                  active_room_closures = greatest(active_room_closures, 0)
    WHERE least(active_isolations, active_quarantines, active_room_closures) < 0;
ALTER TABLE plants
    ADD CONSTRAINT plants_active_isolations_not_negative CHECK (active_isolations >= 0),
    ADD CONSTRAINT plants_active_quarantines_not_negative CHECK (active_quarantines >= 0),
    ADD CONSTRAINT plants_active_room_closures_not_negative CHECK (active_room_closures >= 0),
    ADD CONSTRAINT plants_cases_total_not_negative CHECK (cases_total >= 0),
    ADD CONSTRAINT plants_workforce_total_not_negative CHECK (workforce_total >= 0);
ALTER TABLE clusters ADD CONSTRAINT clusters_case_count_positive CHECK (case_count > 0);
