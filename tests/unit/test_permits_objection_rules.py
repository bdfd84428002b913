"""Objections to a freeze or a revocation (UU 30/2014 Pasal 77), as pure domain code: Indonesia's working days,
the window counted in the plant's time zone, the rules of filing and deciding, and what a decision does to the
permit."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.permits.app import PermitsSettings
from services.permits.calendar import IndonesianHolidays
from services.permits.domain import (
    OBJECTION_WORKING_DAYS, REVERSALS, SANCTIONS, TRANSITIONS, Action, AlreadyObjected, IllegalTransition,
    NothingToObject, Objection, ObjectionAlreadyDecided, ObjectionOutcome, ObjectionTooLate, ObjectionWindow,
    OutcomeNotApplicable, Permit, PermitStatus, PlantPermittedMeanwhile, Recount, Sanction, SanctionNoLongerStands,
    TextMissing, Transition, WorkingDays, open_to_objection, reversal_for,
)
from shared.contract import GroundCode, GroundEvidence, SanctionGround

pytestmark = pytest.mark.unit

WIB, WITA, WIT = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Makassar"), ZoneInfo("Asia/Jayapura")
CALENDAR = WorkingDays(IndonesianHolidays())
WINDOW = ObjectionWindow(CALENDAR)


class Holidays:
    """A calendar of the given days only, for rules that must not depend on a year's decree."""

    def __init__(self, *days: date) -> None:
        self._days = set(days)

    def is_holiday(self, day: date) -> bool:
        return day in self._days


