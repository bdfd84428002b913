"""Notifier: who must hear about what, how alerts group, retry and escalate (DESIGN §1, §4). Pure: no I/O.

The routing table (`RULES`) is data, read like an alert manager's routing tree: an event type, and where it matters
what the event says, leads to a severity, the task-force division that must act, whether the company is told, and
whether it is alerted at once or counted into a daily digest. Task forces add to it with subscriptions (an event
type for their region, on their own channel). A high-severity alert climbs the task-force hierarchy until someone
acknowledges it (`EscalationChain`).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import random
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from urllib.parse import urlsplit

from shared import refusals, regions
from shared.clock import Backoff
from shared.contract import (
    CapacityBreachDetected, CapacityExcess, CapacityMeasure, CaseDetected, ClassBasis, ClosureAuthority,
    ClosureRecommendationDecided, ClosureRecommendationOverdue, ClosureRecommended, ClosureScope, ClusterDeclared,
    ComplaintCategory, ComplaintFiled, FacilityClosureOrdered, FacilityReopened, FindingResult, GroundCode,
    InspectionRecorded, PossibleClusterRaised, PpkmLevel, ProtocolItem, RecommendationDecision, SanctionAction,
    SanctionRecommended, SanctionRequested, SectorClass, SectorClassChanged, Severity, TaskForceLevel, WarningCause,
)

Level = TaskForceLevel

# The order in which an unacknowledged alert climbs (Satgas regency/city → province → national, BNPB).
LEVELS: tuple[Level, ...] = (Level.REGENCY, Level.PROVINCE, Level.NATIONAL)

# The region code each level's task force holds.
_REGION_OF_LEVEL = {Level.NATIONAL: lambda code: code == regions.NATIONAL, Level.PROVINCE: regions.is_province,
                    Level.REGENCY: regions.is_regency}


class Division(StrEnum):
    DATA_INFORMATION = "data_information"
    HEALTH = "health"
    LAW_ENFORCEMENT = "law_enforcement"


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


# ------------------------------------------------------------------------------------------ errors


class NotifierRefusal(Exception):
    """What a request is refused for: a rule says no, or what it names does not exist. api.py maps each kind to
    its problem in one table."""


class NotFound(NotifierRefusal, refusals.NotFound):
    """No such task force or alert, or none the caller may see."""


class InvalidRegion(NotifierRefusal, ValueError):
    def __init__(self, level: Level, region_code: str) -> None:
        expected = {Level.NATIONAL: f"{regions.NATIONAL!r}", Level.PROVINCE: "a province code like '32'",
                    Level.REGENCY: "a regency code like '32.16'"}[level]
        super().__init__(f"a {level.value} task force's region_code must be {expected}, not {region_code!r}")
        self.level = level


class AlreadyAcknowledged(NotifierRefusal):
    def __init__(self, acknowledged_at: datetime) -> None:
        super().__init__(f"the alert was already acknowledged at {acknowledged_at.isoformat()}")
        self.current = AlertStatus.ACKNOWLEDGED


class InvalidWebhook(NotifierRefusal, ValueError):
    """A webhook URL the notifier will not call. Its message starts "a webhook target must be"."""

    def __init__(self, why: str, field: str = "target") -> None:
        super().__init__(f"a webhook target must be {why}")
        self.field = field


class InvalidWebhookSecret(NotifierRefusal, ValueError):
    """A caller's own webhook secret not in the Standard Webhooks form. Its message starts "a webhook secret must
    be"."""

    def __init__(self, field: str = "secret") -> None:
        super().__init__(f"a webhook secret must be {WEBHOOK_SECRET_PREFIX} followed by the base64 of "
                         f"{WEBHOOK_KEY_BYTES.start} to {WEBHOOK_KEY_BYTES.stop - 1} bytes")
        self.field = field


class NotNotifiedAtLevel(NotifierRefusal):
    def __init__(self, level: Level, notified: tuple[Level, ...]) -> None:
        super().__init__(f"a {level.value} task force was not notified of this alert (notified so far: "
                         f"{', '.join(n.value for n in notified)})")
        self.level = level


# ------------------------------------------------------------------------------------------ directory


def level_of_region(region_code: str) -> Level:
    """What a region code names: `ID` the nation, '32' a province, '32.16' a regency (Kemendagri codes)."""
    if region_code == regions.NATIONAL:
        return Level.NATIONAL
    return Level.REGENCY if "." in region_code else Level.PROVINCE


@dataclass(frozen=True)
class DivisionContact:
    division: Division
    email: str | None = None
    webhook: str | None = None


@dataclass(frozen=True)
class TaskForce:
    task_force_id: uuid.UUID
    level: Level
    region_code: str
    name: str
    contacts: tuple[DivisionContact, ...] = ()

    @classmethod
    def register(cls, *, level: Level, region_code: str, name: str,
                 contacts: tuple[DivisionContact, ...]) -> TaskForce:
        if not _REGION_OF_LEVEL[level](region_code):
            raise InvalidRegion(level, region_code)
        return cls(uuid.uuid4(), level, region_code, name, contacts)

    def covers(self, plant_regency: str) -> bool:
        return regions.covers(self.region_code, plant_regency)


@dataclass(frozen=True)
class Subscription:
    subscription_id: uuid.UUID
    task_force_id: uuid.UUID
    channel: Channel
    target: str
    event_types: frozenset[str]


@dataclass(frozen=True)
class CompanyContact:
    """Held here only to send company-facing notices; never logged, never put in an event."""

    facility_id: uuid.UUID
    nib: str
    company_name: str
    email: str | None


@dataclass(frozen=True)
class Directory:
    """The part of the directory that can matter for one plant: task forces covering it, their subscriptions, its
    company, and the company of the industrial estate that confirmed the plant as its tenant (if one did)."""

    task_forces: tuple[TaskForce, ...]
    subscriptions: tuple[Subscription, ...] = ()
    company: CompanyContact | None = None
    estate: CompanyContact | None = None


# ------------------------------------------------------------------------------------------ routing


@dataclass(frozen=True)
class Route:
    severity: Severity
    division: Division | None = None  # the division that must act, at the first level's task force, if any
    company: bool = False  # the company is told too (its own notice)
    digest: bool = False  # counted into a daily digest per province instead of alerting at once
    level: Level = Level.REGENCY  # whose task force hears first (a digest's is the province's)


@dataclass(frozen=True)
class Rule:
    """One named routing rule: the events of `event_type` whose details hold every (field, value) of `when` take
    `route`. The first rule of a type that matches wins, so a type's rule without `when` comes last; an event a
    rule picks by its content groups into alerts of that rule alone (`alert_key`)."""

    name: str
    event_type: str
    route: Route
    when: tuple[tuple[str, str], ...] = ()

    def matches(self, details: dict) -> bool:
        return all(details.get(name) == value for name, value in self.when)


