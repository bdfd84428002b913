-- A planned delivery wakes the delivery worker when its transaction commits, instead of waiting for the next
-- tick (up to IOMKI_NOTIFIER_TICK, 1 s, of an alert's latency). One notification per inserting statement; the
-- tick still catches retries as they fall due, and anything a lost notification left behind.
CREATE FUNCTION deliveries_wake_worker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_deliveries', '');
    RETURN NULL;
END $$;
CREATE TRIGGER deliveries_wake_worker AFTER INSERT ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION deliveries_wake_worker();
