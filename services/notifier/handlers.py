"""One function per command, consumed event and timer: load, ask the domain, save, add outgoing events.

Events about one plant are written under that plant's lock (a transaction-scoped advisory lock, taken first
everywhere), so the notifier's own events about a plant keep their order in the outbox.
"""

from __future__ import annotations

import asyncio
import base64
import random
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import stamina
import structlog

from services.notifier.channels import SendFailed
from services.notifier.domain import (
    ANSWERED_BY_DECISION, COMPANY_MESSAGES, LETTER_EVENTS, ROUTED, Acknowledgement, Alert, AlertStatus, AlertTimer,
    Attachment, Channel, CompanyContact, CompanyLetter, Delivery, DeliveryStatus, Directory, DivisionContact,
    Escalation, EscalationChain, FailureReason, Grouping, InvalidWebhook, Level, LetterPairing, LetterStep, LetterWait,
    NotFound, Plant, Recipient, RetryPolicy, SecretRef, Subscription, TaskForce, TimerBackoff, WebhookSecrets,
    alert_key, company_message, company_notice, company_recipient, estate_notice, estate_recipient,
    issue_webhook_secret, letter_step, level_of_region, recipients, render, route_for, signing_secrets, timer_failure,
    webhook_url,
)
from services.notifier.repository import Job, NotifierWork
from services.notifier.sealing import SecretSeal, SecretUnreadable
from shared.clock import Clock
from shared.contract import (
    AlertAcknowledged, AlertDelivered, AlertEscalated, AlertRaised, ClosureRecommendationDecided,
    CompanyContactsUpdated, CompanyLetterIssued, Decoded, Envelope, EstateTenancyConfirmed, EstateTenancyEnded, Event,
    InspectionRecorded, WarningIssued,
)
from shared.observability import record, retried
from shared.regions import NATIONAL
from shared.storage.unit_of_work import Database
from shared.web.access import Access, Role

SERVICE = "notifier"
log = structlog.get_logger(__name__)


class Sender(Protocol):
    async def send(self, *, delivery_id: uuid.UUID, target: str, secrets: tuple[str, ...], at: datetime,
                   subject: str, body: bytes, attachment: Attachment | None = None) -> None: ...


@dataclass(frozen=True)
class NotifierConfig:
    chain: EscalationChain = EscalationChain()
    grouping: Grouping = Grouping()
    retry: RetryPolicy = RetryPolicy()
    timer_backoff: TimerBackoff = TimerBackoff()
    lease: timedelta = timedelta(minutes=2)  # longer than any one send may take (timeouts are shorter)
    batch: int = 50
    allow_http_webhooks: bool = False  # development only: receivers on the developer's machine speak plain http
    secret_grace: timedelta = timedelta(hours=24)  # a rotated-out secret still signs this long (`signing_secrets`)
    letter_wait: LetterWait = LetterWait()


