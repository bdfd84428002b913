"""Clusters are linked cases, and a person decides a closure: the rules of `ClusterRule` and `Recommendation`.

The rule alone (windows, links, possible clusters), then a plant through links, recommendations and decisions,
with the automatic mode of a province and the room closure hours of each province.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.incidents.app import IncidentsSettings
from services.incidents.domain import (
    Actor, Case, ClusterRule, DuplicateLink, FacilityStatus, IncidentPolicy, InvalidDecision, InvalidLink, NewCase,
    Outcome, Plant, Recommendation, RecommendationDecided, RecommendationStatus, TimerKind,
)
from shared.contract import (
    CaseLinkKind, CaseSource, ClosureAuthority, ClosureRecommendationDecided, ClosureRecommendationOverdue,
    ClosureRecommended, ClosureScope, ClusterDeclared, FacilityClosureOrdered, PossibleClusterRaised,
    RecommendationDecision,
)

pytestmark = pytest.mark.unit

POLICY = IncidentPolicy()
COMPANY = Actor("k3-officer", "company")
SATGAS = Actor("satgas-kendal", "task_force")
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 09:00 WIB
DAY = date(2026, 11, 20)
SAME_LINE = CaseLinkKind.SAME_LINE


def ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


# -- the rule alone ------------------------------------------------------------------------------------------------


def test_the_default_rule_is_more_than_two_linked_cases_within_fourteen_days_said_in_words():
    rule = ClusterRule()
    assert (rule.more_than, rule.window_days, rule.possible_more_than) == (2, 14, 2)
    assert rule.words == "more than 2 linked confirmed cases within 14 days"


def test_three_cases_linked_in_a_chain_are_a_cluster_two_are_not():
    a, b, c = ids(3)
    cases = [(a, DAY), (b, DAY), (c, DAY)]
    rule = ClusterRule()
    assert rule.find(cases, [(a, b)], around={a, b}) is None
    found = rule.find(cases, [(a, b), (c, b)], around={b, c})
    assert found is not None and set(found.case_ids) == {a, b, c}


def test_unlinked_cases_are_never_a_cluster_whatever_their_number():
    cases = [(case_id, DAY) for case_id in ids(10)]
    assert ClusterRule().find(cases, [], around={cases[0][0]}) is None


@pytest.mark.parametrize(("last_day", "cluster"), [(12, True), (13, True), (14, False)])
def test_the_first_and_last_linked_case_at_most_thirteen_days_apart_are_within_fourteen_days(last_day, cluster):
    a, b, c = ids(3)
    cases = [(a, DAY), (b, DAY + timedelta(days=5)), (c, DAY + timedelta(days=last_day))]
    found = ClusterRule().find(cases, [(a, b), (b, c)], around={b, c})
    assert (found is not None) is cluster
    if found:
        assert (found.first, found.last) == (DAY, DAY + timedelta(days=last_day))


def test_a_chain_through_a_case_outside_the_window_does_not_link_the_cases_inside_it():
    # a–b–c–d: b is 20 days before the others, so a, c, d are not linked to each other inside any window.
    a, b, c, d = ids(4)
    cases = [(a, DAY), (b, DAY - timedelta(days=20)), (c, DAY), (d, DAY)]
    links = [(a, b), (b, c), (c, d)]
    assert ClusterRule().find(cases, links, around={c, d}) is None
    found = ClusterRule().find(cases, [*links, (a, d)], around={a, d})
    assert found is not None and set(found.case_ids) == {a, c, d}


def test_links_to_cases_not_among_the_candidates_are_ignored():
    a, b, clustered = ids(3)
    cases = [(a, DAY), (b, DAY)]
    assert ClusterRule().find(cases, [(a, clustered), (b, clustered), (a, b)], around={a}) is None


def test_only_a_group_holding_a_case_of_the_change_is_found():
    a, b, c, x, y = ids(5)
    cases = [(a, DAY), (b, DAY), (c, DAY), (x, DAY), (y, DAY)]
    links = [(a, b), (b, c)]
    assert ClusterRule().find(cases, links, around={x, y}) is None
    assert ClusterRule().find(cases, links, around={c}) is not None


def test_the_largest_linked_group_wins():
    group_one, group_two = ids(3), ids(4)
    cases = [(case_id, DAY) for case_id in group_one + group_two]
    links = [(group_one[0], group_one[1]), (group_one[1], group_one[2])] + [
        (group_two[0], other) for other in group_two[1:]] + [(group_one[0], group_two[0])]
    found = ClusterRule().find(cases, links, around={group_one[0]})
    assert found is not None and len(found.case_ids) == 7


def test_a_configured_rule_counts_more_or_fewer():
    a, b = ids(2)
    assert ClusterRule(more_than=1).find([(a, DAY), (b, DAY)], [(a, b)], around={a}) is not None
    with pytest.raises(ValueError):
        ClusterRule(more_than=0)
    with pytest.raises(ValueError):
        ClusterRule(window_days=0)


def test_more_than_two_unlinked_cases_within_the_window_are_a_possible_cluster_once():
    a, b, c, d = ids(4)
    rule = ClusterRule()
    assert rule.possible([(a, DAY), (b, DAY)], around={b}, raised=set()) is None
    found = rule.possible([(a, DAY), (b, DAY), (c, DAY)], around={c}, raised=set())
    assert found is not None and set(found.case_ids) == {a, b, c}
    # The same cases are not raised again; a fourth joining them raises the grown group.
    assert rule.possible([(a, DAY), (b, DAY), (c, DAY)], around={c}, raised={a, b, c}) is None
    grown = rule.possible([(a, DAY), (b, DAY), (c, DAY), (d, DAY)], around={d}, raised={a, b, c})
    assert grown is not None and len(grown.case_ids) == 4


@pytest.mark.parametrize(("apart", "possible"), [(13, True), (14, False)])
def test_a_possible_cluster_has_the_same_window(apart, possible):
    a, b, c = ids(3)
    cases = [(a, DAY), (b, DAY + timedelta(days=1)), (c, DAY + timedelta(days=apart))]
    assert (ClusterRule().possible(cases, around={c}, raised=set()) is not None) is possible


# -- a plant through links and decisions ---------------------------------------------------------------------------


def a_plant(province: str = "33", regency: str = "33.24") -> Plant:
    return Plant(uuid.uuid4(), uuid.uuid4(), "8120000777001", province, regency, 400)


class Site:
    """One plant's cases, links and recommendations as the repository would keep them, with the clock at hand."""

    def __init__(self, plant: Plant, policy: IncidentPolicy = POLICY) -> None:
        self.plant, self.policy, self.now = plant, policy, NOW
        self.cases: dict[uuid.UUID, Case] = {}
        self.links: list[tuple[uuid.UUID, uuid.UUID]] = []
        self.raised: set[uuid.UUID] = set()
        self.recommendations: dict[uuid.UUID, Recommendation] = {}
        self.events: list = []
        self.timers: list = []

    def keep(self, outcome: Outcome) -> Outcome:
        self.plant = outcome.plant
        for case in outcome.cases:
            self.cases[case.case_id] = case
        for cluster in outcome.clusters:
            for case_id in cluster.case_ids:
                self.cases[case_id] = replace(self.cases[case_id], cluster_id=cluster.cluster_id)
        self.links += [(link.case_id, link.linked_case_id) for link in outcome.links]
        for possible in outcome.possible_clusters:
            self.raised |= set(possible.case_ids)
        for recommendation in outcome.recommendations:
            self.recommendations[recommendation.recommendation_id] = recommendation
        self.events += outcome.events
        self.timers += outcome.timers
        return outcome

    def unclustered(self) -> list[tuple[uuid.UUID, date]]:
        return [(c.case_id, c.confirmed_on) for c in self.cases.values() if c.cluster_id is None]

    def case(self, ref: str, on: date = DAY, source: CaseSource = CaseSource.DIRECT) -> Case:
        new = NewCase(case_ref=ref, confirmed_on=on, symptomatic=False, close_contacts=0, source=source)
        return self.keep(self.plant.detect_case(new, unclustered=self.unclustered(), raised=self.raised,
                                                now=self.now, policy=self.policy, recorded_by=COMPANY)).cases[0]

    def link(self, a: Case, b: Case, kind: CaseLinkKind = SAME_LINE) -> Outcome:
        return self.keep(self.plant.link_cases(self.cases[a.case_id], self.cases[b.case_id], kind, links=self.links,
                                               unclustered=self.unclustered(), now=self.now, policy=self.policy,
                                               by=COMPANY))

    def linked_cluster(self) -> Recommendation:
        """Three cases on one line, linked: a cluster and its recommendation."""
        a, b, c = self.case("L-1"), self.case("L-2"), self.case("L-3")
        self.link(a, b)
        outcome = self.link(b, c, CaseLinkKind.SAME_SHIFT)
        return outcome.recommendations[0]

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def test_cases_without_links_never_close_the_plant_and_raise_one_possible_cluster():
    site = Site(a_plant())
    for n in range(5):
        site.case(f"U-{n}")
    assert site.of(ClusterDeclared) == [] and site.of(FacilityClosureOrdered)[0].scope is ClosureScope.ROOM
    assert site.plant.plant_closure is None
    # Raised at the third case, then again as each further case grows the group.
    assert [p.case_count for p in site.of(PossibleClusterRaised)] == [3, 4, 5]