# The routing tree (issue 7). Event types absent here raise nothing unless a task force subscribed to them.
RULES: tuple[Rule, ...] = (
    # Kepmenkes 328/2020: a confirmed case is reported to the regency health office and task force at once; the
    # workplace isolates, traces and disinfects on its own, so one case informs and does not escalate.
    Rule("case", "CaseDetected", Route(Severity.LOW, division=Division.HEALTH, company=True)),
    # Unlinked cases above the count: the task force judges with the health office whether they are one cluster.
    Rule("possible-cluster", "PossibleClusterRaised", Route(Severity.LOW, division=Division.HEALTH)),
    # Kepmenkes 328/2020: a cluster is reported to the health office at once; it may close the plant, so it climbs.
    Rule("cluster", "ClusterDeclared", Route(Severity.HIGH, division=Division.HEALTH, company=True)),
    # The regency task force orders closures: a recommendation waits for its decision and climbs until answered.
    Rule("closure-recommended", "ClosureRecommended", Route(Severity.HIGH, division=Division.HEALTH)),
    # A recommendation left unanswered past its time goes to the province's task force, which acts above the
    # regency's; it climbs on to the national one.
    Rule("recommendation-overdue", "ClosureRecommendationOverdue",
         Route(Severity.HIGH, division=Division.HEALTH, level=Level.PROVINCE)),
    # The decision is the task force's own: its health division reads it. The company hears of what it orders
    # through FacilityClosureOrdered, and was never told of a recommendation it might hear was declined.
    Rule("recommendation-decided", "ClosureRecommendationDecided", Route(Severity.LOW, division=Division.HEALTH)),
    # Kepmenkes 328/2020: a room closes for its disinfection after a case; routine, the company's to carry out.
    Rule("room-closure", "FacilityClosureOrdered", Route(Severity.LOW, division=Division.HEALTH, company=True),
         when=(("scope", ClosureScope.ROOM.value),)),
    # A whole plant closed stops its work: it climbs until acknowledged, and the company must stop and hear why.
    Rule("plant-closure", "FacilityClosureOrdered", Route(Severity.HIGH, division=Division.HEALTH, company=True)),
    # A closure ended (a room's when its disinfection is over, a plant's when the task force cleared it): the health
    # division and the company hear that what it closed may work again.
    Rule("reopening", "FacilityReopened", Route(Severity.LOW, division=Division.HEALTH, company=True)),
    # Sanctions are enforced on the ground by Satpol PP and police: the law-enforcement division acts.
    Rule("freeze", "PermitFrozen", Route(Severity.LOW, division=Division.LAW_ENFORCEMENT, company=True)),
    Rule("revocation", "PermitRevoked", Route(Severity.LOW, division=Division.LAW_ENFORCEMENT, company=True)),
    # A sanction reversed on objection is enforced no more: those who enforced it and the company hear of it.
    Rule("sanction-reversed", "SanctionReversed",
         Route(Severity.LOW, division=Division.LAW_ENFORCEMENT, company=True)),
    # The decision on its objection is the company's to read, whatever it is (UU 30/2014 Pasal 77).
    Rule("objection-decided", "ObjectionDecided", Route(Severity.LOW, company=True)),
    Rule("warning", "WarningIssued", Route(Severity.LOW, company=True)),
    # Satpol PP enforces PPKM caps on site; low like sanctions: the warning ladder, not escalation, answers repeats.
    Rule("capacity-breach", "CapacityBreachDetected", Route(Severity.LOW, division=Division.LAW_ENFORCEMENT)),
    # The class sets the plant's PPKM cap: the company reads each change and why (its own e-mail, `company_message`).
    Rule("sector-class", "SectorClassChanged", Route(Severity.LOW, company=True)),
    # Overdue reports are many and individually minor: the province's data division gets one count a day.
    Rule("report-overdue", "ReportOverdue",
         Route(Severity.LOW, division=Division.DATA_INFORMATION, digest=True, level=Level.PROVINCE)),
    # Field supervision: a complaint, or an inspection that found the protocol violated, is Satpol PP's to check on
    # site, grouped per plant as capacity breaches are (an inspection that found nothing violated raises nothing).
    Rule("complaint", "ComplaintFiled", Route(Severity.LOW, division=Division.LAW_ENFORCEMENT)),
    Rule("inspection", "InspectionRecorded", Route(Severity.LOW, division=Division.LAW_ENFORCEMENT)),
    # A regional office's sanction request waits for the ministry: nothing for the regency to do yet. The province's
    # law-enforcement division, which coordinates its regencies' Satpol PP when a freeze or revocation follows, is
    # told for its information; low, so it never escalates.
    Rule("sanction-requested", "SanctionRequested",
         Route(Severity.LOW, division=Division.LAW_ENFORCEMENT, level=Level.PROVINCE)),
)

_RULES_OF: dict[str, tuple[Rule, ...]] = {
    event_type: tuple(rule for rule in RULES if rule.event_type == event_type)
    for event_type in dict.fromkeys(rule.event_type for rule in RULES)}

# The event types some rule routes: the others alert only the task forces that subscribed to them.
ROUTED = frozenset(_RULES_OF)

DEFAULT_ROUTE = Route(Severity.LOW)

# A recommendation is answered by its decision, made in the incidents service: the alerts asking for it stop climbing
# there, acknowledged in the name of the role that decided.
ANSWERED_BY_DECISION = ("ClosureRecommended", "ClosureRecommendationOverdue")

# The digest day follows WIB (UTC+7), the ministry's working time; a plant's own zone does not matter here.
DIGEST_ZONE = timezone(timedelta(hours=7))


def rule_for(event_type: str, details: dict | None = None) -> Rule | None:
    """The rule routing this event (its details as the event carries them), or None when no rule names its type.
    Without details, the type's rule without `when`."""
    return next((rule for rule in _RULES_OF.get(event_type, ()) if rule.matches(details or {})), None)


def route_for(event_type: str, details: dict | None = None) -> Route:
    rule = rule_for(event_type, details)
    return rule.route if rule is not None else DEFAULT_ROUTE


@dataclass(frozen=True)
class Plant:
    facility_id: uuid.UUID
    province_code: str
    regency_code: str


def alert_key(event_type: str, plant: Plant, now: datetime, details: dict | None = None) -> str:
    """What makes two events 'the same alert': one plant and event type (and rule, when a rule picks the event by
    its content: a room's closure never hides a plant's in its low alert), or one province-day for a digest."""
    rule = rule_for(event_type, details)
    if rule is not None and rule.route.digest:
        return f"{event_type}:{plant.province_code}:{now.astimezone(DIGEST_ZONE).date().isoformat()}"
    if rule is not None and rule.when:
        return f"{event_type}:{rule.name}:{plant.facility_id}"
    return f"{event_type}:{plant.facility_id}"


def digest_closes_at(now: datetime) -> datetime:
    """The end of the digest day that `now` falls in (midnight WIB)."""
    local = now.astimezone(DIGEST_ZONE)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return midnight.astimezone(UTC)


@dataclass(frozen=True)
class SecretRef:
    """Where a webhook's signing secret lives, read when each attempt is sent: a subscription, or the contact at
    `contact_position` of the recipient's task force. A delivery never holds a copy, so a rotation reaches the
    deliveries still pending."""

    subscription_id: uuid.UUID | None = None
    contact_position: int | None = None


@dataclass(frozen=True)
class Recipient:
    channel: Channel
    target: str
    level: Level | None  # None: the company
    task_force_id: uuid.UUID | None = None
    signed_with: SecretRef | None = None  # webhooks only

    @property
    def kind(self) -> str:
        return "company" if self.task_force_id is None else "task_force"


def recipients(route: Route, event_type: str, level: Level, plant: Plant, directory: Directory, *,
               first_notice: bool) -> list[Recipient]:
    """Who is told at this step: the routed division at `level`; on the first notice also the company and
    every task force that subscribed to this event type for a region covering the plant."""
    found: list[Recipient] = []
    by_id = {tf.task_force_id: tf for tf in directory.task_forces}
    if route.division is not None:
        for tf in directory.task_forces:
            if tf.level is not level or not tf.covers(plant.regency_code):
                continue
            for position, contact in enumerate(tf.contacts):
                if contact.division is not route.division:
                    continue
                if contact.email:
                    found.append(Recipient(Channel.EMAIL, contact.email, tf.level, tf.task_force_id))
                if contact.webhook:
                    found.append(Recipient(Channel.WEBHOOK, contact.webhook, tf.level, tf.task_force_id,
                                           SecretRef(contact_position=position)))
    if first_notice:
        for sub in directory.subscriptions:
            subscriber = by_id.get(sub.task_force_id)
            if subscriber is None or event_type not in sub.event_types or not subscriber.covers(plant.regency_code):
                continue
            signed_with = SecretRef(subscription_id=sub.subscription_id) if sub.channel is Channel.WEBHOOK else None
            found.append(Recipient(sub.channel, sub.target, subscriber.level, subscriber.task_force_id, signed_with))
        if (company := company_recipient(route, directory)) is not None:
            found.append(company)
    unique: dict[tuple[Channel, str], Recipient] = {}
    for recipient in found:
        unique.setdefault((recipient.channel, recipient.target), recipient)
    return list(unique.values())