def local(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


# -- Indonesia's working days, from the maintained calendar ---------------------------------------------------------


@pytest.mark.parametrize(("day", "name"), [
    (date(2021, 5, 13), "Hari Raya Idul Fitri"),  # Lebaran 2021, with Ascension Day
    (date(2021, 5, 14), "Hari kedua dari Hari Raya Idul Fitri"),
    (date(2021, 5, 12), "Cuti Bersama Hari Raya Idul Fitri"),  # collective leave before it
    (date(2020, 12, 24), "Cuti Bersama Hari Raya Natal"),
    (date(2020, 12, 25), "Hari Raya Natal"),
    (date(2021, 1, 1), "Tahun Baru Masehi"),
    (date(2021, 8, 17), "Hari Kemerdekaan Republik Indonesia"),
])
def test_the_calendar_holds_national_holidays_and_collective_leave(day, name):
    assert IndonesianHolidays().is_holiday(day)
    assert name in (IndonesianHolidays().name_of(day) or "")


def test_an_ordinary_weekday_is_no_holiday_and_a_weekend_is_no_working_day():
    assert not IndonesianHolidays().is_holiday(date(2021, 7, 6))
    assert CALENDAR.is_working_day(date(2021, 7, 6))  # a Tuesday
    assert not CALENDAR.is_working_day(date(2021, 7, 10)) and not CALENDAR.is_working_day(date(2021, 7, 11))
    assert IndonesianHolidays().name_of(date(2021, 7, 6)) is None


def test_lebaran_2021_skips_collective_leave_both_days_of_eid_and_the_weekend():
    # Tuesday 11 May 2021: Wednesday is collective leave, Thursday and Friday Eid al-Fitr, then the weekend.
    assert CALENDAR.nth_after(date(2021, 5, 11), 1) == date(2021, 5, 17)


def test_lebaran_2026_runs_from_nyepi_through_four_days_of_collective_leave():
    assert [CALENDAR.is_working_day(date(2026, 3, d)) for d in range(17, 26)] == [
        True, False, False, False, False, False, False, False, True]  # 17th … 25th March
    assert CALENDAR.nth_after(date(2026, 3, 17), 1) == date(2026, 3, 25)


def test_christmas_and_new_year_2020_skip_collective_leave_on_the_24th_and_31st():
    # Wednesday 23 December 2020: 24th leave, 25th Christmas, weekend, 28-30th working, 31st leave, 1st New Year.
    assert [CALENDAR.nth_after(date(2020, 12, 23), n) for n in (1, 2, 3, 4)] == [
        date(2020, 12, 28), date(2020, 12, 29), date(2020, 12, 30), date(2021, 1, 4)]


def test_christmas_2025_and_its_collective_leave_on_boxing_day():
    assert CALENDAR.nth_after(date(2025, 12, 24), 1) == date(2025, 12, 29)


def test_a_friday_sanction_is_counted_from_monday():
    assert CALENDAR.nth_after(date(2021, 7, 9), 1) == date(2021, 7, 12)
    assert CALENDAR.nth_after(date(2021, 7, 10), 1) == date(2021, 7, 12)  # nor a Saturday's


def test_working_days_count_weekdays_and_skip_only_holidays_and_weekends():
    days = WorkingDays(Holidays(date(2021, 7, 7)))
    assert [days.nth_after(date(2021, 7, 5), n) for n in range(1, 6)] == [
        date(2021, 7, 6), date(2021, 7, 8), date(2021, 7, 9), date(2021, 7, 12), date(2021, 7, 13)]
    assert days.nth_after(date(2021, 7, 5), 0) == date(2021, 7, 5)


# -- the window ----------------------------------------------------------------------------------------------


def a_sanction(at: datetime, action: Action = Action.FREEZE,
               from_status: PermitStatus = PermitStatus.ISSUED) -> Sanction:
    return Sanction(7, action, from_status, at)


def test_twenty_one_working_days_by_default_as_the_law_sets():
    assert OBJECTION_WORKING_DAYS == 21 and WINDOW.days == 21
    # Monday 5 July 2021, 10:00 WIB: 21 working days, Eid al-Adha (20 July) skipped, end on Wednesday 4 August.
    assert WINDOW.last_day(a_sanction(local(date(2021, 7, 5), time(10), WIB)), WIB) == date(2021, 8, 4)
    # Across Lebaran 2021.
    assert WINDOW.last_day(a_sanction(local(date(2021, 5, 11), time(10), WIB)), WIB) == date(2021, 6, 16)


def test_the_last_day_counts_whole_to_midnight_where_the_plant_is():
    sanction = a_sanction(local(date(2021, 7, 5), time(10), WIB))
    for zone in (WIB, WITA, WIT):
        last = WINDOW.last_day(sanction, zone)
        end_of_last_day = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone) - timedelta(microseconds=1)
        assert WINDOW.check(sanction, now=end_of_last_day, zone=zone) == last
        assert WINDOW.is_open(sanction, now=end_of_last_day, zone=zone)
        with pytest.raises(ObjectionTooLate) as late:
            WINDOW.check(sanction, now=end_of_last_day + timedelta(microseconds=1), zone=zone)
        assert late.value.last_day == last
        assert not WINDOW.is_open(sanction, now=end_of_last_day + timedelta(microseconds=1), zone=zone)


def test_the_day_of_the_sanction_is_the_plants_own_day():
    # 23:30 WIB on Monday is already Tuesday 01:30 WIT: a plant in Papua counts from Tuesday, one in Java from Monday.
    sanction = a_sanction(local(date(2021, 7, 5), time(23, 30), WIB))
    assert WINDOW.last_day(sanction, WIB) == date(2021, 8, 4)
    assert WINDOW.last_day(sanction, WITA) == date(2021, 8, 5)
    assert WINDOW.last_day(sanction, WIT) == date(2021, 8, 5)


def test_the_number_of_working_days_is_the_windows_own():
    sanction = a_sanction(local(date(2021, 7, 9), time(10), WIB))  # a Friday
    assert ObjectionWindow(CALENDAR, 1).last_day(sanction, WIB) == date(2021, 7, 12)
    assert ObjectionWindow(CALENDAR, 5).last_day(sanction, WIB) == date(2021, 7, 16)


