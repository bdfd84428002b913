"""Plants through case sequences, with a fake clock: isolation, quarantine, room and plant closures, clusters.

The rules of linked clusters and closure recommendations in detail: test_incidents_clusters.py."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.incidents.app import IncidentsSettings
from services.incidents.domain import (
    Actor, CaseReference, CaseStatus, ClosureNotOver, ClusterRule, FacilityStatus, IllegalClosureAction,
    IncidentPolicy, InvalidCase, IsolationNotOver, NewCase, Outcome, PersonalReference, PlaceholderClaim, Plant,
    PlantNotMonitored, ReportedPositives, TimerKind, TimerRetry, start_of_day,
)
from shared.clock import FakeClock
from shared.contract import (
    CaseClosed, CaseDetected, CaseLinkKind, CaseSource, ClosureAuthority, ClosureScope, ClusterDeclared,
    ContactsQuarantined,
    FacilityClosureOrdered, FacilityReopened, IsolationStarted, PossibleClusterRaised,
)
from shared.regions import WIB, WIT, local_zone

pytestmark = pytest.mark.unit

POLICY = IncidentPolicy()
COMPANY = Actor("k3-officer", "company")
TASK_FORCE = Actor("satgas-bekasi", "task_force")
# 09:00 WIB on 20 Nov 2026.
MONDAY_MORNING = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def a_plant(**changes) -> Plant:
    where = {"nib": "8120000123456", "province_code": "32", "regency_code": "32.16", "workforce_total": 1200}
    return Plant(uuid.uuid4(), uuid.uuid4(), **(where | changes))


def a_case(ref: str = "C-2026-001", on: date = date(2026, 11, 20), *, symptomatic: bool = False,
           contacts: int = 0, **more) -> NewCase:
    """A case as a company enters it; a symptomatic one fell ill the day it was confirmed unless told otherwise."""
    if symptomatic:
        more.setdefault("symptom_onset_on", on)
    return NewCase(case_ref=ref, confirmed_on=on, symptomatic=symptomatic, close_contacts=contacts,
                   source=CaseSource.DIRECT, **more)


class Walk:
    """A plant's life: cases arrive, timers fire when the clock passes them, people act."""

    def __init__(self, plant: Plant, policy: IncidentPolicy = POLICY) -> None:
        self.plant = plant
        self.policy = policy
        self.clock = FakeClock(MONDAY_MORNING)
        self.cases: dict[uuid.UUID, object] = {}
        self.closures: dict[uuid.UUID, object] = {}
        self.contacts: dict[uuid.UUID, object] = {}
        self.timers: list = []
        self.cancelled: list = []
        self.events: list = []
        self.links: list = []
        self.raised: set = set()

    def apply(self, outcome: Outcome) -> Outcome:
        self.plant = outcome.plant
        self.cancelled += [t for t in self.timers if (t.kind, t.subject_id) in outcome.cancelled_timers]
        self.timers = [t for t in self.timers if t not in self.cancelled]
        for contact in outcome.contacts:
            self.contacts[contact.contact_id] = contact
        for case in outcome.cases:
            self.cases[case.case_id] = case
        for closure in outcome.closures:
            self.closures[closure.closure_id] = closure
        self.timers += outcome.timers
        self.events += outcome.events
        self.links += [(link.case_id, link.linked_case_id) for link in outcome.links]
        for possible in outcome.possible_clusters:
            self.raised |= set(possible.case_ids)
        return outcome

    def case(self, new: NewCase) -> Outcome:
        outcome = self.plant.detect_case(new, unclustered=self.unclustered(), now=self.clock.now(),
                                         policy=self.policy, recorded_by=COMPANY, raised=self.raised)
        return self.tag_and_apply(outcome)

    def link(self, *cases) -> Outcome:
        """Link the cases in a chain (each to the next), as the company traced them on one line."""
        outcome = Outcome(self.plant)
        for a, b in zip(cases, cases[1:], strict=False):
            outcome = self.tag_and_apply(self.plant.link_cases(
                self.cases[a.case_id], self.cases[b.case_id], CaseLinkKind.SAME_LINE, links=self.links,
                unclustered=self.unclustered(), now=self.clock.now(), policy=self.policy, by=COMPANY))
        return outcome

    def cluster_closed(self, *refs: str, on: date = date(2026, 11, 20)) -> Outcome:
        """Cases linked into a cluster, whose recommended plant closure the task force orders."""
        cases = [self.case(a_case(ref, on=on)).cases[0] for ref in refs]
        recommendation = self.link(*cases).recommendations[0]
        return self.apply(self.plant.order_closure(recommendation, scope=None, days=None, reason=None,
                                                   now=self.clock.now(), by=TASK_FORCE))

    def enter(self, new: NewCase, by: Actor = COMPANY) -> Outcome:
        """A case entered by POST /cases: it may claim a report's placeholder."""
        placeholders = [c for c in self.cases.values() if c.is_placeholder]
        outcome = self.plant.enter_case(new, placeholders=placeholders, unclustered=self.unclustered(),
                                        now=self.clock.now(), policy=self.policy, by=by, raised=self.raised)
        return self.tag_and_apply(outcome)

    def report(self, positives: int, period: tuple[date, date], on: date) -> list[Outcome]:
        """A report's positives beyond the cases known in its period become placeholders."""
        known = sum(period[0] <= c.confirmed_on <= period[1] for c in self.cases.values())
        reported = ReportedPositives(positives, None, known_in_period=known)
        return [self.case(new) for new in reported.placeholders(uuid.uuid4(), on, period, self.policy)]

    def unclustered(self) -> list:
        return [(c.case_id, c.confirmed_on) for c in self.cases.values() if c.cluster_id is None]

    def tag_and_apply(self, outcome: Outcome) -> Outcome:
        for cluster in outcome.clusters:  # the repository tags the earlier cases of a new cluster
            for case_id in cluster.case_ids:
                if case_id in self.cases:
                    self.cases[case_id] = type(self.cases[case_id])(**{
                        **self.cases[case_id].__dict__, "cluster_id": cluster.cluster_id})
        return self.apply(outcome)

    def advance(self, delta: timedelta) -> list:
        """Move the clock and fire every timer that falls due, in due order (as the sweep does)."""
        self.clock.advance(delta)
        fired = []
        for timer in sorted((t for t in self.timers if t.due_at <= self.clock.now()), key=lambda t: t.due_at):
            self.timers.remove(timer)
            if timer.kind is TimerKind.ISOLATION_END:
                outcome = self.plant.end_isolation(self.cases[timer.subject_id], timer.due_at)
            elif timer.kind is TimerKind.QUARANTINE_END:
                outcome = self.plant.end_quarantine(self.contacts.get(timer.subject_id), timer.due_at)
            elif timer.kind is TimerKind.RECOMMENDATION_ANSWER:
                continue  # test_incidents_clusters.py
            else:
                outcome = self.plant.end_room_closure(self.closures[timer.subject_id], self.clock.now())
            fired += self.apply(outcome).events
        return fired

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


