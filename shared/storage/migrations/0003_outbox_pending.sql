-- The relay's queue and its record of what it published, beside the outbox instead of a mark on each row. Marking
-- an event published rewrote its whole row (the event's bytes) and three index entries: the largest part of the
-- database's work for an event in the pipeline. Now each insert into the outbox queues the positions it took in
-- `outbox_pending`, in the same statement (`Outbox` in shared/unit_of_work.py), the relay deletes them once the
-- broker has the events, and `outbox_publications` keeps, for each minute in which it published, the lowest
-- position it published.
--
-- The retention still counts from publication. Every event published within the window has a position at or
-- above the lowest position published in the window's minutes, so the relay keeps everything from there on, and
-- gives it again to a broker that lost its data (a superset at worst: consumers drop what they already had). An
-- event below that position and no longer pending was published before the window.
CREATE TABLE outbox_pending (position bigint PRIMARY KEY);
INSERT INTO outbox_pending SELECT position FROM outbox WHERE published_at IS NULL;

CREATE TABLE outbox_publications (
    minute         timestamptz PRIMARY KEY,
    first_position bigint NOT NULL
);
-- What was published before, as if in the minute of the latest of it: kept for a retention after that.
INSERT INTO outbox_publications (minute, first_position)
    SELECT date_trunc('minute', max(published_at)), min(position) FROM outbox WHERE published_at IS NOT NULL
    HAVING count(*) > 0;

DROP INDEX outbox_unpublished;
DROP INDEX outbox_published;
ALTER TABLE outbox DROP COLUMN published_at;
