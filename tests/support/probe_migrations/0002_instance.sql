-- Which instance of the probe applied the event (two instances share one consumer group).
ALTER TABLE applied ADD COLUMN instance text NOT NULL DEFAULT 'a';
