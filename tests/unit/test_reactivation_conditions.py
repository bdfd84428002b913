"""Reactivation on conditions, as pure domain code: each condition met and unmet at its boundary, a request filed
only when all are met and refused naming each one that is not, and the operator's decision taken once."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.permits.domain import (
    CORRECTIVE_ACTION_MIN_CHARACTERS, REACTIVATION_CONDITIONS, Action, CorrectiveActionStated, Decision,
    IllegalTransition, MissedReportsFiled, OneOpenRequestAtATime, Permit, PermitIsFrozen, PermitStatus,
    ReactivationFacts, ReactivationRefused, ReactivationRequest, RequestAlreadyDecided, RequestForAnotherFreeze,
    RequestStatus, missed_periods_of, reactivation_outlook,
)
from shared.contract import GroundCode, GroundEvidence, SanctionGround

pytestmark = pytest.mark.unit

T0 = datetime(2021, 7, 5, 8, 0, tzinfo=UTC)
STATEMENT = ("Kami menunjuk petugas K3 khusus pelaporan dan memasang pengingat setiap Selasa dan Jumat pukul 17.00 "
             "agar laporan IOMKI tidak terlewat lagi.")
MISSED = (uuid.uuid4(), uuid.uuid4(), uuid.uuid4())


def a_frozen_permit(**changes) -> Permit:
    permit, _ = Permit.apply(facility_id=uuid.uuid4(), nib="8120000123456", company_name="PT Baja Nusantara",
                             province_code="32", regency_code="32.16", sector_class="critical",
                             workforce_total=1200, actor="company-1", role="company", now=T0)
    permit, _ = permit.act(Action.ISSUE, actor="op", role="operator", reason="ok", now=T0,
                           permit_number="IOMKI-2021-000001")
    permit, _ = permit.act(Action.FREEZE, actor="reports", role="system", reason="three warnings", now=T0,
                           ground=ground(GroundCode.MISSED_REPORTS))
    return replace(permit, **changes)


def facts(**changes) -> ReactivationFacts:
    base = ReactivationFacts(a_frozen_permit(), MISSED, frozenset(MISSED), STATEMENT, None)
    return replace(base, **changes)


def ground(code: GroundCode, periods: tuple[uuid.UUID, ...] = MISSED) -> SanctionGround:
    return SanctionGround(code=code, ladder="SE-3/2021" if code is GroundCode.MISSED_REPORTS else None,
                          text="lain-lain" if code is GroundCode.OTHER else None,
                          evidence=GroundEvidence(missed_periods=list(periods)))


# -- which periods a freeze rests on -----------------------------------------------------------------------------


def test_a_freeze_for_missed_reports_rests_on_its_evidence_in_order_each_once():
    assert missed_periods_of(ground(GroundCode.MISSED_REPORTS)) == MISSED
    twice = (MISSED[0], MISSED[1], MISSED[0])
    assert missed_periods_of(ground(GroundCode.MISSED_REPORTS, twice)) == MISSED[:2]


@pytest.mark.parametrize("code", [code for code in GroundCode if code is not GroundCode.MISSED_REPORTS])
def test_a_freeze_on_any_other_ground_rests_on_no_missed_period(code):
    # Even should its evidence list periods: only the ladder's ground is about reports owed.
    assert missed_periods_of(ground(code)) == ()


def test_a_freeze_without_a_ground_rests_on_no_missed_period():
    assert missed_periods_of(None) == ()


# -- PermitIsFrozen ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(PermitStatus))
def test_only_a_frozen_permit_meets_permit_is_frozen(status):
    check = PermitIsFrozen().check(facts(permit=a_frozen_permit(status=status)))
    assert check.condition == "PermitIsFrozen"
    assert check.met is (status is PermitStatus.FROZEN)


# -- MissedReportsFiled ------------------------------------------------------------------------------------------


def test_every_missed_period_filed_meets_it():
    assert MissedReportsFiled().check(facts()).met


def test_one_missed_period_without_a_report_is_named():
    check = MissedReportsFiled().check(facts(filed_periods=frozenset(MISSED[:2])))
    assert not check.met and check.missing_periods == (MISSED[2],)
    assert check.message.startswith("Laporan untuk 1 periode yang terlewat belum disampaikan")
    assert " / The reports of 1 missed period(s) have not been filed" in check.message


def test_none_filed_names_them_all_in_the_freezes_order():
    check = MissedReportsFiled().check(facts(filed_periods=frozenset()))
    assert not check.met and check.missing_periods == MISSED


def test_reports_for_other_periods_do_not_count():
    check = MissedReportsFiled().check(facts(filed_periods=frozenset({uuid.uuid4(), MISSED[0]})))
    assert check.missing_periods == MISSED[1:]


def test_a_freeze_resting_on_no_missed_period_meets_it_trivially():
    check = MissedReportsFiled().check(facts(missed_periods=(), filed_periods=frozenset()))
    assert check.met and check.missing_periods == ()


# -- CorrectiveActionStated --------------------------------------------------------------------------------------


def test_the_minimum_is_thirty_letters_or_digits():
    assert CORRECTIVE_ACTION_MIN_CHARACTERS == 30


@pytest.mark.parametrize(("statement", "met"), [
    ("a" * 30, True),
    ("a" * 29, False),
    ("K3 " * 15, True),  # 30 letters and digits among the spaces
    ("K3 " * 14 + "K", False),  # 29
    ("", False),
    (" " * 4000, False),
    ("." * 100 + "a" * 29, False),  # punctuation is not a statement
    ("\n".join(["laporan"] * 5), True),  # 35 letters across lines
])
def test_only_letters_and_digits_count_towards_the_statement(statement, met):
    check = CorrectiveActionStated().check(facts(corrective_action=statement))
    assert check.met is met
    assert check.message.startswith("Pernyataan tindakan perbaikan wajib diisi, sekurang-kurangnya 30 huruf")


def test_the_minimum_is_configurable():
    assert CorrectiveActionStated(min_characters=5).check(facts(corrective_action="a b c d e")).met
    assert not CorrectiveActionStated(min_characters=6).check(facts(corrective_action="a b c d e")).met


# -- OneOpenRequestAtATime ---------------------------------------------------------------------------------------


def test_a_request_awaiting_its_decision_is_named():
    waiting = uuid.uuid4()
    check = OneOpenRequestAtATime().check(facts(open_request=waiting))
    assert not check.met and check.open_request == waiting
    assert OneOpenRequestAtATime().check(facts()).met


# -- filing ------------------------------------------------------------------------------------------------------


def test_the_conditions_in_their_order():
    assert [c.name for c in REACTIVATION_CONDITIONS] == ["PermitIsFrozen", "MissedReportsFiled",
                                                         "CorrectiveActionStated", "OneOpenRequestAtATime"]


def test_a_request_meeting_every_condition_is_filed_pending_with_the_freezes_periods():
    request = ReactivationRequest.file(facts(corrective_action=f"  {STATEMENT}\n"), actor="k3-admin", now=T0)
    assert request.status is RequestStatus.PENDING and request.pending
    assert request.missed_periods == MISSED and request.freeze_count == 1
    assert request.corrective_action == STATEMENT  # stripped
    assert [(c.condition, c.met) for c in request.conditions] == [
        ("PermitIsFrozen", True), ("MissedReportsFiled", True), ("CorrectiveActionStated", True),
        ("OneOpenRequestAtATime", True)]
    assert (request.requested_by, request.requested_at, request.decided_at) == ("k3-admin", T0, None)


def test_a_refusal_names_every_unmet_condition_in_order():
    with pytest.raises(ReactivationRefused) as refused:
        ReactivationRequest.file(facts(permit=a_frozen_permit(status=PermitStatus.ISSUED),
                                       filed_periods=frozenset(), corrective_action="ok",
                                       open_request=uuid.uuid4()), actor="k3-admin", now=T0)
    assert [c.condition for c in refused.value.unmet] == [c.name for c in REACTIVATION_CONDITIONS]
    assert not refused.value.about_the_request_only
    assert str(refused.value).startswith("Izin tidak sedang dibekukan")


def test_a_statement_too_short_alone_is_about_the_request_only():
    with pytest.raises(ReactivationRefused) as refused:
        ReactivationRequest.file(facts(corrective_action="akan lebih baik"), actor="k3-admin", now=T0)
    assert [c.condition for c in refused.value.unmet] == ["CorrectiveActionStated"]
    assert refused.value.about_the_request_only


@pytest.mark.parametrize("changes", [
    {"permit": a_frozen_permit(status=PermitStatus.REVOKED)},
    {"filed_periods": frozenset(MISSED[1:])},
    {"open_request": uuid.uuid4()},
])
def test_a_condition_about_the_permit_makes_the_refusal_a_conflict(changes):
    with pytest.raises(ReactivationRefused) as refused:
        ReactivationRequest.file(facts(**changes), actor="k3-admin", now=T0)
    assert len(refused.value.unmet) == 1 and not refused.value.about_the_request_only


def test_the_outlook_leaves_the_statement_to_the_request():
    outlook = reactivation_outlook(facts(corrective_action="", filed_periods=frozenset()))
    assert [(c.condition, c.met) for c in outlook] == [("PermitIsFrozen", True), ("MissedReportsFiled", False),
                                                        ("OneOpenRequestAtATime", True)]


# -- the operator's decision -------------------------------------------------------------------------------------


def a_request(permit: Permit | None = None) -> tuple[ReactivationRequest, Permit]:
    permit = permit or a_frozen_permit()
    return ReactivationRequest.file(facts(permit=permit), actor="k3-admin", now=T0), permit


def test_approving_reactivates_the_permit_through_its_lifecycle():
    request, permit = a_request()
    later = T0 + timedelta(days=2)
    decided, change = request.decide(Decision.APPROVE, permit, reason="laporan lengkap", actor="officer-ani",
                                     role="operator", now=later, causation_id="req-1")
    assert decided.status is RequestStatus.APPROVED
    assert (decided.decided_by, decided.decided_role, decided.decided_at, decided.decision_reason) == (
        "officer-ani", "operator", later, "laporan lengkap")
    assert change is not None
    reactivated, transition = change
    assert reactivated.status is PermitStatus.ISSUED and reactivated.freeze_count == 1
    assert (transition.from_status, transition.to_status, transition.action) == (
        PermitStatus.FROZEN, PermitStatus.ISSUED, "reactivate")
    assert (transition.actor, transition.role, transition.at, transition.causation_id) == (
        "officer-ani", "operator", later, "req-1")
    assert str(request.request_id) in transition.reason and transition.reason.endswith("laporan lengkap")


def test_rejecting_leaves_the_permit_frozen():
    request, permit = a_request()
    decided, change = request.decide(Decision.REJECT, permit, reason="laporan tidak benar", actor="officer-ani",
                                     role="operator", now=T0)
    assert decided.status is RequestStatus.REJECTED and decided.decision_reason == "laporan tidak benar"
    assert change is None


@pytest.mark.parametrize("decision", list(Decision))
@pytest.mark.parametrize("first", list(Decision))
def test_a_request_is_decided_once(first, decision):
    request, permit = a_request()
    decided, _ = request.decide(first, permit, reason="r", actor="officer-ani", role="operator", now=T0)
    with pytest.raises(RequestAlreadyDecided):
        decided.decide(decision, permit, reason="r", actor="officer-budi", role="operator", now=T0)


@pytest.mark.parametrize("status", [PermitStatus.ISSUED, PermitStatus.REVOKED])
def test_approving_a_request_whose_permit_left_the_freeze_is_illegal(status):
    request, permit = a_request()
    with pytest.raises(IllegalTransition):
        request.decide(Decision.APPROVE, replace(permit, status=status), reason="r", actor="officer-ani",
                       role="operator", now=T0)
    # It can still be rejected.
    decided, change = request.decide(Decision.REJECT, replace(permit, status=status), reason="r",
                                     actor="officer-ani", role="operator", now=T0)
    assert decided.status is RequestStatus.REJECTED and change is None


def test_approving_a_request_for_an_earlier_freeze_is_refused():
    request, permit = a_request()
    refrozen = replace(permit, freeze_count=permit.freeze_count + 1)
    with pytest.raises(RequestForAnotherFreeze):
        request.decide(Decision.APPROVE, refrozen, reason="r", actor="officer-ani", role="operator", now=T0)