def company_recipient(route: Route, directory: Directory) -> Recipient | None:
    """The company, by e-mail, when the route tells it and it gave an address."""
    if route.company and directory.company is not None and directory.company.email:
        return Recipient(Channel.EMAIL, directory.company.email, None)
    return None


def estate_recipient(directory: Directory) -> Recipient | None:
    """The estate company whose tenant the plant is, by e-mail, when it gave an address: it hears of every alert
    about its tenants (SE Menperin 8/2020 makes the estate answer for supervising them)."""
    if directory.estate is not None and directory.estate.email:
        return Recipient(Channel.EMAIL, directory.estate.email, None)
    return None


# ------------------------------------------------------------------------------------------ alerts


@dataclass(frozen=True)
class EscalationChain:
    """How long each level has to acknowledge before the next is told (default 60 min, then a further 4 h)."""

    steps: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(hours=4))

    def after(self, level: Level) -> timedelta | None:
        index = LEVELS.index(level)
        return self.steps[index] if index < len(self.steps) and index + 1 < len(LEVELS) else None

    @classmethod
    def parse(cls, steps: list[timedelta]) -> EscalationChain:
        if not steps or any(step <= timedelta(0) for step in steps):
            raise ValueError("escalation steps must be positive durations")
        return cls(tuple(steps))


@dataclass(frozen=True)
class Grouping:
    """The same alert key within `window` of the first event is one alert with a count, not a flood."""

    window: timedelta = timedelta(hours=1)


class AlertTimer(StrEnum):
    """The two timers an alert carries; each keeps its own record of failed attempts."""

    ESCALATION = "escalation"
    DIGEST = "digest"


@dataclass(frozen=True)
class TimerBackoff(Backoff):
    """When an alert's timer whose firing failed (an escalation, a digest's close) is tried again: twice as late
    after each failure, never later than `longest`.

    A timer is never given up: an unacknowledged alert must still climb, a digest must still be sent. Its retries
    wait behind it, so the alerts due after a failing one are handled on time.
    """

    first: timedelta = timedelta(seconds=30)
    longest: timedelta = timedelta(minutes=30)


def timer_failure(exc: BaseException) -> str:
    """What is kept on the alert about a failed timer: the kind of failure, never its message (which may carry an
    address from the directory); the message goes to the log."""
    return type(exc).__name__[:100]


@dataclass(frozen=True)
class Escalation:
    from_level: Level
    to_level: Level


@dataclass(frozen=True)
class Acknowledgement:
    by: str
    role: str
    at: datetime
    level: Level
    response_seconds: float


@dataclass(frozen=True)
class Alert:
    alert_id: uuid.UUID
    alert_key: str
    event_type: str
    severity: Severity
    plant: Plant
    level: Level
    status: AlertStatus
    count: int
    first_seen_at: datetime
    last_seen_at: datetime
    group_until: datetime
    escalate_at: datetime | None
    digest_closes_at: datetime | None
    notified_levels: tuple[Level, ...] = ()
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_role: str | None = None
    details: dict = field(default_factory=dict)

    @classmethod
    def raise_for(cls, event_type: str, plant: Plant, details: dict, *, now: datetime, chain: EscalationChain,
                  grouping: Grouping) -> Alert:
        route = route_for(event_type, details)
        escalates = route.severity is Severity.HIGH
        step = chain.after(route.level)
        if route.digest:
            # A digest counts a whole province: it is filed under the province, not the plant that opened it.
            plant = replace(plant, regency_code=plant.province_code)
        return cls(
            alert_id=uuid.uuid4(), alert_key=alert_key(event_type, plant, now, details), event_type=event_type,
            severity=route.severity, plant=plant,
            level=route.level,
            status=AlertStatus.OPEN, count=1, first_seen_at=now, last_seen_at=now,
            group_until=digest_closes_at(now) if route.digest else now + grouping.window,
            escalate_at=now + step if escalates and step is not None else None,
            digest_closes_at=digest_closes_at(now) if route.digest else None, details=details,
        )

    @property
    def route(self) -> Route:
        return route_for(self.event_type, self.details)

    def groups(self, now: datetime) -> bool:
        """Does an event seen at `now` with this alert's key belong to this alert?"""
        return self.status is AlertStatus.OPEN and now < self.group_until

    def repeated(self, now: datetime) -> Alert:
        return replace(self, count=self.count + 1, last_seen_at=now)

    def closed_digest(self) -> Alert:
        return replace(self, digest_closes_at=None)

    def notified(self, levels: set[Level]) -> Alert:
        merged = set(self.notified_levels) | levels
        return replace(self, notified_levels=tuple(level for level in LEVELS if level in merged))

    def escalate(self, now: datetime, chain: EscalationChain) -> tuple[Alert, Escalation] | None:
        """The next step, if its time has come and nobody acknowledged; None otherwise."""
        if self.status is not AlertStatus.OPEN or self.escalate_at is None or now < self.escalate_at:
            return None
        index = LEVELS.index(self.level)
        if index + 1 >= len(LEVELS):  # national is the top: nobody left to tell
            return None
        to_level = LEVELS[index + 1]
        step = chain.after(to_level)
        changed = replace(self, level=to_level, escalate_at=now + step if step is not None else None)
        return changed.notified({to_level}), Escalation(self.level, to_level)

    def acknowledge(self, *, by: str, role: str, as_level: Level | None,
                    now: datetime) -> tuple[Alert, Acknowledgement]:
        """`as_level` is the acknowledging task force's level, or None for an operator (who may always)."""
        if self.status is AlertStatus.ACKNOWLEDGED:
            if self.acknowledged_at is None:  # acknowledging sets the status and the time together
                raise ValueError(f"alert {self.alert_id} is acknowledged but has no acknowledgement time")
            raise AlreadyAcknowledged(self.acknowledged_at)
        notified = self.notified_levels or (self.level,)
        if as_level is not None and as_level not in notified:
            raise NotNotifiedAtLevel(as_level, notified)
        changed = replace(self, status=AlertStatus.ACKNOWLEDGED, escalate_at=None, acknowledged_at=now,
                          acknowledged_by=by, acknowledged_role=role)
        return changed, Acknowledgement(by, role, now, self.level, (now - self.first_seen_at).total_seconds())


# ------------------------------------------------------------------------------------------ deliveries


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; after `max_attempts` a delivery is failed, never dropped."""

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=30)
    max_attempts: int = 8

    def next_attempt(self, attempts: int, now: datetime, rng: random.Random) -> datetime | None:
        """When to try again after `attempts` failed tries, or None when it is time to give up."""
        if attempts >= self.max_attempts:
            return None
        ceiling = min(self.base * 2 ** (attempts - 1), self.cap)
        # Half fixed, half random: retries spread out without ever coming sooner than half the backoff.
        return now + ceiling / 2 + ceiling / 2 * rng.random()


@dataclass(frozen=True)
class Delivery:
    delivery_id: uuid.UUID
    alert_id: uuid.UUID
    recipient: Recipient
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None = None

    @classmethod
    def planned(cls, alert_id: uuid.UUID, recipient: Recipient, now: datetime) -> Delivery:
        return cls(uuid.uuid4(), alert_id, recipient, DeliveryStatus.PENDING, 0, now)

    def succeeded(self) -> Delivery:
        return replace(self, status=DeliveryStatus.DELIVERED, attempts=self.attempts + 1, next_attempt_at=None,
                       last_error=None)

    def failed_attempt(self, error: str, now: datetime, policy: RetryPolicy, rng: random.Random, *,
                       permanent: bool = False) -> Delivery:
        """`permanent`: no later attempt can succeed (the stored target itself is invalid), so it fails now."""
        attempts = self.attempts + 1
        retry_at = None if permanent else policy.next_attempt(attempts, now, rng)
        status = DeliveryStatus.PENDING if retry_at is not None else DeliveryStatus.FAILED
        return replace(self, status=status, attempts=attempts, next_attempt_at=retry_at, last_error=error)


class FailureReason(StrEnum):
    """What a task force is told about a failed attempt: a category, never a host, an address or a trace (those
    go to the log)."""

    INVALID_ADDRESS = "invalid address"
    ADDRESS_NOT_ALLOWED = "address not allowed"
    HOST_NOT_FOUND = "host not found"
    CONNECTION_REFUSED = "connection refused"
    CONNECTION_FAILED = "connection failed"
    TIMEOUT = "timeout"
    TLS_ERROR = "TLS error"
    PROTOCOL_ERROR = "protocol error"
    RECIPIENT_REFUSED = "recipient refused"
    RECIPIENT_REMOVED = "recipient removed"  # its subscription or contact, and so its secret, is gone
    INTERNAL_ERROR = "internal error"

    @staticmethod
    def http(status: int) -> str:
        return f"HTTP {status}"

    @staticmethod
    def smtp(code: int) -> str:
        return f"SMTP {code}"


# ------------------------------------------------------------------------------------------ webhook secrets

# Standard Webhooks (standardwebhooks.com): a secret is `whsec_` + the base64 of the HMAC-SHA256 key.
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 -- the format's marker, not a secret
WEBHOOK_KEY_BYTES = range(24, 65)  # a caller's own key: at least 192 bits, at most one SHA-256 block
ISSUED_KEY_BYTES = 32
WEBHOOK_SECRET_MAX_LENGTH = len(WEBHOOK_SECRET_PREFIX) + 4 * -(-(WEBHOOK_KEY_BYTES.stop - 1) // 3)  # 94
# The padded standard base64 alphabet, ASCII only.
WEBHOOK_SECRET_PATTERN = r"^whsec_[A-Za-z0-9+/]+={0,2}$"  # noqa: S105 -- a format, not a secret
_WEBHOOK_SECRET = re.compile(WEBHOOK_SECRET_PATTERN)


def issue_webhook_secret() -> str:
    """A new secret from the platform: 32 random bytes, shown to the caller once."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(ISSUED_KEY_BYTES)).decode()


