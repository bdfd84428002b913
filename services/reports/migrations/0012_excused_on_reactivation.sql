-- Reactivation on conditions (SE 3/2021, issue #30 item 6): the missed periods a frozen company filed late are
-- excused once its reactivation request is approved, and no ladder counts them as missed or warned again. The period
-- keeps its status (reported late) and its warning; when it was excused, and by which request, is recorded beside
-- them. Both nullable without a default: adding them rewrites no row of the largest table.
ALTER TABLE periods ADD COLUMN excused_at timestamptz, ADD COLUMN excused_by_request uuid;