def test_linking_the_third_case_declares_the_cluster_and_recommends_a_five_day_plant_closure_to_the_task_force():
    site = Site(a_plant())
    a, b, c = site.case("L-1"), site.case("L-2", DAY - timedelta(days=3)), site.case("L-3")
    assert site.link(a, b).events == []
    outcome = site.link(c, a, CaseLinkKind.NAMED_CONTACT)
    [declared] = [e for e in outcome.events if isinstance(e, ClusterDeclared)]
    [recommended] = [e for e in outcome.events if isinstance(e, ClosureRecommended)]
    assert declared.rule == recommended.rule == "more than 2 linked confirmed cases within 14 days"
    assert (declared.case_count, declared.first_confirmed_on, declared.last_confirmed_on) == (
        3, DAY - timedelta(days=3), DAY)
    assert (recommended.cluster_id, recommended.scope, recommended.days, recommended.case_count) == (
        declared.cluster_id, ClosureScope.PLANT, 5, 3)
    assert recommended.answer_by == NOW + timedelta(hours=24)
    # Nothing is closed until a person decides; the answer is awaited by a durable timer.
    assert not [e for e in outcome.events if isinstance(e, FacilityClosureOrdered)]
    assert site.plant.plant_closure is None and outcome.closures == []
    [timer] = outcome.timers
    assert (timer.kind, timer.subject_id, timer.due_at) == (
        TimerKind.RECOMMENDATION_ANSWER, recommended.recommendation_id, recommended.answer_by)
    assert outcome.recommendations[0].status is RecommendationStatus.PENDING
    assert {site.cases[x.case_id].cluster_id for x in (a, b, c)} == {declared.cluster_id}