@dataclass
class NotifierHandlers:
    database: Database[NotifierWork]
    clock: Clock
    config: NotifierConfig
    seal: SecretSeal

    # -- directory commands -----------------------------------------------------------------------

    async def register_task_force(self, *, level: Level, region_code: str, name: str,
                                  contacts: tuple[DivisionContact, ...], own_secrets: Mapping[int, str],
                                  access: Access) -> tuple[TaskForce, dict[int, str]]:
        """`own_secrets`: a caller's own secrets, by contact position. Returns the task force and each webhook
        contact's secret by position, which the caller sees this once."""
        for index, contact in enumerate(contacts):
            if contact.webhook:
                self._webhook(contact.webhook, field=f"contacts.{index}.webhook")
        task_force = TaskForce.register(level=level, region_code=region_code, name=name, contacts=contacts)
        issued = {i: own_secrets.get(i) or issue_webhook_secret() for i, c in enumerate(contacts) if c.webhook}
        async with self.database.transaction() as work:
            await work.notifier.add_task_force(
                task_force, {i: self.seal.seal(WebhookSecrets(secret)) for i, secret in issued.items()},
                actor=access.actor, role=access.principal.role.value, now=self.clock.now())
        record("task_force_registered", task_force_id=str(task_force.task_force_id), task_force_level=level.value,
               region_code=region_code, actor=access.actor)
        return task_force, issued

    async def subscribe(self, *, task_force_id: uuid.UUID, channel: Channel, target: str, own_secret: str | None,
                        event_types: frozenset[str], access: Access) -> tuple[Subscription, str | None]:
        """Returns the subscription and, for a webhook, its secret, which the caller sees this once."""
        secret = None
        if channel is Channel.WEBHOOK:
            self._webhook(target, field="target")
            secret = own_secret or issue_webhook_secret()
        async with self.database.transaction() as work:
            task_force = await work.notifier.get_task_force(task_force_id)
            if task_force is None or not access.may_see(region_code=task_force.region_code):
                raise NotFound("Task force")
            subscription = Subscription(uuid.uuid4(), task_force_id, channel, target, event_types)
            sealed = self.seal.seal(WebhookSecrets(secret)) if secret else None
            await work.notifier.add_subscription(subscription, sealed, actor=access.actor,
                                                 role=access.principal.role.value, now=self.clock.now())
        record("subscription_added", subscription_id=str(subscription.subscription_id),
               task_force_id=str(task_force_id), channel=channel.value, event_types=sorted(event_types),
               actor=access.actor)
        return subscription, secret

    async def rotate_subscription_secret(self, subscription_id: uuid.UUID, own_secret: str | None,
                                         access: Access) -> tuple[str, datetime]:
        async with self.database.transaction() as work:
            subscription = await work.notifier.get_subscription(subscription_id)
            task_force = await work.notifier.get_task_force(subscription.task_force_id) if subscription else None
            if subscription is None or task_force is None or not access.may_see(region_code=task_force.region_code):
                raise NotFound("Subscription")
            return await self._rotate(work, task_force.task_force_id, SecretRef(subscription_id=subscription_id),
                                      own_secret, access, what="Webhook subscription")

    async def rotate_contact_secret(self, task_force_id: uuid.UUID, position: int, own_secret: str | None,
                                    access: Access) -> tuple[str, datetime]:
        async with self.database.transaction() as work:
            task_force = await work.notifier.get_task_force(task_force_id)
            if task_force is None or not access.may_see(region_code=task_force.region_code):
                raise NotFound("Task force")
            return await self._rotate(work, task_force_id, SecretRef(contact_position=position), own_secret, access,
                                      what="Webhook contact")

    async def _rotate(self, work: NotifierWork, task_force_id: uuid.UUID, ref: SecretRef, own_secret: str | None,
                      access: Access, *, what: str) -> tuple[str, datetime]:
        """The new secret, shown this once, and until when the one it replaces still signs."""
        sealed = await work.notifier.webhook_secrets(task_force_id, ref)
        if sealed is None:  # an email subscription or contact, or no such contact
            raise NotFound(what)
        now = self.clock.now()
        secret = own_secret or issue_webhook_secret()
        try:
            held = self.seal.open(sealed).rotated(secret, now)
        except SecretUnreadable:  # the key that sealed the old one is gone: the new one signs alone, at once
            held = WebhookSecrets(secret)
        await work.notifier.save_webhook_secrets(task_force_id, ref, self.seal.seal(held))
        record("webhook_secret_rotated", task_force_id=str(task_force_id),
               subscription_id=str(ref.subscription_id) if ref.subscription_id else None,
               contact_position=ref.contact_position, actor=access.actor)
        return secret, now + self.config.secret_grace if held.previous is not None else now

    async def keep_secrets_sealed(self) -> None:
        """At start: seal what was stored in the clear before migration 0005 and clear it, then seal again under the
        first configured key what an older key sealed. Idempotent, so every replica may run it."""
        in_the_clear = 0
        while True:
            async with self.database.transaction() as work:
                found = await work.notifier.secrets_in_the_clear(self.config.batch)
                for task_force_id, ref, secret in found:
                    await work.notifier.save_webhook_secrets(task_force_id, ref, self.seal.seal(WebhookSecrets(secret)))
            in_the_clear += len(found)
            if not found:
                break
        async with self.database.reading() as work:
            owners = await work.notifier.sealed_secret_owners()
        resealed = 0
        for task_force_id, ref in owners:
            async with self.database.transaction() as work:  # re-read under its lock: a rotation may have been first
                sealed = await work.notifier.webhook_secrets(task_force_id, ref)
                try:
                    again = self.seal.resealed(sealed) if sealed is not None else None
                except SecretUnreadable:
                    # Its webhooks fail until the key is configured again or the secret rotated; the rest go on.
                    log.error("webhook_secret_unreadable", task_force_id=str(task_force_id),
                              subscription_id=str(ref.subscription_id) if ref.subscription_id else None,
                              contact_position=ref.contact_position)
                    continue
                if again is not None:
                    await work.notifier.save_webhook_secrets(task_force_id, ref, again)
                    resealed += 1
        if in_the_clear or resealed:
            log.info("webhook_secrets_sealed", in_the_clear=in_the_clear, under_an_older_key=resealed)

    def _webhook(self, url: str, *, field: str) -> None:
        """The scheme rule depends on where the platform runs, so it is checked here and not in the request model
        (which checks everything else about the URL)."""
        try:
            webhook_url(url, allow_http=self.config.allow_http_webhooks)
        except InvalidWebhook as exc:
            exc.field = field
            raise

    async def task_forces(self, access: Access) -> list[TaskForce]:
        async with self.database.reading() as work:
            return await work.notifier.list_task_forces(access.region_filter)

    # -- alert queries and acknowledgement --------------------------------------------------------

    async def alerts(self, status: AlertStatus | None, access: Access, after: tuple[datetime, uuid.UUID] | None,
                     limit: int) -> list[Alert]:
        async with self.database.reading() as work:
            return await work.notifier.list_alerts(status, access.region_filter, after, limit)

    async def alert(self, alert_id: uuid.UUID, access: Access) -> tuple[Alert, list[dict]]:
        async with self.database.reading() as work:
            alert = await self._visible(work, alert_id, access)
            return alert, await work.notifier.escalations_of(alert_id)

    async def deliveries(self, alert_id: uuid.UUID, access: Access) -> list[dict]:
        async with self.database.reading() as work:
            await self._visible(work, alert_id, access)
            return await work.notifier.deliveries_of(alert_id)

    async def acknowledge(self, alert_id: uuid.UUID, access: Access) -> Alert:
        now = self.clock.now()
        principal = access.principal
        as_level = level_of_region(principal.region or "") if principal.role is Role.TASK_FORCE else None
        async with self.database.transaction() as work:
            peek = await self._visible(work, alert_id, access)
            await work.notifier.lock_key(str(peek.plant.facility_id))
            alert = await work.notifier.get_alert(alert_id, for_update=True)
            if alert is None:  # `_visible` found it in this transaction, and alerts are never deleted
                raise LookupError(f"alert {alert_id} vanished within its transaction")
            acknowledged, ack = alert.acknowledge(by=access.actor, role=principal.role.value, as_level=as_level,
                                                  now=now)
            await work.notifier.save_alert(acknowledged)
            await work.outbox.add(Envelope.wrap(_acknowledged(acknowledged, ack), service=SERVICE, time=now))
        record("alert_acknowledged", alert_id=str(alert_id), task_force_level=ack.level.value, actor=access.actor,
               role=ack.role, response_seconds=ack.response_seconds)
        return acknowledged

    async def _visible(self, work: NotifierWork, alert_id: uuid.UUID, access: Access) -> Alert:
        alert = await work.notifier.get_alert(alert_id)
        if alert is None or not access.may_see(region_code=alert.plant.regency_code):
            raise NotFound("Alert")
        return alert

    # -- consumed events --------------------------------------------------------------------------

    async def on_contacts_updated(self, work: NotifierWork, envelope: Envelope,
                                  event: CompanyContactsUpdated) -> None:
        await work.notifier.save_company_contact(
            CompanyContact(event.facility_id, event.nib, event.company_name, event.email),
            permit_id=event.permit_id, phone=event.phone, now=self.clock.now(),
        )
        # Which plant's contacts changed, never what they are.
        log.info("company_contacts_updated", facility_id=str(event.facility_id))

    async def on_tenancy_confirmed(self, work: NotifierWork, envelope: Envelope,
                                   event: EstateTenancyConfirmed) -> None:
        """From now on the estate company hears of every alert about the plant."""
        await work.notifier.lock_key(str(event.facility_id))  # the plant's lock, as alerts about it take it
        await work.notifier.confirm_tenancy(event.facility_id, estate_facility_id=event.estate_facility_id,
                                            estate_nib=event.estate_nib, estate_name=event.estate_name,
                                            confirmed_at=event.confirmed_at, now=self.clock.now())
        log.info("estate_tenancy_confirmed", facility_id=str(event.facility_id),
                 estate_facility_id=str(event.estate_facility_id))

    async def on_tenancy_ended(self, work: NotifierWork, envelope: Envelope, event: EstateTenancyEnded) -> None:
        await work.notifier.lock_key(str(event.facility_id))
        ended = await work.notifier.end_tenancy(event.facility_id, estate_facility_id=event.estate_facility_id)
        log.info("estate_tenancy_ended", facility_id=str(event.facility_id),
                 estate_facility_id=str(event.estate_facility_id), cause=event.cause.value, known=ended)

    async def on_inspection_recorded(self, work: NotifierWork, envelope: Envelope,
                                     event: InspectionRecorded) -> None:
        """An inspection that found the protocol violated alerts as a complaint does; one that found nothing
        violated alerts nobody."""
        if event.violations > 0:
            await self.on_event(work, envelope, event)

    async def on_unrouted_events(self, work: NotifierWork, run: list[Decoded]) -> None:
        """A run of events of one type that no route names (reports submitted, permits applied, …): most of
        the traffic, and most of it alerts nobody. One query finds the regions subscribed to the type; only
        events of plants in them go on to `on_event`. No subscription is ever removed, so an event skipped
        here has no open alert to be grouped into either."""
        subscribed = await work.notifier.subscribed_regions(type(run[0].event).__name__)
        for decoded in run:
            event = decoded.event
            # The plants' topics carry plants' events only.
            if isinstance(event, Event) and subscribed & {NATIONAL, event.province_code, event.regency_code}:
                await self.on_event(work, decoded.envelope, event)

    async def on_event(self, work: NotifierWork, envelope: Envelope, event: Event) -> None:
        """Any public event: group it into an open alert, count it into a digest, or raise a new alert."""
        now = self.clock.now()
        event_type = type(event).__name__
        plant = Plant(event.facility_id, event.province_code, event.regency_code)
        repo = work.notifier
        candidate = Alert.raise_for(event_type, plant, event.model_dump(mode="json"), now=now,
                                    chain=self.config.chain, grouping=self.config.grouping)
        await repo.lock_key(str(plant.facility_id))
        if isinstance(event, ClosureRecommendationDecided):
            await self._recommendation_answered(work, envelope, event, plant, now)
        await repo.lock_key(candidate.alert_key)
        existing = await repo.open_alert(candidate.alert_key)
        if existing is not None and existing.groups(now):
            await repo.save_alert(existing.repeated(now))
            log.info("alert_grouped", alert_id=str(existing.alert_id), count=existing.count + 1)
            if event_type in LETTER_EVENTS:  # each warning or sanction has its own letter: the company gets each
                await self._letter_event_arrived(work, existing, envelope.id, _warning_cause(event),
                                                 await repo.directory_for(plant), now)
            elif event_type in COMPANY_MESSAGES:  # and each change written for it
                await self._tell_company(work, existing, event, await repo.directory_for(plant), now)
            return
        if candidate.route.digest:
            await repo.add_alert(candidate)  # told when the digest day closes (`close_digests`)
            return
        directory = await repo.directory_for(plant)
        told = recipients(candidate.route, event_type, candidate.level, plant, directory, first_notice=True)
        if event_type not in ROUTED and not told:
            return  # nobody routes or subscribes to this event type here: no alert at all
        alert = candidate.notified({r.level for r in told if r.level} | {candidate.level})
        await repo.add_alert(alert)
        if event_type in LETTER_EVENTS:  # the company's e-mail goes with its letter: see `_letter_event_arrived`
            await self._plan(work, alert, [r for r in told if r.task_force_id is not None])
            await self._letter_event_arrived(work, alert, envelope.id, _warning_cause(event), directory, now)
        elif event_type in COMPANY_MESSAGES:  # the company's e-mail is written for it: see `_tell_company`
            await self._plan(work, alert, [r for r in told if r.task_force_id is not None])
            await self._tell_company(work, alert, event, directory, now)
        else:
            await self._plan(work, alert, told)
        await self._tell_estate(work, alert, directory, now)
        await work.outbox.add(envelope.caused(_raised(alert), service=SERVICE, time=now))
        log.info("alert_raised", alert_id=str(alert.alert_id), event_type=event_type,
                 severity=alert.severity.value, recipients=len(told))

    async def _recommendation_answered(self, work: NotifierWork, envelope: Envelope,
                                       event: ClosureRecommendationDecided, plant: Plant, now: datetime) -> None:
        """The decision acknowledges the plant's open alerts that asked for it (`ANSWERED_BY_DECISION`)."""
        for asked in ANSWERED_BY_DECISION:
            key = alert_key(asked, plant, now)
            await work.notifier.lock_key(key)
            alert = await work.notifier.open_alert(key)
            if alert is None:
                continue
            answered, ack = alert.acknowledge(by=f"decision:{event.recommendation_id}", role=event.decided_by_role,
                                              as_level=None, now=now)
            await work.notifier.save_alert(answered)
            await work.outbox.add(envelope.caused(_acknowledged(answered, ack), service=SERVICE, time=now))
            log.info("alert_answered", alert_id=str(alert.alert_id), recommendation_id=str(event.recommendation_id))

    # -- company letters (the public event and its letter, in either order) ------------------------

    async def _tell_company(self, work: NotifierWork, alert: Alert, event: Event, directory: Directory,
                            now: datetime) -> None:
        """The company's e-mail about this one event (COMPANY_MESSAGES), under its alert, when it gave an address."""
        company = company_recipient(alert.route, directory)
        if company is None:
            return
        subject, body = company_message(alert.event_type, event.model_dump(mode="json"),
                                        directory.company.company_name if directory.company else None)
        await work.notifier.add_deliveries([(Delivery.planned(alert.alert_id, company, now), subject, body, None)],
                                           now)

    async def _tell_estate(self, work: NotifierWork, alert: Alert, directory: Directory, now: datetime) -> None:
        """The estate company's e-mail about an alert raised about its tenant: once, when the alert is raised (the
        events grouped into it later tell the task force's count, not the estate again)."""
        estate = estate_recipient(directory)
        if estate is None:
            return
        subject, body = estate_notice(alert, directory.estate.company_name if directory.estate else None)
        await work.notifier.add_deliveries([(Delivery.planned(alert.alert_id, estate, now), subject, body, None)], now)

    async def _letter_event_arrived(self, work: NotifierWork, alert: Alert, cause_event_id: uuid.UUID,
                                    cause: str | None, directory: Directory, now: datetime) -> None:
        """The public half of a company e-mail about a warning or a sanction (`cause`: a warning's). Nothing waits
        for a letter when the company gave no address (permits then sends none), unless one came already."""
        if company_recipient(alert.route, directory) is None and await work.letters.pairing(cause_event_id) is None:
            return
        pairing = await work.letters.event_arrived(cause_event_id, alert.plant.facility_id, alert.alert_id,
                                                   alert.event_type, cause, now + self.config.letter_wait.longest,
                                                   now)
        await self._settle_letter(work, pairing, now)

    async def on_letter(self, work: NotifierWork, envelope: Envelope, event: CompanyLetterIssued) -> None:
        """The letter half, from the permits service on the internal topic."""
        now = self.clock.now()
        await work.notifier.lock_key(str(event.facility_id))  # the plant's lock, as the public half takes it
        letter = CompanyLetter(event.letter_number, event.kind.value, event.issued_at,
                               base64.b64decode(event.pdf_base64) if event.pdf_base64 is not None else None)
        pairing = await work.letters.letter_arrived(event.cause_event_id, event.facility_id, letter, now)
        await self._settle_letter(work, pairing, now)
        log.info("company_letter_received", facility_id=str(event.facility_id), letter_number=event.letter_number)

    async def send_unlettered(self) -> int:
        """The company e-mails whose letter did not come in time go without it, one per transaction."""
        async with self.database.reading() as work:
            due = await work.letters.waited_out(self.clock.now(), self.config.batch)
        sent = 0
        for waited in due:
            async with self.database.transaction() as work:
                await work.notifier.lock_key(str(waited.facility_id))
                pairing = await work.letters.pairing(waited.cause_event_id)  # another replica may have been first
                if pairing is not None:
                    sent += await self._settle_letter(work, pairing, self.clock.now())
        return sent

    async def _settle_letter(self, work: NotifierWork, pairing: LetterPairing, now: datetime) -> int:
        """Plan what `letter_step` says is due, once: the pairing's row is locked, and records what was planned."""
        step = letter_step(pairing, now)
        if step in (LetterStep.WAIT, LetterStep.DONE) or pairing.alert_id is None or pairing.event_type is None:
            return 0
        alert = await work.notifier.get_alert(pairing.alert_id)
        if alert is None:  # the pairing's foreign key keeps it
            raise LookupError(f"alert {pairing.alert_id} of a company letter is gone")
        directory = await work.notifier.directory_for(alert.plant)
        company = company_recipient(route_for(pairing.event_type), directory)
        letter = pairing.letter if step is not LetterStep.SEND_WITHOUT_LETTER else None
        if company is not None:
            subject, body = company_notice(step, pairing.event_type,
                                           directory.company.company_name if directory.company else None, letter,
                                           pairing.cause)
            attachment = Attachment(letter.filename, letter.pdf) if letter and letter.pdf is not None else None
            await work.notifier.add_deliveries([(Delivery.planned(alert.alert_id, company, now), subject, body,
                                                 attachment)], now)
        await work.letters.planned(pairing.cause_event_id, notice=True, letter=letter is not None, now=now)
        log.info("company_letter_planned", alert_id=str(alert.alert_id), step=step.value,
                 letter_number=letter.number if letter else None, sent=company is not None)
        return 1

    # -- timers (driven by runtime.every; state in PostgreSQL, so they survive restarts) ----------

    async def escalate_due(self) -> int:
        """Escalate what is due, one alert per transaction, so that one failing alert does not hold back others.

        An alert whose escalation fails is put back for a later attempt (`TimerBackoff`) and the sweep goes on
        with the alerts behind it; a failure to record that (the database is gone) ends the sweep until its next
        tick.
        """
        async with self.database.reading() as work:
            due = await work.notifier.due_escalations(self.clock.now(), self.config.batch)
        escalated = 0
        for alert in due:
            try:
                escalated += await self._escalate(alert)
            except Exception as exc:
                await self._postpone(alert, AlertTimer.ESCALATION, exc)
        return escalated

    async def _escalate(self, due: Alert) -> int:
        now = self.clock.now()
        async with self.database.transaction() as work:
            repo = work.notifier
            await repo.lock_key(str(due.plant.facility_id))
            alert = await repo.get_alert(due.alert_id, for_update=True)
            step = alert.escalate(now, self.config.chain) if alert else None
            if alert is None or step is None:
                return 0  # acknowledged or already escalated meanwhile
            escalated, escalation = step
            if not await repo.record_escalation(alert.alert_id, escalation, now):
                log.warning("escalation_already_taken", alert_id=str(alert.alert_id),
                            to_level=escalation.to_level.value)
                return 0
            directory = await repo.directory_for(alert.plant)
            told = recipients(alert.route, alert.event_type, escalation.to_level, alert.plant, directory,
                              first_notice=False)
            escalated = escalated.notified({r.level for r in told if r.level})
            await repo.save_alert(escalated)
            await repo.timer_done(alert.alert_id, AlertTimer.ESCALATION)
            await self._plan(work, escalated, told)
            await work.outbox.add(Envelope.wrap(_escalated(escalated, escalation), service=SERVICE, time=now))
        log.info("alert_escalated", alert_id=str(alert.alert_id), from_level=escalation.from_level.value,
                 to_level=escalation.to_level.value, recipients=len(told))
        return 1

    async def close_digests(self) -> int:
        """Close what is due, one digest per transaction; a failing one backs off as a failing escalation does."""
        async with self.database.reading() as work:
            due = await work.notifier.due_digests(self.clock.now(), self.config.batch)
        closed = 0
        for digest in due:
            try:
                closed += await self._close_digest(digest)
            except Exception as exc:
                await self._postpone(digest, AlertTimer.DIGEST, exc)
        return closed

    async def _close_digest(self, digest: Alert) -> int:
        now = self.clock.now()
        async with self.database.transaction() as work:
            repo = work.notifier
            await repo.lock_key(str(digest.plant.facility_id))
            alert = await repo.get_alert(digest.alert_id, for_update=True)
            if alert is None or alert.digest_closes_at is None:
                return 0  # closed meanwhile
            directory = await repo.directory_for(alert.plant)
            told = recipients(alert.route, alert.event_type, alert.level, alert.plant, directory,
                              first_notice=True)
            alert = alert.closed_digest().notified({r.level for r in told if r.level} | {alert.level})
            await repo.save_alert(alert)
            await repo.timer_done(alert.alert_id, AlertTimer.DIGEST)
            await self._plan(work, alert, told)
            await work.outbox.add(Envelope.wrap(_raised(alert), service=SERVICE, time=now))
        log.info("digest_closed", alert_id=str(alert.alert_id), province_code=alert.plant.province_code,
                 count=alert.count, recipients=len(told))
        return 1

    async def _postpone(self, due: Alert, timer: AlertTimer, exc: Exception) -> None:
        now = self.clock.now()
        async with self.database.transaction() as work:
            await work.notifier.lock_key(str(due.plant.facility_id))  # the plant's lock first, as everywhere
            attempts = await work.notifier.failed_attempts(due.alert_id, timer) + 1
            next_attempt_at = self.config.timer_backoff.next_attempt(attempts, now)
            await work.notifier.record_failed_attempt(due.alert_id, timer, attempts, next_attempt_at,
                                                      timer_failure(exc))
        # The message may name a contact's address: the log may hold it, the alert row not.
        log.warning("alert_timer_failed", alert_id=str(due.alert_id), timer=timer.value, attempts=attempts,
                    next_attempt_at=next_attempt_at.isoformat(), error=f"{type(exc).__name__}: {exc}"[:1000])

    async def _plan(self, work: NotifierWork, alert: Alert, told: list[Recipient]) -> None:
        now = self.clock.now()
        planned: list[tuple[Delivery, str, bytes, Attachment | None]] = []
        for recipient in told:
            subject, body = render(alert, recipient.channel)
            planned.append((Delivery.planned(alert.alert_id, recipient, now), subject, body, None))
        await work.notifier.add_deliveries(planned, now)