def webhook_secret(value: str, *, field: str = "secret") -> str:
    """A caller's own secret, taken only in the exact form the platform issues. Raises InvalidWebhookSecret."""
    if len(value) > WEBHOOK_SECRET_MAX_LENGTH or not _WEBHOOK_SECRET.fullmatch(value):
        raise InvalidWebhookSecret(field)
    try:
        key = base64.b64decode(value.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise InvalidWebhookSecret(field) from None
    if len(key) not in WEBHOOK_KEY_BYTES:
        raise InvalidWebhookSecret(field)
    return value


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret. One stored before Standard Webhooks (any text) keys with its UTF-8 bytes, so its
    receiver verifies with `Webhook(secret.encode())` until the secret is rotated."""
    if secret.startswith(WEBHOOK_SECRET_PREFIX):
        return base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX))
    return secret.encode()


@dataclass(frozen=True)
class WebhookSecrets:
    """A subscription's or contact's secret, and the one it replaced while receivers move over to the new one."""

    current: str
    previous: str | None = None
    rotated_at: datetime | None = None

    def rotated(self, new: str, now: datetime) -> WebhookSecrets:
        """A second rotation within the grace period drops the oldest: only the last secret keeps its grace."""
        return WebhookSecrets(new, self.current, now)


def signing_secrets(held: WebhookSecrets, now: datetime, grace: timedelta) -> tuple[str, ...]:
    """The secrets an attempt at `now` is signed with: the current one, and the previous one until `grace` after
    the rotation (Standard Webhooks lets `webhook-signature` carry several), so a receiver that still holds the
    old secret keeps verifying while it is updated."""
    if held.previous is not None and held.rotated_at is not None and now < held.rotated_at + grace:
        return held.current, held.previous
    return (held.current,)


# ------------------------------------------------------------------------------------------ outbound

WEBHOOK_URL_MAX_LENGTH = 2000
# RFC 3986's characters, nothing else: no whitespace, control character, backslash or raw non-ASCII.
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def webhook_url(url: str, *, allow_http: bool) -> str:
    """A webhook target as the notifier will call it: an absolute https URL (http only in development) with a
    host, no credentials and no fragment. Raises InvalidWebhook."""
    schemes = ("https", "http") if allow_http else ("https",)
    wanted = "an http(s) URL" if allow_http else "an https URL"
    if len(url) > WEBHOOK_URL_MAX_LENGTH or not _URL_CHARACTERS.fullmatch(url):
        raise InvalidWebhook(f"{wanted} of at most {WEBHOOK_URL_MAX_LENGTH} URL characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidWebhook(f"{wanted} with a valid host and port") from None
    if parts.scheme.lower() not in schemes:
        raise InvalidWebhook(wanted)
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise InvalidWebhook(f"{wanted} without credentials in it")
    if "#" in url:
        raise InvalidWebhook(f"{wanted} without a fragment")
    host = parts.hostname or ""
    if port == 0 or not host or not _valid_host(host):
        raise InvalidWebhook(f"{wanted} with a valid host and port")
    return url


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        labels = host.rstrip(".").split(".")
        return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud instance metadata: link-local or ULA already, but refused by name so that allowing a private network
# (IOMKI_OUTBOUND_ALLOW=fd00::/8) does not open it: only listing the address itself does.
METADATA = (ipaddress.ip_network("169.254.169.254/32"), ipaddress.ip_network("fd00:ec2::254/128"))
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


# Translators carry an IPv4 address inside an IPv6 one (RFC 6052 NAT64, RFC 3056 6to4, RFC 4291 mapped): the
# IPv4 address is where the connection ends up, so it is the one the policy judges.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:  # ::ffff:10.0.0.1
        return address.ipv4_mapped
    if address.sixtofour is not None:  # 2002:0a00:0001::
        return address.sixtofour
    if address in NAT64:  # 64:ff9b::10.0.0.1
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


@dataclass(frozen=True)
class OutboundPolicy:
    """Which addresses the notifier may connect to on a task force's behalf: public ones, and whatever networks
    configuration lists. Loopback, private (RFC 1918, ULA), link-local, metadata, unspecified, multicast and
    reserved addresses are refused otherwise, so a webhook cannot be pointed at the platform's own network."""

    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, networks: str) -> OutboundPolicy:
        return cls(tuple(ipaddress.ip_network(part.strip(), strict=False) for part in networks.split(",")
                         if part.strip()))

    def permits(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address):
            if address in NAT64_LOCAL:  # a site's own translator, whose embedding varies: nothing to check it by
                return any(address in network for network in self.allowed if network.version == 6)
            address = embedded_ipv4(address) or address
        listed = [network for network in self.allowed if network.version == address.version and address in network]
        if any(address in network for network in METADATA if network.version == address.version):
            return any(network.num_addresses == 1 for network in listed)  # only the address itself, listed
        if listed:
            return True
        return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


# ------------------------------------------------------------------------------------------ notices


def render(alert: Alert, channel: Channel) -> tuple[str, bytes]:
    """The subject and the exact body of a notice. Webhooks get JSON (signed byte for byte); email gets text. An
    event with a summary (`summary`) has it read first: in the e-mail's text, in the webhook's `summary`."""
    where = alert.plant.regency_code
    subject = (f"[iomki {alert.severity.value}] {alert.event_type} in {where}"
               + (f" (x{alert.count})" if alert.count > 1 else ""))
    document = {
        "alert_id": str(alert.alert_id), "alert_key": alert.alert_key, "event_type": alert.event_type,
        "severity": alert.severity.value, "level": alert.level.value, "status": alert.status.value,
        "count": alert.count, "facility_id": str(alert.plant.facility_id),
        "province_code": alert.plant.province_code, "regency_code": alert.plant.regency_code,
        "first_seen_at": alert.first_seen_at.isoformat(), "details": alert.details,
    }
    told = summary(alert.event_type, alert.details)
    if channel is Channel.WEBHOOK:
        if told is not None:  # one text, Bahasa Indonesia first: a JSON object's keys have no order to keep
            document["summary"] = "\n\n".join(told)
        return subject, json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    lines = [subject, "", *([told[0], "", told[1], ""] if told is not None else ()),
             f"Level: {alert.level.value}", f"Count: {alert.count}", f"Facility: {alert.plant.facility_id}",
             f"Region: {where}", f"First seen: {alert.first_seen_at.isoformat()}"]
    if alert.severity is Severity.HIGH:
        lines.append(f"Acknowledge: POST /alerts/{alert.alert_id}/ack (unacknowledged alerts escalate).")
    lines += ["", json.dumps(document, indent=2, sort_keys=True)]
    return subject, "\n".join(lines).encode()


