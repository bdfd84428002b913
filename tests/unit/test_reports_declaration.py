"""The declaration of truth (SE 5/2021): which regimes require a company to declare its report's data true, and
what a report with or without the declaration meets."""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from services.reports import domain
from services.reports.app import REGIMES_FILE
from services.reports.domain import (
    DeclarationOfTruth, InconsistentReport, InvalidRegime, ObligationEnded, PeriodClosed, PeriodStatus, RegimeTimeline,
    ReportFigures, Schedule, Timing, UndeclaredReport, parse_regime,
)

pytestmark = pytest.mark.unit

SHIPPED = RegimeTimeline(domain.timeline_from_toml(tomllib.loads(REGIMES_FILE.read_text(encoding="utf-8"))))
# Friday 17 September 2021, 10:00 in Bekasi: SE 5/2021 is in force.
OPENED = datetime(2021, 9, 17, 3, tzinfo=UTC)


def plant(**changes) -> Schedule:
    return replace(Schedule(uuid.uuid4(), uuid.uuid4(), "8120000123456", "32", "32.16", "Asia/Jakarta",
                            datetime(2021, 9, 1, tzinfo=UTC)), **changes)


def figures(**changes) -> ReportFigures:
    return replace(ReportFigures(1200, (380, 390, 290), 3, 1, 0, 12, 40, 1100, 950, 300, ""), **changes)


def declaration_for(timeline: RegimeTimeline, regime_name: str) -> DeclarationOfTruth:
    """As the service asks: the stored regime the period opened under states it, or it is not stored (None)."""
    entry = timeline.named(regime_name)
    return DeclarationOfTruth.of_regime(entry.declaration if entry else None)


def period_under(timeline: RegimeTimeline, starts_at: datetime = OPENED, schedule: Schedule | None = None):
    return domain.open_period(schedule or plant(), timeline, starts_at=starts_at, seq=1, timing=Timing())


# -- which regimes require it ------------------------------------------------------------------------------------


def test_of_the_shipped_circulars_only_se_5_2021_requires_the_declaration():
    assert [(e.name, e.declaration) for e in SHIPPED.entries] == [
        ("SE-8/2020", False), ("SE-3/2021", False), ("SE-5/2021", True)]
    assert [declaration_for(SHIPPED, e.name).required for e in SHIPPED.entries] == [False, False, True]


def test_iomki_report_regime_requires_it_as_the_regime_in_force_today_does():
    configured = domain.configured_timeline(parse_regime("every:5s"))
    period = period_under(configured)
    assert period.regime_name == domain.CONFIGURED_REGIME
    assert declaration_for(configured, period.regime_name).required


def test_a_regime_the_timeline_does_not_hold_requires_it_as_the_latest_circular_does():
    assert declaration_for(SHIPPED, "configured").required
    assert declaration_for(SHIPPED, "").required
    assert DeclarationOfTruth.of_regime(None).required
    assert DeclarationOfTruth.of_regime(True).required
    assert not DeclarationOfTruth.of_regime(False).required


def test_an_operators_regime_requires_it_unless_it_says_otherwise():
    asked = dict(name="SE-2/2027", source="SE Menperin 2/2027", effective_on=date(2027, 1, 4),
                 rule="weekly:MON@12:00", ladder="SE-5/2021", now=datetime(2026, 12, 6, 12, tzinfo=UTC))
    assert domain.scheduled_entry(SHIPPED, **asked).declaration is True
    assert domain.scheduled_entry(SHIPPED, **asked, declaration=False).declaration is False


@pytest.mark.parametrize("declaration", ["", 'declaration = "yes"\n', "declaration = 1\n"])
def test_a_shipped_regime_states_true_or_false(declaration):
    document = ('[[regime]]\nname = "a"\nsource = "s"\neffective_on = 2020-01-01\nrule = "weekly:SAT@23:59"\n'
                f'ladder = "SE-8/2020"\n{declaration}')
    with pytest.raises(InvalidRegime):
        domain.timeline_from_toml(tomllib.loads(document))
    assert domain.timeline_from_toml(tomllib.loads(document.replace(declaration, "") + "declaration = true\n"))


