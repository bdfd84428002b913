-- Counts are never negative: the domain only adds to them, and a count written below zero by any path is refused
-- by the database rather than printed in the public registry.
ALTER TABLE permits
    ADD CONSTRAINT permits_freeze_count_not_negative CHECK (freeze_count >= 0),
    ADD CONSTRAINT permits_workforce_total_not_negative CHECK (workforce_total >= 0);
ALTER TABLE permit_number_counters ADD CONSTRAINT permit_number_counters_last_used_positive CHECK (last_used > 0);