# -- one case ---------------------------------------------------------------------------------------------


def test_an_asymptomatic_case_isolates_ten_days_and_closes_on_the_tenth_day():
    walk = Walk(a_plant())
    outcome = walk.case(a_case(on=date(2026, 11, 20)))
    assert [type(e) for e in outcome.events] == [CaseDetected, IsolationStarted, FacilityClosureOrdered]
    isolation = walk.of(IsolationStarted)[0]
    assert (isolation.starts_on, isolation.ends_on) == (date(2026, 11, 20), date(2026, 11, 30))
    assert walk.plant.status is FacilityStatus.ROOM_CLOSED

    # The evening before the tenth day (23:59 WIB on 29 Nov) the case is still isolating.
    assert not any(isinstance(e, CaseClosed) for e in walk.advance(timedelta(days=9, hours=14, minutes=59)))
    assert walk.plant.active_isolations == 1
    # Midnight WIB on 30 Nov: closed.
    closed = [e for e in walk.advance(timedelta(minutes=1)) if isinstance(e, CaseClosed)]
    assert [c.closed_on for c in closed] == [date(2026, 11, 30)]
    assert walk.plant.status is FacilityStatus.OPEN


def test_a_symptomatic_case_isolates_ten_days_plus_three_symptom_free_days():
    walk = Walk(a_plant())
    walk.case(a_case(on=date(2026, 11, 20), symptomatic=True, symptom_onset_on=date(2026, 11, 20)))
    assert walk.of(IsolationStarted)[0].ends_on == date(2026, 12, 3)


def test_a_symptomatic_case_isolates_from_symptom_onset_not_from_the_swab():
    walk = Walk(a_plant())
    walk.case(a_case(on=date(2026, 11, 20), symptomatic=True, tested_on=date(2026, 11, 19),
                     symptom_onset_on=date(2026, 11, 17)))
    isolation = walk.of(IsolationStarted)[0]
    assert (isolation.starts_on, isolation.ends_on) == (date(2026, 11, 17), date(2026, 11, 30))


def test_isolation_counts_from_the_swab_date_when_given():
    walk = Walk(a_plant())
    walk.case(a_case(on=date(2026, 11, 20), tested_on=date(2026, 11, 18)))
    assert walk.of(IsolationStarted)[0].ends_on == date(2026, 11, 28)


def test_symptoms_lasting_past_day_ten_push_the_end_three_days_past_them():
    assert POLICY.isolation_ends_on(date(2026, 11, 1), True, symptoms_resolved_on=date(2026, 11, 14)) \
        == date(2026, 11, 17)
    assert POLICY.isolation_ends_on(date(2026, 11, 1), True, symptoms_resolved_on=date(2026, 11, 5)) \
        == date(2026, 11, 14)