def test_a_late_objection_names_the_last_day_in_bahasa_indonesia_then_english():
    sanction = a_sanction(local(date(2021, 7, 5), time(10), WIB), Action.REVOKE)
    with pytest.raises(ObjectionTooLate) as late:
        WINDOW.check(sanction, now=local(date(2021, 8, 5), time(0), WIB), zone=WIB)
    text = str(late.value)
    assert text.index("Batas waktu keberatan atas pencabutan") < text.index("The time to object to this revocation")
    assert text.count("2021-08-04") == 2 and "UU 30/2014" in text


# -- filing ------------------------------------------------------------------------------------------------------


T0 = local(date(2021, 7, 5), time(10), WIB)
A_GROUND = SanctionGround(code=GroundCode.INSPECTION_FINDING, text="masks not worn on the line",
                          evidence=GroundEvidence(finding="BAP-17/2021"))


def a_permit(status: PermitStatus = PermitStatus.ISSUED, **changes) -> Permit:
    permit, _ = Permit.apply(facility_id=uuid.uuid4(), nib="8120000123456", company_name="PT Baja Nusantara",
                             province_code="32", regency_code="32.16", sector_class="critical",
                             workforce_total=1200, actor="company-1", role="company", now=T0 - timedelta(days=30),
                             plant_key="8120000123456|32.16|jl raya 5")
    return replace(permit, status=status, permit_number="IOMKI-2021-000001", **changes)


def sanctioned(action: Action, *, before: PermitStatus = PermitStatus.ISSUED,
               at: datetime = T0) -> tuple[Permit, tuple[int, Transition]]:
    """A permit just frozen or revoked, with its history's latest row."""
    permit = a_permit(before, freeze_count=1 if before is PermitStatus.FROZEN else 0)
    changed, transition = permit.act(action, actor="officer-ani", role="operator", reason="three warnings", now=at,
                                     ground=A_GROUND)
    return changed, (12, transition)


def filed(permit: Permit, latest: tuple[int, Transition] | None, *, earlier: tuple[Objection, ...] = (),
          statement: str = "Laporan sudah dikirim tepat waktu", now: datetime = T0 + timedelta(days=3)) -> Objection:
    return Objection.file(permit, latest, earlier, statement, window=WINDOW, actor="k3-admin", role="company",
                          now=now)


def test_a_company_objects_to_the_freeze_in_force():
    permit, latest = sanctioned(Action.FREEZE)
    objection = filed(permit, latest)
    assert objection.sanction == Sanction(12, Action.FREEZE, PermitStatus.ISSUED, T0)
    assert (objection.permit_id, objection.filed_by, objection.filed_role) == (permit.permit_id, "k3-admin", "company")
    assert objection.last_day == date(2021, 8, 4) and objection.pending and objection.outcome is None


def test_a_company_objects_to_a_revocation_of_a_frozen_permit():
    permit, latest = sanctioned(Action.REVOKE, before=PermitStatus.FROZEN)
    assert filed(permit, latest).sanction.from_status is PermitStatus.FROZEN


@pytest.mark.parametrize("action", [Action.ISSUE, Action.REACTIVATE, Action.REINSTATE, Action.REDUCE_TO_FREEZE])
def test_there_is_nothing_to_object_to_unless_the_latest_decision_is_a_freeze_or_revocation(action):
    permit = a_permit(TRANSITIONS[action][1])
    latest = (3, Transition(PermitStatus.FROZEN, permit.status, action.value, "officer-ani", "operator", "r", T0))
    with pytest.raises(NothingToObject) as refused:
        filed(permit, latest)
    assert refused.value.status is permit.status
    assert str(refused.value).index("tidak ada sanksi") < str(refused.value).index("no sanction")
    with pytest.raises(NothingToObject):
        filed(a_permit(PermitStatus.SUBMITTED), None)


def test_only_freezes_and_revocations_are_sanctions_objected_to():
    assert SANCTIONS == {Action.FREEZE, Action.REVOKE}
    assert REVERSALS == {Action.REINSTATE, Action.REDUCE_TO_FREEZE}


@pytest.mark.parametrize("statement", ["", "   ", "\n\t", "...", " - "])
def test_an_objection_states_its_grounds(statement):
    permit, latest = sanctioned(Action.FREEZE)
    with pytest.raises(TextMissing) as refused:
        filed(permit, latest, statement=statement)
    assert refused.value.field == "statement" and refused.value.message.startswith("Pernyataan keberatan wajib")