def test_a_case_belongs_to_one_cluster_only():
    site = Site(a_plant())
    site.linked_cluster()
    d, e = site.case("L-4"), site.case("L-5")
    clustered = next(c for c in site.cases.values() if c.cluster_id is not None)
    site.link(d, clustered)
    site.link(e, clustered)
    outcome = site.link(d, e)
    assert outcome.clusters == [] and len(site.of(ClusterDeclared)) == 1


def test_a_link_is_refused_to_itself_to_another_plant_to_a_placeholder_and_twice():
    site = Site(a_plant())
    a, b = site.case("L-1"), site.case("L-2")
    with pytest.raises(InvalidLink, match="itself") as refused:
        site.link(a, a)
    assert refused.value.field == "linked_case_id"
    assert refused.value.message.startswith("Kasus tidak dapat")
    elsewhere = replace(b, case_id=uuid.uuid4(), facility_id=uuid.uuid4())
    site.cases[elsewhere.case_id] = elsewhere
    with pytest.raises(InvalidLink, match="No such case at this plant"):
        site.link(a, elsewhere)
    reported = NewCase(case_ref="R-0123456789ab-1", confirmed_on=DAY, symptomatic=False, close_contacts=0,
                       source=CaseSource.REPORT, report_period=(DAY, DAY))
    placeholder = site.keep(site.plant.detect_case(reported, unclustered=[], now=NOW, policy=POLICY,
                                                   recorded_by=COMPANY)).cases[0]
    with pytest.raises(InvalidLink, match="POST /cases") as refused:
        site.link(placeholder, a)
    assert refused.value.field == "case_id"
    site.link(a, b)
    for again in ((a, b), (b, a)):
        with pytest.raises(DuplicateLink):
            site.link(*again)


