"""Alerts that fit an incident: who hears of a case, a possible cluster, a cluster, a closure recommended, decided or
left unanswered, a room's or a plant's closure and a reopening, at what severity; and what the company reads of
its own plant's (Bahasa Indonesia first, English second)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import TypeAdapter

from services.notifier.domain import (
    COMPANY_MESSAGES, DEFAULT_ROUTE, ROUTED, RULES, Alert, CompanyContact, Directory, Division, DivisionContact,
    Channel, EscalationChain, Grouping, Level, Plant, TaskForce, alert_key, company_message, local_time, recipients,
    render, route_for, rule_for, summary,
)
from services.notifier.handlers import NotifierConfig, NotifierHandlers
from shared.clock import FakeClock
from shared.contract import (
    EVENT_TYPES, INCIDENTS, CaseClosed, CaseCorrectable, CaseDetected, CaseSource, CaseVerdict, CaseVerified,
    ClosureAuthority, ClosureRecommendationDecided, ClosureRecommendationOverdue, ClosureRecommended, ClosureScope,
    ClusterDeclared, ContactFollowUpClosed, ContactsQuarantined, Envelope, FacilityClosureOrdered, FacilityReopened,
    IsolationStarted, PossibleClusterRaised, RecommendationDecision, Severity, decode_record, events_on,
)

pytestmark = pytest.mark.unit

NOW = datetime(2021, 8, 16, 2, 0, tzinfo=UTC)  # 10.00 WITA in Mataram
CHAIN = EscalationChain((timedelta(hours=1), timedelta(hours=4)))
GROUPING = Grouping(timedelta(hours=1))
MATARAM = Plant(uuid.uuid4(), "52", "52.71")
WHERE = {"facility_id": MATARAM.facility_id, "province_code": "52", "regency_code": "52.71"}
COMPANY = CompanyContact(MATARAM.facility_id, "8120005271001", "PT Tenun Mataram", "k3@tenun.example")
DIRECTORY = Directory(
    (TaskForce.register(level=Level.REGENCY, region_code="52.71", name="Satgas Mataram", contacts=(
        DivisionContact(Division.HEALTH, email="kes@mataram.example"),
        DivisionContact(Division.LAW_ENFORCEMENT, email="pp@mataram.example"))),
     TaskForce.register(level=Level.PROVINCE, region_code="52", name="Satgas NTB", contacts=(
         DivisionContact(Division.HEALTH, email="kes@ntb.example"),)),
     TaskForce.register(level=Level.NATIONAL, region_code="ID", name="Satgas Nasional", contacts=(
         DivisionContact(Division.HEALTH, email="kes@bnpb.example"),))),
    company=COMPANY)

CLUSTER_ID, RECOMMENDATION_ID, CLOSURE_ID = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
CASE = CaseDetected(**WHERE, case_id=uuid.uuid4(), case_ref="c-0042", confirmed_on=date(2021, 8, 15),
                    symptomatic=True, close_contacts=17, source=CaseSource.DIRECT)
POSSIBLE = PossibleClusterRaised(**WHERE, case_count=4, window_days=14, first_confirmed_on=date(2021, 8, 3),
                                 last_confirmed_on=date(2021, 8, 15))
CLUSTER = ClusterDeclared(**WHERE, cluster_id=CLUSTER_ID, case_count=3, window_days=14,
                          first_confirmed_on=date(2021, 8, 10), last_confirmed_on=date(2021, 8, 15),
                          rule="more than 2 linked confirmed cases within 14 days")
RECOMMENDED = ClosureRecommended(**WHERE, recommendation_id=RECOMMENDATION_ID, cluster_id=CLUSTER_ID,
                                 scope=ClosureScope.PLANT, days=5, rule="a cluster closes the plant for 5 days",
                                 case_count=3, first_confirmed_on=date(2021, 8, 10),
                                 last_confirmed_on=date(2021, 8, 15), answer_by=NOW + timedelta(hours=24))
OVERDUE = ClosureRecommendationOverdue(**WHERE, recommendation_id=RECOMMENDATION_ID, cluster_id=CLUSTER_ID,
                                       answer_by=NOW)
DECIDED = ClosureRecommendationDecided(**WHERE, recommendation_id=RECOMMENDATION_ID, cluster_id=CLUSTER_ID,
                                       decision=RecommendationDecision.ORDERED, closure_id=CLOSURE_ID,
                                       decided_by_role="task_force")
PLANT_CLOSURE = FacilityClosureOrdered(
    **WHERE, closure_id=CLOSURE_ID, scope=ClosureScope.PLANT, reason="Klaster 3 kasus terkait", starts_at=NOW,
    ends_at=NOW + timedelta(days=5), cluster_id=CLUSTER_ID, ordered_by=ClosureAuthority.TASK_FORCE,
    ordered_by_actor="satgas-mataram", recommendation_id=RECOMMENDATION_ID)
ROOM_CLOSURE = FacilityClosureOrdered(
    **WHERE, closure_id=uuid.uuid4(), scope=ClosureScope.ROOM, reason="Disinfeksi setelah kasus c-0042",
    starts_at=NOW, ends_at=NOW + timedelta(hours=24))
REOPENED = FacilityReopened(**WHERE, closure_id=CLOSURE_ID, reopened_at=NOW + timedelta(days=5, hours=1))
VERIFIED = CaseVerified(**WHERE, case_id=CASE.case_id, verdict=CaseVerdict.CORRECTED,
                        corrected=[CaseCorrectable.SYMPTOM_ONSET_ON], reason="Gejala pertama 13 Agustus menurut "
                        "formulir penyelidikan epidemiologi", verified_by_role="health_office")
FOLLOW_UP_CLOSED = ContactFollowUpClosed(**WHERE, case_id=CASE.case_id, contacts=17, released=16, tested_positive=1,
                                         closed_by_role="health_office")


def details(event) -> dict:
    return event.model_dump(mode="json")


def raised(event) -> Alert:
    return Alert.raise_for(type(event).__name__, MATARAM, details(event), now=NOW, chain=CHAIN, grouping=GROUPING)


def told(alert: Alert) -> set[str]:
    return {r.target for r in recipients(alert.route, alert.event_type, alert.level, MATARAM, DIRECTORY,
                                         first_notice=True)}


# -- the routing table --------------------------------------------------------------------------

# (event, rule, severity, level, who hears at once: the division's contact and the company when it is told)
ROUTING = [
    (CASE, "case", Severity.LOW, Level.REGENCY, {"kes@mataram.example", "k3@tenun.example"}),
    (POSSIBLE, "possible-cluster", Severity.LOW, Level.REGENCY, {"kes@mataram.example"}),
    (CLUSTER, "cluster", Severity.HIGH, Level.REGENCY, {"kes@mataram.example", "k3@tenun.example"}),
    (RECOMMENDED, "closure-recommended", Severity.HIGH, Level.REGENCY, {"kes@mataram.example"}),
    (OVERDUE, "recommendation-overdue", Severity.HIGH, Level.PROVINCE, {"kes@ntb.example"}),
    (DECIDED, "recommendation-decided", Severity.LOW, Level.REGENCY, {"kes@mataram.example"}),
    (ROOM_CLOSURE, "room-closure", Severity.LOW, Level.REGENCY, {"kes@mataram.example", "k3@tenun.example"}),
    (PLANT_CLOSURE, "plant-closure", Severity.HIGH, Level.REGENCY, {"kes@mataram.example", "k3@tenun.example"}),
    (REOPENED, "reopening", Severity.LOW, Level.REGENCY, {"kes@mataram.example", "k3@tenun.example"}),
]


@pytest.mark.parametrize(("event", "name", "severity", "level", "hears"), ROUTING,
                         ids=[name for _, name, *_ in ROUTING])
def test_each_incident_is_routed_by_its_own_rule(event, name, severity, level, hears):
    rule = rule_for(type(event).__name__, details(event))
    assert rule is not None and rule.name == name
    alert = raised(event)
    assert (alert.severity, alert.level, alert.route.division) == (severity, level, Division.HEALTH)
    assert told(alert) == hears


# Isolation, quarantine and a case's end are the workplace's own follow-up of a case already told; the health
# office's checking of a case and its closing of the contacts' follow-up are its own work, which it needs no alert of.
UNROUTED = (IsolationStarted, ContactsQuarantined, CaseClosed, CaseVerified, ContactFollowUpClosed)


def test_every_incident_event_is_routed_but_the_case_handling_the_workplace_and_health_office_do_themselves():
    incidents = {cls.__name__ for cls in EVENT_TYPES.values() if cls.topic is INCIDENTS}
    unrouted = {event_type.__name__ for event_type in UNROUTED}
    assert incidents - ROUTED == unrouted
    assert all(route_for(event_type) == DEFAULT_ROUTE and rule_for(event_type) is None for event_type in unrouted)


class NoSubscriptions:
    """The notifier's tables with no task force subscribed to anything: asked which regions subscribed, the empty
    set; asked anything else (an open alert, a directory, a new alert), the test fails."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def subscribed_regions(self, event_type: str) -> set[str]:
        self.asked.append(event_type)
        return set()

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"an event no rule names reached notifier.{name}")


