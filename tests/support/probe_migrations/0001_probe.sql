CREATE TABLE applied (
    position    bigserial PRIMARY KEY,
    event_id    uuid NOT NULL,
    facility_id uuid NOT NULL,
    sequence    int NOT NULL
);