# ------------------------------------------------------------------------------------------ summaries

# What people read of an alert, for the events whose details do not speak for themselves: Bahasa Indonesia first,
# English second. Each reads the event's details back through its contract model.

_SECTOR_CLASSES = {SectorClass.CRITICAL: ("kritikal", "critical"), SectorClass.ESSENTIAL: ("esensial", "essential"),
                   SectorClass.NON_ESSENTIAL: ("non-esensial", "non-essential")}
_SANCTIONS = {SanctionAction.FREEZE: ("pembekuan", "freeze"), SanctionAction.REVOKE: ("pencabutan", "revocation")}


def ppkm_level(level: PpkmLevel) -> tuple[str, str]:
    if level is PpkmLevel.EMERGENCY:
        return "PPKM Darurat", "the PPKM emergency stage"
    return f"PPKM Level {level.value}", f"PPKM level {level.value}"


def sector_class(value: SectorClass, export_oriented: bool) -> tuple[str, str]:
    indonesian, english = _SECTOR_CLASSES[value]
    if export_oriented:
        return f"{indonesian}, berorientasi ekspor", f"{english}, export-oriented"
    return f"{indonesian}, tidak berorientasi ekspor", f"{english}, not export-oriented"


def capacity_excess(excess: CapacityExcess) -> tuple[str, str]:
    """One excess as 'shift n: count vs cap'."""
    if excess.measure is CapacityMeasure.SHIFT_COUNT:
        return (f"jumlah shift: {excess.count}, batas {excess.cap}",
                f"shifts run: {excess.count} vs cap {excess.cap}")
    if excess.measure is CapacityMeasure.OFFICE_ON_SITE:
        where = ("kantor", "offices")
    elif excess.measure is CapacityMeasure.ON_SITE_TOTAL:
        where = ("seluruh shift produksi", "all production shifts")
    else:
        where = (f"shift {excess.shift}", f"shift {excess.shift}") if excess.shift else ("produksi", "production")
    return (f"{where[0]}: {excess.count} orang di lokasi, batas {excess.cap}",
            f"{where[1]}: {excess.count} on site vs cap {excess.cap}")


def class_basis(event: SectorClassChanged, *, to_company: bool = False) -> tuple[str, str]:
    if event.basis is ClassBasis.OPERATOR:
        claim = ("klaim perusahaan Anda", "your claim") if to_company else ("klaim perusahaan", "the company's claim")
        return (f"konfirmasi operator atas {claim[0]} (tabel KBLI versi {event.table_version})",
                f"an operator's confirmation of {claim[1]} (KBLI table version {event.table_version})")
    return (f"revisi tabel KBLI (versi {event.table_version})",
            f"a revision of the KBLI table (version {event.table_version})")


_ZONE_NAMES = {regions.WIB.key: "WIB", regions.WITA.key: "WITA", regions.WIT.key: "WIT"}


def local_time(at: datetime, regency_code: str) -> str:
    """A moment as the plant's clock shows it: 2026-11-20 10.00 WITA."""
    zone = regions.local_zone(regency_code)
    return f"{at.astimezone(zone):%Y-%m-%d %H.%M} {_ZONE_NAMES[zone.key]}"


def _capacity_breach(details: dict) -> tuple[str, str]:
    breach = CapacityBreachDetected.model_validate(details)
    level = ppkm_level(breach.level)
    kind = sector_class(breach.sector_class, breach.export_oriented)
    excesses = [capacity_excess(excess) for excess in breach.excesses]
    indonesian = (f"Pabrik {breach.facility_id} (izin {breach.permit_id}) di wilayah {breach.regency_code} "
                  f"melampaui batas kapasitas PPKM pada {breach.day.isoformat()}: {level[0]}, aturan {breach.rule} "
                  f"({breach.rule_set}), kelas {kind[0]}.")
    english = (f"Plant {breach.facility_id} (permit {breach.permit_id}) in {breach.regency_code} exceeded the PPKM "
               f"staffing cap on {breach.day.isoformat()}: {level[1]}, rule {breach.rule} ({breach.rule_set}), "
               f"class {kind[1]}.")
    return ("\n".join([indonesian, *(f"- {i}" for i, _ in excesses)]),
            "\n".join([english, *(f"- {e}" for _, e in excesses)]))


def _sanction_recommended(details: dict) -> tuple[str, str]:
    recommended = SanctionRecommended.model_validate(details)
    action = _SANCTIONS[recommended.action]
    evidence = recommended.evidence
    if recommended.ground is GroundCode.CAPACITY_BREACHES:
        ground = (f"pelanggaran batas kapasitas PPKM berulang ({len(evidence.breaches)} pelanggaran)",
                  f"repeated breaches of the PPKM staffing cap ({len(evidence.breaches)} breaches)")
    elif recommended.ground is GroundCode.MISSED_REPORTS:
        ground = (f"laporan yang tidak disampaikan ({len(evidence.missed_periods)} periode)",
                  f"missed reports ({len(evidence.missed_periods)} periods)")
    else:
        ground = (recommended.ground.value, recommended.ground.value)
    rule = recommended.rule + (f", {recommended.ladder}" if recommended.ladder else "")
    return (f"Rekomendasi {action[0]} IOMKI untuk pabrik {recommended.facility_id} (izin {recommended.permit_id}) di "
            f"wilayah {recommended.regency_code} atas dasar {ground[0]}: aturan {rule}.",
            f"A {action[1]} of the permit is recommended for plant {recommended.facility_id} (permit "
            f"{recommended.permit_id}) in {recommended.regency_code} on the ground of {ground[1]}: rule {rule}.")


def _sector_class_changed(details: dict) -> tuple[str, str]:
    changed = SectorClassChanged.model_validate(details)
    kind, basis = sector_class(changed.sector_class, changed.export_oriented), class_basis(changed)
    permit = changed.permit_number or f"NIB {changed.nib}"
    return (f"Kelas sektor pabrik {changed.facility_id} ({permit}) di wilayah {changed.regency_code} kini {kind[0]}; "
            f"dasar: {basis[0]}.",
            f"The sector class of plant {changed.facility_id} ({permit}) in {changed.regency_code} is now {kind[1]}; "
            f"basis: {basis[1]}.")


_COMPLAINTS = {
    ComplaintCategory.PROTOCOL: ("protokol kesehatan tidak dijalankan", "the health protocol is not followed"),
    ComplaintCategory.CAPACITY: ("pekerja di lokasi melebihi batas PPKM", "more staff on site than PPKM allows"),
    ComplaintCategory.OPERATING_WHILE_STOPPED: ("beroperasi saat izin dibekukan, dicabut atau ditutup",
                                                "operating while frozen, revoked or closed"),
    ComplaintCategory.HIDDEN_CASES: ("kasus positif disembunyikan atau tidak dilaporkan",
                                     "positive cases hidden or not reported"),
    ComplaintCategory.OTHER: ("lainnya", "other"),
}


def _complaint_filed(details: dict) -> tuple[str, str]:
    complaint = ComplaintFiled.model_validate(details)
    what = _COMPLAINTS[complaint.category]
    filed = complaint.filed_at.isoformat()
    return (f"Pengaduan masyarakat tentang pabrik {complaint.facility_id} (izin {complaint.permit_id}) di wilayah "
            f"{complaint.regency_code}, {filed}: {what[0]}. Mohon diperiksa di lokasi.",
            f"A public complaint about plant {complaint.facility_id} (permit {complaint.permit_id}) in "
            f"{complaint.regency_code}, {filed}: {what[1]}. Please check on site.")


def _items(items: list[ProtocolItem]) -> str:
    return ", ".join(item.value for item in items) or "-"


