"""Industrial estates and the regional offices' sanction requests, in the permits domain: a plant's claim to lie in an
estate (its state machine), and a request's intake and decision."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.permits.domain import (
    ESTATE_KBLI, Action, ApplicationRules, EstateNotOperating, GroundFacts, IllegalTenancyMove, IllegalTransition,
    Permit, PermitStatus, PlantInAnotherEstate, SanctionRequest, SanctionRequestAlreadyDecided,
    SanctionRequestStatus, Tenancy, TenancyDecision, TenancyStatus, TextMissing, estate_claim_errors,
)
from shared.contract import (
    GroundCode, GroundEvidence, PermitKind, RequestDecision, SanctionAction, SanctionGround, TenancyEndCause,
)
from tests.support.permit_factories import Regions, an_application

pytestmark = pytest.mark.unit

NOW = datetime(2021, 7, 12, 3, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=5)


def a_permit(kind: PermitKind = PermitKind.PLANT, status: PermitStatus = PermitStatus.ISSUED, *,
             regency: str = "32.16", nib: str = "8120000123456") -> Permit:
    return Permit(uuid.uuid4(), uuid.uuid4(), nib, "PT Kawasan", "32", regency, "non_essential", 40, status,
                  permit_number="IOMKI-2021-000042", kind=kind)


ESTATE = a_permit(PermitKind.ESTATE, nib="8120000999888")
PLANT = a_permit()


def claim(estate: Permit = ESTATE, plant: Permit = PLANT) -> Tenancy:
    return Tenancy.claim(estate, plant, actor="k3-admin", now=NOW)


# -- applications ---------------------------------------------------------------------------------------------


def fields(application) -> list[str]:
    return [e.field for e in ApplicationRules(Regions()).errors(application)]


def test_an_estate_applies_with_the_estates_kbli_code_first():
    assert fields(an_application(kind=PermitKind.ESTATE, kbli=[ESTATE_KBLI])) == []
    assert fields(an_application(kind=PermitKind.ESTATE, kbli=["24101", ESTATE_KBLI])) == ["kbli.0"]


def test_an_estate_lies_in_no_other_estate_and_a_plant_names_its_estate_by_a_permit_number():
    assert fields(an_application(kind=PermitKind.ESTATE, kbli=[ESTATE_KBLI],
                                 estate_permit_number="IOMKI-2021-000001")) == ["facility.estate_permit_number"]
    assert fields(an_application(estate_permit_number="IOMKI-2021-000001")) == []
    assert fields(an_application(estate_permit_number="KI-JABABEKA")) == ["facility.estate_permit_number"]


@pytest.mark.parametrize(("estate", "says"), [
    (None, "no industrial estate"),
    (a_permit(), "no industrial estate"),  # a plant's permit is no estate's
    (a_permit(PermitKind.ESTATE, PermitStatus.SUBMITTED), "SUBMITTED, not ISSUED"),
    (a_permit(PermitKind.ESTATE, PermitStatus.FROZEN), "FROZEN, not ISSUED"),
    (a_permit(PermitKind.ESTATE, regency="32.15"), "regency 32.15"),
])
def test_a_plants_claim_names_an_issued_estate_in_its_own_regency(estate, says):
    errors = list(estate_claim_errors(an_application(estate_permit_number="IOMKI-2021-000042"), estate))
    assert [e.field for e in errors] == ["facility.estate_permit_number"]
    assert says in errors[0].message


def test_an_issued_estate_in_the_plants_regency_takes_its_claim():
    assert list(estate_claim_errors(an_application(estate_permit_number="IOMKI-2021-000042"), ESTATE)) == []


# -- tenancies --------------------------------------------------------------------------------------------------


def test_a_claim_is_pending_until_the_estate_confirms_it_with_who_when_and_why():
    pending = claim()
    assert pending.status is TenancyStatus.PENDING and pending.tenant_facility_id == PLANT.facility_id
    confirmed = pending.decide(TenancyDecision.CONFIRM, ESTATE, other=None, reason="di Blok A", actor="estate-admin",
                               role="estate", now=LATER)
    assert (confirmed.status, confirmed.decided_by, confirmed.decided_role, confirmed.decided_at,
            confirmed.decision_reason) == (TenancyStatus.CONFIRMED, "estate-admin", "estate", LATER, "di Blok A")


def test_the_estate_may_decline_a_claim():
    declined = claim().decide(TenancyDecision.DECLINE, ESTATE, other=None, reason="bukan penyewa", actor="a",
                              role="estate", now=LATER)
    assert declined.status is TenancyStatus.DECLINED


@pytest.mark.parametrize("decision", list(TenancyDecision))
def test_a_claim_is_answered_once(decision):
    answered = claim().decide(TenancyDecision.DECLINE, ESTATE, other=None, reason="r", actor="a", role="estate",
                              now=LATER)
    with pytest.raises(IllegalTenancyMove, match="that is declined"):
        answered.decide(decision, ESTATE, other=None, reason="r", actor="a", role="estate", now=LATER)


def test_an_answer_states_its_reasons():
    with pytest.raises(TextMissing):
        claim().decide(TenancyDecision.CONFIRM, ESTATE, other=None, reason=" .. ", actor="a", role="estate", now=LATER)


def test_an_estate_whose_permit_is_revoked_confirms_no_tenant_but_may_decline():
    revoked = replace(ESTATE, status=PermitStatus.REVOKED)
    with pytest.raises(EstateNotOperating):
        claim().decide(TenancyDecision.CONFIRM, revoked, other=None, reason="r", actor="a", role="estate", now=LATER)
    assert claim().decide(TenancyDecision.DECLINE, revoked, other=None, reason="r", actor="a", role="estate",
                          now=LATER).status is TenancyStatus.DECLINED


def test_a_plant_lies_in_one_estate_at_a_time():
    elsewhere = replace(claim(a_permit(PermitKind.ESTATE)), status=TenancyStatus.CONFIRMED,
                        tenant_permit_id=uuid.uuid4())
    with pytest.raises(PlantInAnotherEstate):
        claim().decide(TenancyDecision.CONFIRM, ESTATE, other=elsewhere, reason="r", actor="a", role="estate",
                       now=LATER)


@pytest.mark.parametrize("cause", list(TenancyEndCause))
def test_a_confirmed_tenancy_ends_released_with_its_cause(cause):
    confirmed = claim().decide(TenancyDecision.CONFIRM, ESTATE, other=None, reason="r", actor="a", role="estate",
                               now=NOW)
    ended = confirmed.end(cause, reason="pindah lokasi", actor="b", role="operator", now=LATER)
    assert (ended.status, ended.end_cause, ended.ended_by, ended.ended_role, ended.ended_at, ended.end_reason) == (
        TenancyStatus.RELEASED, cause, "b", "operator", LATER, "pindah lokasi")
    with pytest.raises(IllegalTenancyMove, match="that is released"):
        ended.end(cause, reason="again", actor="b", role="operator", now=LATER)


@pytest.mark.parametrize("status", [TenancyStatus.PENDING, TenancyStatus.DECLINED])
def test_only_a_confirmed_tenancy_is_released(status):
    with pytest.raises(IllegalTenancyMove, match=f"that is {status.value}"):
        replace(claim(), status=status).end(TenancyEndCause.RELEASED, reason="r", actor="a", role="estate", now=LATER)


# -- sanction requests ------------------------------------------------------------------------------------------


REPORT = uuid.uuid4()
NO_FACTS = GroundFacts()


def receive(permit: Permit = PLANT, *, action: SanctionAction = SanctionAction.FREEZE,
            ground: SanctionGround | None = None, facts: GroundFacts = NO_FACTS) -> SanctionRequest:
    return SanctionRequest.receive(
        request_id=uuid.uuid4(), permit=permit, action=action,
        ground=ground or SanctionGround(code=GroundCode.INSPECTION_FINDING,
                                        evidence=GroundEvidence(finding="INSP-2021-000017")),
        reason="Masker tidak dipakai di lini produksi", office_region="32.16", inspection_id=uuid.uuid4(),
        requested_at=NOW, facts=facts, now=LATER)


def test_a_request_resting_on_its_evidence_waits_for_an_operator_and_quotes_the_offices_words():
    request = receive()
    assert request.pending and request.decision is None and request.received_at == LATER
    assert request.ground.text == "Masker tidak dipakai di lini produksi"


def test_a_false_declaration_must_name_a_declared_report_of_the_permit():
    ground = SanctionGround(code=GroundCode.FALSE_DECLARATION,
                            evidence=GroundEvidence(report_id=REPORT, finding="INSP-2021-000017"))
    refused = receive(ground=ground)
    assert refused.status is SanctionRequestStatus.DECLINED and refused.decision is RequestDecision.DECLINED
    assert "ground.evidence.report_id" in (refused.decision_reason or "")
    assert (refused.decided_role, refused.decided_at) == ("system", LATER)
    assert receive(ground=ground, facts=GroundFacts(report_declared=True)).pending


def test_missed_reports_are_the_ladders_not_an_offices():
    assert not receive(ground=SanctionGround(code=GroundCode.MISSED_REPORTS)).pending


@pytest.mark.parametrize(("status", "action"), [
    (PermitStatus.REVOKED, SanctionAction.FREEZE), (PermitStatus.REVOKED, SanctionAction.REVOKE),
    (PermitStatus.FROZEN, SanctionAction.FREEZE), (PermitStatus.SUBMITTED, SanctionAction.REVOKE),
])
def test_a_permit_that_cannot_take_the_action_declines_the_request_naming_its_state(status, action):
    refused = receive(replace(PLANT, status=status), action=action)
    assert refused.status is SanctionRequestStatus.DECLINED
    assert f"The permit is {status.value}" in (refused.decision_reason or "")


def test_a_frozen_permit_may_be_asked_to_be_revoked():
    assert receive(replace(PLANT, status=PermitStatus.FROZEN), action=SanctionAction.REVOKE).pending


def test_approving_sanctions_the_permit_on_the_requests_ground_naming_the_request_and_its_office():
    request = receive()
    decided, change = request.decide(RequestDecision.APPROVED, PLANT, reason="terbukti", actor="officer-ani",
                                     role="operator", now=LATER, causation_id="req-1")
    assert decided.status is SanctionRequestStatus.APPROVED and change is not None
    permit, transition = change
    assert permit.status is PermitStatus.FROZEN and permit.freeze_count == 1
    assert transition.ground == request.ground and transition.action == Action.FREEZE.value
    assert str(request.request_id) in transition.reason and "32.16" in transition.reason
    assert (transition.actor, transition.causation_id) == ("officer-ani", "req-1")


def test_declining_changes_nothing():
    decided, change = receive().decide(RequestDecision.DECLINED, PLANT, reason="bukti kurang", actor="o",
                                       role="operator", now=LATER)
    assert decided.status is SanctionRequestStatus.DECLINED and change is None
    assert decided.decision_reason == "bukti kurang"


def test_a_request_is_decided_once():
    decided, _ = receive().decide(RequestDecision.DECLINED, PLANT, reason="r", actor="o", role="operator", now=LATER)
    with pytest.raises(SanctionRequestAlreadyDecided):
        decided.decide(RequestDecision.APPROVED, PLANT, reason="r", actor="o", role="operator", now=LATER)


def test_a_permit_that_moved_meanwhile_refuses_the_approval():
    request = receive()
    with pytest.raises(IllegalTransition) as refused:
        request.decide(RequestDecision.APPROVED, replace(PLANT, status=PermitStatus.REVOKED), reason="r", actor="o",
                       role="operator", now=LATER)
    assert refused.value.current is PermitStatus.REVOKED