@pytest.mark.parametrize("event", [VERIFIED, FOLLOW_UP_CLOSED], ids=lambda event: type(event).__name__)
async def test_an_incidents_event_no_rule_names_is_taken_in_and_alerts_nobody_unless_subscribed(event):
    # As the notifier's consumer reads it off the incidents topic: a valid event (no contract violation to
    # dead-letter), of a type the consumer takes in (`events_on`), handed to the handler of unrouted events.
    envelope = Envelope.wrap(event, service="incidents")
    decoded = decode_record(INCIDENTS.name, envelope.key, envelope.to_bytes())
    assert type(event) in events_on(INCIDENTS) and type(event).__name__ not in ROUTED
    tables = NoSubscriptions()
    handlers = NotifierHandlers(cast(Any, None), FakeClock(NOW), NotifierConfig(), cast(Any, None))

    await handlers.on_unrouted_events(cast(Any, SimpleNamespace(notifier=tables)), [decoded])

    assert decoded.event == event and tables.asked == [type(event).__name__]


def test_the_rules_are_named_once_and_every_type_ends_on_a_rule_for_any_content():
    assert len({rule.name for rule in RULES}) == len(RULES)
    for event_type in ROUTED:
        rules = [rule for rule in RULES if rule.event_type == event_type]
        assert [bool(rule.when) for rule in rules][-1] is False, event_type  # reached when nothing else matches
        assert sum(not rule.when for rule in rules) == 1, event_type  # and nothing after it is dead


