-- The sweep takes due periods in (next_action_at, seq) order, a batch at a time. With only next_action_at
-- indexed, the planner had to join and sort every due period to return the first batch: when a million
-- deadlines fall in the same minute, each batch of 500 read all of them and the whole schedules table
-- (measured in `make bench`: 345 ms a batch at 200,000 due, 2.6 ms with this index). Ordered by both
-- columns, a batch is an index range read stopped by the LIMIT. It covers what the old index did.
CREATE INDEX periods_next_action_seq ON periods (next_action_at, seq) WHERE next_action_at IS NOT NULL;
DROP INDEX periods_next_action;