def _inspection_recorded(details: dict) -> tuple[str, str]:
    inspection = InspectionRecorded.model_validate(details)
    violated = [f.item for f in inspection.findings if f.result is FindingResult.VIOLATED]
    day = inspection.inspected_on.isoformat()
    contradicted = inspection.contradicted_report_id
    return ("\n".join([f"Inspeksi {inspection.reference} di pabrik {inspection.facility_id} (izin "
                       f"{inspection.permit_id}) di wilayah {inspection.regency_code} pada {day} menemukan "
                       f"{inspection.violations} pelanggaran protokol kesehatan: {_items(violated)}.",
                       *([f"Pelanggaran ini bertentangan dengan laporan {contradicted} yang dinyatakan benar."]
                         if contradicted else [])]),
            "\n".join([f"Inspection {inspection.reference} of plant {inspection.facility_id} (permit "
                       f"{inspection.permit_id}) in {inspection.regency_code} on {day} found "
                       f"{inspection.violations} violations of the health protocol: {_items(violated)}.",
                       *([f"They contradict report {contradicted}, declared true."] if contradicted else [])]))


def _sanction_requested(details: dict) -> tuple[str, str]:
    requested = SanctionRequested.model_validate(details)
    action = _SANCTIONS[requested.action]
    ground = requested.ground.code.value
    return (f"Kantor wilayah {requested.office_region} meminta Kementerian Perindustrian melakukan {action[0]} IOMKI "
            f"pabrik {requested.facility_id} (izin {requested.permit_id}) di wilayah {requested.regency_code} atas "
            f"dasar {ground}. Untuk informasi: permintaan ini menunggu keputusan kementerian.",
            f"The regional office of {requested.office_region} asks the Ministry of Industry for a {action[1]} of the "
            f"permit of plant {requested.facility_id} (permit {requested.permit_id}) in {requested.regency_code} on "
            f"the ground {ground}. For information: the request awaits the ministry's decision.")


_SCOPES = {ClosureScope.PLANT: ("pabrik", "plant"), ClosureScope.ROOM: ("ruangan", "room")}


def _possible_cluster(details: dict) -> tuple[str, str]:
    raised = PossibleClusterRaised.model_validate(details)
    first, last = raised.first_confirmed_on.isoformat(), raised.last_confirmed_on.isoformat()
    return (f"{raised.case_count} kasus konfirmasi yang tidak saling terkait di pabrik {raised.facility_id} di "
            f"wilayah {raised.regency_code} dalam {raised.window_days} hari ({first} sampai {last}). Mohon dinilai "
            "bersama dinas kesehatan apakah kasus-kasus ini satu klaster.",
            f"{raised.case_count} confirmed cases, not linked to each other, at plant {raised.facility_id} in "
            f"{raised.regency_code} within {raised.window_days} days ({first} to {last}). Please judge with the "
            "health office whether they are one cluster.")


def _closure_recommended(details: dict) -> tuple[str, str]:
    recommended = ClosureRecommended.model_validate(details)
    scope = _SCOPES[recommended.scope]
    first, last = recommended.first_confirmed_on.isoformat(), recommended.last_confirmed_on.isoformat()
    answer_by = local_time(recommended.answer_by, recommended.regency_code)
    return (f"Rekomendasi penutupan {scope[0]} selama {recommended.days} hari untuk pabrik {recommended.facility_id} "
            f"di wilayah {recommended.regency_code}: klaster {recommended.cluster_id}, {recommended.case_count} kasus "
            f"konfirmasi terkait dari {first} sampai {last}; aturan: {recommended.rule}. Mohon diputuskan "
            f"(diperintahkan, diubah atau ditolak) sebelum {answer_by}.",
            f"A {scope[1]} closure of {recommended.days} days is recommended for plant {recommended.facility_id} in "
            f"{recommended.regency_code}: cluster {recommended.cluster_id}, {recommended.case_count} linked confirmed "
            f"cases from {first} to {last}; rule: {recommended.rule}. Please decide (order, change or decline) by "
            f"{answer_by}.")


def _recommendation_overdue(details: dict) -> tuple[str, str]:
    overdue = ClosureRecommendationOverdue.model_validate(details)
    answer_by = local_time(overdue.answer_by, overdue.regency_code)
    return (f"Rekomendasi penutupan {overdue.recommendation_id} untuk pabrik {overdue.facility_id} di wilayah "
            f"{overdue.regency_code} (klaster {overdue.cluster_id}) belum diputuskan Satgas kabupaten/kota hingga "
            f"batas waktunya, {answer_by}.",
            f"The closure recommendation {overdue.recommendation_id} for plant {overdue.facility_id} in "
            f"{overdue.regency_code} (cluster {overdue.cluster_id}) was not decided by the regency task force by its "
            f"time, {answer_by}.")


def _recommendation_decided(details: dict) -> tuple[str, str]:
    decided = ClosureRecommendationDecided.model_validate(details)
    ordered = decided.decision is RecommendationDecision.ORDERED
    what = ("diperintahkan", "ordered") if ordered else ("ditolak", "declined")
    reason = decided.reason.strip() if decided.reason else ""
    return (f"Rekomendasi penutupan {decided.recommendation_id} untuk pabrik {decided.facility_id} di wilayah "
            f"{decided.regency_code} {what[0]} ({decided.decided_by_role})."
            + (f" Alasan: {reason}" if reason else ""),
            f"The closure recommendation {decided.recommendation_id} for plant {decided.facility_id} in "
            f"{decided.regency_code} was {what[1]} ({decided.decided_by_role})."
            + (f" Reason: {reason}" if reason else ""))


_SUMMARIES: dict[str, Callable[[dict], tuple[str, str]]] = {
    "CapacityBreachDetected": _capacity_breach,
    "SanctionRecommended": _sanction_recommended,
    "SectorClassChanged": _sector_class_changed,
    "ComplaintFiled": _complaint_filed,
    "InspectionRecorded": _inspection_recorded,
    "SanctionRequested": _sanction_requested,
    "PossibleClusterRaised": _possible_cluster,
    "ClosureRecommended": _closure_recommended,
    "ClosureRecommendationOverdue": _recommendation_overdue,
    "ClosureRecommendationDecided": _recommendation_decided,
}


def summary(event_type: str, details: dict) -> tuple[str, str] | None:
    """What an alert of this event says to people (Bahasa Indonesia, English), or None when its details suffice."""
    summarise = _SUMMARIES.get(event_type)
    return summarise(details) if summarise is not None and details else None


# ------------------------------------------------------------------------------------------ company messages

def greeting(company_name: str | None) -> str:
    return f"Yth. Pimpinan {company_name}," if company_name else "Yth. Pimpinan perusahaan,"


def _company_body(company_name: str | None, indonesian: list[str], english: list[str]) -> bytes:
    """A company's e-mail: the greeting, the Bahasa Indonesia text, then the English one."""
    return "\n".join([greeting(company_name), "", *indonesian, "", "--", "", *english]).encode()


def _sector_class_message(details: dict, company_name: str | None) -> tuple[str, bytes]:
    changed = SectorClassChanged.model_validate(details)
    kind = sector_class(changed.sector_class, changed.export_oriented)
    basis = class_basis(changed, to_company=True)
    permit = changed.permit_number or f"NIB {changed.nib}"
    reason = changed.reason.strip()
    return "[IOMKI] Perubahan kelas sektor / Change of sector class", _company_body(
        company_name,
        [f"Kelas sektor pabrik Anda ({permit}) kini: {kind[0]}.",
         f"Dasar: {basis[0]}.",
         *([f"Alasan: {reason}"] if reason else []),
         "Kelas sektor menentukan berapa pekerja yang boleh bekerja di lokasi pada setiap level PPKM."],
        [f"The sector class of your plant ({permit}) is now: {kind[1]}.",
         f"Basis: {basis[1]}.",
         *([f"Reason: {reason}"] if reason else []),
         "The sector class sets how many staff may work on site at each PPKM level."])


def _which_plant(facility_id: uuid.UUID, regency_code: str) -> tuple[str, str]:
    """How a company's e-mail names its plant, after "pabrik Anda" / "your plant"."""
    return f"({facility_id}, wilayah {regency_code})", f"({facility_id}, region {regency_code})"