def test_a_rule_matches_only_fields_and_values_its_event_can_carry():
    models = {cls.__name__: cls for cls in EVENT_TYPES.values()}
    for rule in RULES:
        fields = models[rule.event_type].model_fields
        for name, value in rule.when:
            assert name in fields, (rule.name, name)
            assert TypeAdapter(fields[name].annotation).validate_python(value) == value, (rule.name, value)
    assert rule_for("FacilityClosureOrdered", details(ROOM_CLOSURE)).when == (("scope", ClosureScope.ROOM.value),)


def test_a_closure_whose_scope_is_not_known_here_is_taken_for_a_plants():
    """Without details (or a scope added later) the closure falls to the rule that escalates, never to silence."""
    assert route_for("FacilityClosureOrdered").severity is Severity.HIGH
    assert route_for("FacilityClosureOrdered", {**details(ROOM_CLOSURE), "scope": "line"}).severity is Severity.HIGH


# -- severity: what escalates -------------------------------------------------------------------


@pytest.mark.parametrize("event", [CASE, POSSIBLE, DECIDED, ROOM_CLOSURE, REOPENED], ids=lambda e: type(e).__name__)
def test_a_single_case_and_the_routine_that_follows_it_inform_and_never_escalate(event):
    alert = raised(event)
    assert alert.escalate_at is None
    assert alert.escalate(NOW + timedelta(days=3), CHAIN) is None


