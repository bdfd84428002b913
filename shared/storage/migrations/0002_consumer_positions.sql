-- Where this service's consumer group stands in each partition, and in which log (shared/epochs.py). Written in
-- the transaction that applies a batch, so it is never ahead of what was applied; a new group member starts from
-- here when the log is still the same one, from the log's start when it is not. (The broker's committed offsets
-- cannot say which log they belong to: the embedded broker drops a commit's metadata.)
CREATE TABLE consumer_positions (
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    epoch       text NOT NULL,
    PRIMARY KEY (topic, partition)
);