def test_one_statement_word_is_a_statement():
    permit, latest = sanctioned(Action.FREEZE)
    assert filed(permit, latest, statement="x").statement == "x"


def test_a_sanction_is_objected_to_once():
    permit, latest = sanctioned(Action.FREEZE)
    first = filed(permit, latest)
    with pytest.raises(AlreadyObjected) as refused:
        filed(permit, latest, earlier=(first,))
    assert refused.value.existing is first
    decided = first.decide(ObjectionOutcome.UPHELD, "data confirm the misses", permit=permit, latest=latest,
                           permits_of_plant=[permit], actor="officer-budi", role="operator", now=T0).objection
    with pytest.raises(AlreadyObjected):
        filed(permit, latest, earlier=(decided,))


def test_an_objection_to_an_earlier_sanction_does_not_block_one_to_the_next():
    frozen, freeze = sanctioned(Action.FREEZE)
    first = filed(frozen, freeze)
    revoked, transition = frozen.act(Action.REVOKE, actor="reports", role="system", reason="missed while frozen",
                                     ground=A_GROUND,
                                     now=T0 + timedelta(days=4))
    second = filed(revoked, (13, transition), earlier=(first,), now=T0 + timedelta(days=5))
    assert second.sanction.seq == 13 and second.sanction.action is Action.REVOKE


def test_filing_is_judged_by_the_window_of_the_plants_zone():
    permit, latest = sanctioned(Action.FREEZE, at=local(date(2021, 7, 5), time(23, 30), WIB))
    in_papua = replace(permit, province_code="91", regency_code="91.71")
    on_the_fourth = local(date(2021, 8, 5), time(0, 30), WIB)  # 5 August, 02:30 in Papua
    with pytest.raises(ObjectionTooLate):
        filed(permit, latest, now=on_the_fourth)
    assert filed(in_papua, latest, now=on_the_fourth).last_day == date(2021, 8, 5)


def test_open_to_objection_says_what_may_still_be_objected_to_and_until_when():
    permit, latest = sanctioned(Action.REVOKE)
    open_ = open_to_objection(permit, latest, [], window=WINDOW, now=T0)
    assert open_ is not None and (open_.sanction.action, open_.last_day, open_.open) == (
        Action.REVOKE, date(2021, 8, 4), True)
    closed = open_to_objection(permit, latest, [], window=WINDOW, now=local(date(2021, 8, 5), time(0), WIB))
    assert closed is not None and not closed.open
    assert open_to_objection(permit, latest, [filed(permit, latest)], window=WINDOW, now=T0) is None
    assert open_to_objection(a_permit(), None, [], window=WINDOW, now=T0) is None


# -- deciding ------------------------------------------------------------------------------------------------


DECIDED_AT = T0 + timedelta(days=10)


def decide(objection: Objection, outcome: ObjectionOutcome, permit: Permit, latest: tuple[int, Transition] | None,
           *, others: tuple[Permit, ...] = (), reason: str = "the reports were received on time"):
    return objection.decide(outcome, reason, permit=permit, latest=latest, permits_of_plant=[permit, *others],
                            actor="officer-budi", role="operator", now=DECIDED_AT, causation_id="req-1")


def test_upheld_records_the_decision_and_leaves_the_sanction_standing():
    permit, latest = sanctioned(Action.REVOKE)
    decision = decide(filed(permit, latest), ObjectionOutcome.UPHELD, permit, latest, reason="misses confirmed")
    assert decision.permit is None and decision.transition is None
    o = decision.objection
    assert (o.outcome, o.reason, o.decided_by, o.decided_role, o.decided_at) == (
        ObjectionOutcome.UPHELD, "misses confirmed", "officer-budi", "operator", DECIDED_AT)
    assert not o.pending