def test_counted_contacts_quarantine_fourteen_days_from_the_cases_first_day_of_isolation():
    walk = Walk(a_plant())
    walk.case(a_case("C-1", contacts=15))
    walk.case(a_case("C-2", contacts=3, tested_on=date(2026, 11, 18)))
    assert [(q.contacts, q.starts_on, q.ends_on) for q in walk.of(ContactsQuarantined)] == [
        (15, date(2026, 11, 20), date(2026, 12, 4)), (3, date(2026, 11, 18), date(2026, 12, 2))]
    assert walk.plant.active_quarantines == 18  # one per contact
    assert all(c.exposure_assumed for c in walk.contacts.values())
    walk.advance(timedelta(days=12))  # 2 Dec, 09:00 WIB: C-2's contacts are out
    assert walk.plant.active_quarantines == 15


def test_no_contacts_means_no_quarantine():
    walk = Walk(a_plant())
    walk.case(a_case(contacts=0))
    assert walk.of(ContactsQuarantined) == []
    assert walk.plant.active_quarantines == 0


def test_the_room_closes_for_disinfection_and_reopens_by_itself_after_24_hours():
    walk = Walk(a_plant())
    walk.case(a_case())
    room = walk.of(FacilityClosureOrdered)[0]
    assert room.scope is ClosureScope.ROOM and room.ends_at - room.starts_at == timedelta(hours=24)
    assert walk.advance(timedelta(hours=23, minutes=59)) == []
    reopened = walk.advance(timedelta(minutes=1))
    assert [type(e) for e in reopened] == [FacilityReopened] and reopened[0].closure_id == room.closure_id
    assert walk.plant.status is FacilityStatus.MONITORING  # the case still isolates


def test_dki_can_require_three_times_24_hours():
    policy = IncidentPolicy(room_closure=timedelta(hours=72))
    walk = Walk(a_plant(), policy)
    walk.case(a_case())
    room = walk.of(FacilityClosureOrdered)[0]
    assert room.ends_at - room.starts_at == timedelta(hours=72)


# -- clusters ---------------------------------------------------------------------------------------------


def test_three_linked_cases_thirteen_days_apart_are_a_cluster_the_task_force_closes_for_five_days():
    walk = Walk(a_plant())
    first = walk.case(a_case("C-1", on=date(2026, 11, 7))).cases[0]
    second = walk.case(a_case("C-2", on=date(2026, 11, 20))).cases[0]
    assert walk.link(first, second).events == []  # two linked cases are not a cluster
    third = walk.case(a_case("C-3", on=date(2026, 11, 20))).cases[0]
    outcome = walk.link(second, third)
    cluster = [e for e in outcome.events if isinstance(e, ClusterDeclared)]
    assert len(cluster) == 1 and cluster[0].case_count == 3
    assert (cluster[0].first_confirmed_on, cluster[0].last_confirmed_on) == (date(2026, 11, 7), date(2026, 11, 20))
    assert walk.plant.plant_closure is None  # recommended, not yet ordered
    walk.apply(walk.plant.order_closure(outcome.recommendations[0], scope=None, days=None, reason=None,
                                        now=walk.clock.now(), by=TASK_FORCE))
    plant_closure = [e for e in walk.events
                     if isinstance(e, FacilityClosureOrdered) and e.scope is ClosureScope.PLANT]
    assert plant_closure[0].cluster_id == cluster[0].cluster_id
    assert plant_closure[0].ends_at - plant_closure[0].starts_at == timedelta(days=5)
    assert walk.plant.status is FacilityStatus.PLANT_CLOSED


def test_linked_cases_fourteen_days_apart_are_not_a_cluster():
    walk = Walk(a_plant())
    cases = [walk.case(a_case(ref, on=on)).cases[0]
             for ref, on in (("C-1", date(2026, 11, 6)), ("C-2", date(2026, 11, 13)), ("C-3", date(2026, 11, 20)))]
    walk.link(*cases)
    assert walk.of(ClusterDeclared) == []
    assert walk.plant.plant_closure is None


def test_unlinked_cases_are_a_possible_cluster_for_the_task_force_not_a_closure():
    walk = Walk(a_plant())
    for ref in ("C-1", "C-2", "C-3"):
        walk.case(a_case(ref))
    assert walk.of(ClusterDeclared) == [] and walk.plant.plant_closure is None
    assert [p.case_count for p in walk.of(PossibleClusterRaised)] == [3]


