"""Plain SQL for the notifier; no SQL anywhere else in it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.notifier.domain import (
    Alert, AlertStatus, AlertTimer, Attachment, Channel, CompanyContact, CompanyLetter, Delivery, DeliveryStatus,
    Directory, Division, DivisionContact, Escalation, Level, LetterPairing, Plant, Recipient, SecretRef, Subscription,
    TaskForce,
)
from services.notifier.sealing import SealedSecrets
from shared import regions
from shared.contract import Severity
from shared.storage.db import Connection
from shared.storage.unit_of_work import UnitOfWork

_ALERT = ("alert_id, alert_key, event_type, severity, facility_id, province_code, regency_code, level, status,"
          " count, first_seen_at, last_seen_at, group_until, escalate_at, digest_closes_at, notified_levels,"
          " acknowledged_at, acknowledged_by, acknowledged_role, details")
_DELIVERY = ("delivery_id, alert_id, channel, recipient_kind, task_force_id, level, target, subscription_id,"
             " contact_position, status, attempts, next_attempt_at, last_error")
# Alerts in a caller's region: a province code covers its regencies ($n NULL: every region).
_IN_REGION = "({p}::text IS NULL OR regency_code = {p} OR starts_with(regency_code, {p} || '.'))"


@dataclass(frozen=True)
class Job:
    """A delivery leased for one attempt, with what is sent and what AlertDelivered must say."""

    delivery: Delivery
    subject: str
    body: bytes
    plant: Plant
    alert_level: Level
    secrets: SealedSecrets | None  # a webhook's, read at lease time; None when its owner is gone
    attachment: Attachment | None = None


class NotifierRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # -- directory --------------------------------------------------------------------------------

    async def add_task_force(self, tf: TaskForce, secrets: dict[int, SealedSecrets], *, actor: str, role: str,
                             now: datetime) -> None:
        """`secrets`: each webhook contact's, by its position."""
        await self._connection.execute(
            "INSERT INTO task_forces (task_force_id, level, region_code, name, created_by, created_role, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            tf.task_force_id, tf.level.value, tf.region_code, tf.name, actor, role, now,
        )
        await self._connection.executemany(
            "INSERT INTO task_force_contacts (task_force_id, position, division, email, webhook, secret_sealed)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [(tf.task_force_id, i, c.division.value, c.email, c.webhook, secrets[i].current if i in secrets else None)
             for i, c in enumerate(tf.contacts)],
        )

    async def get_task_force(self, task_force_id: uuid.UUID) -> TaskForce | None:
        found = await self._task_forces("WHERE task_force_id = $1", task_force_id)
        return found[0] if found else None

    async def list_task_forces(self, region: str | None) -> list[TaskForce]:
        return await self._task_forces(
            "WHERE ($1::text IS NULL OR region_code = $1 OR starts_with(region_code, $1 || '.'))"
            " ORDER BY region_code, level, name", region,
        )

    async def add_subscription(self, sub: Subscription, secrets: SealedSecrets | None, *, actor: str, role: str,
                               now: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO subscriptions (subscription_id, task_force_id, channel, target, secret_sealed, event_types,"
            " created_by, created_role, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            sub.subscription_id, sub.task_force_id, sub.channel.value, sub.target,
            secrets.current if secrets else None, sorted(sub.event_types), actor, role, now,
        )

    async def get_subscription(self, subscription_id: uuid.UUID) -> Subscription | None:
        row = await self._connection.fetchrow(
            "SELECT subscription_id, task_force_id, channel, target, event_types FROM subscriptions"
            " WHERE subscription_id = $1", subscription_id,
        )
        return _subscription(row) if row else None

    # -- webhook secrets (sealed: see sealing.py) -------------------------------------------------

    async def webhook_secrets(self, task_force_id: uuid.UUID, ref: SecretRef) -> SealedSecrets | None:
        """The secrets `ref` names, locked until the transaction ends; None when it holds none."""
        row = await self._connection.fetchrow(
            "SELECT secret_sealed, previous_secret_sealed, secret_rotated_at FROM " + _secret_table(ref)
            + " WHERE task_force_id = $1 AND " + _owner_column(ref) + " = $2 AND secret_sealed IS NOT NULL FOR UPDATE",
            task_force_id, _owner_key(ref),
        )
        return _sealed(row) if row else None

    async def save_webhook_secrets(self, task_force_id: uuid.UUID, ref: SecretRef, sealed: SealedSecrets) -> None:
        """Also clears a secret still held in the clear (from before migration 0005)."""
        await self._connection.execute(
            "UPDATE " + _secret_table(ref) + " SET secret_sealed = $3, previous_secret_sealed = $4,"
            " secret_rotated_at = $5, secret = NULL WHERE task_force_id = $1 AND " + _owner_column(ref) + " = $2",
            task_force_id, _owner_key(ref), sealed.current, sealed.previous, sealed.rotated_at,
        )

    async def sealed_secret_owners(self) -> list[tuple[uuid.UUID, SecretRef]]:
        """Every contact and subscription holding a sealed secret (the directory: hundreds of rows, not millions)."""
        subscriptions = await self._connection.fetch(
            "SELECT task_force_id, subscription_id FROM subscriptions WHERE secret_sealed IS NOT NULL")
        contacts = await self._connection.fetch(
            "SELECT task_force_id, position FROM task_force_contacts WHERE secret_sealed IS NOT NULL")
        return ([(r["task_force_id"], SecretRef(subscription_id=r["subscription_id"])) for r in subscriptions]
                + [(r["task_force_id"], SecretRef(contact_position=r["position"])) for r in contacts])

    async def secrets_in_the_clear(self, limit: int) -> list[tuple[uuid.UUID, SecretRef, str]]:
        """Secrets still held in the clear (written before migration 0005), up to `limit` of each kind, locked."""
        subscriptions = await self._connection.fetch(
            "SELECT task_force_id, subscription_id, secret FROM subscriptions WHERE secret IS NOT NULL"
            " LIMIT $1 FOR UPDATE", limit,
        )
        contacts = await self._connection.fetch(
            "SELECT task_force_id, position, secret FROM task_force_contacts WHERE secret IS NOT NULL"
            " LIMIT $1 FOR UPDATE", limit,
        )
        return ([(r["task_force_id"], SecretRef(subscription_id=r["subscription_id"]), r["secret"])
                 for r in subscriptions]
                + [(r["task_force_id"], SecretRef(contact_position=r["position"]), r["secret"]) for r in contacts])

    async def save_company_contact(self, contact: CompanyContact, *, permit_id: uuid.UUID, phone: str | None,
                                   now: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO company_contacts (facility_id, permit_id, nib, company_name, email, phone, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (facility_id) DO UPDATE SET permit_id = $2,"
            " nib = $3, company_name = $4, email = $5, phone = $6, updated_at = $7",
            contact.facility_id, permit_id, contact.nib, contact.company_name, contact.email, phone, now,
        )

    async def subscribed_regions(self, event_type: str) -> set[str]:
        """The regions of the task forces that subscribed to this event type (`ID` for the national one)."""
        rows = await self._connection.fetch(
            "SELECT DISTINCT t.region_code FROM subscriptions s JOIN task_forces t USING (task_force_id)"
            " WHERE $1 = ANY(s.event_types)", event_type,
        )
        return {row["region_code"] for row in rows}

    async def directory_for(self, plant: Plant) -> Directory:
        """The task forces whose region covers the plant (regency, its province, national) and their wishes."""
        task_forces = await self._task_forces(
            "WHERE region_code = ANY($1::text[])", [regions.NATIONAL, plant.province_code, plant.regency_code]
        )
        rows = await self._connection.fetch(
            "SELECT subscription_id, task_force_id, channel, target, event_types FROM subscriptions"
            " WHERE task_force_id = ANY($1::uuid[])", [tf.task_force_id for tf in task_forces],
        )
        subscriptions = tuple(_subscription(r) for r in rows)
        company = await self._connection.fetchrow(
            "SELECT facility_id, nib, company_name, email FROM company_contacts WHERE facility_id = $1",
            plant.facility_id,
        )
        # The estate's contact is its own facility's; its name as the tenancy gave it until the contact comes.
        estate = await self._connection.fetchrow(
            "SELECT t.estate_facility_id AS facility_id, t.estate_nib AS nib,"
            " coalesce(c.company_name, t.estate_name) AS company_name, c.email"
            " FROM estate_tenancies t LEFT JOIN company_contacts c ON c.facility_id = t.estate_facility_id"
            " WHERE t.facility_id = $1", plant.facility_id,
        )
        return Directory(tuple(task_forces), subscriptions, CompanyContact(**dict(company)) if company else None,
                         CompanyContact(**dict(estate)) if estate else None)

    async def confirm_tenancy(self, facility_id: uuid.UUID, *, estate_facility_id: uuid.UUID, estate_nib: str,
                              estate_name: str, confirmed_at: datetime, now: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO estate_tenancies (facility_id, estate_facility_id, estate_nib, estate_name, confirmed_at,"
            " recorded_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (facility_id) DO UPDATE SET"
            " estate_facility_id = $2, estate_nib = $3, estate_name = $4, confirmed_at = $5, recorded_at = $6",
            facility_id, estate_facility_id, estate_nib, estate_name, confirmed_at, now)

    async def end_tenancy(self, facility_id: uuid.UUID, *, estate_facility_id: uuid.UUID) -> bool:
        """The tenancy in that estate ended; one in another estate, confirmed since, stays."""
        status = await self._connection.execute(
            "DELETE FROM estate_tenancies WHERE facility_id = $1 AND estate_facility_id = $2",
            facility_id, estate_facility_id)
        return status.endswith(" 1")

    async def _task_forces(self, where: str, *args: Any) -> list[TaskForce]:
        rows = await self._connection.fetch(
            f"SELECT task_force_id, level, region_code, name FROM task_forces {where}", *args
        )
        contacts = await self._connection.fetch(
            "SELECT task_force_id, division, email, webhook FROM task_force_contacts"
            " WHERE task_force_id = ANY($1::uuid[]) ORDER BY task_force_id, position",
            [r["task_force_id"] for r in rows],
        )
        by_tf: dict[uuid.UUID, list[DivisionContact]] = {}
        for c in contacts:
            by_tf.setdefault(c["task_force_id"], []).append(
                DivisionContact(Division(c["division"]), c["email"], c["webhook"])
            )
        return [TaskForce(r["task_force_id"], Level(r["level"]), r["region_code"], r["name"],
                          tuple(by_tf.get(r["task_force_id"], ()))) for r in rows]

    # -- alerts -----------------------------------------------------------------------------------

    async def lock_key(self, alert_key: str) -> None:
        """Serialise the events of one alert key, so that grouping never opens two alerts for one key."""
        await self._connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", alert_key)

    async def open_alert(self, alert_key: str) -> Alert | None:
        row = await self._connection.fetchrow(
            f"SELECT {_ALERT} FROM alerts WHERE alert_key = $1 AND status = 'open'"
            " ORDER BY first_seen_at DESC LIMIT 1 FOR UPDATE", alert_key,
        )
        return _alert(row) if row else None

    async def get_alert(self, alert_id: uuid.UUID, *, for_update: bool = False) -> Alert | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(f"SELECT {_ALERT} FROM alerts WHERE alert_id = $1{lock}", alert_id)
        return _alert(row) if row else None

    async def list_alerts(self, status: AlertStatus | None, region: str | None,
                          after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Alert]:
        """Newest first, from just past `after` (the last alert's first sighting and id) when given."""
        seen, alert_id = after or (None, None)
        rows = await self._connection.fetch(
            f"SELECT {_ALERT} FROM alerts WHERE ($1::text IS NULL OR status = $1) AND {_IN_REGION.format(p='$2')}"
            " AND ($4::timestamptz IS NULL OR (first_seen_at, alert_id) < ($4, $5::uuid))"
            " ORDER BY first_seen_at DESC, alert_id DESC LIMIT $3",
            status.value if status else None, region, limit, seen, alert_id,
        )
        return [_alert(r) for r in rows]

    async def add_alert(self, alert: Alert) -> None:
        await self._connection.execute(
            f"INSERT INTO alerts ({_ALERT}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,"
            "$19,$20::jsonb)", *_alert_values(alert),
        )

    async def save_alert(self, alert: Alert) -> None:
        await self._connection.execute(
            "UPDATE alerts SET level = $2, status = $3, count = $4, last_seen_at = $5, escalate_at = $6,"
            " digest_closes_at = $7, notified_levels = $8, acknowledged_at = $9, acknowledged_by = $10,"
            " acknowledged_role = $11 WHERE alert_id = $1",
            alert.alert_id, alert.level.value, alert.status.value, alert.count, alert.last_seen_at,
            alert.escalate_at, alert.digest_closes_at, [lv.value for lv in alert.notified_levels],
            alert.acknowledged_at, alert.acknowledged_by, alert.acknowledged_role,
        )

    async def due_escalations(self, now: datetime, limit: int) -> list[Alert]:
        """Timers that have fired. Each is then re-read under its locks, so a replica that got there first wins."""
        # An escalation that failed waits for its next attempt, behind the alerts due before then (migration 0004).
        rows = await self._connection.fetch(
            f"SELECT {_ALERT} FROM alerts WHERE status = 'open' AND escalate_at IS NOT NULL"
            " AND coalesce(escalation_next_attempt_at, escalate_at) <= $1"
            " ORDER BY coalesce(escalation_next_attempt_at, escalate_at) LIMIT $2", now, limit,
        )
        return [_alert(r) for r in rows]

    async def record_escalation(self, alert_id: uuid.UUID, escalation: Escalation, now: datetime) -> bool:
        """False when this step was already taken: the caller then changes and sends nothing."""
        inserted = await self._connection.fetchval(
            "INSERT INTO escalations (alert_id, to_level, from_level, at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING RETURNING true",
            alert_id, escalation.to_level.value, escalation.from_level.value, now,
        )
        return bool(inserted)

    async def escalations_of(self, alert_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self._connection.fetch(
            "SELECT from_level, to_level, at FROM escalations WHERE alert_id = $1 ORDER BY at", alert_id
        )
        return [dict(r) for r in rows]

    async def due_digests(self, now: datetime, limit: int) -> list[Alert]:
        rows = await self._connection.fetch(
            f"SELECT {_ALERT} FROM alerts WHERE digest_closes_at IS NOT NULL"
            " AND coalesce(digest_next_attempt_at, digest_closes_at) <= $1"
            " ORDER BY coalesce(digest_next_attempt_at, digest_closes_at) LIMIT $2", now, limit,
        )
        return [_alert(r) for r in rows]

    async def failed_attempts(self, alert_id: uuid.UUID, timer: AlertTimer) -> int:
        """The failures of the alert's `timer` so far; the row is locked until the failure is recorded."""
        attempts = await self._connection.fetchval(
            f"SELECT {_attempts_column(timer)} FROM alerts WHERE alert_id = $1 FOR UPDATE", alert_id)
        return int(attempts or 0)

    async def record_failed_attempt(self, alert_id: uuid.UUID, timer: AlertTimer, attempts: int,
                                    next_attempt_at: datetime, error: str) -> None:
        """`attempts` counts this failure."""
        await self._connection.execute(
            f"UPDATE alerts SET ({_retry_columns(timer)}) = ($2, $3, $4) WHERE alert_id = $1",
            alert_id, attempts, next_attempt_at, error)

    async def timer_done(self, alert_id: uuid.UUID, timer: AlertTimer) -> None:
        """The timer fired: its failures belong to the step just taken, not to the next one (an escalation's next
        step is due at its own time, not at a retry time left from this one)."""
        columns = _retry_columns(timer)
        await self._connection.execute(
            f"UPDATE alerts SET ({columns}) = (0, NULL, NULL)"
            f" WHERE alert_id = $1 AND ({columns}) IS DISTINCT FROM (0, NULL, NULL)", alert_id)

    # -- deliveries -------------------------------------------------------------------------------

    async def add_deliveries(self, planned: list[tuple[Delivery, str, bytes, Attachment | None]],
                             now: datetime) -> None:
        await self._connection.executemany(
            f"INSERT INTO deliveries ({_DELIVERY}, subject, body, created_at, attachment_name, attachment)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)",
            [(*_delivery_values(d), subject, body, now, attached.filename if attached else None,
              attached.content if attached else None) for d, subject, body, attached in planned],
        )

    async def lease_due(self, now: datetime, lease: timedelta, limit: int) -> list[Job]:
        """Take due deliveries for one attempt each. The lease (a later next_attempt_at) is committed before
        sending, so a crash mid-send means the delivery is simply retried when the lease runs out. A webhook's
        secrets come from its subscription or contact as they are now (a rotation reaches pending deliveries)."""
        rows = await self._connection.fetch(
            "WITH leased AS (UPDATE deliveries d SET next_attempt_at = $2 FROM alerts a"
            " WHERE a.alert_id = d.alert_id AND d.delivery_id IN ("
            "   SELECT delivery_id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1"
            "   ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
            " RETURNING d.delivery_id, d.alert_id, d.channel, d.recipient_kind, d.task_force_id, d.level, d.target,"
            " d.subscription_id, d.contact_position, d.status, d.attempts, d.next_attempt_at, d.last_error,"
            " d.subject, d.body, d.attachment_name, d.attachment, a.facility_id, a.province_code, a.regency_code,"
            " a.level AS alert_level)"
            " SELECT l.*, coalesce(s.secret_sealed, c.secret_sealed) AS secret_sealed,"
            " coalesce(s.previous_secret_sealed, c.previous_secret_sealed) AS previous_secret_sealed,"
            " coalesce(s.secret_rotated_at, c.secret_rotated_at) AS secret_rotated_at FROM leased l"
            " LEFT JOIN subscriptions s ON s.subscription_id = l.subscription_id AND s.task_force_id = l.task_force_id"
            " LEFT JOIN task_force_contacts c ON c.task_force_id = l.task_force_id AND c.position = l.contact_position",
            now, now + lease, limit,
        )
        return [Job(_delivery(r), r["subject"], bytes(r["body"]),
                    Plant(r["facility_id"], r["province_code"], r["regency_code"]), Level(r["alert_level"]),
                    _sealed(r) if r["secret_sealed"] is not None else None,
                    Attachment(r["attachment_name"], bytes(r["attachment"])) if r["attachment"] is not None else None)
                for r in rows]

    async def get_delivery(self, delivery_id: uuid.UUID) -> Delivery | None:
        row = await self._connection.fetchrow(
            f"SELECT {_DELIVERY} FROM deliveries WHERE delivery_id = $1 FOR UPDATE", delivery_id
        )
        return _delivery(row) if row else None

    async def save_attempt(self, delivery: Delivery, *, succeeded: bool, error: str | None, now: datetime) -> None:
        await self._connection.execute(
            "UPDATE deliveries SET status = $2, attempts = $3, next_attempt_at = $4, last_error = $5"
            " WHERE delivery_id = $1",
            delivery.delivery_id, delivery.status.value, delivery.attempts, delivery.next_attempt_at,
            delivery.last_error,
        )
        await self._connection.execute(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at, succeeded, error) VALUES ($1, $2, $3, $4, $5)",
            delivery.delivery_id, delivery.attempts, now, succeeded, error,
        )

    async def deliveries_of(self, alert_id: uuid.UUID) -> list[dict[str, Any]]:
        """Deliveries and their attempts, without addresses: a company's contact is not shown to anyone."""
        rows = await self._connection.fetch(
            "SELECT delivery_id, channel, recipient_kind, task_force_id, level, subject, attachment_name AS attachment,"
            " status, attempts, next_attempt_at, last_error, created_at FROM deliveries WHERE alert_id = $1"
            " ORDER BY created_at, delivery_id", alert_id,
        )
        attempts = await self._connection.fetch(
            "SELECT delivery_id, attempt, at, succeeded, error FROM delivery_attempts"
            " WHERE delivery_id = ANY($1::uuid[]) ORDER BY delivery_id, attempt", [r["delivery_id"] for r in rows],
        )
        by_delivery: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for a in attempts:
            by_delivery.setdefault(a["delivery_id"], []).append(
                {"attempt": a["attempt"], "at": a["at"], "succeeded": a["succeeded"], "error": a["error"]}
            )
        return [dict(r) | {"attempt_log": by_delivery.get(r["delivery_id"], [])} for r in rows]


_PAIRING = ("cause_event_id, facility_id, alert_id, event_type, wait_until, letter_number, letter_kind,"
            " letter_issued_at, pdf, notice_planned, letter_sent, cause")


class LetterRepository:
    """Company e-mails about warnings and sanctions, paired with their letters (migration 0006). Callers hold the
    plant's lock."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def event_arrived(self, cause_event_id: uuid.UUID, facility_id: uuid.UUID, alert_id: uuid.UUID,
                            event_type: str, cause: str | None, wait_until: datetime,
                            now: datetime) -> LetterPairing:
        row = await self._connection.fetchrow(
            "INSERT INTO company_letters (cause_event_id, facility_id, alert_id, event_type, cause, wait_until,"
            " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (cause_event_id) DO UPDATE SET"
            " alert_id = $3, event_type = $4, cause = $5, wait_until = $6, updated_at = $7"
            f" WHERE company_letters.alert_id IS NULL RETURNING {_PAIRING}",
            cause_event_id, facility_id, alert_id, event_type, cause, wait_until, now,
        )
        return _pairing(row) if row else await self._get(cause_event_id)

    async def letter_arrived(self, cause_event_id: uuid.UUID, facility_id: uuid.UUID, letter: CompanyLetter,
                             now: datetime) -> LetterPairing:
        row = await self._connection.fetchrow(
            "INSERT INTO company_letters (cause_event_id, facility_id, letter_number, letter_kind, letter_issued_at,"
            " pdf, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (cause_event_id) DO UPDATE SET"
            " letter_number = $3, letter_kind = $4, letter_issued_at = $5, pdf = $6, updated_at = $7"
            f" WHERE company_letters.letter_number IS NULL RETURNING {_PAIRING}",
            cause_event_id, facility_id, letter.number, letter.kind, letter.issued_at, letter.pdf, now,
        )
        return _pairing(row) if row else await self._get(cause_event_id)

    async def pairing(self, cause_event_id: uuid.UUID) -> LetterPairing | None:
        row = await self._connection.fetchrow(
            f"SELECT {_PAIRING} FROM company_letters WHERE cause_event_id = $1 FOR UPDATE", cause_event_id)
        return _pairing(row) if row else None

    async def _get(self, cause_event_id: uuid.UUID) -> LetterPairing:
        found = await self.pairing(cause_event_id)
        if found is None:  # the statement before wrote or found it, in this transaction
            raise LookupError(f"no letter pairing for {cause_event_id}")
        return found

    async def planned(self, cause_event_id: uuid.UUID, *, notice: bool, letter: bool, now: datetime) -> None:
        """What was planned; a letter that went out is dropped (its delivery holds it)."""
        await self._connection.execute(
            "UPDATE company_letters SET notice_planned = notice_planned OR $2, letter_sent = letter_sent OR $3,"
            " pdf = CASE WHEN $3 THEN NULL ELSE pdf END, updated_at = $4 WHERE cause_event_id = $1",
            cause_event_id, notice, letter, now,
        )

    async def waited_out(self, now: datetime, limit: int) -> list[LetterPairing]:
        """E-mails whose letter did not come in time. Each is then re-read under its plant's lock."""
        rows = await self._connection.fetch(
            f"SELECT {_PAIRING} FROM company_letters WHERE NOT notice_planned AND alert_id IS NOT NULL"
            " AND wait_until <= $1 ORDER BY wait_until LIMIT $2", now, limit,
        )
        return [_pairing(r) for r in rows]


class NotifierWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.notifier = NotifierRepository(connection)
        self.letters = LetterRepository(connection)


def _retry_columns(timer: AlertTimer) -> str:
    """A timer's failure record (migration 0004): attempts, next attempt, last error."""
    if timer is AlertTimer.ESCALATION:
        return "escalation_attempts, escalation_next_attempt_at, escalation_last_error"
    return "digest_attempts, digest_next_attempt_at, digest_last_error"


def _attempts_column(timer: AlertTimer) -> str:
    return "escalation_attempts" if timer is AlertTimer.ESCALATION else "digest_attempts"


def _alert_values(a: Alert) -> tuple[Any, ...]:
    return (a.alert_id, a.alert_key, a.event_type, a.severity.value, a.plant.facility_id, a.plant.province_code,
            a.plant.regency_code, a.level.value, a.status.value, a.count, a.first_seen_at, a.last_seen_at,
            a.group_until, a.escalate_at, a.digest_closes_at, [lv.value for lv in a.notified_levels],
            a.acknowledged_at, a.acknowledged_by, a.acknowledged_role, json.dumps(a.details))


def _alert(r: asyncpg.Record) -> Alert:
    return Alert(
        alert_id=r["alert_id"], alert_key=r["alert_key"], event_type=r["event_type"],
        severity=Severity(r["severity"]), plant=Plant(r["facility_id"], r["province_code"], r["regency_code"]),
        level=Level(r["level"]), status=AlertStatus(r["status"]), count=r["count"],
        first_seen_at=r["first_seen_at"], last_seen_at=r["last_seen_at"], group_until=r["group_until"],
        escalate_at=r["escalate_at"], digest_closes_at=r["digest_closes_at"],
        notified_levels=tuple(Level(lv) for lv in r["notified_levels"]), acknowledged_at=r["acknowledged_at"],
        acknowledged_by=r["acknowledged_by"], acknowledged_role=r["acknowledged_role"],
        details=json.loads(r["details"]),
    )


def _delivery_values(d: Delivery) -> tuple[Any, ...]:
    r = d.recipient
    ref = r.signed_with or SecretRef()
    return (d.delivery_id, d.alert_id, r.channel.value, r.kind, r.task_force_id,
            r.level.value if r.level else None, r.target, ref.subscription_id, ref.contact_position, d.status.value,
            d.attempts, d.next_attempt_at, d.last_error)


def _delivery(r: asyncpg.Record) -> Delivery:
    signed_with = (SecretRef(r["subscription_id"], r["contact_position"])
                   if r["subscription_id"] is not None or r["contact_position"] is not None else None)
    recipient = Recipient(Channel(r["channel"]), r["target"], Level(r["level"]) if r["level"] else None,
                          r["task_force_id"], signed_with)
    return Delivery(r["delivery_id"], r["alert_id"], recipient, DeliveryStatus(r["status"]), r["attempts"],
                    r["next_attempt_at"], r["last_error"])


def _subscription(r: asyncpg.Record) -> Subscription:
    return Subscription(r["subscription_id"], r["task_force_id"], Channel(r["channel"]), r["target"],
                        frozenset(r["event_types"]))


def _sealed(r: asyncpg.Record) -> SealedSecrets:
    return SealedSecrets(bytes(r["secret_sealed"]),
                         bytes(r["previous_secret_sealed"]) if r["previous_secret_sealed"] is not None else None,
                         r["secret_rotated_at"])


def _secret_table(ref: SecretRef) -> str:
    return "subscriptions" if ref.subscription_id is not None else "task_force_contacts"


def _owner_column(ref: SecretRef) -> str:
    return "subscription_id" if ref.subscription_id is not None else "position"


def _owner_key(ref: SecretRef) -> uuid.UUID | int | None:
    return ref.subscription_id if ref.subscription_id is not None else ref.contact_position


def _pairing(r: asyncpg.Record) -> LetterPairing:
    letter = (CompanyLetter(r["letter_number"], r["letter_kind"], r["letter_issued_at"],
                            bytes(r["pdf"]) if r["pdf"] is not None else None)
              if r["letter_number"] is not None else None)
    return LetterPairing(r["cause_event_id"], r["facility_id"], r["alert_id"], r["event_type"], r["wait_until"],
                         letter, r["notice_planned"], r["letter_sent"], r["cause"])