# -- a report with or without it ---------------------------------------------------------------------------------

# Under SE 8/2020 (June 2021), SE 3/2021 (August 2021) and SE 5/2021 (September 2021), in Bekasi.
UNDER = {"SE-8/2020": datetime(2021, 6, 1, 3, tzinfo=UTC), "SE-3/2021": datetime(2021, 8, 3, 3, tzinfo=UTC),
         "SE-5/2021": OPENED}


@pytest.mark.parametrize("regime, required", [("SE-8/2020", False), ("SE-3/2021", False), ("SE-5/2021", True)])
@pytest.mark.parametrize("declared", [True, False, None])  # None: the field left out of the body
def test_a_report_is_refused_without_the_declaration_only_where_its_regime_requires_it(regime, required, declared):
    # A plant in Bekasi reports for a period opened under each circular, declaring its data true or not.
    period = period_under(SHIPPED, UNDER[regime])
    assert period.regime_name == regime
    rule = declaration_for(SHIPPED, period.regime_name)
    asked = {} if declared is None else {"declared": declared}
    if required and not declared:
        with pytest.raises(UndeclaredReport) as refused:
            domain.submit(plant(), period, figures(), now=period.starts_at, declaration=rule, **asked)
        assert refused.value.FIELD == "declared_true" and "declared_true" in str(refused.value)
        return
    accepted = domain.submit(plant(), period, figures(), now=period.starts_at, declaration=rule, **asked)
    # A declaration given is recorded whether or not the regime requires it.
    assert accepted.declared is bool(declared) and accepted.period.status is PeriodStatus.SUBMITTED


@pytest.mark.parametrize("declared", [1, "true", "ya"])
def test_only_a_declaration_that_is_true_counts(declared):
    with pytest.raises(UndeclaredReport):
        DeclarationOfTruth(required=True).check(declared)


def test_the_refusal_speaks_bahasa_indonesia_first_then_english_and_names_the_field():
    indonesian, english = UndeclaredReport.MESSAGE.split(" / ")
    assert indonesian.startswith("Perusahaan wajib menyatakan") and english.startswith("The company must declare")
    assert "declared_true" in indonesian and "declared_true" in english


def test_a_correction_is_declared_again_and_keeps_the_period_on_time():
    rule, period = DeclarationOfTruth(required=True), period_under(SHIPPED)
    first = domain.submit(plant(), period, figures(), now=period.starts_at, declared=True, declaration=rule)
    with pytest.raises(UndeclaredReport):
        domain.submit(plant(), first.period, figures(odp=4), now=period.deadline + timedelta(hours=1),
                      declaration=rule)
    correction = domain.submit(plant(), first.period, figures(odp=4), now=period.deadline + timedelta(hours=1),
                               declared=True, declaration=rule)
    assert correction.declared and correction.period.status is PeriodStatus.SUBMITTED


def test_a_revoked_permit_or_a_closed_period_is_answered_before_the_declaration():
    rule, period = DeclarationOfTruth(required=True), period_under(SHIPPED)
    with pytest.raises(ObligationEnded):
        domain.submit(plant(ended_at=OPENED), period, figures(), now=OPENED, declaration=rule)
    with pytest.raises(PeriodClosed):
        domain.submit(plant(), replace(period, status=PeriodStatus.EXCUSED), figures(), now=OPENED, declaration=rule)


def test_a_declared_report_must_still_hold_together_and_an_undeclared_one_is_told_of_its_declaration_first():
    rule, period = DeclarationOfTruth(required=True), period_under(SHIPPED)
    with pytest.raises(InconsistentReport):
        domain.submit(plant(), period, figures(dose2=1101), now=OPENED, declared=True, declaration=rule)
    with pytest.raises(UndeclaredReport):
        domain.submit(plant(), period, figures(dose2=1101), now=OPENED, declaration=rule)
