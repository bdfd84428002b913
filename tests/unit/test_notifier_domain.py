"""Routing, grouping, escalation and retries of the notifier, as pure domain with a fake clock."""

from __future__ import annotations

import base64
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.domain import (
    WEBHOOK_SECRET_MAX_LENGTH, AlertStatus, AlreadyAcknowledged, Alert, Channel, CompanyContact, Delivery,
    DeliveryStatus, Directory, Division, DivisionContact, EscalationChain, Grouping, InvalidRegion,
    InvalidWebhookSecret, Level, NotNotifiedAtLevel, Plant, Recipient, RetryPolicy, SecretRef, Subscription,
    TaskForce, TimerBackoff, WebhookSecrets, alert_key, issue_webhook_secret, level_of_region, recipients, render,
    route_for, signing_key, signing_secrets, timer_failure, webhook_secret,
)
from shared.clock import FakeClock
from shared.contract import Severity

pytestmark = pytest.mark.unit

CHAIN = EscalationChain((timedelta(hours=1), timedelta(hours=4)))
GROUPING = Grouping(timedelta(hours=1))
BEKASI = Plant(uuid.uuid4(), "32", "32.16")


def task_force(level: Level, region: str, *contacts: DivisionContact) -> TaskForce:
    return TaskForce.register(level=level, region_code=region, name=f"Satgas {region or 'nasional'}",
                              contacts=contacts)


REGENCY = task_force(Level.REGENCY, "32.16",
                     DivisionContact(Division.HEALTH, email="kesehatan@bekasi.example"),
                     DivisionContact(Division.LAW_ENFORCEMENT, webhook="http://satpolpp.example/hook"))
OTHER_REGENCY = task_force(Level.REGENCY, "32.17", DivisionContact(Division.HEALTH, email="kes@karawang.example"))
PROVINCE = task_force(Level.PROVINCE, "32", DivisionContact(Division.HEALTH, email="kes@jabar.example"),
                      DivisionContact(Division.DATA_INFORMATION, email="data@jabar.example"))
NATIONAL = task_force(Level.NATIONAL, "ID", DivisionContact(Division.HEALTH, email="kes@bnpb.example"))
COMPANY = CompanyContact(BEKASI.facility_id, "8120000123456", "PT Baja Nusantara", "k3@baja.example")


def directory(*subscriptions: Subscription) -> Directory:
    return Directory((REGENCY, OTHER_REGENCY, PROVINCE, NATIONAL), subscriptions, COMPANY)


def targets(found: list[Recipient]) -> set[str]:
    return {r.target for r in found}


def raised(event_type: str, clock: FakeClock, plant: Plant = BEKASI) -> Alert:
    return Alert.raise_for(event_type, plant, {}, now=clock.now(), chain=CHAIN, grouping=GROUPING)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 20, 3, 0, tzinfo=UTC))


# -- directory ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "region"), [(Level.REGENCY, "32"), (Level.PROVINCE, "32.16"),
                                               (Level.NATIONAL, "32"), (Level.NATIONAL, ""), (Level.PROVINCE, "3"),
                                               (Level.PROVINCE, "ID"), (Level.PROVINCE, "3\u0662"),
                                               (Level.REGENCY, "32.16\n")])
def test_a_task_force_region_must_match_its_level(level, region):
    with pytest.raises(InvalidRegion):
        task_force(level, region)


def test_region_codes_name_their_level():
    assert [level_of_region(c) for c in ("ID", "32", "32.16")] == [Level.NATIONAL, Level.PROVINCE, Level.REGENCY]


# -- routing ------------------------------------------------------------------------------------


def test_a_cluster_goes_to_the_health_division_of_the_regency_task_force_first(clock):
    route = route_for("ClusterDeclared")
    assert route.severity is Severity.HIGH
    found = recipients(route, "ClusterDeclared", Level.REGENCY, BEKASI, directory(), first_notice=True)
    # And the company, of its own plant; not Karawang's task force, not the law-enforcement webhook, not the
    # province yet.
    assert targets(found) == {"kesehatan@bekasi.example", "k3@baja.example"}


def test_a_freeze_goes_to_law_enforcement_and_the_company():
    found = recipients(route_for("PermitFrozen"), "PermitFrozen", Level.REGENCY, BEKASI, directory(),
                       first_notice=True)
    assert {(r.channel, r.target, r.kind, r.signed_with) for r in found} == {
        # The contact's secret is read where it lives, at its position in the task force, when each attempt goes.
        (Channel.WEBHOOK, "http://satpolpp.example/hook", "task_force", SecretRef(contact_position=1)),
        (Channel.EMAIL, "k3@baja.example", "company", None),
    }