def test_a_late_entered_case_between_two_others_is_found_by_the_window():
    policy = IncidentPolicy(cluster=ClusterRule(more_than=2, window_days=14))
    walk = Walk(a_plant(), policy)
    first = walk.case(a_case("C-1", on=date(2026, 11, 1))).cases[0]
    second = walk.case(a_case("C-2", on=date(2026, 11, 14))).cases[0]
    walk.link(first, second)
    assert walk.of(ClusterDeclared) == []
    late = walk.case(a_case("C-3", on=date(2026, 11, 10))).cases[0]
    walk.link(second, late)
    assert [c.case_count for c in walk.of(ClusterDeclared)] == [3]


def test_more_cases_during_a_closure_extend_it_but_never_shorten_it():
    walk = Walk(a_plant())
    walk.cluster_closed("C-1", "C-2", "C-0")
    closure = walk.plant.plant_closure
    walk.clock.advance(timedelta(days=2))
    outcome = walk.case(a_case("C-3", on=date(2026, 11, 22)))
    extended = [e for e in outcome.events if isinstance(e, FacilityClosureOrdered) and e.scope is ClosureScope.PLANT]
    assert [e.closure_id for e in extended] == [closure.closure_id]
    assert extended[0].ends_at == closure.ends_at + timedelta(days=2)
    assert len(walk.of(ClusterDeclared)) == 1  # the same cluster, not a new one
    assert outcome.cases[0].cluster_id == closure.cluster_id

    # A case entered with the clock wound back cannot end the closure sooner: no new order.
    walk.clock.set(MONDAY_MORNING)
    outcome = walk.case(a_case("C-4", on=date(2026, 11, 20)))
    assert not [e for e in outcome.events if isinstance(e, FacilityClosureOrdered) and e.scope is ClosureScope.PLANT]
    assert walk.plant.plant_closure.ends_at == extended[0].ends_at


def test_a_reopened_plant_needs_a_new_cluster_to_close_again():
    walk = Walk(a_plant())
    walk.cluster_closed("C-1", "C-2", "C-0")
    closure = walk.plant.plant_closure
    walk.advance(timedelta(days=5))
    walk.apply(walk.plant.clear_closure(closure, now=walk.clock.now(), by=TASK_FORCE))
    c3 = walk.case(a_case("C-3", on=date(2026, 11, 25))).cases[0]
    c4 = walk.case(a_case("C-4", on=date(2026, 11, 25))).cases[0]
    clustered = next(c for c in walk.cases.values() if c.cluster_id == closure.cluster_id)
    walk.link(clustered, c3, c4)
    assert len(walk.of(ClusterDeclared)) == 1  # a case of the cleared cluster counts no more
    c5 = walk.case(a_case("C-5", on=date(2026, 11, 25))).cases[0]
    walk.link(c4, c5)
    assert len(walk.of(ClusterDeclared)) == 2


# -- reopening --------------------------------------------------------------------------------------------


def test_clearing_before_the_period_ends_is_refused_with_the_earliest_moment():
    walk = Walk(a_plant())
    walk.cluster_closed("C-1", "C-2", "C-3")
    closure = walk.plant.plant_closure
    walk.advance(timedelta(days=5) - timedelta(seconds=1))
    with pytest.raises(ClosureNotOver) as refused:
        walk.plant.clear_closure(closure, now=walk.clock.now(), by=TASK_FORCE)
    assert refused.value.earliest == MONDAY_MORNING + timedelta(days=5)

    walk.advance(timedelta(seconds=1))
    assert walk.plant.status is FacilityStatus.PLANT_CLOSED  # the period passing alone does not reopen it
    outcome = walk.apply(walk.plant.clear_closure(closure, now=walk.clock.now(), by=TASK_FORCE))
    assert [type(e) for e in outcome.events] == [FacilityReopened]
    assert outcome.closures[0].cleared_by == TASK_FORCE
    assert walk.plant.plant_closure is None
    with pytest.raises(IllegalClosureAction):
        walk.plant.clear_closure(outcome.closures[0], now=walk.clock.now(), by=TASK_FORCE)


def test_a_room_closure_is_not_cleared_by_hand():
    walk = Walk(a_plant())
    walk.case(a_case())
    room = next(iter(walk.closures.values()))
    with pytest.raises(IllegalClosureAction):
        walk.plant.clear_closure(room, now=walk.clock.now() + timedelta(days=2), by=TASK_FORCE)


# -- closing a case by hand -------------------------------------------------------------------------------


