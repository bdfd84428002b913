"""The grounds of a freeze or a revocation: a closed list, each resting on the evidence it names."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from services.permits.domain import (
    GROUND_RULES, OTHER_GROUND_MIN_TEXT, GroundFacts, InvalidGround, check_ground, counting_month,
)
from shared.contract import GroundCode, GroundEvidence, SanctionGround

pytestmark = pytest.mark.unit

REPORT = uuid.uuid4()
CLOSURE = uuid.uuid4()
EVERYTHING = GroundEvidence(report_id=REPORT, closure_id=CLOSURE, finding="BAP-32.16/2021/017")
ALL_FACTS = GroundFacts(report_declared=True, closure_of_plant=True)
NO_EVIDENCE = GroundEvidence()


def ground(code: GroundCode, evidence: GroundEvidence = NO_EVIDENCE, text: str = "x" * 40) -> SanctionGround:
    return SanctionGround(code=code, text=text, evidence=evidence)


def refused_fields(g: SanctionGround, facts: GroundFacts) -> list[str]:
    try:
        check_ground(g, facts)
    except InvalidGround as refused:
        return [e.field for e in refused.errors]
    return []


def test_every_ground_of_the_closed_list_has_its_rule():
    assert set(GROUND_RULES) == set(GroundCode)
    assert all(code is rule.code for code, rule in GROUND_RULES.items())


def test_missed_reports_are_the_ladders_alone_whatever_the_evidence():
    assert refused_fields(ground(GroundCode.MISSED_REPORTS, EVERYTHING), ALL_FACTS) == ["ground.code"]


@pytest.mark.parametrize(("evidence", "facts", "fields"), [
    (EVERYTHING, ALL_FACTS, []),
    (GroundEvidence(finding="BAP-1"), ALL_FACTS, ["ground.evidence.report_id"]),
    (GroundEvidence(report_id=REPORT), ALL_FACTS, ["ground.evidence.finding"]),
    (EVERYTHING, GroundFacts(report_declared=False, closure_of_plant=True), ["ground.evidence.report_id"]),
    (GroundEvidence(), GroundFacts(), ["ground.evidence.report_id", "ground.evidence.finding"]),
])
def test_a_false_declaration_names_a_declared_report_of_the_permit_and_the_finding(evidence, facts, fields):
    assert refused_fields(ground(GroundCode.FALSE_DECLARATION, evidence), facts) == fields


@pytest.mark.parametrize(("evidence", "fields"), [
    (GroundEvidence(finding="BAP-1"), []),
    (GroundEvidence(), ["ground.evidence.finding"]),
    (GroundEvidence(finding=""), ["ground.evidence.finding"]),
])
def test_an_inspection_finding_is_named(evidence, fields):
    assert refused_fields(ground(GroundCode.INSPECTION_FINDING, evidence), GroundFacts()) == fields


@pytest.mark.parametrize(("evidence", "facts", "fields"), [
    (GroundEvidence(closure_id=CLOSURE), GroundFacts(closure_of_plant=True), []),
    (GroundEvidence(closure_id=CLOSURE), GroundFacts(closure_of_plant=False), ["ground.evidence.closure_id"]),
    (GroundEvidence(), GroundFacts(closure_of_plant=True), ["ground.evidence.closure_id"]),
])
def test_a_closure_not_observed_names_a_closure_of_this_plant(evidence, facts, fields):
    assert refused_fields(ground(GroundCode.CLOSURE_NOT_OBSERVED, evidence), facts) == fields


def test_the_companys_own_request_needs_no_evidence():
    assert refused_fields(ground(GroundCode.COMPANY_REQUEST, text="ditutup atas permintaan"), GroundFacts()) == []


@pytest.mark.parametrize(("text", "fields"), [
    ("x" * OTHER_GROUND_MIN_TEXT, []),
    ("x" * (OTHER_GROUND_MIN_TEXT - 1), ["reason"]),
    (" " * 5 + "x" * (OTHER_GROUND_MIN_TEXT - 1) + " " * 5, ["reason"]),
    ("", ["reason"]),
])
def test_another_ground_is_stated_in_a_sentence(text, fields):
    assert refused_fields(ground(GroundCode.OTHER, text=text), GroundFacts()) == fields


@pytest.mark.parametrize(("moment", "month"), [
    (datetime(2021, 7, 31, 16, 59, 59, tzinfo=UTC), date(2021, 7, 1)),  # 23:59:59 WIB
    (datetime(2021, 7, 31, 17, 0, tzinfo=UTC), date(2021, 8, 1)),  # midnight WIB
    (datetime(2021, 12, 31, 17, 0, tzinfo=UTC), date(2022, 1, 1)),
])
def test_sanctions_count_in_the_month_of_jakarta_time(moment, month):
    assert counting_month(moment) == month
