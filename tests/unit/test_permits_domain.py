"""The permit lifecycle and the application rules, as pure domain code."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.permits.domain import (
    ACTIVE, REVERSALS, SANCTIONS, TRANSITIONS, Action, Application, ApplicationRules, Closure, IllegalTransition,
    InvalidApplication, OnePermitPerPlant, OperatingStatus, Permit, PermitStatus, PlantAlreadyPermitted,
    ReapplyTooSoon, RegistryStatus, Sanction, SanctionRecommendation, normalise_address, permit_number, plant_key,
    registry_status,
)
from shared.contract import GroundCode, GroundEvidence, SanctionGround
from tests.support.permit_factories import Regions, an_application

pytestmark = pytest.mark.unit

T0 = datetime(2021, 7, 5, 8, 0, tzinfo=UTC)
TERMINAL = {PermitStatus.REJECTED, PermitStatus.REVOKED}
A_GROUND = SanctionGround(code=GroundCode.COMPANY_REQUEST, text="the company asked to stop")
MISSED = [uuid.uuid4() for _ in range(3)]
LADDER_FREEZE = SanctionRecommendation(Action.FREEZE, "ThreeWarningsInARow", "SE-3/2021",
                                       GroundEvidence(missed_periods=MISSED, warnings=MISSED))


def a_permit(**changes) -> Permit:
    permit, _ = Permit.apply(facility_id=uuid.uuid4(), nib="8120000123456", company_name="PT Baja Nusantara",
                             province_code="32", regency_code="32.16", sector_class="critical",
                             workforce_total=1200, actor="company-1", role="company", now=T0)
    return replace(permit, **changes)


# -- the lifecycle, for any sequence of actions -------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([a for a in Action if a not in REVERSALS]), max_size=20))
def test_any_sequence_of_actions_keeps_the_invariants(actions):
    """An officer's actions and the ladder's; reversals come only from objections (test_permits_objection_rules.py)."""
    permit = a_permit()
    history = []
    issued_number = None
    for step, action in enumerate(actions):
        now = T0 + timedelta(days=step)
        before = permit
        allowed_from, target = TRANSITIONS[action]
        try:
            permit, transition = permit.act(action, actor="op", role="operator", reason="r", now=now,
                                            permit_number=permit_number(2021, step + 1),
                                            ground=A_GROUND if action in SANCTIONS else None)
        except IllegalTransition as exc:
            # Refused exactly when the table says so, naming the current state, changing nothing.
            assert before.status not in allowed_from
            assert exc.current is before.status and before.status.value in str(exc)
            assert permit == before
            continue
        assert before.status in allowed_from and permit.status is target
        assert before.status not in TERMINAL  # nothing but an objection's decision leaves a final state
        assert transition.from_status is before.status and transition.to_status is permit.status
        assert (transition.ground is not None) == (action in SANCTIONS)
        history.append(transition)
        if action is Action.ISSUE:
            issued_number = permit.permit_number
    # A number is given once, at issue, and never changes afterwards.
    assert permit.permit_number == issued_number
    assert (permit.issued_at is None) == (issued_number is None)
    assert permit.freeze_count == sum(1 for t in history if t.action == "freeze")
    assert (permit.revoked_at is not None) == (permit.status is PermitStatus.REVOKED)
    # History is a chain: each transition starts where the previous one ended.
    for earlier, later in itertools.pairwise(history):
        assert later.from_status is earlier.to_status


def test_a_frozen_permit_recommended_for_freezing_again_is_refused_not_refrozen():
    # SE 3/2021: a second freeze means revocation; reports decides that and recommends revoke.
    frozen = a_permit(status=PermitStatus.FROZEN, permit_number="IOMKI-2021-000001", freeze_count=1)
    with pytest.raises(IllegalTransition) as refused:
        frozen.apply_sanction(LADDER_FREEZE, now=T0,
                              causation_id="evt-1")
    assert refused.value.current is PermitStatus.FROZEN


def test_a_sanction_is_recorded_as_the_reports_system_with_its_cause():
    issued = a_permit(status=PermitStatus.ISSUED, permit_number="IOMKI-2021-000001")
    frozen, transition = issued.apply_sanction(LADDER_FREEZE,
                                               now=T0, causation_id="evt-1")
    assert frozen.status is PermitStatus.FROZEN and frozen.freeze_count == 1
    assert (transition.actor, transition.role, transition.causation_id) == ("reports", "system", "evt-1")
    assert "ThreeWarningsInARow" in transition.reason
    # Its ground: missed reports under the ladder that judged them, resting on the periods it counted.
    assert transition.ground == SanctionGround(code=GroundCode.MISSED_REPORTS, ladder="SE-3/2021",
                                               rule="ThreeWarningsInARow",
                                               evidence=GroundEvidence(missed_periods=MISSED, warnings=MISSED))


@pytest.mark.parametrize("action", list(Action))
def test_a_sanction_names_a_ground_and_nothing_else_does(action):
    permit = a_permit(status=next(iter(TRANSITIONS[action][0])))
    # A reversal (an objection's decision) names the sanction it reverses, and no ground of its own.
    reversing = (Sanction(1, Action.FREEZE if permit.status is PermitStatus.FROZEN else Action.REVOKE,
                          PermitStatus.ISSUED, T0) if action in REVERSALS else None)
    kwargs = dict(actor="op", role="operator", reason="r", now=T0, permit_number="IOMKI-2021-000001",
                  reversing=reversing)
    with pytest.raises(ValueError, match="ground"):
        permit.act(action, **kwargs, ground=None if action in SANCTIONS else A_GROUND)
    permit.act(action, **kwargs, ground=A_GROUND if action in SANCTIONS else None)


# -- one plant, one permit ----------------------------------------------------------------------------------


def test_an_active_permit_blocks_a_second_application_for_the_same_plant():
    for status in ACTIVE:
        existing = a_permit(status=status)
        with pytest.raises(PlantAlreadyPermitted) as refused:
            OnePermitPerPlant().check([existing], now=T0)
        assert refused.value.existing is existing


def test_a_revoked_plant_may_reapply_only_fourteen_days_after_revocation():
    revoked = a_permit(status=PermitStatus.REVOKED, revoked_at=T0)
    with pytest.raises(ReapplyTooSoon) as refused:
        OnePermitPerPlant().check([revoked], now=T0 + timedelta(days=13, hours=23))
    assert "2021-07-19" in str(refused.value)
    OnePermitPerPlant().check([revoked], now=T0 + timedelta(days=14))


def test_a_rejected_application_does_not_block_and_the_plant_keeps_its_facility_id():
    rejected = a_permit(status=PermitStatus.REJECTED)
    OnePermitPerPlant().check([rejected], now=T0)
    assert OnePermitPerPlant.facility_of([rejected]) == rejected.facility_id


def test_the_same_address_written_differently_is_the_same_plant():
    assert normalise_address("  Kawasan MM2100,  Cibitung ") == normalise_address("kawasan mm2100 cibitung")
    assert plant_key("8120000123456", "Jl. Raya 5", "32.16") == plant_key("8120000123456", "JL RAYA 5.", "32.16")
    assert plant_key("8120000123456", "Jl. Raya 5", "32.16") != plant_key("8120000123456", "Jl. Raya 5", "32.17")


def test_another_company_at_the_same_address_is_another_plant():
    assert plant_key("8120000123456", "Jl. Raya 5", "32.16") != plant_key("8120000654321", "Jl. Raya 5", "32.16")


# -- application rules -------------------------------------------------------------------------------------


def errors_of(application: Application) -> dict[str, str]:
    with pytest.raises(InvalidApplication) as invalid:
        ApplicationRules(Regions()).check(application)
    return {e.field: e.message for e in invalid.value.errors}


def test_a_complete_application_passes():
    ApplicationRules(Regions()).check(an_application())
    ApplicationRules(Regions()).check(an_application(npwp="0012345678901000"))


@pytest.mark.parametrize(("changes", "field"), [
    ({"nib": "81200001234"}, "company.nib"),
    ({"npwp": "01.234.567"}, "company.npwp"),
    ({"province_code": "99"}, "facility.province_code"),
    ({"regency_code": "32.99"}, "facility.regency_code"),
    ({"regency_code": "33.16"}, "facility.regency_code"),
    ({"kbli": ["2410"]}, "kbli.0"),
    ({"kbli": []}, "kbli"),
    ({"sector_class": "vital"}, "sector_class"),
    ({"workforce_total": 0}, "workforce.total"),
    ({"on_site_per_shift": [400, 1300]}, "workforce.on_site_per_shift.1"),
    ({"health_protocol_commitment": False}, "health_protocol_commitment"),
    ({"address": " ,. "}, "facility.address"),
])
def test_each_invalid_field_is_named(changes, field):
    assert field in errors_of(an_application(**changes))


def test_a_regency_outside_its_province_says_so():
    assert "not in province 32" in errors_of(an_application(regency_code="33.16"))["facility.regency_code"]


def test_all_errors_are_reported_at_once():
    errors = errors_of(an_application(nib="1", kbli=["x"], health_protocol_commitment=False))
    assert {"company.nib", "kbli.0", "health_protocol_commitment"} <= errors.keys()


# -- what the registry answers -----------------------------------------------------------------------------


def test_registry_status_ranks_sanctions_above_closures_and_ignores_room_closures():
    closure = Closure(uuid.uuid4(), "plant", "cluster", T0, T0 + timedelta(days=5))
    room = replace(closure, scope="room")
    issued = a_permit(status=PermitStatus.ISSUED)
    assert registry_status(issued, OperatingStatus()) is RegistryStatus.VALID
    assert registry_status(issued, OperatingStatus((room,))) is RegistryStatus.VALID
    assert registry_status(issued, OperatingStatus((closure,))) is RegistryStatus.CLOSED
    assert registry_status(replace(issued, status=PermitStatus.FROZEN), OperatingStatus((closure,))) \
        is RegistryStatus.FROZEN
    assert registry_status(replace(issued, status=PermitStatus.REVOKED), OperatingStatus()) is RegistryStatus.REVOKED
    assert registry_status(issued, OperatingStatus((replace(closure, reopened_at=T0),))) is RegistryStatus.VALID
