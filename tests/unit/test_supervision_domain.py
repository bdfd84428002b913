"""The supervision service's rules: the risk score and its stored rank, the contradiction rule, the complaint
lifecycle, the references, the inspection dates and the grounds a regional office may ask on."""

from __future__ import annotations

import re
import uuid
from dataclasses import fields
from datetime import date, timedelta

import pytest

from services.supervision.domain import (
    COMPLAINT_REF_PATTERN, CONTRADICTION_WINDOW_DAYS, RISK_INPUTS, ComplaintLifecycle, ComplaintStatus,
    DeclaredReport, FindingContradictsDeclaration, IllegalTransition, Invalid, PlantRisk, RecordedInspection,
    RiskCounts, RiskScore, RiskWeights, check_inspected_on, check_planned_on, complete_findings, has_control_characters,
    inspection_reference, new_complaint_reference, request_ground,
)
from shared.contract import (
    INSPECTION_REF_PATTERN, REPORTED_PROTOCOL_ITEMS, FindingResult, GroundCode, GroundEvidence, ProtocolItem,
    SanctionGround,
)

pytestmark = pytest.mark.unit

DAY = date(2026, 11, 2)
SCORE = RiskScore()


# -- risk --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RISK_INPUTS)
def test_each_input_raises_the_score_by_its_weight(name):
    plant = PlantRisk(uuid.uuid4(), RiskCounts(), DAY)
    before = SCORE.score(plant.counts, plant.since, DAY)
    after = SCORE.score(plant.raised(**{name: 1}).counts, plant.since, DAY)
    assert after - before == getattr(RiskWeights(), name) > 0


@pytest.mark.parametrize("name", RISK_INPUTS)
def test_each_weight_is_configurable(name):
    weights = RiskWeights(**{name: 42.0})
    assert RiskScore(weights).static(RiskCounts(**{name: 2})) == 84.0


def test_every_input_has_a_weight_and_the_days_one_more():
    assert set(RISK_INPUTS) | {"per_day"} == {f.name for f in fields(RiskWeights)}


def test_each_day_without_an_inspection_adds_the_per_day_weight():
    counts = RiskCounts(missed_reports=1)
    assert SCORE.score(counts, DAY, DAY + timedelta(days=10)) == pytest.approx(5.0 + 10 * 0.1)
    assert SCORE.score(counts, DAY, DAY) == 5.0


def test_a_day_before_the_plants_own_counts_none():
    assert SCORE.score(RiskCounts(), DAY, DAY - timedelta(days=3)) == 0


def test_a_negative_weight_is_refused():
    with pytest.raises(ValueError, match="never negative"):
        RiskWeights(cases=-1)


def test_an_inspection_resets_the_counts_and_the_days():
    plant = PlantRisk(uuid.uuid4(), RiskCounts(missed_reports=3, complaints=2, clusters=1), DAY)
    inspected = plant.inspected(DAY + timedelta(days=20))
    assert inspected.counts == RiskCounts()
    assert inspected.since == inspected.last_inspected_on == DAY + timedelta(days=20)
    assert SCORE.score(inspected.counts, inspected.since, DAY + timedelta(days=20)) == 0


def test_an_inspection_recorded_late_does_not_move_the_clock_back():
    plant = PlantRisk(uuid.uuid4(), RiskCounts(cases=1), DAY, last_inspected_on=DAY)
    assert plant.inspected(DAY - timedelta(days=5)) == plant


def test_a_permit_issued_again_counts_days_from_it_only_when_never_inspected():
    never = PlantRisk(uuid.uuid4(), RiskCounts(), DAY)
    assert never.issued(DAY + timedelta(days=9)).since == DAY + timedelta(days=9)
    inspected = PlantRisk(uuid.uuid4(), RiskCounts(), DAY, last_inspected_on=DAY)
    assert inspected.issued(DAY + timedelta(days=9)).since == DAY


def test_todays_score_is_the_rank_key_plus_today():
    counts, since = RiskCounts(late_reports=2, cases=1), DAY - timedelta(days=40)
    for today in (DAY, DAY + timedelta(days=1), DAY + timedelta(days=400)):
        assert SCORE.score_of_rank(SCORE.rank_key(counts, since), today) == pytest.approx(
            SCORE.score(counts, since, today))


def test_ordering_by_rank_key_is_ordering_by_score_on_any_day():
    plants = [(RiskCounts(missed_reports=m, complaints=c, clusters=k), DAY - timedelta(days=d))
              for m, c, k, d in [(0, 0, 0, 0), (0, 0, 0, 200), (3, 0, 0, 0), (0, 2, 0, 30), (1, 1, 1, 5),
                                 (0, 0, 0, 90), (2, 0, 0, 120)]]
    by_rank = sorted(range(len(plants)), key=lambda i: SCORE.rank_key(*plants[i]), reverse=True)
    for later in (0, 1, 30, 365, 3650):
        today = DAY + timedelta(days=later)
        scores = [SCORE.score(counts, since, today) for counts, since in plants]
        assert [scores[i] for i in by_rank] == sorted(scores, reverse=True)