def test_a_reversed_sanction_is_told_to_those_who_enforced_it_and_an_objections_decision_to_the_company():
    reversed_ = recipients(route_for("SanctionReversed"), "SanctionReversed", Level.REGENCY, BEKASI, directory(),
                           first_notice=True)
    assert targets(reversed_) == {"http://satpolpp.example/hook", "k3@baja.example"}
    decided = recipients(route_for("ObjectionDecided"), "ObjectionDecided", Level.REGENCY, BEKASI, directory(),
                         first_notice=True)
    assert targets(decided) == {"k3@baja.example"}


def test_a_warning_goes_to_the_company_and_to_task_forces_subscribed_for_the_region():
    bekasi_hook = Subscription(uuid.uuid4(), REGENCY.task_force_id, Channel.WEBHOOK, "http://bekasi/hook",
                               frozenset({"WarningIssued"}))
    karawang_hook = Subscription(uuid.uuid4(), OTHER_REGENCY.task_force_id, Channel.WEBHOOK,
                                 "http://karawang/hook", frozenset({"WarningIssued"}))
    province_clusters = Subscription(uuid.uuid4(), PROVINCE.task_force_id, Channel.EMAIL, "cl@jabar.example",
                                     frozenset({"ClusterDeclared"}))
    found = recipients(route_for("WarningIssued"), "WarningIssued", Level.REGENCY, BEKASI,
                       directory(bekasi_hook, karawang_hook, province_clusters), first_notice=True)
    assert targets(found) == {"k3@baja.example", "http://bekasi/hook"}
    assert {r.signed_with for r in found} == {None, SecretRef(subscription_id=bekasi_hook.subscription_id)}
    assert route_for("WarningIssued").severity is Severity.LOW


def test_overdue_reports_are_counted_per_province_and_day(clock):
    first = raised("ReportOverdue", clock)
    other_plant = Plant(uuid.uuid4(), "32", "32.75")
    assert alert_key("ReportOverdue", other_plant, clock.now()) == first.alert_key == "ReportOverdue:32:2026-11-20"
    assert first.level is Level.PROVINCE and first.plant.regency_code == "32"
    assert first.escalate_at is None
    # The digest day is WIB: 20 Nov 03:00 UTC is 10:00 WIB, so it closes at 21 Nov 00:00 WIB = 20 Nov 17:00 UTC.
    assert first.digest_closes_at == datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
    found = recipients(first.route, "ReportOverdue", first.level, first.plant, directory(), first_notice=True)
    assert targets(found) == {"data@jabar.example"}


# -- grouping -----------------------------------------------------------------------------------


def test_the_same_alert_within_the_window_is_counted_not_repeated(clock):
    alert = raised("CaseDetected", clock)
    for _ in range(4):
        clock.advance(timedelta(minutes=10))
        assert alert.groups(clock.now())
        alert = alert.repeated(clock.now())
    assert alert.count == 5
    clock.advance(timedelta(minutes=30))  # 70 minutes after the first case
    assert not alert.groups(clock.now())


def test_an_acknowledged_alert_groups_nothing(clock):
    alert, _ = raised("CaseDetected", clock).acknowledge(by="op", role="operator", as_level=None, now=clock.now())
    assert not alert.groups(clock.now())


# -- escalation ---------------------------------------------------------------------------------


def test_an_unacknowledged_cluster_climbs_to_province_then_national_once_each(clock):
    # A cluster is declared at a Bekasi plant at 10:00 WIB; nobody answers.
    alert = raised("ClusterDeclared", clock).notified({Level.REGENCY})
    assert alert.escalate(clock.advance(timedelta(minutes=59)), CHAIN) is None
    alert, step = alert.escalate(clock.advance(timedelta(minutes=1)), CHAIN)
    assert (step.from_level, step.to_level) == (Level.REGENCY, Level.PROVINCE)
    assert alert.escalate(clock.now(), CHAIN) is None  # the same step never twice
    assert alert.escalate(clock.advance(timedelta(hours=3, minutes=59)), CHAIN) is None
    alert, step = alert.escalate(clock.advance(timedelta(minutes=1)), CHAIN)
    assert (step.from_level, step.to_level) == (Level.PROVINCE, Level.NATIONAL)
    assert alert.escalate_at is None
    assert alert.escalate(clock.advance(timedelta(days=2)), CHAIN) is None  # national is the top
    assert alert.notified_levels == (Level.REGENCY, Level.PROVINCE, Level.NATIONAL)


