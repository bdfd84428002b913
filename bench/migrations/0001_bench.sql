CREATE TABLE received (
    event_id     uuid PRIMARY KEY,
    facility_id  uuid NOT NULL,
    emitted_at   timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