def test_a_case_is_closed_by_hand_only_after_its_isolation():
    walk = Walk(a_plant())
    case = walk.case(a_case(on=date(2026, 11, 20), symptomatic=True)).cases[0]
    walk.clock.advance(timedelta(days=12))  # 2 Dec WIB, ends on 3 Dec
    with pytest.raises(IsolationNotOver) as refused:
        walk.plant.close_case(case, now=walk.clock.now(), symptoms_resolved_on=None, by=COMPANY, policy=POLICY)
    assert refused.value.earliest == date(2026, 12, 3)
    # Symptoms that lasted to 1 Dec push the end to 4 Dec.
    walk.clock.advance(timedelta(days=1))
    with pytest.raises(IsolationNotOver) as refused:
        walk.plant.close_case(case, now=walk.clock.now(), symptoms_resolved_on=date(2026, 12, 1), by=COMPANY,
                              policy=POLICY)
    assert refused.value.earliest == date(2026, 12, 4)
    outcome = walk.apply(walk.plant.close_case(case, now=walk.clock.now(), symptoms_resolved_on=None, by=COMPANY,
                                               policy=POLICY))
    assert outcome.cases[0].status is CaseStatus.CLOSED and outcome.cases[0].closed_by == COMPANY
    # The isolation timer then finds the case closed and does nothing.
    assert [e for e in walk.advance(timedelta(days=1)) if isinstance(e, CaseClosed)] == []
    assert walk.plant.active_isolations == 0


# -- refusals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["3216012345678901", "081234567890", "0812-3456-7890", "+62 812", "Budi Santoso"])
def test_a_case_reference_that_identifies_a_person_is_refused(ref):
    with pytest.raises(InvalidCase):
        CaseReference.check(ref)


@pytest.mark.parametrize("ref", ["C-2026-001", "LINE3/2026/17", "k3.case_9"])
def test_pseudonymous_references_are_accepted(ref):
    assert CaseReference.check(ref) == ref


@pytest.mark.parametrize("ref", [
    "Budi Santoso", "Siti Nur Aisyah", "budi  santoso", "Budi.Santoso", "siti_nur_aisyah", "Dewi-Lestari",  # names
    "3216012345678901", "3216 0123 4567 8901", "3216.0123.4567.8901", "3216-012345-678901",  # NIKs
    "+6281234567890", "+62 812-3456-7890", "+62 (812) 3456 789", "081234567890", "0812 3456 78",  # phones
])
def test_a_reference_that_looks_like_a_name_a_nik_or_a_phone_is_refused_saying_what_to_use(ref):
    assert PersonalReference.identifies_a_person(ref)
    with pytest.raises(InvalidCase) as refused:
        CaseReference.check(ref)
    # Bahasa Indonesia first, English second, and the field it is about.
    assert refused.value.field == "case_ref"
    indonesian = refused.value.message.index("Gunakan kode internal perusahaan, bukan nama, NIK atau nomor telepon")
    assert indonesian == 0 < refused.value.message.index("Use the company's internal code, not a name, NIK or phone")


@pytest.mark.parametrize("ref", ["C-2021-014", "LAB/07/22", "Budi", "K3-0812", "LINE3/2026/17"])
def test_the_company_s_internal_codes_are_not_taken_for_personal_data(ref):
    assert not PersonalReference.identifies_a_person(ref)
    assert CaseReference.check(ref) == ref


def test_a_case_s_events_and_its_room_closure_name_it_by_the_platform_s_id_not_the_company_s_reference():
    # The company's reference stays in the incidents service; the public topic sees only the platform's id.
    walk = Walk(a_plant())
    outcome = walk.case(a_case("C-2021-014"))
    case = outcome.cases[0]
    assert case.case_ref == "C-2021-014"
    detected = walk.of(CaseDetected)[0]
    assert detected.case_ref == str(case.case_id) == case.public_ref
    room = walk.of(FacilityClosureOrdered)[0]
    assert "C-2021-014" not in room.reason and str(case.case_id) in room.reason
    assert not [e for e in outcome.events if "C-2021-014" in e.model_dump_json()]


def test_a_case_confirmed_tomorrow_or_after_its_test_or_beyond_the_workforce_is_refused():
    plant = a_plant()
    now = MONDAY_MORNING
    with pytest.raises(InvalidCase, match="confirmed_on"):
        plant.validate(a_case(on=date(2026, 11, 21)), now, POLICY)
    with pytest.raises(InvalidCase, match="tested_on"):
        plant.validate(a_case(on=date(2026, 11, 18), tested_on=date(2026, 11, 19)), now, POLICY)
    with pytest.raises(InvalidCase, match="close_contacts"):
        plant.validate(a_case(contacts=1201), now, POLICY)


def test_a_plant_whose_permit_was_revoked_takes_no_new_cases():
    with pytest.raises(PlantNotMonitored):
        a_plant(monitored=False).validate(a_case(), MONDAY_MORNING, POLICY)


# -- reports ----------------------------------------------------------------------------------------------


def test_a_report_adds_only_the_positives_not_already_known():
    assert ReportedPositives(3, None, known_in_period=2).new_cases == 1
    assert ReportedPositives(2, None, known_in_period=2).new_cases == 0
    assert ReportedPositives(1, None, known_in_period=2).new_cases == 0


