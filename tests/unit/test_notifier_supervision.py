"""Field supervision and estates in the notifier: who hears of a complaint, an inspection and a sanction request,
and what an estate company reads of an alert about its tenant (Bahasa Indonesia first, English second)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.notifier.domain import (
    Alert, Channel, CompanyContact, Directory, Division, DivisionContact, EscalationChain, Grouping, Level, Plant,
    TaskForce, estate_notice, estate_recipient, recipients, summary,
)
from shared.contract import (
    ComplaintCategory, ComplaintFiled, FindingResult, GroundCode, InspectionBody, InspectionFinding,
    InspectionRecorded, ProtocolItem, SanctionAction, SanctionGround, SanctionRequested, Severity,
)

pytestmark = pytest.mark.unit

NOW = datetime(2021, 7, 20, 3, 0, tzinfo=UTC)
CHAIN = EscalationChain((timedelta(hours=1), timedelta(hours=4)))
GROUPING = Grouping(timedelta(hours=1))
MAKASSAR = Plant(uuid.uuid4(), "73", "73.71")
WHERE = {"facility_id": MAKASSAR.facility_id, "province_code": "73", "regency_code": "73.71"}
TASK_FORCES = (
    TaskForce.register(level=Level.REGENCY, region_code="73.71", name="Satgas Makassar", contacts=(
        DivisionContact(Division.HEALTH, email="kes@makassar.example"),
        DivisionContact(Division.LAW_ENFORCEMENT, email="pp@makassar.example"))),
    TaskForce.register(level=Level.PROVINCE, region_code="73", name="Satgas Sulsel", contacts=(
        DivisionContact(Division.LAW_ENFORCEMENT, email="pp@sulsel.example"),)),
)
ESTATE = CompanyContact(uuid.uuid4(), "8120007371001", "PT Kawasan Industri Makassar", "k3@kima.example")


def raised(event) -> Alert:
    return Alert.raise_for(type(event).__name__, MAKASSAR, event.model_dump(mode="json"), now=NOW, chain=CHAIN,
                           grouping=GROUPING)


def told(alert: Alert, directory: Directory) -> list[str]:
    return [r.target for r in recipients(alert.route, alert.event_type, alert.level, MAKASSAR, directory,
                                         first_notice=True)]


COMPLAINT = ComplaintFiled(**WHERE, permit_id=uuid.uuid4(), complaint_id=uuid.uuid4(),
                           category=ComplaintCategory.HIDDEN_CASES, filed_at=NOW)
INSPECTION = InspectionRecorded(
    **WHERE, permit_id=uuid.uuid4(), inspection_id=uuid.uuid4(), reference="INSP-2021-000042",
    inspected_on=date(2021, 7, 19), bodies=[InspectionBody.TASK_FORCE], violations=1,
    findings=[InspectionFinding(item=ProtocolItem.MASKS, result=FindingResult.MET),
              InspectionFinding(item=ProtocolItem.COVID_TEAM, result=FindingResult.VIOLATED)])
REQUEST = SanctionRequested(
    **WHERE, permit_id=uuid.uuid4(), request_id=uuid.uuid4(), action=SanctionAction.REVOKE,
    ground=SanctionGround(code=GroundCode.INSPECTION_FINDING), reason="Violations found twice.",
    office_region="73", requested_at=NOW)


@pytest.mark.parametrize("event", [COMPLAINT, INSPECTION], ids=lambda e: type(e).__name__)
def test_complaints_and_inspections_are_low_alerts_to_the_regencys_law_enforcement_grouped_per_plant(event):
    alert = raised(event)
    assert (alert.severity, alert.level, alert.escalate_at) == (Severity.LOW, Level.REGENCY, None)
    assert alert.alert_key == f"{type(event).__name__}:{MAKASSAR.facility_id}"
    assert told(alert, Directory(TASK_FORCES)) == ["pp@makassar.example"]


def test_a_sanction_request_informs_the_provinces_law_enforcement_and_never_escalates():
    alert = raised(REQUEST)
    assert (alert.severity, alert.level, alert.escalate_at) == (Severity.LOW, Level.PROVINCE, None)
    assert told(alert, Directory(TASK_FORCES)) == ["pp@sulsel.example"]


def test_the_summaries_say_what_was_found_in_both_languages():
    indonesian, english = summary("InspectionRecorded", INSPECTION.model_dump(mode="json")) or ("", "")
    assert "INSP-2021-000042" in indonesian and "1 pelanggaran protokol kesehatan: covid_team" in indonesian
    assert "1 violations of the health protocol: covid_team" in english
    indonesian, english = summary("ComplaintFiled", COMPLAINT.model_dump(mode="json")) or ("", "")
    assert "kasus positif disembunyikan" in indonesian and "positive cases hidden" in english
    indonesian, english = summary("SanctionRequested", REQUEST.model_dump(mode="json")) or ("", "")
    assert "pencabutan" in indonesian and "revocation" in english and "inspection_finding" in english


def test_an_estate_with_an_address_is_told_of_an_alert_about_its_tenant_indonesian_first():
    assert estate_recipient(Directory(TASK_FORCES)) is None
    assert estate_recipient(Directory(TASK_FORCES, estate=CompanyContact(ESTATE.facility_id, ESTATE.nib,
                                                                         ESTATE.company_name, None))) is None
    recipient = estate_recipient(Directory(TASK_FORCES, estate=ESTATE))
    assert recipient is not None and (recipient.channel, recipient.target) == (Channel.EMAIL, "k3@kima.example")
    alert = raised(COMPLAINT)
    subject, body = estate_notice(alert, ESTATE.company_name)
    text = body.decode()
    assert subject.startswith("[IOMKI] Peringatan tentang penyewa kawasan (ComplaintFiled) / Alert about")
    assert text.startswith("Yth. Pimpinan PT Kawasan Industri Makassar,")
    assert text.index("Pengaduan masyarakat") < text.index("The COVID-19 task force") < text.index("A public complaint")
    assert str(alert.alert_id) in text