def test_an_overturned_freeze_reinstates_the_permit_and_no_longer_counts():
    permit, latest = sanctioned(Action.FREEZE)
    assert permit.freeze_count == 1
    objection = filed(permit, latest)
    decision = decide(objection, ObjectionOutcome.OVERTURNED, permit, latest)
    assert decision.permit is not None and decision.transition is not None
    assert decision.permit.status is PermitStatus.ISSUED and decision.permit.freeze_count == 0
    t = decision.transition
    assert (t.from_status, t.to_status, t.action, t.actor, t.role, t.at, t.causation_id) == (
        PermitStatus.FROZEN, PermitStatus.ISSUED, "reinstate", "officer-budi", "operator", DECIDED_AT, "req-1")
    assert t.reason == f"objection {objection.objection_id} overturned: the reports were received on time"


def test_an_overturned_revocation_returns_the_permit_to_issued_and_lifts_the_wait_to_reapply():
    permit, latest = sanctioned(Action.REVOKE)
    assert permit.reapply_after is not None
    decision = decide(filed(permit, latest), ObjectionOutcome.OVERTURNED, permit, latest)
    assert decision.permit is not None and decision.transition is not None
    assert decision.permit.status is PermitStatus.ISSUED and decision.transition.action == "reinstate"
    assert decision.permit.revoked_at is None and decision.permit.reapply_after is None
    assert decision.permit.freeze_count == 0 and decision.permit.is_active


def test_an_overturned_revocation_of_a_frozen_permit_returns_it_to_its_freeze():
    permit, latest = sanctioned(Action.REVOKE, before=PermitStatus.FROZEN)
    decision = decide(filed(permit, latest), ObjectionOutcome.OVERTURNED, permit, latest)
    assert decision.permit is not None and decision.transition is not None
    assert decision.permit.status is PermitStatus.FROZEN and decision.transition.action == "reduce_to_freeze"
    assert decision.permit.freeze_count == 1 and decision.permit.revoked_at is None  # the earlier freeze stands


def test_partly_reduces_a_revocation_to_a_freeze_that_counts():
    permit, latest = sanctioned(Action.REVOKE)
    decision = decide(filed(permit, latest), ObjectionOutcome.PARTLY, permit, latest)
    assert decision.permit is not None and decision.transition is not None
    assert decision.permit.status is PermitStatus.FROZEN and decision.permit.freeze_count == 1
    assert (decision.transition.from_status, decision.transition.to_status) == (PermitStatus.REVOKED,
                                                                                PermitStatus.FROZEN)
    assert decision.permit.revoked_at is None


def test_partly_for_a_revocation_of_a_frozen_permit_keeps_its_one_freeze():
    permit, latest = sanctioned(Action.REVOKE, before=PermitStatus.FROZEN)
    decision = decide(filed(permit, latest), ObjectionOutcome.PARTLY, permit, latest)
    assert decision.permit is not None and decision.permit.status is PermitStatus.FROZEN
    assert decision.permit.freeze_count == 1


def test_a_reversal_recounts_the_sanction_by_its_ground_and_month():
    for action, before, outcome, added in (
            (Action.FREEZE, PermitStatus.ISSUED, ObjectionOutcome.OVERTURNED, None),
            (Action.REVOKE, PermitStatus.ISSUED, ObjectionOutcome.OVERTURNED, None),
            (Action.REVOKE, PermitStatus.ISSUED, ObjectionOutcome.PARTLY, Action.FREEZE),
            (Action.REVOKE, PermitStatus.FROZEN, ObjectionOutcome.PARTLY, None),  # its freeze is counted already
            (Action.REVOKE, PermitStatus.FROZEN, ObjectionOutcome.OVERTURNED, None)):
        permit, latest = sanctioned(action, before=before)
        decision = decide(filed(permit, latest), outcome, permit, latest)
        assert decision.recount == Recount(A_GROUND, T0, action, added), (action, before, outcome)
    permit, latest = sanctioned(Action.REVOKE)
    assert decide(filed(permit, latest), ObjectionOutcome.UPHELD, permit, latest).recount is None