@pytest.mark.parametrize("event", [CLUSTER, RECOMMENDED, PLANT_CLOSURE], ids=lambda e: type(e).__name__)
def test_a_cluster_a_recommended_closure_and_a_plants_closure_climb_from_the_regency_until_acknowledged(event):
    alert = raised(event).notified({Level.REGENCY})
    assert alert.escalate_at == NOW + timedelta(hours=1)
    alert, step = alert.escalate(NOW + timedelta(hours=1), CHAIN)
    assert (step.from_level, step.to_level) == (Level.REGENCY, Level.PROVINCE)
    # The province's health division hears it, not the company again.
    assert {r.target for r in recipients(alert.route, alert.event_type, Level.PROVINCE, MATARAM, DIRECTORY,
                                         first_notice=False)} == {"kes@ntb.example"}


def test_an_unanswered_recommendation_is_raised_at_the_province_and_climbs_to_the_nation_after_the_provinces_wait():
    alert = raised(OVERDUE).notified({Level.PROVINCE})
    assert alert.escalate_at == NOW + timedelta(hours=4)  # the province's own wait, not the regency's
    assert alert.escalate(NOW + timedelta(hours=3, minutes=59), CHAIN) is None
    alert, step = alert.escalate(NOW + timedelta(hours=4), CHAIN)
    assert (step.from_level, step.to_level) == (Level.PROVINCE, Level.NATIONAL)
    assert alert.escalate_at is None
    assert {r.target for r in recipients(alert.route, alert.event_type, Level.NATIONAL, MATARAM, DIRECTORY,
                                         first_notice=False)} == {"kes@bnpb.example"}


def test_a_rooms_closure_never_groups_into_a_plants_alert_nor_a_plants_into_a_rooms():
    room, plant = raised(ROOM_CLOSURE), raised(PLANT_CLOSURE)
    assert room.alert_key != plant.alert_key
    assert plant.alert_key == f"FacilityClosureOrdered:{MATARAM.facility_id}"
    assert room.alert_key == f"FacilityClosureOrdered:room-closure:{MATARAM.facility_id}"
    # A plant's closure extended (another order for the same closure) groups into its alert.
    extended = {**details(PLANT_CLOSURE), "ends_at": (NOW + timedelta(days=7)).isoformat()}
    assert alert_key("FacilityClosureOrdered", MATARAM, NOW, extended) == plant.alert_key


def test_an_alert_keeps_its_rule_when_read_back_so_a_rooms_closure_never_climbs():
    stored = raised(ROOM_CLOSURE)
    assert stored.route == route_for("FacilityClosureOrdered", details(ROOM_CLOSURE))
    assert stored.route.severity is Severity.LOW


# -- what the task force reads ------------------------------------------------------------------


def test_a_recommendation_tells_the_task_force_what_to_close_on_what_evidence_and_by_when():
    indonesian, english = summary("ClosureRecommended", details(RECOMMENDED))
    assert f"Rekomendasi penutupan pabrik selama 5 hari untuk pabrik {MATARAM.facility_id}" in indonesian
    assert f"klaster {CLUSTER_ID}, 3 kasus konfirmasi terkait dari 2021-08-10 sampai 2021-08-15" in indonesian
    assert "aturan: a cluster closes the plant for 5 days" in indonesian
    assert "sebelum 2021-08-17 10.00 WITA" in indonesian
    assert "A plant closure of 5 days is recommended" in english and "by 2021-08-17 10.00 WITA" in english
    subject, body = render(raised(RECOMMENDED), Channel.EMAIL)
    text = body.decode()
    assert subject == "[iomki high] ClosureRecommended in 52.71"
    assert text.index("Rekomendasi penutupan") < text.index("A plant closure") < text.index("Acknowledge:")


