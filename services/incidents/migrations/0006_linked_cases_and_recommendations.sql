-- Clusters are linked cases, and a person decides a closure (domain.ClusterRule, domain.Recommendation):
-- cases are linked as one chain of transmission; unlinked cases above a count raise a possible cluster once; a
-- cluster's closure is recommended to the task force, which orders, changes or declines it; a closure records who
-- ordered it. The timers table takes a new kind, 'recommendation_answer' (its kind is not constrained).

CREATE TABLE case_links (
    case_id        uuid NOT NULL REFERENCES cases,
    linked_case_id uuid NOT NULL REFERENCES cases,
    facility_id    uuid NOT NULL REFERENCES plants,
    kind           text NOT NULL,
    linked_by      text NOT NULL,
    linked_role    text NOT NULL,
    linked_at      timestamptz NOT NULL,
    PRIMARY KEY (case_id, linked_case_id),
    CONSTRAINT case_links_not_to_itself CHECK (case_id <> linked_case_id)
);
-- One link per pair of cases, whichever way round it was made.
CREATE UNIQUE INDEX case_links_pair ON case_links (least(case_id, linked_case_id), greatest(case_id, linked_case_id));
-- A case's links the other way round (GET /cases/{id}); a plant's links (cluster detection).
CREATE INDEX case_links_linked ON case_links (linked_case_id);
CREATE INDEX case_links_facility ON case_links (facility_id);

CREATE TABLE possible_clusters (
    possible_cluster_id uuid PRIMARY KEY,
    facility_id         uuid NOT NULL REFERENCES plants,
    case_ids            uuid[] NOT NULL,
    first_confirmed_on  date NOT NULL,
    last_confirmed_on   date NOT NULL,
    raised_at           timestamptz NOT NULL
);
CREATE INDEX possible_clusters_facility ON possible_clusters (facility_id, last_confirmed_on);

-- NULL: declared before clusters needed links (any cases within the window).
ALTER TABLE clusters ADD COLUMN rule text;

-- Closures before this migration were all ordered by rule.
ALTER TABLE closures
    ADD COLUMN ordered_by        text NOT NULL DEFAULT 'rule',
    ADD COLUMN ordered_by_actor  text,
    ADD COLUMN recommendation_id uuid;

CREATE TABLE closure_recommendations (
    recommendation_id  uuid PRIMARY KEY,
    facility_id        uuid NOT NULL REFERENCES plants,
    cluster_id         uuid NOT NULL REFERENCES clusters,
    scope              text NOT NULL,
    days               int NOT NULL CONSTRAINT closure_recommendations_days CHECK (days BETWEEN 1 AND 60),
    rule               text NOT NULL,
    case_count         int NOT NULL CHECK (case_count > 0),
    first_confirmed_on date NOT NULL,
    last_confirmed_on  date NOT NULL,
    recommended_at     timestamptz NOT NULL,
    answer_by          timestamptz NOT NULL,
    status             text NOT NULL CHECK (status IN ('pending', 'ordered', 'declined')),
    overdue_at         timestamptz,
    decided_at         timestamptz,
    decided_by         text,
    decided_role       text,
    closure_id         uuid REFERENCES closures,
    ordered_scope      text,
    ordered_days       int CHECK (ordered_days BETWEEN 1 AND 60),
    reason             text
);
-- GET /closure-recommendations: keyset on the id, by status; the region comes from the plant.
CREATE INDEX closure_recommendations_status ON closure_recommendations (status, recommendation_id);
CREATE INDEX closure_recommendations_facility ON closure_recommendations (facility_id);
