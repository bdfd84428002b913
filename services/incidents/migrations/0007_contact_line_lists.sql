-- Close contacts as a line list (domain.Contact): each contact of a case has a platform-issued id and a number
-- within its case, never a name; its own last exposure, entry and exit tests, and its own quarantine end, with a
-- timer of its own (timers.subject_id is the contact). A symptomatic case isolates from symptom onset. The health
-- office confirms or corrects cases, and closes the follow-up of their contacts.

CREATE TABLE contacts (
    contact_id         uuid PRIMARY KEY,
    case_id            uuid NOT NULL REFERENCES cases,
    facility_id        uuid NOT NULL REFERENCES plants,
    number             int NOT NULL CONSTRAINT contacts_number_positive CHECK (number > 0),
    last_exposure_on   date NOT NULL,
    exposure_assumed   boolean NOT NULL,
    quarantine_ends_on date NOT NULL,
    status             text NOT NULL,
    entry_test_on      date,
    entry_test_result  text,
    exit_test_on       date,
    exit_test_result   text,
    left_on            date,
    became_case_id     uuid REFERENCES cases,
    recorded_by        text NOT NULL,
    recorded_role      text NOT NULL,
    recorded_at        timestamptz NOT NULL,
    UNIQUE (case_id, number),  -- a case's line list in order (GET /cases/{id}/contacts)
    CONSTRAINT contacts_test_whole CHECK ((entry_test_on IS NULL) = (entry_test_result IS NULL)
                                         AND (exit_test_on IS NULL) = (exit_test_result IS NULL))
);

ALTER TABLE cases
    ADD COLUMN symptom_onset_on     date,
    ADD COLUMN verification         text NOT NULL DEFAULT 'unverified',
    ADD COLUMN verified_by          text,
    ADD COLUMN verified_role        text,
    ADD COLUMN verified_at          timestamptz,
    ADD COLUMN follow_up_closed_by   text,
    ADD COLUMN follow_up_closed_role text,
    ADD COLUMN follow_up_closed_at   timestamptz;

-- Contacts traced at the plant, beside its cases: the tracing ratio per plant and per region (GET /tracing).
ALTER TABLE plants ADD COLUMN contacts_total int NOT NULL DEFAULT 0
    CONSTRAINT plants_contacts_total_not_negative CHECK (contacts_total >= 0);

-- A case entered before this held its contacts as a count, quarantined as one from its confirmation until
-- quarantine_ends_on. Each becomes a listed contact with that exposure (assumed, to be corrected) and that end;
-- still in quarantine where the case's quarantine timer had not fired, released on its end otherwise. At most
-- 1,000 contacts a case, as the domain now takes.
INSERT INTO contacts (contact_id, case_id, facility_id, number, last_exposure_on, exposure_assumed,
                      quarantine_ends_on, status, left_on, recorded_by, recorded_role, recorded_at)
SELECT gen_random_uuid(), c.case_id, c.facility_id, n, c.confirmed_on, true, c.quarantine_ends_on,
       CASE WHEN pending.case_id IS NULL THEN 'released' ELSE 'quarantining' END,
       CASE WHEN pending.case_id IS NULL THEN c.quarantine_ends_on END,
       c.recorded_by, c.recorded_role, c.recorded_at
FROM cases c
CROSS JOIN LATERAL generate_series(1, least(c.close_contacts, 1000)) AS n
LEFT JOIN (SELECT DISTINCT subject_id AS case_id FROM timers
           WHERE kind = 'quarantine_end' AND fired_at IS NULL AND cancelled_at IS NULL) pending
       ON pending.case_id = c.case_id
WHERE c.close_contacts > 0 AND c.quarantine_ends_on IS NOT NULL;
UPDATE cases SET close_contacts = least(close_contacts, 1000) WHERE close_contacts > 1000;

-- A case's pending quarantine timer becomes one timer per contact, due at the same moment.
INSERT INTO timers (timer_id, kind, facility_id, subject_id, due_at)
SELECT gen_random_uuid(), 'quarantine_end', t.facility_id, k.contact_id, t.due_at
FROM timers t JOIN contacts k ON k.case_id = t.subject_id
WHERE t.kind = 'quarantine_end' AND t.fired_at IS NULL AND t.cancelled_at IS NULL;
UPDATE timers SET cancelled_at = now()
WHERE kind = 'quarantine_end' AND fired_at IS NULL AND cancelled_at IS NULL
  AND subject_id IN (SELECT case_id FROM cases);

-- A plant's active quarantines count contacts now, not cases.
UPDATE plants p SET active_quarantines = k.quarantining, contacts_total = k.total
FROM (SELECT facility_id, count(*) AS total, count(*) FILTER (WHERE status = 'quarantining') AS quarantining
      FROM contacts GROUP BY facility_id) k
WHERE k.facility_id = p.facility_id;
UPDATE plants SET active_quarantines = 0
WHERE active_quarantines > 0 AND facility_id NOT IN (SELECT facility_id FROM contacts);

-- One day-5 test for all of a case's contacts, and one end for them all, are gone: each contact has its own.
ALTER TABLE cases DROP COLUMN contacts_exit_test_negative, DROP COLUMN quarantine_ends_on;