def test_report_periods_are_read_in_the_plants_local_time():
    papua = a_plant(regency_code="94.71", province_code="94")
    assert local_zone("94.71") is WIT and local_zone("32.16") is WIB
    # Friday 23:59 WIT is Friday 14:59 UTC; Saturday 00:30 WIB is Friday 17:30 UTC.
    deadline = datetime(2026, 11, 20, 14, 59, tzinfo=UTC)
    assert ReportedPositives.period_days(papua, deadline - timedelta(days=7), deadline) == (
        date(2026, 11, 13), date(2026, 11, 20))
    late = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    assert ReportedPositives.confirmed_on(papua, late, deadline) == date(2026, 11, 20)


def test_policy_overrides_from_the_environment_are_checked():
    policy = IncidentsSettings.model_validate({"IOMKI_CLUSTER_MORE_THAN": "3", "IOMKI_PLANT_CLOSURE_DAYS": "7",
                                               "IOMKI_ROOM_CLOSURE_HOURS": "72"}).policy()
    assert policy.cluster == ClusterRule(3, 14) and policy.plant_closure == timedelta(days=7)
    assert policy.room_closure == timedelta(hours=72)
    assert replace(policy, cluster=ClusterRule(), plant_closure=timedelta(days=5),
                   room_closure=timedelta(hours=24)) == IncidentPolicy()  # everything else is the national rule
    for variable, wrong in [("IOMKI_QUARANTINE_DAYS", "fourteen"), ("IOMKI_ISOLATION_DAYS", "0"),
                            ("IOMKI_CLUSTER_WINDOW_DAYS", "-3")]:
        with pytest.raises(ValidationError, match=variable):
            IncidentsSettings.model_validate({variable: wrong})


def test_no_override_is_the_national_policy():
    assert IncidentsSettings.model_validate({}).policy() == IncidentPolicy()


# -- a report first, the company's entries later ----------------------------------------------------------

# This week's report period at the plant (WIB dates, both included); the report came in on its last day.
WEEK = (date(2026, 11, 14), date(2026, 11, 20))


def test_an_entered_case_claims_the_placeholder_of_the_report_that_counted_it():
    walk = Walk(a_plant())
    placeholder = walk.report(1, WEEK, on=date(2026, 11, 20))[0].cases[0]
    assert placeholder.is_placeholder and placeholder.report_period == WEEK
    detected_before = len(walk.of(CaseDetected))

    walk.clock.advance(timedelta(hours=3))
    outcome = walk.enter(a_case("LINE2-A", on=date(2026, 11, 17), symptomatic=True, contacts=6,
                                tested_on=date(2026, 11, 16), symptom_onset_on=date(2026, 11, 16)))
    claimed = outcome.cases[0]
    # The same case, now the company's: its reference, dates and contacts; who claimed it and when.
    assert claimed.case_id == placeholder.case_id and len(walk.cases) == 1
    assert (claimed.case_ref, claimed.confirmed_on, claimed.symptomatic, claimed.close_contacts,
            claimed.tested_on) == ("LINE2-A", date(2026, 11, 17), True, 6, date(2026, 11, 16))
    assert (claimed.claimed_by, claimed.claimed_at) == (COMPANY, walk.clock.now())
    assert claimed.recorded_by.role == "company" and claimed.source is CaseSource.REPORT
    assert not claimed.is_placeholder
    # No second CaseDetected, no second room closure; isolation re-timed, contacts quarantined.
    assert len(walk.of(CaseDetected)) == detected_before
    assert [type(e) for e in outcome.events] == [IsolationStarted, ContactsQuarantined]
    isolation = outcome.events[0]
    assert (isolation.case_id, isolation.starts_on, isolation.ends_on) == (
        claimed.case_id, date(2026, 11, 16), date(2026, 11, 29))  # onset + 10 + 3 symptom-free days
    assert outcome.events[1].ends_on == date(2026, 11, 30)  # counted contacts: exposed until the onset
    assert (walk.plant.active_isolations, walk.plant.active_quarantines) == (1, 6)

    # The placeholder's timer (30 Nov) is cancelled; only the real one (29 Nov) fires, once.
    assert [t.due_at for t in walk.cancelled] == [start_of_day(date(2026, 11, 30), WIB)]
    isolation_timers = [t for t in walk.timers if t.kind is TimerKind.ISOLATION_END]
    assert [t.due_at for t in isolation_timers] == [start_of_day(date(2026, 11, 29), WIB)]
    closed = [e for e in walk.advance(timedelta(days=12)) if isinstance(e, CaseClosed)]
    assert [c.closed_on for c in closed] == [date(2026, 11, 29)]


