-- Consumers commit their positions to Kafka after the transaction that applies a batch (shared/consumer.py): a
-- topic's log is never replaced under them, so the positions this table kept, with the log each belonged to, go.
DROP TABLE consumer_positions;