def test_an_overdue_recommendation_and_a_decision_name_the_recommendation():
    indonesian, english = summary("ClosureRecommendationOverdue", details(OVERDUE))
    assert f"Rekomendasi penutupan {RECOMMENDATION_ID}" in indonesian and "2021-08-16 10.00 WITA" in indonesian
    assert "was not decided by the regency task force" in english
    ordered = summary("ClosureRecommendationDecided", details(DECIDED))
    assert ordered[0].endswith("diperintahkan (task_force).") and ordered[1].endswith("was ordered (task_force).")
    declined = DECIDED.model_copy(update={"decision": RecommendationDecision.DECLINED, "closure_id": None,
                                          "reason": "Kasus berasal dari luar pabrik."})
    indonesian, english = summary("ClosureRecommendationDecided", details(declined))
    assert "ditolak (task_force). Alasan: Kasus berasal dari luar pabrik." in indonesian
    assert "was declined (task_force). Reason: Kasus" in english


def test_a_possible_cluster_asks_the_task_force_to_judge_it():
    indonesian, english = summary("PossibleClusterRaised", details(POSSIBLE))
    assert "4 kasus konfirmasi yang tidak saling terkait" in indonesian and "satu klaster" in indonesian
    assert "4 confirmed cases, not linked to each other" in english and "one cluster" in english


# -- what the company reads -------------------------------------------------------------------


def read(event) -> tuple[str, str, str]:
    """The subject, and the body's Bahasa Indonesia and English halves."""
    subject, body = company_message(type(event).__name__, details(event), COMPANY.company_name)
    greeting, _, rest = body.decode().partition("\n\n")
    assert greeting == "Yth. Pimpinan PT Tenun Mataram,"
    indonesian, english = rest.split("\n\n--\n\n")
    return subject, indonesian, english


@pytest.mark.parametrize("event", [CASE, CLUSTER, ROOM_CLOSURE, PLANT_CLOSURE, REOPENED],
                         ids=lambda e: f"{type(e).__name__}-{getattr(e, 'scope', '')}")
def test_the_company_reads_of_its_own_plant_in_bahasa_indonesia_then_english(event):
    assert type(event).__name__ in COMPANY_MESSAGES
    subject, indonesian, english = read(event)
    assert subject.startswith("[IOMKI] ") and " / " in subject
    for half in (indonesian, english):
        assert str(MATARAM.facility_id) in half and "52.71" in half
    assert "pabrik anda" in indonesian.lower() and "your plant" in english.lower()


def test_a_case_notice_names_the_case_and_what_the_workplace_does_about_it():
    _, indonesian, english = read(CASE)
    assert "kasus c-0042, terkonfirmasi 2021-08-15, bergejala, 17 kontak erat" in indonesian
    assert "case c-0042, confirmed on 2021-08-15, with symptoms, 17 close contacts" in english
    assert "Kepmenkes 328/2020" in indonesian and "Kepmenkes 328/2020" in english


def test_a_cluster_notice_gives_its_size_its_dates_and_its_rule():
    _, indonesian, english = read(CLUSTER)
    assert "3 kasus konfirmasi yang saling terkait dalam 14 hari, dari 2021-08-10 sampai 2021-08-15" in indonesian
    assert "3 linked confirmed cases within 14 days, from 2021-08-10 to 2021-08-15" in english
    assert "Aturan: more than 2 linked" in indonesian and "Rule: more than 2 linked" in english


def test_a_cluster_declared_before_rules_were_named_reads_without_one():
    _, indonesian, english = read(CLUSTER.model_copy(update={"rule": None}))
    assert "Aturan" not in indonesian and "Rule" not in english


