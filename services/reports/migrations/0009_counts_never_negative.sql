-- Counts are never negative: the domain only adds to them, and a count written below zero by any path is refused
-- by the database rather than read as a plant's history.
--
-- compliance_counts is left without such a check on purpose: each counter is split over shards (0004), a period
-- counted in one shard may be taken out in another, so one shard's row is negative while the counter (their sum,
-- what every reader reads) is not.
ALTER TABLE schedules
    ADD CONSTRAINT schedules_freeze_count_not_negative CHECK (freeze_count >= 0),
    ADD CONSTRAINT schedules_ladder_reset_seq_not_negative CHECK (ladder_reset_seq >= 0);