def _case_message(details: dict, company_name: str | None) -> tuple[str, bytes]:
    case = CaseDetected.model_validate(details)
    plant = _which_plant(case.facility_id, case.regency_code)
    symptoms = ("bergejala", "with symptoms") if case.symptomatic else ("tanpa gejala", "without symptoms")
    day = case.confirmed_on.isoformat()
    return "[IOMKI] Kasus COVID-19 di pabrik Anda / A COVID-19 case at your plant", _company_body(
        company_name,
        [f"Satgas COVID-19 kabupaten/kota menerima laporan kasus konfirmasi COVID-19 di pabrik Anda {plant[0]}: "
         f"kasus {case.case_ref}, terkonfirmasi {day}, {symptoms[0]}, {case.close_contacts} kontak erat.",
         "Sesuai Kepmenkes 328/2020, mohon pastikan pekerja diisolasi, kontak eratnya dikarantina, dan ruang "
         "kerjanya didisinfeksi."],
        [f"The regency COVID-19 task force received the report of a confirmed COVID-19 case at your plant "
         f"{plant[1]}: case {case.case_ref}, confirmed on {day}, {symptoms[1]}, {case.close_contacts} close "
         "contacts.",
         "As Kepmenkes 328/2020 requires, please see that the worker is isolated, their close contacts "
         "quarantined and their workplace disinfected."])


def _cluster_message(details: dict, company_name: str | None) -> tuple[str, bytes]:
    cluster = ClusterDeclared.model_validate(details)
    plant = _which_plant(cluster.facility_id, cluster.regency_code)
    first, last = cluster.first_confirmed_on.isoformat(), cluster.last_confirmed_on.isoformat()
    rule = cluster.rule.strip() if cluster.rule else ""
    return "[IOMKI] Klaster COVID-19 di pabrik Anda / A COVID-19 cluster at your plant", _company_body(
        company_name,
        [f"Satgas COVID-19 menetapkan klaster COVID-19 di pabrik Anda {plant[0]}: {cluster.case_count} kasus "
         f"konfirmasi yang saling terkait dalam {cluster.window_days} hari, dari {first} sampai {last}.",
         *([f"Aturan: {rule}"] if rule else []),
         "Satgas kabupaten/kota menindaklanjutinya bersama dinas kesehatan; penutupan, bila diperintahkan, "
         "diberitahukan tersendiri."],
        [f"The COVID-19 task force declared a COVID-19 cluster at your plant {plant[1]}: {cluster.case_count} "
         f"linked confirmed cases within {cluster.window_days} days, from {first} to {last}.",
         *([f"Rule: {rule}"] if rule else []),
         "The regency task force acts on it with the health office; a closure, if one is ordered, is notified "
         "separately."])


_AUTHORITIES = {
    ClosureAuthority.RULE: ("aturan penutupan, secara otomatis", "the closure rule, automatically"),
    ClosureAuthority.TASK_FORCE: ("Satgas COVID-19 kabupaten/kota", "the regency COVID-19 task force"),
    ClosureAuthority.COMPANY: ("perusahaan Anda sendiri", "your company itself"),
}


def _closure_message(details: dict, company_name: str | None) -> tuple[str, bytes]:
    closure = FacilityClosureOrdered.model_validate(details)
    plant = _which_plant(closure.facility_id, closure.regency_code)
    starts, ends = (local_time(at, closure.regency_code) for at in (closure.starts_at, closure.ends_at))
    by = _AUTHORITIES[closure.ordered_by]
    reason = closure.reason.strip()
    if closure.scope is ClosureScope.ROOM:
        subject = "[IOMKI] Ruangan ditutup untuk disinfeksi / A room closed for disinfection"
        what = (f"Sebuah ruangan atau lini kerja di pabrik Anda {plant[0]} ditutup untuk disinfeksi dari {starts} "
                f"sampai {ends}.",
                f"A room or line at your plant {plant[1]} is closed for disinfection from {starts} to {ends}.")
        then = ("Sesuai Kepmenkes 328/2020, ruangan itu tidak digunakan sebelum dan sesudah disinfeksi; bagian lain "
                "pabrik tetap boleh beroperasi.",
                "As Kepmenkes 328/2020 requires, the room is not used before and after its disinfection; the rest of "
                "the plant may keep working.")
    else:
        subject = "[IOMKI] Penutupan pabrik Anda / Closure of your plant"
        what = (f"Pabrik Anda {plant[0]} ditutup sejak {starts}, dan paling cepat dibuka kembali {ends}.",
                f"Your plant {plant[1]} is closed from {starts}, and reopens at the earliest at {ends}.")
        then = ("Selama penutupan pabrik tidak boleh beroperasi; pabrik dibuka kembali setelah Satgas COVID-19 "
                "kabupaten/kota menyatakannya boleh beroperasi.",
                "While closed the plant may not work; it reopens once the regency COVID-19 task force clears it.")
        if closure.ordered_by is ClosureAuthority.COMPANY:  # the company ordered it, and clears it itself
            then = ("Selama penutupan pabrik tidak beroperasi; perusahaan Anda membukanya kembali setelah masa "
                    "penutupan berakhir.",
                    "While closed the plant does not work; your company reopens it once the closure period is over.")
    return subject, _company_body(
        company_name,
        [what[0], *([f"Alasan: {reason}"] if reason else []), f"Diperintahkan oleh: {by[0]}.", then[0]],
        [what[1], *([f"Reason: {reason}"] if reason else []), f"Ordered by: {by[1]}.", then[1]])


# A reopening in words by what its closure closed: its name, and what may be used again. An event from before
# reopenings said their scope names only the closure.
_REOPENED: dict[ClosureScope | None, tuple[tuple[str, str], tuple[str, str]]] = {
    ClosureScope.PLANT: (("Penutupan pabrik", "pabrik Anda boleh beroperasi kembali"),
                         ("The plant closure", "your plant may work again")),
    ClosureScope.ROOM: (("Penutupan ruangan", "ruangan atau lini itu boleh digunakan kembali"),
                        ("The room closure", "the room or line may be used again")),
    None: (("Penutupan", "yang ditutup boleh digunakan kembali"), ("Closure", "what it closed may be used again")),
}


def _reopening_message(details: dict, company_name: str | None) -> tuple[str, bytes]:
    reopened = FacilityReopened.model_validate(details)
    plant = _which_plant(reopened.facility_id, reopened.regency_code)
    at = local_time(reopened.reopened_at, reopened.regency_code)
    indonesian, english = _REOPENED[reopened.scope]
    return "[IOMKI] Penutupan berakhir / Closure ended", _company_body(
        company_name,
        [f"{indonesian[0]} {reopened.closure_id} di pabrik Anda {plant[0]} berakhir pada {at}: {indonesian[1]}.",
         "Mohon tetap menjalankan protokol kesehatan."],
        [f"{english[0]} {reopened.closure_id} at your plant {plant[1]} ended at {at}: {english[1]}.",
         "Please keep to the health protocol."])


_COMPANY_MESSAGES: dict[str, Callable[[dict, str | None], tuple[str, bytes]]] = {
    "SectorClassChanged": _sector_class_message,
    "CaseDetected": _case_message,
    "ClusterDeclared": _cluster_message,
    "FacilityClosureOrdered": _closure_message,
    "FacilityReopened": _reopening_message,
}
# Events the company reads about in an e-mail written for it, one for each event even when its alert groups them.
COMPANY_MESSAGES = frozenset(_COMPANY_MESSAGES)


def company_message(event_type: str, details: dict, company_name: str | None) -> tuple[str, bytes]:
    """The company's e-mail about one event of COMPANY_MESSAGES, Bahasa Indonesia first and English second."""
    return _COMPANY_MESSAGES[event_type](details, company_name)


_SEVERITIES = {Severity.HIGH: ("tinggi", "high"), Severity.LOW: ("rendah", "low")}