def test_escalation_notifies_the_next_levels_division_only(clock):
    found = recipients(route_for("ClusterDeclared"), "ClusterDeclared", Level.PROVINCE, BEKASI, directory(),
                       first_notice=False)
    assert targets(found) == {"kes@jabar.example"}


def test_low_severity_alerts_never_escalate(clock):
    alert = raised("WarningIssued", clock)
    assert alert.escalate_at is None
    assert alert.escalate(clock.advance(timedelta(days=1)), CHAIN) is None


def test_acknowledging_stops_escalation_and_records_who_and_when(clock):
    alert = raised("ClusterDeclared", clock).notified({Level.REGENCY})
    clock.advance(timedelta(minutes=20))
    acked, ack = alert.acknowledge(by="bupati-bekasi", role="task_force", as_level=Level.REGENCY, now=clock.now())
    assert acked.status is AlertStatus.ACKNOWLEDGED and acked.acknowledged_by == "bupati-bekasi"
    assert ack.response_seconds == 1200
    assert acked.escalate(clock.advance(timedelta(hours=2)), CHAIN) is None
    with pytest.raises(AlreadyAcknowledged):
        acked.acknowledge(by="op", role="operator", as_level=None, now=clock.now())


def test_a_province_acknowledges_only_once_it_was_notified(clock):
    alert = raised("ClusterDeclared", clock).notified({Level.REGENCY})
    with pytest.raises(NotNotifiedAtLevel):
        alert.acknowledge(by="gubernur", role="task_force", as_level=Level.PROVINCE, now=clock.now())
    escalated, _ = alert.escalate(clock.advance(timedelta(hours=1)), CHAIN)
    acked, ack = escalated.acknowledge(by="gubernur", role="task_force", as_level=Level.PROVINCE, now=clock.now())
    assert ack.level is Level.PROVINCE and acked.status is AlertStatus.ACKNOWLEDGED


def test_an_escalation_chain_needs_positive_steps():
    with pytest.raises(ValueError):
        EscalationChain.parse([timedelta(0)])


# -- timers that fail ---------------------------------------------------------------------------


def test_an_escalation_that_keeps_failing_is_retried_twice_as_late_each_time_up_to_the_longest_wait(clock):
    backoff = TimerBackoff(first=timedelta(seconds=30), longest=timedelta(minutes=5))
    waits = [backoff.next_attempt(attempts, clock.now()) - clock.now() for attempts in range(1, 7)]
    assert waits == [timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4),
                     timedelta(minutes=5), timedelta(minutes=5)]
    # Never given up, and never an overflow however long it keeps failing.
    assert backoff.next_attempt(10_000, clock.now()) - clock.now() == timedelta(minutes=5)
    assert backoff.next_attempt(0, clock.now()) - clock.now() == timedelta(seconds=30)


def test_a_failed_timer_keeps_the_kind_of_failure_never_its_message():
    error = timer_failure(ValueError("'kes@bantul.example' is not a valid Division"))
    assert error == "ValueError"


# -- deliveries ---------------------------------------------------------------------------------


def test_a_failing_delivery_backs_off_exponentially_with_jitter_then_fails_for_good(clock):
    policy = RetryPolicy(base=timedelta(seconds=10), cap=timedelta(minutes=5), max_attempts=4)
    rng = random.Random(7)  # noqa: S311 -- seeded jitter for a repeatable test
    delivery = Delivery.planned(uuid.uuid4(), Recipient(Channel.WEBHOOK, "http://x/hook", Level.REGENCY,
                                                        uuid.uuid4()), clock.now())
    waits = []
    for attempt in range(1, 4):
        delivery = delivery.failed_attempt("HTTP 503", clock.now(), policy, rng)
        assert delivery.status is DeliveryStatus.PENDING and delivery.attempts == attempt
        wait = delivery.next_attempt_at - clock.now()
        ceiling = policy.base * 2 ** (attempt - 1)
        assert ceiling / 2 <= wait <= ceiling
        waits.append(wait)
        clock.set(delivery.next_attempt_at)
    assert waits[0] < waits[2]
    delivery = delivery.failed_attempt("ConnectError", clock.now(), policy, rng)
    assert delivery.status is DeliveryStatus.FAILED and delivery.last_error == "ConnectError"
    assert delivery.next_attempt_at is None


def test_backoff_is_capped(clock):
    policy = RetryPolicy(base=timedelta(seconds=10), cap=timedelta(minutes=1), max_attempts=30)
    retry_at = policy.next_attempt(20, clock.now(), random.Random(1))  # noqa: S311 -- seeded jitter
    assert retry_at - clock.now() <= timedelta(minutes=1)