def test_the_task_force_orders_the_closure_as_recommended():
    site = Site(a_plant())
    recommendation = site.linked_cluster()
    site.now += timedelta(hours=3)
    outcome = site.keep(site.plant.order_closure(recommendation, scope=None, days=None, reason=None, now=site.now,
                                                 by=SATGAS))
    ordered, decided = outcome.events
    assert isinstance(ordered, FacilityClosureOrdered) and isinstance(decided, ClosureRecommendationDecided)
    assert (ordered.scope, ordered.ends_at - ordered.starts_at, ordered.cluster_id) == (
        ClosureScope.PLANT, timedelta(days=5), recommendation.cluster_id)
    assert (ordered.ordered_by, ordered.ordered_by_actor, ordered.recommendation_id) == (
        ClosureAuthority.TASK_FORCE, "satgas-kendal", recommendation.recommendation_id)
    assert (decided.decision, decided.closure_id, decided.decided_by_role, decided.reason) == (
        RecommendationDecision.ORDERED, ordered.closure_id, "task_force", None)
    assert site.plant.status is FacilityStatus.PLANT_CLOSED
    stored = outcome.recommendations[0]
    assert (stored.status, stored.closure_id, stored.ordered_scope, stored.ordered_days, stored.decided_by) == (
        RecommendationStatus.ORDERED, ordered.closure_id, ClosureScope.PLANT, 5, SATGAS)
    # Decided once: ordering or declining again is refused.
    with pytest.raises(RecommendationDecided):
        site.plant.order_closure(stored, scope=None, days=None, reason=None, now=site.now, by=SATGAS)
    with pytest.raises(RecommendationDecided):
        site.plant.decline_closure(stored, reason="no", now=site.now, by=SATGAS)
    # A case during the closure still extends it, as before.
    site.now += timedelta(days=1)
    site.case("L-4")
    assert site.plant.plant_closure.ends_at == site.now + timedelta(days=5)


def test_the_task_force_may_change_the_scope_or_length_saying_why():
    site = Site(a_plant())
    recommendation = site.linked_cluster()
    for change in ({"days": 7}, {"scope": ClosureScope.ROOM}, {"scope": ClosureScope.ROOM, "days": 3}):
        with pytest.raises(InvalidDecision) as refused:
            site.plant.order_closure(recommendation, **({"scope": None, "days": None} | change), reason="  ",
                                     now=NOW, by=SATGAS)
        assert refused.value.field == "reason"
    outcome = site.keep(site.plant.order_closure(recommendation, scope=ClosureScope.ROOM, days=3,
                                                 reason="Hanya lini 2 / only line 2", now=NOW, by=SATGAS))
    room = outcome.closures[0]
    assert (room.scope, room.ends_at - room.starts_at) == (ClosureScope.ROOM, timedelta(days=3))
    assert site.plant.plant_closure is None and site.plant.active_room_closures == 4  # 3 disinfections + this
    assert [t.kind for t in outcome.timers] == [TimerKind.ROOM_CLOSURE_END]  # it reopens by itself
    decided = outcome.events[1]
    assert (decided.reason, outcome.recommendations[0].ordered_days) == ("Hanya lini 2 / only line 2", 3)


def test_a_longer_plant_closure_with_a_reason():
    site = Site(a_plant())
    recommendation = site.linked_cluster()
    outcome = site.plant.order_closure(recommendation, scope=None, days=14, reason="second wave", now=NOW, by=SATGAS)
    assert outcome.closures[0].ends_at == NOW + timedelta(days=14)
    with pytest.raises(InvalidDecision, match="days"):
        site.plant.order_closure(recommendation, scope=None, days=61, reason="long", now=NOW, by=SATGAS)


def test_the_task_force_declines_with_a_reason_and_nothing_closes():
    site = Site(a_plant())
    recommendation = site.linked_cluster()
    with pytest.raises(InvalidDecision):
        site.plant.decline_closure(recommendation, reason=" ", now=NOW, by=SATGAS)
    outcome = site.keep(site.plant.decline_closure(recommendation, reason="Kontak di luar pabrik / outside contact",
                                                   now=NOW, by=SATGAS))
    [decided] = outcome.events
    assert (decided.decision, decided.closure_id, decided.reason) == (
        RecommendationDecision.DECLINED, None, "Kontak di luar pabrik / outside contact")
    assert outcome.closures == [] and site.plant.plant_closure is None
    assert outcome.recommendations[0].status is RecommendationStatus.DECLINED