def estate_notice(alert: Alert, estate_name: str | None) -> tuple[str, bytes]:
    """The estate company's e-mail about an alert raised about one of its tenants, Bahasa Indonesia first and
    English second: what happened where, as the task force reads it, and that the task force acts on it."""
    plant, severity = alert.plant, _SEVERITIES[alert.severity]
    told = summary(alert.event_type, alert.details)
    lines = [greeting(estate_name), "",
             f"Satgas COVID-19 menerima peringatan ({alert.event_type}, tingkat {severity[0]}) tentang pabrik "
             f"penyewa di kawasan industri Anda: {plant.facility_id}, wilayah {plant.regency_code}.",
             *([told[0]] if told else []),
             "Satgas menindaklanjutinya; mohon kawasan mendukung pengawasan protokol kesehatan penyewa.",
             "", "--", "",
             f"The COVID-19 task force received an alert ({alert.event_type}, {severity[1]} severity) about a tenant "
             f"plant of your industrial estate: {plant.facility_id}, region {plant.regency_code}.",
             *([told[1]] if told else []),
             "The task force acts on it; please support the supervision of your tenant's health protocol.",
             "", f"Alert: {alert.alert_id}"]
    subject = (f"[IOMKI] Peringatan tentang penyewa kawasan ({alert.event_type}) / "
               f"Alert about an estate tenant ({alert.event_type})")
    return subject, "\n".join(lines).encode()


# ------------------------------------------------------------------------------------------ company letters

# A warning, a freeze and a revocation each have a letter (the permits service numbers and prints it), which the
# company's e-mail about them carries. The public event (reports' or permits' topic) and the letter (the internal
# topic) arrive in either order: the company's e-mail waits for both, and is planned by whichever comes second.
LETTER_EVENTS = frozenset({"WarningIssued", "PermitFrozen", "PermitRevoked"})


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    media_type: str = "application/pdf"


@dataclass(frozen=True)
class CompanyLetter:
    number: str
    kind: str  # warning | freeze | revocation
    issued_at: datetime
    pdf: bytes | None  # None: too large to carry, or already sent and dropped

    @property
    def filename(self) -> str:
        """The letter's number as a file name: ASCII, no separator (the number's own pattern holds no other)."""
        return self.number.replace("/", "_") + ".pdf"

    @property
    def permit_number(self) -> str:
        return self.number.split("/", 1)[0]


@dataclass(frozen=True)
class LetterWait:
    """How long the company's e-mail about a warning or sanction waits for its letter. The letter follows within
    seconds unless the permits service is down; past this the e-mail goes without it, and a letter that comes later
    follows on its own, so that the company is never left untold nor without its letter."""

    longest: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class LetterPairing:
    """One public event's company e-mail and its letter, as far as each has arrived (None: not yet)."""

    cause_event_id: uuid.UUID
    facility_id: uuid.UUID
    alert_id: uuid.UUID | None = None  # the public event's alert, once it has arrived
    event_type: str | None = None
    wait_until: datetime | None = None
    letter: CompanyLetter | None = None
    notice_planned: bool = False  # the company's e-mail about the event, with the letter or without it
    letter_sent: bool = False  # the letter went in an e-mail
    cause: str | None = None  # a warning's cause (WarningIssued.cause), which its e-mail names


class LetterStep(StrEnum):
    WAIT = "wait"  # for the other half, or for the wait to run out
    SEND_WITH_LETTER = "send_with_letter"
    SEND_WITHOUT_LETTER = "send_without_letter"  # the wait ran out
    SEND_LETTER_ALONE = "send_letter_alone"  # the letter came after its e-mail went without it
    DONE = "done"


def letter_step(pairing: LetterPairing, now: datetime) -> LetterStep:
    """What is due for one public event's company e-mail: each half arrives once, each e-mail is planned once."""
    if pairing.alert_id is None:
        return LetterStep.WAIT  # the event the e-mail is about has not arrived
    if pairing.letter_sent:  # an e-mail with the letter is a notice of the event too
        return LetterStep.DONE
    if not pairing.notice_planned:
        if pairing.letter is not None:
            return LetterStep.SEND_WITH_LETTER
        if pairing.wait_until is not None and now >= pairing.wait_until:
            return LetterStep.SEND_WITHOUT_LETTER
        return LetterStep.WAIT
    if pairing.letter is not None and not pairing.letter_sent:
        return LetterStep.SEND_LETTER_ALONE
    return LetterStep.DONE


_LETTER_NAMES = {"warning": ("Surat Peringatan", "warning letter"),
                 "freeze": ("Surat Pembekuan IOMKI", "letter freezing the permit"),
                 "revocation": ("Surat Pencabutan IOMKI", "letter revoking the permit")}
_EVENT_NAMES = {"WarningIssued": ("peringatan", "a warning", "warning"),
                "PermitFrozen": ("pembekuan IOMKI", "the freeze of your permit", "freeze"),
                "PermitRevoked": ("pencabutan IOMKI", "the revocation of your permit", "revocation")}


@dataclass(frozen=True)
class WarningWording:
    """How the company's e-mail names a warning of one cause, and why it was given; in both languages."""

    event: tuple[str, str]
    letter_tag: tuple[str, str]  # after the letter's number in the subject
    why: tuple[str, str]


# A missed report's warning is the plain warning (`_EVENT_NAMES`); a capacity breach's says what it is for.
_WARNING_CAUSES = {WarningCause.CAPACITY_BREACH.value: WarningWording(
    event=("peringatan melampaui batas kapasitas pekerja PPKM", "a warning for exceeding the PPKM staffing cap"),
    letter_tag=("(batas kapasitas PPKM)", "(PPKM staffing cap)"),
    why=("Laporan perusahaan mencatat jumlah pekerja di lokasi melebihi batas yang diizinkan aturan PPKM yang "
         "berlaku bagi pabrik pada hari itu.",
         "Your report counted more staff on site than the PPKM rule in force for the plant that day allows."),
)}


def company_notice(step: LetterStep, event_type: str, company_name: str | None,
                   letter: CompanyLetter | None, cause: str | None = None) -> tuple[str, bytes]:
    """The company's e-mail about a warning or a sanction, Bahasa Indonesia first and English second: with its
    letter, without it (the wait ran out), or the letter following on its own. `cause`: a warning's cause."""
    indonesian_event, english_event, kind = _EVENT_NAMES[event_type]
    name, english_name = _LETTER_NAMES[kind]
    wording = _WARNING_CAUSES.get(cause or "") if event_type == "WarningIssued" else None
    tag, why = ("", ""), ("", "")
    if wording is not None:
        (indonesian_event, english_event), why = wording.event, (f" {wording.why[0]}", f" {wording.why[1]}")
        tag = (f" {wording.letter_tag[0]}", f" {wording.letter_tag[1]}")
    if letter is None:
        subject = f"[IOMKI] Pemberitahuan {indonesian_event} / Notice of {english_event}"
        indonesian = (f"Kami memberitahukan {indonesian_event} atas IOMKI perusahaan.{why[0]} {name} menyusul dan "
                      "dapat diunduh di portal IOMKI.")
        english = (f"We notify you of {english_event}.{why[1]} The {english_name} will follow; download it from the "
                   "portal.")
    else:
        subject = (f"[IOMKI] {name} {letter.number}{tag[0]} / {english_name.capitalize()} {letter.number}{tag[1]}")
        follows = step is LetterStep.SEND_LETTER_ALONE
        indonesian = ((f"Menyusul pemberitahuan kami tentang {indonesian_event}, " if follows else
                       f"Kami memberitahukan {indonesian_event} atas IOMKI {letter.permit_number}.{why[0]} ")
                      + f"{name} nomor {letter.number} "
                      + ("terlampir." if letter.pdf is not None else "dapat diunduh di portal IOMKI."))
        english = ((f"Further to our notice of {english_event}, the " if follows else
                    f"We notify you of {english_event} ({letter.permit_number}).{why[1]} The ")
                   + f"{english_name} {letter.number} "
                   + ("is attached." if letter.pdf is not None else "can be downloaded from the IOMKI portal."))
    lines = [greeting(company_name), "", indonesian,
             "Surat IOMKI dapat diunduh kembali di portal IOMKI kapan saja.", "", "--", "", english,
             "IOMKI letters can be downloaded again from the portal at any time."]
    return subject, "\n".join(lines).encode()
