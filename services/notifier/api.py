"""HTTP routes of the notifier: parse, check access, call a handler, map domain errors to problems."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator, model_validator

from services.notifier.domain import (
    WEBHOOK_SECRET_MAX_LENGTH, WEBHOOK_SECRET_PATTERN, WEBHOOK_URL_MAX_LENGTH, AlertStatus, AlreadyAcknowledged, Alert,
    Channel, Division, DivisionContact, InvalidRegion, InvalidWebhook, InvalidWebhookSecret, Level, NotFound,
    NotNotifiedAtLevel, TaskForce, webhook_secret, webhook_url,
)
from services.notifier.handlers import NotifierHandlers
from shared import regions
from shared.contract import EVENT_TYPES, INTERNAL_CONTACTS, EmailAddress, single_email
from shared.web.access import Access, AuthenticatedFirst, Policy, Role, Rule, Scope
from shared.web.cursors import After, cursor, moment_and_id, position
from shared.web.http import STORABLE, Problem, ProblemTable, Text

OP, TF, RO = Role.OPERATOR, Role.TASK_FORCE, Role.REGIONAL_OFFICE

# Who may do what, in one screen (DESIGN §4). Companies, estates and agencies get nothing here: company and estate
# notices go out by e-mail, and agencies watch iomki.alerts. A regional office reads its region's alerts and task
# forces; acknowledging is the task force's, whose acknowledgement stops the escalation.
POLICY = Policy({
    "manage_directory": Rule({OP: Scope.ALL}, "register task forces and their subscriptions, rotate their secrets"),
    "read_directory": Rule({OP: Scope.ALL, TF: Scope.REGION, RO: Scope.REGION}, "list the task forces of a region"),
    "read_alerts": Rule({OP: Scope.ALL, TF: Scope.REGION, RO: Scope.REGION}, "read alerts and their deliveries"),
    "acknowledge": Rule({OP: Scope.ALL, TF: Scope.REGION}, "acknowledge an alert, which stops its escalation"),
})

# What each refusal of the domain answers, in one table (see `ProblemTable`).
PROBLEMS: ProblemTable = {
    NotFound: lambda exc: Problem(404, "Not found", str(exc)),
    InvalidRegion: lambda exc: Problem(422, "Invalid request", "One or more fields are invalid.",
                                       errors=[{"field": "region_code", "message": str(exc)}]),
    InvalidWebhook: lambda exc: Problem(422, "Invalid request", "One or more fields are invalid.",
                                        errors=[{"field": exc.field, "message": str(exc)}]),
    InvalidWebhookSecret: lambda exc: Problem(422, "Invalid request", "One or more fields are invalid.",
                                              errors=[{"field": exc.field, "message": str(exc)}]),
    AlreadyAcknowledged: lambda exc: Problem(409, "Already acknowledged", str(exc), current_status=exc.current.value),
    NotNotifiedAtLevel: lambda exc: Problem(409, "Not notified at this level", str(exc), level=exc.level.value),
}

# What a task force may subscribe to: every event of the contract except the internal one.
SUBSCRIBABLE = frozenset(cls.__name__ for cls in EVENT_TYPES.values() if cls.topic is not INTERNAL_CONTACTS)

# Whether an address reaches anyone is learnt by delivering to it; what it may look like is decided here, by
# `single_email` and `webhook_url` (the https rule, which depends on the environment, by the handler).
_URL = r"^https?://\S+$"
EVENT_TYPE_MAX_LENGTH = 64  # the longest event name with room to spare
MAX_CONTACTS = 50  # of one task force
# A task force's region as the domain takes it (its level decides which; InvalidRegion otherwise), stated in the
# schema; empty is the national one's earlier name.
_REGION = r"^(?:|ID|[0-9]{2}|[0-9]{2}\.[0-9]{2})$"

def _webhook_shape(url: str) -> str:
    try:
        return webhook_url(url, allow_http=True)
    except InvalidWebhook as exc:
        raise ValueError(str(exc)) from None


def _secret_shape(secret: str) -> str:
    try:
        return webhook_secret(secret)
    except InvalidWebhookSecret as exc:
        raise ValueError(str(exc)) from None


Email = Annotated[EmailAddress, STORABLE]
WebhookUrl = Annotated[str, StringConstraints(pattern=_URL, max_length=WEBHOOK_URL_MAX_LENGTH),
                       AfterValidator(_webhook_shape), STORABLE]
# `webhook_secret` checks the form (ASCII only, so no STORABLE) with a message that says what is wanted; the
# schema states the pattern.
OwnSecret = Annotated[str, StringConstraints(max_length=WEBHOOK_SECRET_MAX_LENGTH), AfterValidator(_secret_shape),
                      Field(json_schema_extra={"pattern": WEBHOOK_SECRET_PATTERN})]
_CALLERS_KEY = ("Optional: your own Standard Webhooks secret, whsec_ and the base64 of 24 to 64 random bytes. "
                "Left out, the platform issues one; either way it is shown in this response only.")


class ContactIn(BaseModel):
    division: Division
    email: Email | None = None
    webhook: WebhookUrl | None = None
    secret: OwnSecret | None = Field(None, description=_CALLERS_KEY)

    @model_validator(mode="after")
    def _reachable(self) -> ContactIn:
        if not self.email and not self.webhook:
            raise ValueError("a contact needs an email or a webhook")
        if self.secret and not self.webhook:
            raise ValueError("a secret signs a webhook: a contact without one takes none")
        return self


class TaskForceIn(BaseModel):
    level: Level
    region_code: Text = Field(regions.NATIONAL, max_length=5, json_schema_extra={"pattern": _REGION},
                              description="Kemendagri code: '32' province, '32.16' regency; 'ID' (the default) for the "
                                          "national task force, which an empty code also names.")

    @field_validator("region_code")
    @classmethod
    def _national(cls, code: str) -> str:
        return code or regions.NATIONAL  # the directory's earlier name for the country, still accepted
    name: Text = Field(min_length=1, max_length=200)
    contacts: list[ContactIn] = Field(min_length=1, max_length=MAX_CONTACTS)


class SubscriptionIn(BaseModel):
    task_force_id: uuid.UUID
    channel: Channel
    target: Text = Field(min_length=1, max_length=2000)
    secret: OwnSecret | None = Field(None, description=_CALLERS_KEY)
    event_types: list[Annotated[str, Field(max_length=EVENT_TYPE_MAX_LENGTH,
                                           json_schema_extra={"enum": sorted(SUBSCRIBABLE)})]] = Field(
        min_length=1, max_length=len(SUBSCRIBABLE))

    @model_validator(mode="after")
    def _consistent(self) -> SubscriptionIn:
        unknown = sorted(set(self.event_types) - SUBSCRIBABLE)
        if unknown:
            raise ValueError(f"unknown event types: {', '.join(unknown)}")
        if self.channel is Channel.WEBHOOK:
            _webhook_shape(self.target)
        elif self.secret:
            raise ValueError("a secret signs a webhook: an email subscription takes none")
        else:
            try:
                self.target = single_email(self.target)
            except ValueError as exc:
                raise ValueError(f"an email target must be one e-mail address: {exc}") from None
        return self


class SecretIn(BaseModel):
    secret: OwnSecret | None = Field(None, description=_CALLERS_KEY)


def _task_force(tf: TaskForce) -> dict[str, Any]:
    """Never a secret: those are shown once, when issued."""
    return {"task_force_id": str(tf.task_force_id), "level": tf.level.value, "region_code": tf.region_code,
            "name": tf.name,
            "contacts": [{"position": i, "division": c.division.value, "email": c.email, "webhook": c.webhook}
                         for i, c in enumerate(tf.contacts)]}


def _alert(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": str(alert.alert_id), "alert_key": alert.alert_key, "event_type": alert.event_type,
        "severity": alert.severity.value, "status": alert.status.value, "level": alert.level.value,
        "count": alert.count, "facility_id": str(alert.plant.facility_id),
        "province_code": alert.plant.province_code, "regency_code": alert.plant.regency_code,
        "first_seen_at": alert.first_seen_at, "last_seen_at": alert.last_seen_at, "escalate_at": alert.escalate_at,
        "notified_levels": [lv.value for lv in alert.notified_levels],
        "acknowledged_at": alert.acknowledged_at, "acknowledged_by": alert.acknowledged_by,
        "acknowledged_role": alert.acknowledged_role,
    }


def router(handlers: NotifierHandlers) -> APIRouter:
    routes = APIRouter(route_class=AuthenticatedFirst, tags=["notifier"])

    @routes.post("/task-forces", status_code=201)
    async def register(body: TaskForceIn, access: Annotated[Access, POLICY.guard("manage_directory")]) -> dict:
        """Each webhook contact's secret is in `webhook_secrets`, by contact position: this once, never again."""
        contacts = tuple(DivisionContact(c.division, c.email, c.webhook) for c in body.contacts)
        own = {i: c.secret for i, c in enumerate(body.contacts) if c.secret}
        tf, issued = await handlers.register_task_force(level=body.level, region_code=body.region_code,
                                                        name=body.name, contacts=contacts, own_secrets=own,
                                                        access=access)
        return {"task_force_id": str(tf.task_force_id),
                "webhook_secrets": [{"contact": i, "secret": secret} for i, secret in sorted(issued.items())]}

    @routes.post("/task-forces/{task_force_id}/contacts/{position}/secret", status_code=201)
    async def rotate_contact_secret(
            task_force_id: uuid.UUID, position: Annotated[int, Path(ge=0, le=MAX_CONTACTS - 1)],
            access: Annotated[Access, POLICY.guard("manage_directory")], body: SecretIn | None = None) -> dict:
        """A new secret for a webhook contact, shown this once; the previous one still signs until
        `previous_secret_valid_until`."""
        secret, until = await handlers.rotate_contact_secret(task_force_id, position, body.secret if body else None,
                                                             access)
        return {"task_force_id": str(task_force_id), "contact": position, "secret": secret,
                "previous_secret_valid_until": until}

    @routes.get("/task-forces")
    async def list_task_forces(access: Annotated[Access, POLICY.guard("read_directory")]) -> dict:
        return {"task_forces": [_task_force(tf) for tf in await handlers.task_forces(access)]}

    @routes.post("/subscriptions", status_code=201)
    async def subscribe(body: SubscriptionIn, access: Annotated[Access, POLICY.guard("manage_directory")]) -> dict:
        """A webhook subscription's secret is in `secret`: this once, never again."""
        sub, secret = await handlers.subscribe(task_force_id=body.task_force_id, channel=body.channel,
                                               target=body.target, own_secret=body.secret,
                                               event_types=frozenset(body.event_types), access=access)
        return {"subscription_id": str(sub.subscription_id)} | ({"secret": secret} if secret else {})

    @routes.post("/subscriptions/{subscription_id}/secret", status_code=201)
    async def rotate_subscription_secret(subscription_id: uuid.UUID,
                                         access: Annotated[Access, POLICY.guard("manage_directory")],
                                         body: SecretIn | None = None) -> dict:
        """A new secret for a webhook subscription, shown this once; the previous one still signs until
        `previous_secret_valid_until`."""
        secret, until = await handlers.rotate_subscription_secret(subscription_id, body.secret if body else None,
                                                                  access)
        return {"subscription_id": str(subscription_id), "secret": secret, "previous_secret_valid_until": until}

    @routes.get("/alerts")
    async def list_alerts(access: Annotated[Access, POLICY.guard("read_alerts")], status: AlertStatus | None = None,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100, after: After = None) -> dict:
        """Newest first; `next` continues the list where this page ended."""
        found = await handlers.alerts(status, access, position(after, moment_and_id), limit + 1)
        page = found[:limit]
        return {"alerts": [_alert(a) for a in page],
                "next": cursor(page[-1].first_seen_at.isoformat(), page[-1].alert_id) if len(found) > limit else None}

    @routes.get("/alerts/{alert_id}")
    async def get_alert(alert_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read_alerts")]) -> dict:
        alert, escalations = await handlers.alert(alert_id, access)
        return _alert(alert) | {"escalations": escalations}

    @routes.get("/alerts/{alert_id}/deliveries")
    async def deliveries(alert_id: uuid.UUID, access: Annotated[Access, POLICY.guard("read_alerts")]) -> dict:
        found = await handlers.deliveries(alert_id, access)
        return {"alert_id": str(alert_id), "deliveries": found}

    @routes.post("/alerts/{alert_id}/ack")
    async def acknowledge(alert_id: uuid.UUID, access: Annotated[Access, POLICY.guard("acknowledge")]) -> dict:
        alert = await handlers.acknowledge(alert_id, access)
        return _alert(alert)

    return routes