def test_partly_does_not_apply_to_a_freeze():
    permit, latest = sanctioned(Action.FREEZE)
    with pytest.raises(OutcomeNotApplicable) as refused:
        decide(filed(permit, latest), ObjectionOutcome.PARTLY, permit, latest)
    assert refused.value.outcome is ObjectionOutcome.PARTLY


@pytest.mark.parametrize(("action", "before", "outcome", "reversal"), [
    (Action.FREEZE, PermitStatus.ISSUED, ObjectionOutcome.UPHELD, None),
    (Action.FREEZE, PermitStatus.ISSUED, ObjectionOutcome.OVERTURNED, Action.REINSTATE),
    (Action.REVOKE, PermitStatus.ISSUED, ObjectionOutcome.UPHELD, None),
    (Action.REVOKE, PermitStatus.ISSUED, ObjectionOutcome.OVERTURNED, Action.REINSTATE),
    (Action.REVOKE, PermitStatus.ISSUED, ObjectionOutcome.PARTLY, Action.REDUCE_TO_FREEZE),
    (Action.REVOKE, PermitStatus.FROZEN, ObjectionOutcome.UPHELD, None),
    (Action.REVOKE, PermitStatus.FROZEN, ObjectionOutcome.OVERTURNED, Action.REDUCE_TO_FREEZE),
    (Action.REVOKE, PermitStatus.FROZEN, ObjectionOutcome.PARTLY, Action.REDUCE_TO_FREEZE),
])
def test_each_outcome_of_each_sanction_leads_where_the_law_says(action, before, outcome, reversal):
    sanction = Sanction(1, action, before, T0)
    assert reversal_for(sanction, outcome) is reversal
    if reversal is not None and outcome is ObjectionOutcome.OVERTURNED:
        assert TRANSITIONS[reversal][1] is before  # wholly reversed: where the permit was before the sanction


@pytest.mark.parametrize("reason", ["", "  ", "-"])
def test_a_decision_states_its_reasons(reason):
    permit, latest = sanctioned(Action.FREEZE)
    with pytest.raises(TextMissing) as refused:
        decide(filed(permit, latest), ObjectionOutcome.UPHELD, permit, latest, reason=reason)
    assert refused.value.field == "reason"


def test_an_objection_is_decided_once():
    permit, latest = sanctioned(Action.FREEZE)
    decided = decide(filed(permit, latest), ObjectionOutcome.UPHELD, permit, latest).objection
    for outcome in ObjectionOutcome:
        with pytest.raises(ObjectionAlreadyDecided) as refused:
            decide(decided, outcome, permit, latest)
        assert refused.value.objection is decided


def test_a_sanction_followed_by_another_decision_can_be_upheld_but_not_reversed():
    frozen, freeze = sanctioned(Action.FREEZE)
    objection = filed(frozen, freeze)
    revoked, revocation = frozen.act(Action.REVOKE, actor="officer-ani", role="operator", reason="inspection",
                                     ground=A_GROUND,
                                     now=T0 + timedelta(days=5))
    reactivated, reactivation = frozen.act(Action.REACTIVATE, actor="officer-ani", role="operator",
                                           reason="reports filed", now=T0 + timedelta(days=5))
    for permit, latest in ((revoked, (13, revocation)), (reactivated, (13, reactivation))):
        with pytest.raises(SanctionNoLongerStands) as refused:
            decide(objection, ObjectionOutcome.OVERTURNED, permit, latest)
        assert refused.value.current is permit.status
        assert decide(objection, ObjectionOutcome.UPHELD, permit, latest).permit is None