def test_an_unanswered_recommendation_escalates_once_when_its_answer_time_passes():
    site = Site(a_plant())
    recommendation = site.linked_cluster()
    outcome = site.keep(site.plant.recommendation_overdue(recommendation, NOW + timedelta(hours=24)))
    [overdue] = outcome.events
    assert isinstance(overdue, ClosureRecommendationOverdue) and overdue.answer_by == recommendation.answer_by
    late = outcome.recommendations[0]
    assert late.overdue_at == NOW + timedelta(hours=24) and late.status is RecommendationStatus.PENDING
    assert site.plant.recommendation_overdue(late, NOW + timedelta(hours=25)).events == []
    # Still open to a decision once overdue; once decided, the timer does nothing.
    ordered = site.plant.order_closure(late, scope=None, days=None, reason=None, now=NOW, by=SATGAS)
    assert site.plant.recommendation_overdue(ordered.recommendations[0], NOW).events == []


def test_the_answer_time_is_configurable():
    site = Site(a_plant(), replace(POLICY, recommendation_answer=timedelta(hours=6)))
    assert site.linked_cluster().answer_by == NOW + timedelta(hours=6)


def test_a_province_in_automatic_mode_closes_at_once_by_rule_and_records_the_recommendation_as_ordered():
    site = Site(a_plant(), replace(POLICY, automatic_closure_provinces=frozenset({"33"})))
    recommendation = site.linked_cluster()
    assert recommendation.status is RecommendationStatus.ORDERED and recommendation.decided_by.role == "system"
    [plant_closure] = [e for e in site.of(FacilityClosureOrdered) if e.scope is ClosureScope.PLANT]
    assert (plant_closure.ordered_by, plant_closure.ordered_by_actor, plant_closure.recommendation_id) == (
        ClosureAuthority.RULE, None, recommendation.recommendation_id)
    assert plant_closure.ends_at - plant_closure.starts_at == timedelta(days=5)
    [decided] = site.of(ClosureRecommendationDecided)
    assert decided.decision is RecommendationDecision.ORDERED and decided.decided_by_role == "system"
    assert site.plant.status is FacilityStatus.PLANT_CLOSED
    assert TimerKind.RECOMMENDATION_ANSWER not in [t.kind for t in site.timers]
    # Another province keeps asking its task force.
    elsewhere = Site(a_plant("32", "32.16"), site.policy)
    assert elsewhere.linked_cluster().status is RecommendationStatus.PENDING


@pytest.mark.parametrize(("province", "regency", "hours"), [("31", "31.71", 72), ("81", "81.71", 72),
                                                            ("32", "32.16", 24), ("33", "33.24", 24)])
def test_the_room_closes_24_hours_or_3_times_24_in_dki_and_maluku(province, regency, hours):
    site = Site(a_plant(province, regency))
    site.case("R-1")
    [room] = site.of(FacilityClosureOrdered)
    assert room.ends_at - room.starts_at == timedelta(hours=hours)


def test_room_closure_hours_and_automatic_provinces_are_configured_per_province():
    settings = IncidentsSettings.model_validate({
        "IOMKI_ROOM_CLOSURE_HOURS_BY_PROVINCE": "31=96, 73=48", "IOMKI_AUTOMATIC_CLOSURE_PROVINCES": "81,31",
        "IOMKI_CLUSTER_MORE_THAN": "3", "IOMKI_POSSIBLE_CLUSTER_MORE_THAN": "5",
        "IOMKI_RECOMMENDATION_ANSWER_WITHIN": "PT12H"})
    policy = settings.policy()
    assert [policy.room_closure_in(code) for code in ("31", "73", "81", "32")] == [
        timedelta(hours=96), timedelta(hours=48), timedelta(hours=24), timedelta(hours=24)]
    assert policy.closes_automatically("81") and policy.closes_automatically("31")
    assert not policy.closes_automatically("32")
    assert policy.cluster == ClusterRule(3, 14, 5) and policy.recommendation_answer == timedelta(hours=12)
    assert IncidentsSettings.model_validate({"IOMKI_AUTOMATIC_CLOSURE_PROVINCES": ""}).policy() == IncidentPolicy()
    for variable, wrong in [("IOMKI_ROOM_CLOSURE_HOURS_BY_PROVINCE", "DKI=72"),
                            ("IOMKI_ROOM_CLOSURE_HOURS_BY_PROVINCE", "31:72"),
                            ("IOMKI_ROOM_CLOSURE_HOURS_BY_PROVINCE", "31=0"),
                            ("IOMKI_AUTOMATIC_CLOSURE_PROVINCES", "31,Maluku"),
                            ("IOMKI_PLANT_CLOSURE_DAYS", "61")]:
        with pytest.raises(ValidationError, match=variable):
            IncidentsSettings.model_validate({variable: wrong})