def test_a_plants_closure_notice_gives_its_time_on_the_plants_clock_its_reason_and_who_ordered_it():
    subject, indonesian, english = read(PLANT_CLOSURE)
    assert subject == "[IOMKI] Penutupan pabrik Anda / Closure of your plant"
    assert "ditutup sejak 2021-08-16 10.00 WITA, dan paling cepat dibuka kembali 2021-08-21 10.00 WITA" in indonesian
    assert "closed from 2021-08-16 10.00 WITA, and reopens at the earliest at 2021-08-21 10.00 WITA" in english
    assert "Alasan: Klaster 3 kasus terkait" in indonesian and "Reason: Klaster 3 kasus terkait" in english
    assert "Diperintahkan oleh: Satgas COVID-19 kabupaten/kota." in indonesian
    assert "Ordered by: the regency COVID-19 task force." in english
    assert "tidak boleh beroperasi" in indonesian and "may not work" in english


@pytest.mark.parametrize(("authority", "indonesian", "english"), [
    (ClosureAuthority.RULE, "aturan penutupan, secara otomatis", "the closure rule, automatically"),
    (ClosureAuthority.COMPANY, "perusahaan Anda sendiri", "your company itself"),
])
def test_a_closure_notice_says_who_ordered_it(authority, indonesian, english):
    _, bahasa, other = read(PLANT_CLOSURE.model_copy(update={"ordered_by": authority}))
    assert f"Diperintahkan oleh: {indonesian}." in bahasa and f"Ordered by: {english}." in other


def test_a_closure_the_company_ordered_tells_it_that_it_reopens_the_plant_itself():
    _, indonesian, english = read(PLANT_CLOSURE.model_copy(update={"ordered_by": ClosureAuthority.COMPANY}))
    assert "perusahaan Anda membukanya kembali setelah masa penutupan berakhir" in indonesian
    assert "your company reopens it once the closure period is over" in english
    assert "Satgas" not in indonesian.split("Alasan")[0] and "task force" not in english


def test_a_rooms_closure_notice_says_the_rest_of_the_plant_may_keep_working():
    subject, indonesian, english = read(ROOM_CLOSURE)
    assert subject == "[IOMKI] Ruangan ditutup untuk disinfeksi / A room closed for disinfection"
    assert "ditutup untuk disinfeksi dari 2021-08-16 10.00 WITA sampai 2021-08-17 10.00 WITA" in indonesian
    assert "closed for disinfection from 2021-08-16 10.00 WITA to 2021-08-17 10.00 WITA" in english
    assert "bagian lain pabrik tetap boleh beroperasi" in indonesian and "the rest of the plant may keep" in english
    assert "Diperintahkan oleh: aturan penutupan, secara otomatis." in indonesian


def test_a_reopening_notice_names_the_closure_and_the_time_it_ended():
    subject, indonesian, english = read(REOPENED)
    assert subject == "[IOMKI] Penutupan berakhir / Closure ended"
    assert f"Penutupan {CLOSURE_ID} di pabrik Anda" in indonesian
    assert "berakhir pada 2021-08-21 11.00 WITA" in indonesian
    assert f"Closure {CLOSURE_ID} at your plant" in english and "ended at 2021-08-21 11.00 WITA" in english


@pytest.mark.parametrize(("regency", "shown"), [("31.71", "2021-08-16 09.00 WIB"), ("52.71", "2021-08-16 10.00 WITA"),
                                                ("94.71", "2021-08-16 11.00 WIT")])
def test_a_moment_is_shown_on_the_plants_own_clock(regency, shown):
    assert local_time(NOW, regency) == shown


@pytest.mark.parametrize(("scope", "indonesian", "english"), [
    (ClosureScope.PLANT, "Penutupan pabrik {} di pabrik Anda", "The plant closure {} at your plant"),
    (ClosureScope.ROOM, "Penutupan ruangan {} di pabrik Anda", "The room closure {} at your plant"),
])
def test_a_reopening_notice_says_what_was_closed_when_the_event_does(scope, indonesian, english):
    _, bahasa, other = read(REOPENED.model_copy(update={"scope": scope}))
    assert indonesian.format(CLOSURE_ID) in bahasa and english.format(CLOSURE_ID) in other
    assert ("boleh beroperasi kembali" in bahasa) is (scope is ClosureScope.PLANT)