def test_a_revocation_is_not_reversed_while_the_plant_has_another_active_permit():
    revoked, latest = sanctioned(Action.REVOKE)
    objection = filed(revoked, latest)
    for status in (PermitStatus.SUBMITTED, PermitStatus.ISSUED, PermitStatus.FROZEN):
        other = replace(a_permit(status), permit_id=uuid.uuid4())
        for outcome in (ObjectionOutcome.OVERTURNED, ObjectionOutcome.PARTLY):
            with pytest.raises(PlantPermittedMeanwhile) as refused:
                decide(objection, outcome, revoked, latest, others=(other,))
            assert refused.value.other is other
        assert decide(objection, ObjectionOutcome.UPHELD, revoked, latest, others=(other,)).permit is None
    for status in (PermitStatus.REJECTED, PermitStatus.REVOKED):
        other = replace(a_permit(status), permit_id=uuid.uuid4())
        decision = decide(objection, ObjectionOutcome.OVERTURNED, revoked, latest, others=(other,))
        assert decision.permit is not None and decision.permit.status is PermitStatus.ISSUED


# -- reversals as transitions of the lifecycle --------------------------------------------------------------


def test_a_reversal_is_taken_only_with_the_sanction_it_reverses():
    frozen, _ = sanctioned(Action.FREEZE)
    with pytest.raises(ValueError, match="reverses the sanction"):
        frozen.act(Action.REINSTATE, actor="o", role="operator", reason="r", now=T0)
    revocation = Sanction(1, Action.REVOKE, PermitStatus.ISSUED, T0)
    with pytest.raises(ValueError, match="reverses the sanction"):
        frozen.act(Action.REINSTATE, actor="o", role="operator", reason="r", now=T0, reversing=revocation)


OFFICER = [Action.ISSUE, Action.FREEZE, Action.REACTIVATE, Action.REVOKE]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(OFFICER), st.sampled_from(list(ObjectionOutcome))), max_size=25))
def test_any_sequence_of_sanctions_objections_and_decisions_keeps_the_counts_true_to_the_history(steps):
    permit = a_permit(PermitStatus.SUBMITTED)
    history: list[Transition] = []
    for n, step in enumerate(steps):
        now = T0 + timedelta(days=n)
        latest = (len(history), history[-1]) if history else None
        if isinstance(step, ObjectionOutcome):
            try:
                objection = Objection.file(permit, latest, [], "keberatan", window=WINDOW, actor="c", role="company",
                                           now=now)
                decision = objection.decide(step, "alasan", permit=permit, latest=latest, permits_of_plant=[permit],
                                            actor="o", role="operator", now=now)
            except (NothingToObject, OutcomeNotApplicable, ObjectionTooLate):
                continue
            if decision.permit is None or decision.transition is None:
                continue
            permit, transition = decision.permit, decision.transition
        else:
            try:
                permit, transition = permit.act(step, actor="o", role="operator", reason="r", now=now,
                                                permit_number="IOMKI-2021-000001",
                                                ground=A_GROUND if step in SANCTIONS else None)
            except IllegalTransition:
                continue
        history.append(transition)
    # Each freeze counts until an objection overturns it; a revocation reduced to a freeze counts as one unless
    # the permit was frozen when it was revoked. Reversals reverse the transition just before them.
    standing = 0
    for earlier, t in zip([None, *history], history, strict=False):  # each with the one before it
        if t.action == "freeze":
            standing += 1
        elif t.action == "reinstate" and t.from_status is PermitStatus.FROZEN:
            standing -= 1
        elif t.action == "reduce_to_freeze" and earlier is not None and earlier.from_status is PermitStatus.ISSUED:
            standing += 1
    assert permit.freeze_count == standing >= 0
    assert (permit.revoked_at is not None) == (permit.status is PermitStatus.REVOKED)
    if permit.status is PermitStatus.FROZEN:
        assert permit.freeze_count >= 1
    for earlier, later in zip(history, history[1:], strict=False):
        assert later.from_status is earlier.to_status


# -- the setting ---------------------------------------------------------------------------------------------


def test_the_window_is_set_by_iomki_objection_working_days_within_bounds():
    assert PermitsSettings().objection_working_days == OBJECTION_WORKING_DAYS
    assert PermitsSettings(IOMKI_OBJECTION_WORKING_DAYS="5").objection_working_days == 5
    for out_of_bounds in ("0", "251", "21.5"):
        with pytest.raises(ValidationError):
            PermitsSettings(IOMKI_OBJECTION_WORKING_DAYS=out_of_bounds)