def test_a_plant_long_uninspected_overtakes_one_with_a_complaint_as_days_pass():
    quiet = (RiskCounts(), DAY - timedelta(days=35))  # 3.5 points of days
    complained = (RiskCounts(complaints=1), DAY)  # 4 points
    assert SCORE.rank_key(*complained) > SCORE.rank_key(*quiet)
    # The order holds on every later day too (both age alike): the rank never needs recomputing for time.
    assert SCORE.score(*complained, DAY + timedelta(days=100)) > SCORE.score(*quiet, DAY + timedelta(days=100))


# -- the contradiction rule -----------------------------------------------------------------------------------------


def _report(starts_on: date, lapses: frozenset[ProtocolItem] = frozenset()) -> DeclaredReport:
    return DeclaredReport(uuid.uuid4(), starts_on, lapses)


def test_a_violation_of_an_item_the_declared_report_answered_yes_contradicts_it():
    report = _report(DAY)
    findings = complete_findings({ProtocolItem.MASKS: FindingResult.VIOLATED})
    assert FindingContradictsDeclaration.contradicted(findings, report, DAY + timedelta(days=3)) == report.report_id


def test_a_violation_the_report_admitted_contradicts_nothing():
    report = _report(DAY, frozenset({ProtocolItem.MASKS}))
    findings = complete_findings({ProtocolItem.MASKS: FindingResult.VIOLATED})
    assert FindingContradictsDeclaration.contradicted(findings, report, DAY) is None


@pytest.mark.parametrize("item", [item for item in ProtocolItem if item not in REPORTED_PROTOCOL_ITEMS])
def test_an_item_reports_do_not_ask_about_contradicts_nothing(item):
    findings = complete_findings({item: FindingResult.VIOLATED})
    assert FindingContradictsDeclaration.contradicted(findings, _report(DAY), DAY) is None


@pytest.mark.parametrize("result", [FindingResult.MET, FindingResult.NOT_CHECKED])
def test_only_a_violation_contradicts(result):
    findings = complete_findings(dict.fromkeys(REPORTED_PROTOCOL_ITEMS, result))
    assert FindingContradictsDeclaration.contradicted(findings, _report(DAY), DAY) is None


@pytest.mark.parametrize(("days", "applies"), [(0, True), (CONTRADICTION_WINDOW_DAYS, True),
                                               (CONTRADICTION_WINDOW_DAYS + 1, False), (-1, False)])
def test_the_report_must_have_started_within_the_window_before_the_inspection(days, applies):
    report = _report(DAY)
    findings = complete_findings({ProtocolItem.DISTANCING: FindingResult.VIOLATED})
    found = FindingContradictsDeclaration.contradicted(findings, report, DAY + timedelta(days=days))
    assert (found == report.report_id) is applies


def test_no_declared_report_no_contradiction():
    findings = complete_findings({ProtocolItem.MASKS: FindingResult.VIOLATED})
    assert FindingContradictsDeclaration.contradicted(findings, None, DAY) is None


def test_findings_cover_every_item_the_missing_ones_not_checked():
    complete = complete_findings({ProtocolItem.COVID_TEAM: FindingResult.MET})
    assert list(complete) == list(ProtocolItem)
    assert complete[ProtocolItem.COVID_TEAM] is FindingResult.MET
    assert {complete[item] for item in ProtocolItem if item is not ProtocolItem.COVID_TEAM} == {
        FindingResult.NOT_CHECKED}


# -- complaints --------------------------------------------------------------------------------------------------

S = ComplaintStatus
LEGAL = {(S.UNMATCHED, S.RECEIVED), (S.UNMATCHED, S.CLOSED_UNFOUNDED), (S.RECEIVED, S.UNDER_REVIEW),
         (S.RECEIVED, S.INSPECTED), (S.RECEIVED, S.CLOSED_UNFOUNDED), (S.RECEIVED, S.CLOSED_RESOLVED),
         (S.UNDER_REVIEW, S.INSPECTED), (S.UNDER_REVIEW, S.CLOSED_UNFOUNDED), (S.UNDER_REVIEW, S.CLOSED_RESOLVED),
         (S.INSPECTED, S.CLOSED_UNFOUNDED), (S.INSPECTED, S.CLOSED_RESOLVED)}
MOVES = [(a, b) for a in S for b in S]