@pytest.mark.parametrize(("confirmed_on", "claims"), [
    (date(2026, 11, 13), False),  # the day before the period: another period's case
    (date(2026, 11, 14), True),   # the period's first day
    (date(2026, 11, 20), True),   # its last day
    (date(2026, 11, 21), False),  # the day after: a case the report could not have counted
])
def test_only_a_case_confirmed_inside_the_report_period_claims_its_placeholder(confirmed_on, claims):
    walk = Walk(a_plant())
    placeholder = walk.report(1, WEEK, on=date(2026, 11, 20))[0].cases[0]
    walk.clock.advance(timedelta(days=1))
    case = walk.enter(a_case("C-1", on=confirmed_on)).cases[0]
    assert (case.case_id == placeholder.case_id) is claims
    assert len(walk.cases) == (1 if claims else 2)
    assert len(walk.of(CaseDetected)) == (1 if claims else 2)


def test_three_reported_positives_are_a_possible_cluster_claimed_once_and_a_cluster_once_linked():
    walk = Walk(a_plant())
    walk.report(3, WEEK, on=date(2026, 11, 20))
    assert walk.of(ClusterDeclared) == []  # not linked: the task force judges them
    assert [p.case_count for p in walk.of(PossibleClusterRaised)] == [3]

    walk.clock.advance(timedelta(hours=2))
    claims = [walk.enter(a_case(ref, on=date(2026, 11, day))) for ref, day in (("C-1", 15), ("C-2", 18), ("C-3", 19))]
    fourth = walk.enter(a_case("C-4", on=date(2026, 11, 19)))
    assert all(claim.cases[0].claimed_by == COMPANY for claim in claims)
    assert len({claim.cases[0].case_id for claim in claims}) == 3
    assert fourth.cases[0].claimed_by is None and fourth.cases[0].source is CaseSource.DIRECT
    assert len(walk.cases) == 4
    assert [e.source for e in walk.of(CaseDetected)] == [CaseSource.REPORT] * 3 + [CaseSource.DIRECT]
    # Claims raise nothing again (the same cases); the fourth, a new case, grows the possible cluster.
    assert [p.case_count for p in walk.of(PossibleClusterRaised)] == [3, 4]
    assert not [e for claim in claims for e in claim.events if isinstance(e, FacilityClosureOrdered)]

    outcome = walk.link(*(claim.cases[0] for claim in claims))
    assert [c.case_count for c in walk.of(ClusterDeclared)] == [3]
    assert set(outcome.clusters[0].case_ids) == {claim.cases[0].case_id for claim in claims}


def test_a_placeholder_already_claimed_is_not_claimed_again():
    walk = Walk(a_plant())
    placeholder = walk.report(1, WEEK, on=date(2026, 11, 20))[0].cases[0]
    claimed = walk.enter(a_case("C-1", on=date(2026, 11, 16))).cases[0]
    assert not PlaceholderClaim.covers(claimed, date(2026, 11, 16))
    again = walk.enter(a_case("C-2", on=date(2026, 11, 16))).cases[0]
    assert again.case_id != placeholder.case_id and again.source is CaseSource.DIRECT
    assert PlaceholderClaim.pick(a_case("C-3", on=date(2026, 11, 16)), [claimed]) is None


def test_of_several_placeholders_the_earliest_is_claimed():
    walk = Walk(a_plant())
    earlier = walk.report(1, (date(2026, 11, 7), date(2026, 11, 20)), on=date(2026, 11, 13))[0].cases[0]
    walk.report(2, WEEK, on=date(2026, 11, 20))
    assert walk.enter(a_case("C-1", on=date(2026, 11, 15))).cases[0].case_id == earlier.case_id


def test_a_claim_moves_an_unclustered_placeholder_to_its_real_date_without_counting_it_twice():
    walk = Walk(a_plant())
    earlier = [walk.case(a_case(ref, on=date(2026, 11, day))).cases[0] for ref, day in (("C-0", 1), ("C-00", 2))]
    # The report's positive is dated the day of the report, 14 days after C-00: no possible cluster yet.
    walk.clock.advance(timedelta(days=1))
    placeholder = walk.report(1, (date(2026, 11, 10), date(2026, 11, 16)), on=date(2026, 11, 16))[0].cases[0]
    assert walk.of(PossibleClusterRaised) == []
    # The real case was confirmed on 10 Nov, within 14 days of C-0: three cases, one possible cluster.
    outcome = walk.enter(a_case("C-1", on=date(2026, 11, 10)))
    assert outcome.possible_clusters[0].case_ids == [earlier[0].case_id, earlier[1].case_id, placeholder.case_id]
    assert [p.case_count for p in walk.of(PossibleClusterRaised)] == [3]
    assert len(walk.cases) == 3 and outcome.cases[0].case_id == placeholder.case_id