def test_a_notice_names_levels_and_regions_never_contacts(clock):
    alert = raised("PermitFrozen", clock)
    subject, body = render(alert, Channel.WEBHOOK)
    assert b'"event_type":"PermitFrozen"' in body and b"@" not in body
    subject, text = render(alert, Channel.EMAIL)
    assert "PermitFrozen in 32.16" in subject


# -- webhook secrets ------------------------------------------------------------------------------


def test_the_platform_issues_standard_webhooks_secrets_of_32_random_bytes():
    issued = {issue_webhook_secret() for _ in range(20)}
    assert len(issued) == 20
    for secret in issued:
        assert secret.startswith("whsec_") and webhook_secret(secret) == secret
        assert len(signing_key(secret)) == 32 == len(base64.b64decode(secret.removeprefix("whsec_")))


@pytest.mark.parametrize("key_bytes", [24, 32, 64])
def test_a_callers_own_secret_is_taken_in_the_issued_form_with_a_key_of_24_to_64_bytes(key_bytes):
    secret = "whsec_" + base64.b64encode(bytes(range(key_bytes))).decode()
    assert webhook_secret(secret) == secret and len(secret) <= WEBHOOK_SECRET_MAX_LENGTH


@pytest.mark.parametrize("secret", [
    "whsec_" + base64.b64encode(b"k" * 23).decode(),  # a key too short to be a key
    "whsec_" + base64.b64encode(b"k" * 65).decode(),  # longer than the bound
    base64.b64encode(b"k" * 32).decode(),  # no prefix
    "WHSEC_" + base64.b64encode(b"k" * 32).decode(),
    "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 32).decode(),  # url-safe alphabet: not Standard Webhooks'
    "whsec_" + base64.b64encode(b"k" * 32).decode().rstrip("="),  # unpadded: not the form issued
    "whsec_" + base64.b64encode(b"k" * 32).decode() + "\n",
    "whsec_" + "\u0661" * 44,  # digits, but not ASCII ones
    "bekasi-webhook-secret-0123456789",  # the free text taken before
])
def test_anything_else_is_refused_with_what_a_secret_must_be(secret):
    with pytest.raises(InvalidWebhookSecret, match="^a webhook secret must be whsec_ followed by the base64 of 24 "
                                                   "to 64 bytes$") as refused:
        webhook_secret(secret, field="contacts.0.secret")
    assert refused.value.field == "contacts.0.secret"


def test_a_secret_stored_before_standard_webhooks_keys_with_its_own_bytes():
    assert signing_key("bekasi-webhook-secret-0123456789") == b"bekasi-webhook-secret-0123456789"


ROTATED_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
GRACE = timedelta(hours=24)


def test_a_secret_never_rotated_signs_alone():
    assert signing_secrets(WebhookSecrets("whsec_new"), ROTATED_AT, GRACE) == ("whsec_new",)


@pytest.mark.parametrize(("after", "signing"), [
    (timedelta(0), ("whsec_new", "whsec_old")),  # the moment of the rotation: both
    (GRACE - timedelta(microseconds=1), ("whsec_new", "whsec_old")),  # the last instant of the grace period
    (GRACE, ("whsec_new",)),  # the grace period is over: the new one alone
    (GRACE + timedelta(days=30), ("whsec_new",)),
])
def test_after_a_rotation_the_previous_secret_also_signs_until_the_grace_period_ends(after, signing):
    rotated = WebhookSecrets("whsec_old").rotated("whsec_new", ROTATED_AT)
    assert signing_secrets(rotated, ROTATED_AT + after, GRACE) == signing


def test_a_second_rotation_within_the_grace_period_keeps_only_the_secret_it_replaced():
    twice = WebhookSecrets("whsec_first").rotated("whsec_second", ROTATED_AT).rotated(
        "whsec_third", ROTATED_AT + timedelta(hours=1))
    assert signing_secrets(twice, ROTATED_AT + timedelta(hours=2), GRACE) == ("whsec_third", "whsec_second")
    assert signing_secrets(twice, ROTATED_AT + timedelta(hours=1) + GRACE, GRACE) == ("whsec_third",)


def test_no_grace_means_the_new_secret_alone_from_the_moment_of_the_rotation():
    rotated = WebhookSecrets("whsec_old").rotated("whsec_new", ROTATED_AT)
    assert signing_secrets(rotated, ROTATED_AT, timedelta(0)) == ("whsec_new",)
