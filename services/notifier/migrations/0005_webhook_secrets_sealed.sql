-- Webhooks are signed per Standard Webhooks, and a secret is kept once, sealed: on its subscription or contact,
-- never copied onto a delivery. A rotation keeps the previous secret for a grace period (both sign meanwhile).
--
-- Sealing needs the key from configuration, which SQL never sees: the notifier seals every secret still in the
-- clear (`secret`) at start, then clears it (idempotent, row by row). Until then nothing is lost: the clear column
-- stays, and a later migration may drop it once every notifier runs this version.
ALTER TABLE subscriptions
    ADD COLUMN secret_sealed          bytea,
    ADD COLUMN previous_secret_sealed bytea,
    ADD COLUMN secret_rotated_at      timestamptz;
ALTER TABLE task_force_contacts
    ADD COLUMN secret_sealed          bytea,
    ADD COLUMN previous_secret_sealed bytea,
    ADD COLUMN secret_rotated_at      timestamptz;

-- A delivery names where its secret lives and the worker reads it at each attempt. Existing webhook deliveries
-- are pointed at the contact or subscription whose secret they copied (a contact first: routing kept the
-- contact's copy when both named one target); one matching neither fails as "recipient removed".
ALTER TABLE deliveries
    ADD COLUMN subscription_id  uuid,
    ADD COLUMN contact_position int,
    ADD CONSTRAINT deliveries_one_secret_owner CHECK (subscription_id IS NULL OR contact_position IS NULL);
UPDATE deliveries d SET contact_position = (
    SELECT min(c.position) FROM task_force_contacts c
    WHERE c.task_force_id = d.task_force_id AND c.webhook = d.target AND c.secret = d.secret)
WHERE d.channel = 'webhook' AND d.secret IS NOT NULL;
UPDATE deliveries d SET subscription_id = (
    SELECT s.subscription_id FROM subscriptions s
    WHERE s.task_force_id = d.task_force_id AND s.channel = 'webhook' AND s.target = d.target AND s.secret = d.secret
    ORDER BY s.created_at, s.subscription_id LIMIT 1)
WHERE d.channel = 'webhook' AND d.secret IS NOT NULL AND d.contact_position IS NULL;
ALTER TABLE deliveries DROP COLUMN secret;