@pytest.mark.parametrize(("current", "to"), MOVES, ids=[f"{a.value}->{b.value}" for a, b in MOVES])
def test_the_complaint_lifecycle(current, to):
    if (current, to) in LEGAL:
        assert ComplaintLifecycle.move(current, to) is to
    else:
        with pytest.raises(IllegalTransition) as refused:
            ComplaintLifecycle.move(current, to)
        assert refused.value.current == current.value


def test_an_inspection_links_only_matched_open_complaints():
    assert {s for s in S if ComplaintLifecycle.may_link(s)} == {S.RECEIVED, S.UNDER_REVIEW}
    assert {s for s in S if s.open} == {S.RECEIVED, S.UNDER_REVIEW}


def test_a_complaint_reference_is_80_random_bits_of_crockford_base32():
    references = {new_complaint_reference() for _ in range(1000)}
    assert len(references) == 1000
    assert all(re.fullmatch(COMPLAINT_REF_PATTERN, r) for r in references)
    assert not any(set(r[4:]) & set("ILOU") for r in references)
    assert len(next(iter(references))) == 4 + 16  # 16 × 5 bits


def test_an_inspection_reference_is_the_years_sequence():
    assert inspection_reference(2026, 7) == "INSP-2026-000007"
    assert inspection_reference(2026, 12_345_678) == "INSP-2026-12345678"
    assert re.fullmatch(INSPECTION_REF_PATTERN, inspection_reference(2026, 1))


@pytest.mark.parametrize(("text", "newline_allowed", "refused"), [
    ("Pabrik tetap beroperasi", False, False), ("line\nbreak", False, True), ("line\nbreak", True, False),
    ("tab\there", True, True), ("nul\x00", True, True), ("c1\x85", True, True)])
def test_control_characters(text, newline_allowed, refused):
    assert has_control_characters(text, newline_allowed=newline_allowed) is refused


# -- inspection dates ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("offset", "valid"), [(-2, False), (-1, True), (0, True), (366, True), (367, False)])
def test_an_inspection_is_planned_from_yesterday_to_a_year_ahead(offset, valid):
    planned = DAY + timedelta(days=offset)
    if valid:
        check_planned_on(planned, DAY)
    else:
        with pytest.raises(Invalid) as refused:
            check_planned_on(planned, DAY)
        assert refused.value.field == "planned_on"


@pytest.mark.parametrize(("offset", "valid"), [(1, False), (0, True), (-30, True), (-31, False)])
def test_an_inspection_is_recorded_for_a_past_day_not_long_before_its_plan(offset, valid):
    planned = DAY
    inspected = DAY + timedelta(days=offset)
    today = DAY
    if valid:
        check_inspected_on(inspected, planned, today)
    else:
        with pytest.raises(Invalid) as refused:
            check_inspected_on(inspected, planned, today)
        assert refused.value.field == "inspected_on"


# -- sanction grounds ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [GroundCode.MISSED_REPORTS, GroundCode.CAPACITY_BREACHES])
def test_the_ladders_grounds_are_refused(code):
    with pytest.raises(Invalid) as refused:
        request_ground(SanctionGround(code=code), None)
    assert refused.value.field == "ground.code"


def test_a_ground_of_other_says_what_it_is():
    with pytest.raises(Invalid):
        request_ground(SanctionGround(code=GroundCode.OTHER, text="  "), None)
    assert request_ground(SanctionGround(code=GroundCode.OTHER, text="not an industrial company"), None).text


def test_the_inspection_fills_the_finding_and_a_false_declarations_report():
    report_id = uuid.uuid4()
    inspection = RecordedInspection("INSP-2026-000001", report_id)
    ground = request_ground(SanctionGround(code=GroundCode.FALSE_DECLARATION), inspection)
    assert ground.evidence.finding == "INSP-2026-000001"
    assert ground.evidence.report_id == report_id


def test_what_the_office_gave_stands_and_a_finding_ground_takes_no_report():
    given = uuid.uuid4()
    inspection = RecordedInspection("INSP-2026-000001", uuid.uuid4())
    ground = request_ground(SanctionGround(code=GroundCode.FALSE_DECLARATION,
                                           evidence=GroundEvidence(finding="BAP-7", report_id=given)), inspection)
    assert (ground.evidence.finding, ground.evidence.report_id) == ("BAP-7", given)
    finding = request_ground(SanctionGround(code=GroundCode.INSPECTION_FINDING), inspection)
    assert finding.evidence.report_id is None and finding.evidence.finding == "INSP-2026-000001"


def test_the_risk_tables_columns_are_the_risk_inputs_in_their_order():
    # The repository spells the columns out (its SQL is text written in the code); the domain names the inputs.
    from services.supervision.repository import RISK_COLUMNS

    assert RISK_COLUMNS == RISK_INPUTS