@dataclass
class DeliveryWorker:
    """Sends due deliveries, one attempt each, and records every attempt; retries are just later rounds."""

    database: Database[NotifierWork]
    clock: Clock
    config: NotifierConfig
    rng: random.Random
    seal: SecretSeal

    async def deliver_due(self, senders: Mapping[Channel, Sender]) -> int:
        async with self.database.transaction() as work:
            jobs = await work.notifier.lease_due(self.clock.now(), self.config.lease, self.config.batch)
        if jobs:
            # Each attempt records its own outcome; one that cannot (the database gone past half a lease) must
            # not cut the others short: its lease runs out and a later round tries it again.
            outcomes = await asyncio.gather(*(self._attempt(job, senders) for job in jobs), return_exceptions=True)
            for job, outcome in zip(jobs, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    log.error("delivery_attempt_unrecorded", delivery_id=str(job.delivery.delivery_id),
                              error_type=type(outcome).__name__)
        return len(jobs)

    async def _attempt(self, job: Job, senders: Mapping[Channel, Sender]) -> None:
        delivery = job.delivery
        error: str | None = None
        permanent = False
        try:
            await senders[delivery.recipient.channel].send(
                delivery_id=delivery.delivery_id, target=delivery.recipient.target, secrets=self._secrets(job),
                at=self.clock.now(), subject=job.subject, body=job.body, attachment=job.attachment)
        except SendFailed as exc:
            error, permanent = exc.reason, exc.permanent
            # The task force reads `error`; the log gets the detail (never the target: see channels.py).
            log.warning("delivery_failed", delivery_id=str(delivery.delivery_id),
                        channel=delivery.recipient.channel.value, reason=exc.reason, detail=exc.detail)
        except Exception as exc:  # noqa: BLE001 -- any failure is a failed attempt, retried with backoff
            # Not the message, which may quote the target: the type and where it was raised.
            where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            error = FailureReason.INTERNAL_ERROR
            log.error("delivery_error", delivery_id=str(delivery.delivery_id),
                      channel=delivery.recipient.channel.value, error_type=type(exc).__name__,
                      raised_at=f"{where.filename}:{where.lineno}" if where else None)
        # A receiver's answer must outlive a database outage: were it lost, the lease would run out and the
        # notice be sent again. Nobody else sends it while the lease holds, so keep trying to record it until then.
        now = self.clock.now()
        unrecorded = retried("delivery_record_retry", delivery_id=str(delivery.delivery_id))
        async for attempt in stamina.retry_context(on=unrecorded, attempts=None, timeout=self.config.lease / 2):
            with attempt:
                await self._record(job, error, now, permanent=permanent)

    def _secrets(self, job: Job) -> tuple[str, ...]:
        """What a webhook is signed with, as its owner holds it now; an email is not signed."""
        if job.delivery.recipient.channel is not Channel.WEBHOOK:
            return ()
        if job.secrets is None:  # its subscription or contact was removed: nothing to sign with, nobody to tell
            raise SendFailed(FailureReason.RECIPIENT_REMOVED, permanent=True)
        return signing_secrets(self.seal.open(job.secrets), self.clock.now(), self.config.secret_grace)

    async def _record(self, job: Job, error: str | None, now: datetime, *, permanent: bool = False) -> None:
        delivery = job.delivery
        async with self.database.transaction() as work:
            await work.notifier.lock_key(str(job.plant.facility_id))
            current = await work.notifier.get_delivery(delivery.delivery_id)
            if current is None or current.status is not DeliveryStatus.PENDING or current.attempts != delivery.attempts:
                return  # the lease ran out and another round recorded this attempt already
            if error is None:
                done = current.succeeded()
            else:
                done = current.failed_attempt(error, now, self.config.retry, self.rng, permanent=permanent)
            await work.notifier.save_attempt(done, succeeded=error is None, error=error, now=now)
            if done.status is DeliveryStatus.DELIVERED:
                await work.outbox.add(Envelope.wrap(AlertDelivered(
                    facility_id=job.plant.facility_id, province_code=job.plant.province_code,
                    regency_code=job.plant.regency_code, alert_id=done.alert_id, delivery_id=done.delivery_id,
                    channel=done.recipient.channel.value, level=done.recipient.level or job.alert_level,
                    attempts=done.attempts,
                ), service=SERVICE, time=now))
        # The target is never logged: for a company it is its contact address.
        log.info("delivery_attempt", delivery_id=str(done.delivery_id), alert_id=str(done.alert_id),
                 channel=done.recipient.channel.value, recipient=done.recipient.kind, attempt=done.attempts,
                 status=done.status.value, error=error)


def _warning_cause(event: Event) -> str | None:
    return event.cause.value if isinstance(event, WarningIssued) else None


def _base(alert: Alert) -> dict:
    return dict(facility_id=alert.plant.facility_id, province_code=alert.plant.province_code,
                regency_code=alert.plant.regency_code, alert_id=alert.alert_id)


def _raised(alert: Alert) -> AlertRaised:
    return AlertRaised(**_base(alert), alert_key=alert.alert_key, event_type=alert.event_type,
                       severity=alert.severity, level=alert.level, count=alert.count)


def _escalated(alert: Alert, escalation: Escalation) -> AlertEscalated:
    return AlertEscalated(**_base(alert), from_level=escalation.from_level, to_level=escalation.to_level)


def _acknowledged(alert: Alert, ack: Acknowledgement) -> AlertAcknowledged:
    return AlertAcknowledged(**_base(alert), level=ack.level, acknowledged_by_role=ack.role,
                             response_seconds=ack.response_seconds)
