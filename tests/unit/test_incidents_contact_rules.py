"""Close contacts as a line list, each with its own dates (Kepmenkes 4641/2021), and the health office's checks.

Each contact quarantines from its own last exposure: 14 days, or until a negative exit test taken on day 5 or
later; a positive test makes it a case of its own. A symptomatic case isolates from symptom onset. The health office
confirms or corrects a case and closes the follow-up of its contacts once none is left in quarantine.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from services.incidents.domain import (
    MAX_CONTACTS_PER_CASE, Actor, Case, CaseCorrection, Contact, ContactNotInQuarantine, ContactStatus,
    ContactsStillQuarantined, ContactTest, FollowUpClosed, IncidentPolicy, InvalidCase, InvalidDecision, NewCase,
    NewContact, Outcome, Plant, ContactTestKind, ContactTestResult, TimerKind, Verification, start_of_day,
)
from shared.contract import (
    CaseCorrectable, CaseSource, CaseVerdict, CaseVerified, ContactFollowUpClosed, ContactsQuarantined,
    IsolationStarted,
)
from shared.regions import WIB

pytestmark = pytest.mark.unit

POLICY = IncidentPolicy()
COMPANY = Actor("k3-officer", "company")
HEALTH_OFFICE = Actor("dinkes-bekasi", "health_office")
NOON_20_NOV = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)  # 12:00 WIB
NEGATIVE, POSITIVE = ContactTestResult.NEGATIVE, ContactTestResult.POSITIVE


def a_plant() -> Plant:
    return Plant(uuid.uuid4(), uuid.uuid4(), "8120000123456", "32", "32.16", 1200)


def noon(day: date) -> datetime:
    return NOON_20_NOV + timedelta(days=(day - date(2026, 11, 20)).days)


def exposed(day: date, entry: ContactTest | None = None) -> NewContact:
    return NewContact(day, entry)


def entered(plant: Plant, *contacts: NewContact, on: date = date(2026, 11, 20), count: int = 0,
            **facts) -> Outcome:
    new = NewCase(case_ref="C-1", confirmed_on=on, close_contacts=count, source=CaseSource.DIRECT,
                  contacts=contacts if contacts else None, **({"symptomatic": False} | facts))
    return plant.detect_case(new, unclustered=[], now=noon(on), policy=POLICY, recorded_by=COMPANY)


def case_and_contacts(*contacts: NewContact, **facts) -> tuple[Plant, Case, list[Contact]]:
    outcome = entered(a_plant(), *contacts, **facts)
    return outcome.plant, outcome.cases[0], outcome.contacts


# -- each contact its own quarantine --------------------------------------------------------------------------


def test_each_contact_quarantines_fourteen_days_from_its_own_last_exposure():
    plant, case, contacts = case_and_contacts(exposed(date(2026, 11, 19)), exposed(date(2026, 11, 12)))
    assert [(c.number, c.quarantine_ends_on, c.status) for c in contacts] == [
        (1, date(2026, 12, 3), ContactStatus.QUARANTINING), (2, date(2026, 11, 26), ContactStatus.QUARANTINING)]
    assert plant.active_quarantines == 2 and case.close_contacts == 2
    assert not any(c.exposure_assumed for c in contacts)


def test_each_contact_has_a_timer_of_its_own_at_its_first_day_out():
    outcome = entered(a_plant(), exposed(date(2026, 11, 19)), exposed(date(2026, 11, 12)))
    timers = [(t.subject_id, t.due_at) for t in outcome.timers if t.kind is TimerKind.QUARANTINE_END]
    assert timers == [(c.contact_id, start_of_day(c.quarantine_ends_on, WIB)) for c in outcome.contacts]


def test_contacts_quarantined_announces_how_many_from_the_earliest_exposure_to_the_latest_end():
    outcome = entered(a_plant(), exposed(date(2026, 11, 19)), exposed(date(2026, 11, 12)))
    [event] = [e for e in outcome.events if isinstance(e, ContactsQuarantined)]
    assert (event.contacts, event.starts_on, event.ends_on) == (2, date(2026, 11, 12), date(2026, 12, 3))


def test_a_contact_whose_fourteen_days_are_already_over_is_listed_released():
    plant, _, [contact] = case_and_contacts(exposed(date(2026, 11, 6)), on=date(2026, 11, 20), tested_on=date(
        2026, 11, 19))
    assert (contact.status, contact.left_on) == (ContactStatus.RELEASED, date(2026, 11, 20))
    assert plant.active_quarantines == 0


def test_a_positive_entry_test_is_a_case_of_its_own_not_a_quarantine():
    outcome = entered(a_plant(), exposed(date(2026, 11, 19), ContactTest(date(2026, 11, 20), POSITIVE)))
    [contact] = outcome.contacts
    assert (contact.status, contact.left_on) == (ContactStatus.TESTED_POSITIVE, date(2026, 11, 20))
    assert outcome.plant.active_quarantines == 0
    assert not [t for t in outcome.timers if t.kind is TimerKind.QUARANTINE_END]
    assert not [e for e in outcome.events if isinstance(e, ContactsQuarantined)]


def test_counted_contacts_are_listed_exposed_on_the_cases_first_day_of_isolation_until_corrected():
    _, case, contacts = case_and_contacts(count=3, tested_on=date(2026, 11, 18))
    assert [c.number for c in contacts] == [1, 2, 3]
    assert {(c.last_exposure_on, c.exposure_assumed) for c in contacts} == {(date(2026, 11, 18), True)}
    assert case.close_contacts == 3


@pytest.mark.parametrize(("exposure", "why"), [
    (date(2026, 11, 21), "after today"),
    (date(2026, 11, 5), "more than 14 days before the swab"),
])
def test_an_exposure_outside_the_trace_back_or_after_today_is_refused(exposure, why):
    with pytest.raises(InvalidCase, match=r"contacts\[0\]\.last_exposure_on"):
        entered(a_plant(), exposed(exposure), tested_on=date(2026, 11, 20))


def test_an_entry_test_before_the_exposure_is_refused():
    with pytest.raises(InvalidCase, match=r"contacts\[1\]\.entry_test\.tested_on"):
        entered(a_plant(), exposed(date(2026, 11, 18)),
                exposed(date(2026, 11, 19), ContactTest(date(2026, 11, 18), NEGATIVE)))


def test_a_case_lists_at_most_the_bound_and_never_more_than_the_workforce():
    with pytest.raises(InvalidCase, match="close_contacts"):
        entered(replace(a_plant(), workforce_total=10), count=11)
    with pytest.raises(InvalidCase, match=f"at most {MAX_CONTACTS_PER_CASE}"):
        entered(replace(a_plant(), workforce_total=100_000), count=MAX_CONTACTS_PER_CASE + 1)


# -- tests as they come -------------------------------------------------------------------------------------


def after_test(kind: ContactTestKind, on: date, result: ContactTestResult, *, exposure: date = date(2026, 11, 19),
           today: date | None = None) -> Outcome:
    plant, case, [contact] = case_and_contacts(exposed(exposure))
    return plant.record_test(case, contact, kind, ContactTest(on, result), now=noon(today or on), policy=POLICY)


def test_a_negative_exit_test_on_day_five_releases_the_contact_that_day():
    outcome = after_test(ContactTestKind.EXIT, date(2026, 11, 24), NEGATIVE)
    [contact] = outcome.contacts
    assert (contact.status, contact.left_on, contact.quarantine_ends_on) == (
        ContactStatus.RELEASED, date(2026, 11, 24), date(2026, 11, 24))
    assert outcome.plant.active_quarantines == 0
    assert outcome.cancelled_timers == [(TimerKind.QUARANTINE_END, contact.contact_id)]


def test_a_negative_exit_test_taken_later_releases_on_its_own_day():
    [contact] = after_test(ContactTestKind.EXIT, date(2026, 11, 27), NEGATIVE).contacts
    assert contact.left_on == date(2026, 11, 27)


def test_an_exit_test_before_day_five_is_refused_naming_the_first_day_it_counts():
    with pytest.raises(InvalidCase, match="tested_on.*2026-11-24"):
        after_test(ContactTestKind.EXIT, date(2026, 11, 23), NEGATIVE)


def test_a_positive_exit_test_takes_the_contact_out_of_quarantine_as_a_case():
    outcome = after_test(ContactTestKind.EXIT, date(2026, 11, 25), POSITIVE)
    [contact] = outcome.contacts
    assert (contact.status, contact.left_on) == (ContactStatus.TESTED_POSITIVE, date(2026, 11, 25))
    assert outcome.plant.active_quarantines == 0


def test_a_negative_entry_test_changes_nothing_but_the_record():
    outcome = after_test(ContactTestKind.ENTRY, date(2026, 11, 20), NEGATIVE)
    [contact] = outcome.contacts
    assert contact.status is ContactStatus.QUARANTINING and contact.quarantine_ends_on == date(2026, 12, 3)
    assert contact.entry_test == ContactTest(date(2026, 11, 20), NEGATIVE)
    assert outcome.cancelled_timers == [] and outcome.timers == []


def test_a_test_after_today_or_recorded_twice_is_refused():
    with pytest.raises(InvalidCase, match="after today"):
        after_test(ContactTestKind.ENTRY, date(2026, 11, 21), NEGATIVE, today=date(2026, 11, 20))
    plant, case, [contact] = case_and_contacts(exposed(date(2026, 11, 19), ContactTest(date(2026, 11, 20), NEGATIVE)))
    with pytest.raises(InvalidCase, match="already recorded"):
        plant.record_test(case, contact, ContactTestKind.ENTRY, ContactTest(date(2026, 11, 20), NEGATIVE),
                          now=NOON_20_NOV, policy=POLICY)


def test_a_contact_out_of_quarantine_takes_no_more_tests_or_corrections():
    plant, case, [contact] = case_and_contacts(exposed(date(2026, 11, 19)))
    outcome = plant.record_test(case, contact, ContactTestKind.EXIT, ContactTest(date(2026, 11, 24), NEGATIVE),
                                now=noon(date(2026, 11, 24)), policy=POLICY)
    [released] = outcome.contacts
    with pytest.raises(ContactNotInQuarantine) as refused:
        outcome.plant.record_test(case, released, ContactTestKind.ENTRY, ContactTest(date(2026, 11, 24), NEGATIVE),
                                  now=noon(date(2026, 11, 25)), policy=POLICY)
    assert refused.value.current == "released"
    with pytest.raises(ContactNotInQuarantine):
        outcome.plant.correct_exposure(case, released, date(2026, 11, 18), now=noon(date(2026, 11, 25)),
                                       policy=POLICY)


# -- corrections and timers ---------------------------------------------------------------------------------


def test_a_corrected_exposure_moves_the_quarantine_and_its_timer():
    plant, case, [contact] = case_and_contacts(count=1)
    outcome = plant.correct_exposure(case, contact, date(2026, 11, 17), now=NOON_20_NOV, policy=POLICY)
    [moved] = outcome.contacts
    assert (moved.last_exposure_on, moved.exposure_assumed, moved.quarantine_ends_on) == (
        date(2026, 11, 17), False, date(2026, 12, 1))
    assert outcome.cancelled_timers == [(TimerKind.QUARANTINE_END, contact.contact_id)]
    assert [t.due_at for t in outcome.timers] == [start_of_day(date(2026, 12, 1), WIB)]


def test_the_timer_releases_a_contact_on_its_day_and_a_superseded_one_does_nothing():
    plant, case, [contact] = case_and_contacts(exposed(date(2026, 11, 19)))
    stale = start_of_day(date(2026, 12, 1), WIB)
    assert plant.end_quarantine(contact, stale).contacts == []
    outcome = plant.end_quarantine(contact, start_of_day(contact.quarantine_ends_on, WIB))
    assert (outcome.contacts[0].status, outcome.contacts[0].left_on) == (ContactStatus.RELEASED, date(2026, 12, 3))
    assert outcome.plant.active_quarantines == 0
    released = outcome.contacts[0]
    assert outcome.plant.end_quarantine(released, start_of_day(released.quarantine_ends_on, WIB)).contacts == []


def test_a_case_wide_quarantine_timer_from_before_contacts_counts_down_once():
    plant = replace(a_plant(), active_quarantines=2)
    assert plant.end_quarantine(None, NOON_20_NOV).plant.active_quarantines == 1


# -- a contact becomes a case ----------------------------------------------------------------------------------


def test_a_contact_entered_as_a_case_leaves_quarantine_and_remembers_the_case():
    plant, _, [contact] = case_and_contacts(exposed(date(2026, 11, 19)))
    new_case = entered(plant, on=date(2026, 11, 22)).cases[0]
    outcome = plant.contact_became_case(contact, new_case, now=noon(date(2026, 11, 22)))
    [became] = outcome.contacts
    assert (became.status, became.left_on, became.became_case_id) == (
        ContactStatus.TESTED_POSITIVE, date(2026, 11, 22), new_case.case_id)
    assert outcome.plant.active_quarantines == 0
    with pytest.raises(InvalidCase, match="from_contact_id"):
        outcome.plant.contact_became_case(became, new_case, now=noon(date(2026, 11, 22)))


def test_a_contact_of_another_plant_cannot_become_this_plants_case():
    _, _, [contact] = case_and_contacts(exposed(date(2026, 11, 19)))
    other = a_plant()
    with pytest.raises(InvalidCase, match="from_contact_id"):
        other.contact_became_case(contact, entered(other).cases[0], now=NOON_20_NOV)


# -- symptoms ------------------------------------------------------------------------------------------------


def test_a_symptomatic_case_without_its_onset_is_refused():
    with pytest.raises(InvalidCase, match="symptom_onset_on"):
        entered(a_plant(), symptomatic=True)


def test_an_onset_for_a_case_without_symptoms_or_outside_its_window_is_refused():
    with pytest.raises(InvalidCase, match="symptom_onset_on"):
        entered(a_plant(), symptom_onset_on=date(2026, 11, 18))
    with pytest.raises(InvalidCase, match="symptom_onset_on"):
        entered(a_plant(), symptomatic=True, symptom_onset_on=date(2026, 11, 21))
    with pytest.raises(InvalidCase, match="symptom_onset_on"):
        entered(a_plant(), symptomatic=True, symptom_onset_on=date(2026, 11, 5))


def test_contacts_of_a_symptomatic_case_are_traced_back_from_its_onset():
    _, _, [contact] = case_and_contacts(exposed(date(2026, 11, 3)), symptomatic=True,
                                        symptom_onset_on=date(2026, 11, 17))
    assert contact.quarantine_ends_on == date(2026, 11, 17) and contact.status is ContactStatus.RELEASED
    with pytest.raises(InvalidCase, match="last_exposure_on"):
        entered(a_plant(), exposed(date(2026, 11, 2)), symptomatic=True, symptom_onset_on=date(2026, 11, 17))


# -- the health office ---------------------------------------------------------------------------------------


AS_ENTERED = CaseCorrection()


def verified(case_facts: dict, verdict: CaseVerdict, correction: CaseCorrection = AS_ENTERED,
             reason: str | None = None) -> tuple[Case, Outcome]:
    plant, case, _ = case_and_contacts(**case_facts)
    return case, plant.verify_case(case, verdict, correction, reason, now=NOON_20_NOV, policy=POLICY,
                                   by=HEALTH_OFFICE)


def test_the_health_office_confirms_a_case_as_entered():
    case, outcome = verified({}, CaseVerdict.CONFIRMED)
    [confirmed] = outcome.cases
    assert (confirmed.verification, confirmed.verified_by, confirmed.verified_at) == (
        Verification.CONFIRMED, HEALTH_OFFICE, NOON_20_NOV)
    assert [(e.verdict, e.corrected, e.verified_by_role) for e in outcome.events] == [
        (CaseVerdict.CONFIRMED, [], "health_office")]
    assert confirmed.isolation_ends_on == case.isolation_ends_on


def test_a_confirmation_that_carries_corrections_is_refused():
    with pytest.raises(InvalidDecision, match="corrections"):
        verified({}, CaseVerdict.CONFIRMED, CaseCorrection(tested_on=date(2026, 11, 19)))


def test_a_corrected_onset_re_times_the_isolation():
    case, outcome = verified({"symptomatic": True, "symptom_onset_on": date(2026, 11, 20)}, CaseVerdict.CORRECTED,
                             CaseCorrection(symptom_onset_on=date(2026, 11, 16)), "onset per Puskesmas record")
    [corrected] = outcome.cases
    assert (corrected.isolation_starts_on, corrected.isolation_ends_on) == (date(2026, 11, 16), date(2026, 11, 29))
    assert [type(e) for e in outcome.events] == [CaseVerified, IsolationStarted]
    assert outcome.events[0].corrected == [CaseCorrectable.SYMPTOM_ONSET_ON]
    assert outcome.cancelled_timers == [(TimerKind.ISOLATION_END, case.case_id)]
    assert [t.due_at for t in outcome.timers] == [start_of_day(date(2026, 11, 29), WIB)]


def test_a_case_found_without_symptoms_loses_its_onset_and_isolates_from_the_swab():
    _, outcome = verified({"symptomatic": True, "symptom_onset_on": date(2026, 11, 18), "tested_on": date(
        2026, 11, 19)}, CaseVerdict.CORRECTED, CaseCorrection(symptomatic=False), "no symptoms on examination")
    [corrected] = outcome.cases
    assert (corrected.symptomatic, corrected.symptom_onset_on, corrected.isolation_starts_on) == (
        False, None, date(2026, 11, 19))
    assert outcome.events[0].corrected == [CaseCorrectable.SYMPTOMATIC, CaseCorrectable.SYMPTOM_ONSET_ON]


def test_a_correction_that_leaves_the_isolation_as_it_was_sets_no_new_timer():
    _, outcome = verified({"tested_on": date(2026, 11, 19)}, CaseVerdict.CORRECTED,
                          CaseCorrection(confirmed_on=date(2026, 11, 19)), "lab date")
    assert [type(e) for e in outcome.events] == [CaseVerified]
    assert outcome.timers == [] and outcome.cancelled_timers == []


@pytest.mark.parametrize(("correction", "reason", "field"), [
    (CaseCorrection(tested_on=date(2026, 11, 18)), None, "reason"),
    (CaseCorrection(tested_on=date(2026, 11, 18)), "  ", "reason"),
    (CaseCorrection(), "nothing", "corrections"),
    (CaseCorrection(symptomatic=False), "same as entered", "corrections"),
])
def test_a_correction_says_why_and_changes_something(correction, reason, field):
    with pytest.raises(InvalidDecision, match=field):
        verified({}, CaseVerdict.CORRECTED, correction, reason)


def test_a_correction_is_checked_as_an_entry_is():
    with pytest.raises(InvalidCase, match="symptom_onset_on"):
        verified({}, CaseVerdict.CORRECTED, CaseCorrection(symptomatic=True), "fever found")
    with pytest.raises(InvalidCase, match="confirmed_on"):
        verified({}, CaseVerdict.CORRECTED, CaseCorrection(confirmed_on=date(2026, 11, 22)), "typo")


def test_follow_up_closes_only_once_no_contact_is_in_quarantine():
    plant, case, contacts = case_and_contacts(exposed(date(2026, 11, 19)), exposed(date(2026, 11, 18)))
    with pytest.raises(ContactsStillQuarantined) as refused:
        plant.close_follow_up(case, contacts, now=NOON_20_NOV, by=HEALTH_OFFICE)
    assert (refused.value.quarantining, refused.value.last_ends_on) == (2, date(2026, 12, 3))
    released = replace(contacts[0], status=ContactStatus.RELEASED, left_on=date(2026, 12, 3))
    positive = replace(contacts[1], status=ContactStatus.TESTED_POSITIVE, left_on=date(2026, 11, 22))
    outcome = plant.close_follow_up(case, [released, positive], now=noon(date(2026, 12, 3)), by=HEALTH_OFFICE)
    [closed] = outcome.cases
    assert (closed.follow_up_closed_at, closed.follow_up_closed_by) == (noon(date(2026, 12, 3)), HEALTH_OFFICE)
    [event] = outcome.events
    assert isinstance(event, ContactFollowUpClosed)
    assert (event.contacts, event.released, event.tested_positive) == (2, 1, 1)


def test_a_closed_follow_up_takes_no_more_contacts_or_tests():
    plant, case, _ = case_and_contacts()
    closed = plant.close_follow_up(case, [], now=NOON_20_NOV, by=HEALTH_OFFICE).cases[0]
    with pytest.raises(FollowUpClosed):
        plant.add_contacts(closed, [exposed(date(2026, 11, 19))], now=NOON_20_NOV, policy=POLICY, by=COMPANY)
    with pytest.raises(FollowUpClosed):
        plant.close_follow_up(closed, [], now=NOON_20_NOV, by=HEALTH_OFFICE)


def test_contacts_added_later_are_numbered_after_those_listed():
    plant, case, _ = case_and_contacts(exposed(date(2026, 11, 19)))
    outcome = plant.add_contacts(case, [exposed(date(2026, 11, 18)), exposed(date(2026, 11, 20))],
                                 now=NOON_20_NOV, policy=POLICY, by=COMPANY)
    assert [c.number for c in outcome.contacts] == [2, 3]
    assert outcome.cases[0].close_contacts == 3 and outcome.plant.active_quarantines == 3
    with pytest.raises(InvalidCase, match="at most"):
        plant.add_contacts(replace(case, close_contacts=MAX_CONTACTS_PER_CASE), [exposed(date(2026, 11, 19))],
                           now=NOON_20_NOV, policy=POLICY, by=COMPANY)
