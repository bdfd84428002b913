"""A notifier's data from before migration 0005 (secrets in the clear, copied onto every delivery), upgraded.

The migration points each webhook delivery at the contact or subscription whose secret it copied and drops the
copies; the notifier, starting, seals every secret still in the clear and clears the text. Nothing is lost: each
secret opens to what it was, and a delivery that matched neither fails as "recipient removed" when it is tried.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from services.notifier.domain import Alert, EscalationChain, Grouping, Plant, SecretRef, WebhookSecrets
from services.notifier.handlers import NotifierConfig, NotifierHandlers
from services.notifier.repository import NotifierWork
from services.notifier.sealing import SecretSeal
from shared.clock import SystemClock
from shared.storage.db import create_pool, migrate
from shared.storage.unit_of_work import Database
from tests.support.platform import schema_before, service_migrations

pytestmark = pytest.mark.integration

SCHEMA = "notifier_upgrade"
CONTACT_SECRET = "satgas-bogor-contact-secret-2025"  # noqa: S105 -- free text, as secrets were before 0005
SUBSCRIPTION_SECRET = "satgas-bogor-feed-secret-2025"  # noqa: S105


async def test_secrets_in_the_clear_are_referenced_sealed_and_cleared_and_none_is_lost(platform):
    url = await schema_before(platform, SCHEMA, "notifier", 5)
    pool = await create_pool(url, SCHEMA)
    try:
        task_force, subscription = uuid.uuid4(), uuid.uuid4()
        alert = Alert.raise_for("PermitFrozen", Plant(uuid.uuid4(), "32", "32.01"), {}, now=datetime.now(UTC),
                                chain=EscalationChain(), grouping=Grouping())
        async with pool.acquire() as connection:
            await NotifierWork(connection).notifier.add_alert(alert)
            await connection.execute(
                "INSERT INTO task_forces VALUES ($1, 'regency', '32.01', 'Satgas Bogor', 'op', 'operator', now())",
                task_force)
            await connection.execute(
                "INSERT INTO task_force_contacts VALUES ($1, 0, 'law_enforcement', NULL,"
                " 'https://satpolpp.example/h', $2)", task_force, CONTACT_SECRET)
            await connection.execute(
                "INSERT INTO subscriptions VALUES ($1, $2, 'webhook', 'https://feed.example/h', $3, '{PermitFrozen}',"
                " 'op', 'operator', now())", subscription, task_force, SUBSCRIPTION_SECRET)
            deliveries = {name: uuid.uuid4() for name in ("contact", "subscription", "orphan", "email")}
            for name, target, secret, channel in (
                    ("contact", "https://satpolpp.example/h", CONTACT_SECRET, "webhook"),
                    ("subscription", "https://feed.example/h", SUBSCRIPTION_SECRET, "webhook"),
                    ("orphan", "https://gone.example/h", "a-secret-nobody-holds-now", "webhook"),
                    ("email", "kes@bogor.example", None, "email")):
                await connection.execute(
                    "INSERT INTO deliveries (delivery_id, alert_id, channel, recipient_kind, task_force_id, level,"
                    " target, secret, subject, body, status, attempts, next_attempt_at, created_at) VALUES"
                    " ($1, $2, $3, 'task_force', $4, 'regency', $5, $6, 's', '\\x7b7d', 'pending', 0, now(), now())",
                    deliveries[name], alert.alert_id, channel, task_force, target, secret)

        await migrate(url, SCHEMA, service_migrations(SCHEMA, "notifier"))
        async with pool.acquire() as connection:
            rows = {r["delivery_id"]: (r["subscription_id"], r["contact_position"]) for r in await connection.fetch(
                "SELECT delivery_id, subscription_id, contact_position FROM deliveries")}
            assert rows == {deliveries["contact"]: (None, 0), deliveries["subscription"]: (subscription, None),
                            deliveries["orphan"]: (None, None), deliveries["email"]: (None, None)}

        key = Fernet.generate_key()
        handlers = NotifierHandlers(Database(pool, NotifierWork), SystemClock(), NotifierConfig(), SecretSeal([key]))
        for _ in range(2):  # every replica runs it at start: the second finds nothing to do
            await handlers.keep_secrets_sealed()
            async with pool.acquire() as connection:
                clear = await connection.fetchval(
                    "SELECT count(*) FROM (SELECT secret FROM subscriptions WHERE secret IS NOT NULL UNION ALL"
                    " SELECT secret FROM task_force_contacts WHERE secret IS NOT NULL) t")
                assert clear == 0
                repository = NotifierWork(connection).notifier
                for ref, secret in ((SecretRef(contact_position=0), CONTACT_SECRET),
                                    (SecretRef(subscription_id=subscription), SUBSCRIPTION_SECRET)):
                    sealed = await repository.webhook_secrets(task_force, ref)
                    assert sealed is not None and secret.encode() not in sealed.current
                    assert SecretSeal([key]).open(sealed) == WebhookSecrets(secret)

        # What the worker reads for each delivery: the secret where it lives, or nothing for the orphan.
        async with Database(pool, NotifierWork).transaction() as work:
            jobs = {job.delivery.delivery_id: job for job in await work.notifier.lease_due(
                datetime.now(UTC), NotifierConfig().lease, 10)}
        assert SecretSeal([key]).open(jobs[deliveries["contact"]].secrets).current == CONTACT_SECRET
        assert SecretSeal([key]).open(jobs[deliveries["subscription"]].secrets).current == SUBSCRIPTION_SECRET
        assert jobs[deliveries["orphan"]].secrets is None and jobs[deliveries["email"]].secrets is None
    finally:
        await pool.close()