def test_a_closed_placeholder_is_claimed_without_reopening_its_isolation():
    walk = Walk(a_plant())
    walk.report(1, WEEK, on=date(2026, 11, 20))
    walk.advance(timedelta(days=11))  # isolation of the placeholder ended on 30 Nov
    outcome = walk.enter(a_case("C-1", on=date(2026, 11, 18), contacts=4))
    case = outcome.cases[0]
    assert case.status is CaseStatus.CLOSED and case.claimed_by == COMPANY
    assert case.isolation_ends_on == date(2026, 11, 30)  # as it ran
    assert [type(e) for e in outcome.events] == [ContactsQuarantined]
    assert walk.cancelled == [] and walk.plant.active_isolations == 0


def test_a_superseded_isolation_timer_does_nothing_when_it_fires_late():
    walk = Walk(a_plant())
    placeholder = walk.report(1, WEEK, on=date(2026, 11, 20))[0].cases[0]
    stale = next(t for t in walk.timers if t.kind is TimerKind.ISOLATION_END)
    claimed = walk.enter(a_case("C-1", on=date(2026, 11, 14))).cases[0]
    assert claimed.case_id == placeholder.case_id
    # A sweeper held the old timer while the claim committed, so it fires after: nothing happens.
    assert walk.plant.end_isolation(claimed, stale.due_at).events == []
    assert walk.plant.end_isolation(claimed, start_of_day(claimed.isolation_ends_on, WIB)).events != []


# -- a timer whose firing fails ------------------------------------------------------------------------------------


def test_a_failing_timer_is_tried_again_later_each_time_up_to_an_hour():
    retry = TimerRetry()
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    delays = [retry.next_attempt(attempts, now) - now for attempts in (1, 2, 3, 4, 9, 10, 1000)]
    assert delays == [timedelta(seconds=s) for s in (10, 20, 40, 80, 2560, 3600, 3600)]


# -- a company closes its own plant -----------------------------------------------------------------------


def test_a_company_closes_its_own_plant_and_clears_it_after_the_period():
    walk = Walk(a_plant())
    outcome = walk.apply(walk.plant.close_voluntarily(ClosureScope.PLANT, 3, "disinfection of every line",
                                                      now=walk.clock.now(), by=COMPANY))
    [ordered] = outcome.events
    assert (ordered.scope, ordered.ordered_by, ordered.ordered_by_actor) == (
        ClosureScope.PLANT, ClosureAuthority.COMPANY, COMPANY.sub)
    assert ordered.ends_at == walk.clock.now() + timedelta(days=3)
    assert walk.plant.status is FacilityStatus.PLANT_CLOSED and outcome.timers == []
    closure = outcome.closures[0]
    with pytest.raises(ClosureNotOver):
        walk.plant.clear_closure(closure, now=walk.clock.now(), by=COMPANY)
    walk.clock.advance(timedelta(days=3))
    cleared = walk.apply(walk.plant.clear_closure(closure, now=walk.clock.now(), by=COMPANY))
    assert [(type(e), e.scope) for e in cleared.events] == [(FacilityReopened, ClosureScope.PLANT)]
    assert walk.plant.status is FacilityStatus.OPEN


def test_a_companys_room_closure_reopens_by_itself():
    walk = Walk(a_plant())
    walk.apply(walk.plant.close_voluntarily(ClosureScope.ROOM, 1, "canteen", now=walk.clock.now(), by=COMPANY))
    assert walk.plant.status is FacilityStatus.ROOM_CLOSED
    assert [(type(e), e.scope) for e in walk.advance(timedelta(days=1))] == [(FacilityReopened, ClosureScope.ROOM)]
    assert walk.plant.status is FacilityStatus.OPEN


def test_a_company_neither_takes_over_nor_clears_a_closure_the_task_force_ordered():
    walk = Walk(a_plant())
    closed = walk.cluster_closed("C-1", "C-2", "C-3")
    closure = closed.closures[0]
    with pytest.raises(IllegalClosureAction):
        walk.plant.close_voluntarily(ClosureScope.PLANT, 10, "longer", now=walk.clock.now(), by=COMPANY)
    walk.clock.advance(timedelta(days=6))
    with pytest.raises(IllegalClosureAction, match="ordered itself"):
        walk.plant.clear_closure(closure, now=walk.clock.now(), by=COMPANY)
    assert walk.plant.clear_closure(closure, now=walk.clock.now(), by=TASK_FORCE).events


@pytest.mark.parametrize(("days", "reason", "field"), [(0, "x", "days"), (61, "x", "days"), (3, " ", "reason")])
def test_a_companys_closure_has_a_length_and_a_reason(days, reason, field):
    with pytest.raises(InvalidCase, match=field):
        a_plant().close_voluntarily(ClosureScope.PLANT, days, reason, now=MONDAY_MORNING, by=COMPANY)
    with pytest.raises(PlantNotMonitored):
        a_plant(monitored=False).close_voluntarily(ClosureScope.ROOM, 1, "x", now=MONDAY_MORNING, by=COMPANY)
