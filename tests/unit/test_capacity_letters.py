"""Capacity breaches as the permits service meets them: the reports service warns of a breach (WarningIssued, cause
capacity_breach) and recommends a sanction on repeated breaches (SanctionRecommended, ground capacity_breaches). The
warning is a letter in the SP-n sequence that states the breach and its period, never a missed report; the sanction
rests on the capacity ground with the breaches as its evidence, and its letter lists their periods."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import pypdf
import pytest

from services.permits.domain import (
    GROUND_LABELS, Action, Letter, LetterGround, LetterPeriod, Permit, PermitStatus, SanctionRecommendation,
    letter_document, warning_ground,
)
from services.permits.letters import PdfLetters
from shared.clock import FakeClock
from shared.contract import (
    Envelope, GroundCode, GroundEvidence, LetterKind, SanctionAction, SanctionEvidence, SanctionRecommended,
    WarningCause, WarningIssued,
)
from shared.web.access import Access, Principal, Role, Scope
from tests.support.in_memory_permits import InMemoryPermitsDatabase, permit_handlers
from tests.support.permit_factories import an_application

pytestmark = pytest.mark.unit

# Friday 23 July 2021, 23:59 in Jakarta (a PPKM level 4 week), and the morning after.
DEADLINE = datetime(2021, 7, 23, 16, 59, tzinfo=UTC)
MORNING_AFTER = datetime(2021, 7, 24, 1, 0, tzinfo=UTC)
OPERATOR = Access(Principal("officer-ani", Role.OPERATOR), Scope.ALL, "decide")
COMPANY = Access(Principal("k3-admin", Role.COMPANY, nib=an_application().nib), Scope.OWN, "apply")
TOKEN = "IOMKI1." + "eyJrIjoidiJ9" * 25 + "." + "c2lnbmF0dXJl" * 7  # the shape of a registry token, for the QR


def a_permit() -> Permit:
    return Permit(uuid.uuid4(), uuid.uuid4(), "8120000123456", "PT Garmen Cikarang", "32", "32.16", "essential", 600,
                  PermitStatus.ISSUED, "IOMKI-2021-000321", issued_at=datetime(2021, 3, 1, tzinfo=UTC))


def a_capacity_warning(consecutive: int = 2, last: int = 0) -> Letter:
    return Letter.issue(a_permit(), LetterKind.WARNING, last_sequence=last,
                        ground=warning_ground(WarningCause.CAPACITY_BREACH, uuid.uuid4()),
                        periods=(LetterPeriod(uuid.uuid4(), DEADLINE),), cause_event_id=uuid.uuid4(),
                        now=MORNING_AFTER, warning_id=uuid.uuid4(), consecutive=consecutive)


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


# -- the letters -----------------------------------------------------------------------------------------------


def test_a_capacity_warning_states_the_breach_and_its_period_not_a_missed_report():
    letter = a_capacity_warning()
    document = letter_document(letter, regency_name="Kabupaten Bekasi")
    body = " ".join(document.paragraphs)
    assert letter.number == "IOMKI-2021-000321/SP-1" and document.title == "SURAT PERINGATAN"
    assert body.startswith("Jumlah pekerja di lokasi melampaui batas PPKM")
    assert "Jumat, 23 Juli 2021 pukul 23.59 WIB" in body and "peringatan ke-2" in body
    assert document.ground[0] == ("Dasar", "Jumlah pekerja di lokasi melampaui batas PPKM")
    assert document.periods == ("1. Batas waktu Jumat, 23 Juli 2021 pukul 23.59 WIB",)
    for missed in ("belum diterima", "Tidak menyampaikan laporan", "not received"):
        assert missed not in body + document.english + str(document.ground), missed
    assert "over the PPKM cap" in document.english and document.english.index("SP-1") < document.english.index("cap")


def test_a_missed_report_warning_reads_as_before():
    letter = Letter.issue(a_permit(), LetterKind.WARNING, last_sequence=0, ground=warning_ground(),
                          periods=(LetterPeriod(uuid.uuid4(), DEADLINE),), cause_event_id=uuid.uuid4(),
                          now=MORNING_AFTER, warning_id=uuid.uuid4(), consecutive=1)
    document = letter_document(letter, regency_name=None)
    assert letter.ground == LetterGround(GroundCode.MISSED_REPORTS, cause=WarningCause.MISSED_REPORT)
    assert "belum diterima" in document.paragraphs[0]
    assert document.ground[0] == ("Dasar", GROUND_LABELS[GroundCode.MISSED_REPORTS][0])


def test_the_capacity_warning_prints_bahasa_first_then_english():
    text = text_of(PdfLetters().render(letter_document(a_capacity_warning(), regency_name="Kabupaten Bekasi"),
                                       token=TOKEN, issued_at=MORNING_AFTER))
    assert "melampaui batas PPKM" in text and "over the PPKM cap" in text
    assert text.index("melampaui batas PPKM") < text.index("over the PPKM cap")


def test_a_sanction_on_repeated_breaches_is_read_under_the_ppkm_ladder_and_its_rule():
    letter = Letter.issue(a_permit(), LetterKind.FREEZE, last_sequence=0, ground=LetterGround(
        GroundCode.CAPACITY_BREACHES, ladder="PPKM", rule="RepeatedCapacityBreaches"),
        periods=(LetterPeriod(uuid.uuid4(), DEADLINE),), cause_event_id=uuid.uuid4(), now=MORNING_AFTER)
    document = letter_document(letter, regency_name=None)
    assert document.ground == (
        ("Dasar", "Berulang kali melampaui batas jumlah pekerja di lokasi pada masa PPKM"), ("Ketentuan", "PPKM"),
        ("Aturan", "jumlah pekerja di lokasi berulang kali melampaui batas PPKM"))


# -- the recommendation ----------------------------------------------------------------------------------------


def test_a_recommendation_on_repeated_breaches_rests_on_the_capacity_ground_and_its_breaches():
    breaches, warnings = [uuid.uuid4() for _ in range(3)], [uuid.uuid4() for _ in range(3)]
    recommendation = SanctionRecommendation(Action.FREEZE, "RepeatedCapacityBreaches", "PPKM",
                                            GroundEvidence(breaches=breaches, warnings=warnings),
                                            code=GroundCode.CAPACITY_BREACHES)
    ground = recommendation.ground
    assert (ground.code, ground.ladder, ground.rule, ground.evidence.breaches) == (
        GroundCode.CAPACITY_BREACHES, "PPKM", "RepeatedCapacityBreaches", breaches)
    assert recommendation.reason == "RepeatedCapacityBreaches: 3 capacity breach(es), 3 warning(s)"


@pytest.mark.parametrize("code", [c for c in GroundCode
                                  if c not in (GroundCode.MISSED_REPORTS, GroundCode.CAPACITY_BREACHES)])
def test_a_ladder_recommends_on_no_ground_an_officer_states(code):
    with pytest.raises(ValueError, match="a ladder recommends on"):
        SanctionRecommendation(Action.FREEZE, "Rule", None, GroundEvidence(), code=code)


# -- over the handlers ------------------------------------------------------------------------------------------


async def test_capacity_warnings_share_the_sp_sequence_and_the_freeze_lists_the_breached_periods():
    database, clock = InMemoryPermitsDatabase(), FakeClock(MORNING_AFTER - timedelta(days=30))
    handlers = permit_handlers(database, clock)
    applied = await handlers.apply(an_application(kbli=["14111"], contact_email="k3@garmen.example"), COMPANY)
    permit = await handlers.act(applied.permit_id, Action.ISSUE, "lengkap", OPERATOR)
    clock.set(MORNING_AFTER)
    about = dict(facility_id=permit.facility_id, province_code=permit.province_code,
                 regency_code=permit.regency_code, permit_id=permit.permit_id)
    missed = WarningIssued(**about, warning_id=uuid.uuid4(), period_id=uuid.uuid4(), deadline=DEADLINE
                           - timedelta(days=7), consecutive=1)
    breaches = [WarningIssued(**about, warning_id=uuid.uuid4(), period_id=uuid.uuid4(),
                              deadline=DEADLINE - timedelta(days=3 * (1 - i)), consecutive=i + 1,
                              cause=WarningCause.CAPACITY_BREACH, breach_id=uuid.uuid4()) for i in range(2)]
    for warning in (missed, *breaches):
        async with database.transaction() as work:
            await handlers.on_warning_issued(work, Envelope.wrap(
                warning, service="reports"), warning)

    letters = await handlers.letters(permit.permit_id, COMPANY)
    assert [(le.short_number, le.ground.code, le.ground.cause) for le in letters] == [
        ("SP-1", GroundCode.MISSED_REPORTS, WarningCause.MISSED_REPORT),
        ("SP-2", GroundCode.CAPACITY_BREACHES, WarningCause.CAPACITY_BREACH),
        ("SP-3", GroundCode.CAPACITY_BREACHES, WarningCause.CAPACITY_BREACH)]
    assert letters[2].ground.breach_id == breaches[1].breach_id

    freeze = SanctionRecommended(**about, action=SanctionAction.FREEZE, rule="RepeatedCapacityBreaches",
                                 ladder="PPKM", ground=GroundCode.CAPACITY_BREACHES,
                                 evidence=SanctionEvidence(missed_periods=[], warnings=[w.warning_id for w in breaches],
                                                           breaches=[b.breach_id for b in reversed(breaches)]))
    async with database.transaction() as work:
        await handlers.on_sanction_recommended(work, Envelope.wrap(
            freeze, service="reports"), freeze)

    frozen = database.committed.outbox[-1]
    assert frozen.type == "iomki.PermitFrozen.v1"
    assert frozen.data["ground"]["code"] == "capacity_breaches"
    assert frozen.data["ground"]["evidence"]["breaches"] == [str(b.breach_id) for b in reversed(breaches)]
    assert (frozen.data["ground"]["ladder"], frozen.data["ground"]["rule"]) == ("PPKM", "RepeatedCapacityBreaches")
    letter = (await handlers.letters(permit.permit_id, COMPANY))[-1]
    assert (letter.short_number, letter.ground.code) == ("SPB-1", GroundCode.CAPACITY_BREACHES)
    assert [p.period_id for p in letter.periods] == [b.period_id for b in breaches]  # by deadline, oldest first
    # A freeze on capacity rests on no missed period: reactivation asks for no late report.
    standing = await handlers.reactivation_standing(permit.permit_id, COMPANY, 5)
    assert [c.met for c in standing.outlook if c.condition == "MissedReportsFiled"] == [True]
