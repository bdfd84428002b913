"""Warning and sanction letters: their numbers (per permit and kind, gap-free), what they say in Bahasa Indonesia
and English, and their PDF (read back with pypdf), as pure code and the PDF adapter without I/O."""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pypdf
import pytest
import zxingcpp
from PIL import Image

from services.permits.domain import (
    GROUND_LABELS, LETTER_ABBREVIATIONS, LETTER_PERIODS_SHOWN, RULE_LABELS, Letter, LetterGround, LetterPeriod,
    NoCertificate, NoPermitNumber, Permit, PermitStatus, certificate_document, letter_document, letter_number,
    letter_reference, local_deadline, sanction_periods, tanggal, warning_ground,
)
from services.permits.letters import PdfLetters, printable
from shared.contract import (
    INT4_MAX, LETTER_NUMBER_PATTERN, LETTER_PDF_MAX_BYTES, NAME_MAX_LENGTH, REASON_MAX_LENGTH, EVIDENCE_MAX_ITEMS,
    GroundCode, LetterKind, SanctionGround,
)

pytestmark = pytest.mark.unit

# Friday 9 July 2021, 23:59 in Jakarta: an SE 3/2021 deadline.
DEADLINE = datetime(2021, 7, 9, 16, 59, tzinfo=UTC)
MORNING_AFTER = datetime(2021, 7, 10, 1, 0, tzinfo=UTC)  # 08:00 WIB
TOKEN = "IOMKI1." + "eyJrIjoidiJ9" * 25 + "." + "c2lnbmF0dXJl" * 7
PRINTER = PdfLetters()


def a_permit(**changes) -> Permit:
    permit = Permit(uuid.uuid4(), uuid.uuid4(), "8120000123456", "PT Baja Nusantara", "32", "32.16", "critical",
                    1200, PermitStatus.ISSUED, "IOMKI-2021-000123", issued_at=datetime(2021, 3, 1, tzinfo=UTC))
    return replace(permit, **changes)


def a_warning(permit: Permit | None = None, *, last: int = 0, consecutive: int = 1) -> Letter:
    return Letter.issue(permit or a_permit(), LetterKind.WARNING, last_sequence=last, ground=warning_ground(),
                        periods=(LetterPeriod(uuid.uuid4(), DEADLINE),), cause_event_id=uuid.uuid4(),
                        now=MORNING_AFTER, warning_id=uuid.uuid4(), consecutive=consecutive)


def a_sanction(kind: LetterKind, ground: LetterGround, periods: int = 3, **changes) -> Letter:
    listed = tuple(LetterPeriod(uuid.uuid4(), DEADLINE - timedelta(days=7 * (periods - i)))
                   for i in range(periods))
    return Letter.issue(a_permit(**changes), kind, last_sequence=0, ground=ground, periods=listed,
                        cause_event_id=uuid.uuid4(), now=MORNING_AFTER)


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


# -- numbers ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "expected"), [(LetterKind.WARNING, "IOMKI-2021-000123/SP-1"),
                                                (LetterKind.FREEZE, "IOMKI-2021-000123/SPB-1"),
                                                (LetterKind.REVOCATION, "IOMKI-2021-000123/SPC-1")])
def test_a_letter_is_numbered_by_its_permit_its_kind_and_its_count(kind, expected):
    assert letter_number("IOMKI-2021-000123", kind, 1) == expected
    assert re.fullmatch(LETTER_NUMBER_PATTERN, expected)


def test_every_kind_has_its_own_abbreviation_and_the_largest_number_still_matches_the_contract():
    assert set(LETTER_ABBREVIATIONS) == set(LetterKind)
    assert len(set(LETTER_ABBREVIATIONS.values())) == len(LetterKind)
    for kind in LetterKind:
        assert re.fullmatch(LETTER_NUMBER_PATTERN, letter_number("IOMKI-9999-2147483647", kind, INT4_MAX))


@pytest.mark.parametrize("sequence", [0, -1])
def test_a_letter_count_starts_at_one(sequence):
    with pytest.raises(ValueError, match="starts at 1"):
        letter_number("IOMKI-2021-000123", LetterKind.WARNING, sequence)


def test_numbers_follow_on_without_gaps_per_permit_and_kind():
    permit = a_permit()
    first = a_warning(permit, last=0)
    second = a_warning(permit, last=first.sequence)
    assert (first.number, second.number) == ("IOMKI-2021-000123/SP-1", "IOMKI-2021-000123/SP-2")
    freeze = a_sanction(LetterKind.FREEZE, LetterGround(GroundCode.MISSED_REPORTS))
    assert freeze.sequence == 1 and freeze.short_number == "SPB-1"  # another kind counts on its own


def test_a_permit_never_issued_gets_no_letter():
    with pytest.raises(NoPermitNumber):
        a_warning(a_permit(permit_number=None, status=PermitStatus.SUBMITTED))


@pytest.mark.parametrize(("reference", "expected"), [
    ("SP-1", (None, LetterKind.WARNING, 1)),
    ("SPB-12", (None, LetterKind.FREEZE, 12)),
    ("SPC-3", (None, LetterKind.REVOCATION, 3)),
    ("IOMKI-2021-000123/SP-2", ("IOMKI-2021-000123", LetterKind.WARNING, 2)),
    (f"SP-{INT4_MAX}", (None, LetterKind.WARNING, INT4_MAX)),
])
def test_a_letter_is_named_by_its_short_or_whole_number(reference, expected):
    assert letter_reference(reference) == expected


@pytest.mark.parametrize("reference", [
    "SP-0", f"SP-{INT4_MAX + 1}", "SP-", "SP1", "sp-1", "SPX-1", "SP-１", "SP-1\n", "SP--1", "SP-+1",
    "IOMKI-21-000123/SP-1", "x/SP-1", "IOMKI-2021-000123/SP-1/SP-1", "SP-12345678901",
])
def test_anything_else_names_no_letter(reference):
    assert letter_reference(reference) is None


# -- contents --------------------------------------------------------------------------------------------------


def test_a_deadline_is_shown_where_the_plant_is_in_its_own_zone():
    assert local_deadline(DEADLINE, "32.16") == "Jumat, 9 Juli 2021 pukul 23.59 WIB"
    assert local_deadline(DEADLINE, "73.71") == "Sabtu, 10 Juli 2021 pukul 00.59 WITA"  # Makassar
    assert local_deadline(DEADLINE, "91.01") == "Sabtu, 10 Juli 2021 pukul 01.59 WIT"  # Jayapura
    assert tanggal(date(2021, 1, 31)) == "31 Januari 2021" and tanggal(date(2021, 12, 1)) == "1 Desember 2021"


def test_a_warning_letter_names_the_permit_the_period_the_count_and_the_date():
    letter = a_warning(consecutive=2)
    document = letter_document(letter, regency_name="Kabupaten Bekasi")
    assert document.title == "SURAT PERINGATAN"
    assert document.number == "Nomor: IOMKI-2021-000123/SP-1"
    assert document.date_line == "Tanggal: 10 Juli 2021"
    assert "Pimpinan PT Baja Nusantara" in document.addressee
    assert "Nomor izin: IOMKI-2021-000123" in document.addressee
    assert "Lokasi pabrik: Kabupaten Bekasi (32.16)" in document.addressee
    assert "Jumat, 9 Juli 2021 pukul 23.59 WIB" in document.paragraphs[0]
    assert "peringatan ke-2 berturut-turut" in document.paragraphs[0]
    assert document.ground == (("Dasar", GROUND_LABELS[GroundCode.MISSED_REPORTS][0]),)
    assert document.periods == ("1. Batas waktu Jumat, 9 Juli 2021 pukul 23.59 WIB",)
    assert "warning 2 in a row" in document.english
    assert document.filename == "IOMKI-2021-000123_SP-1.pdf"


def test_the_letter_date_is_the_plants_local_date():
    late_evening = datetime(2021, 7, 9, 17, 30, tzinfo=UTC)  # Friday in UTC, Saturday 00:30 WIB
    letter = replace(a_warning(), issued_at=late_evening)
    assert letter_document(letter, regency_name=None).date_line == "Tanggal: 10 Juli 2021"


def test_a_freeze_letter_states_the_ground_its_ladder_and_rule_and_the_periods_by_deadline():
    ground = LetterGround.of(SanctionGround(code=GroundCode.MISSED_REPORTS, ladder="SE-3/2021",
                                            rule="ThreeWarningsInARow"))
    document = letter_document(a_sanction(LetterKind.FREEZE, ground), regency_name="Kabupaten Bekasi")
    assert document.title == "SURAT PEMBEKUAN IOMKI" and document.number.endswith("/SPB-1")
    assert dict(document.ground) == {"Dasar": GROUND_LABELS[GroundCode.MISSED_REPORTS][0],
                                     "Ketentuan": "SE 3/2021", "Aturan": "tiga peringatan berturut-turut"}
    assert document.periods == ("1. Batas waktu Jumat, 18 Juni 2021 pukul 23.59 WIB",
                                "2. Batas waktu Jumat, 25 Juni 2021 pukul 23.59 WIB",
                                "3. Batas waktu Jumat, 2 Juli 2021 pukul 23.59 WIB")
    assert "dibekukan" in document.paragraphs[0] and "frozen" in document.english


def test_a_revocation_letter_states_the_officers_words_and_when_the_company_may_apply_again():
    ground = LetterGround(GroundCode.OTHER, text="Data pekerja dipalsukan")
    document = letter_document(a_sanction(LetterKind.REVOCATION, ground, periods=0), regency_name=None)
    assert document.title == "SURAT PENCABUTAN IOMKI"
    assert dict(document.ground) == {"Dasar": "Alasan lain", "Keterangan petugas": "Data pekerja dipalsukan"}
    assert document.periods == () and document.periods_heading == ""
    assert "paling cepat tanggal 24 Juli 2021" in document.paragraphs[1]  # 14 days after, SE 3/2021
    assert "from 24 July 2021" not in document.english and "24 Juli 2021" in document.english


@pytest.mark.parametrize("code", list(GroundCode))
def test_every_ground_has_a_label_in_bahasa_indonesia_and_english(code):
    indonesian, english = GROUND_LABELS[code]
    assert indonesian and english and indonesian != english
    document = letter_document(a_sanction(LetterKind.FREEZE, LetterGround(code)), regency_name=None)
    assert document.ground[0] == ("Dasar", indonesian) and english in document.english


def test_a_rule_the_letters_do_not_know_is_shown_by_its_name():
    document = letter_document(a_sanction(LetterKind.FREEZE, LetterGround(GroundCode.MISSED_REPORTS,
                                                                          rule="SomeLaterRule")),
                               regency_name=None)
    assert ("Aturan", "SomeLaterRule") in document.ground
    assert set(RULE_LABELS) == {"ThreeWarningsInARow", "ThreeWarningsWithinAMonth", "MissedWhileFrozen",
                                "SecondFreeze", "ThreeMissedPeriods", "RepeatedCapacityBreaches"}


def test_periods_are_in_deadline_order_once_each_and_those_without_a_known_deadline_last():
    early, late, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    deadlines = {early: DEADLINE - timedelta(days=7), late: DEADLINE}
    periods = sanction_periods([late, unknown, early, late], deadlines)
    assert [p.period_id for p in periods] == [early, late, unknown]
    assert periods[-1].deadline is None
    letter = Letter.issue(a_permit(), LetterKind.FREEZE, last_sequence=0, periods=periods, now=MORNING_AFTER,
                          ground=LetterGround(GroundCode.MISSED_REPORTS), cause_event_id=uuid.uuid4())
    document = letter_document(letter, regency_name=None)
    assert document.periods[-1] == f"3. Periode {unknown} (batas waktu tidak tercatat pada surat peringatan)"


def test_a_letter_lists_the_latest_periods_and_counts_the_rest():
    letter = a_sanction(LetterKind.REVOCATION, LetterGround(GroundCode.MISSED_REPORTS),
                        periods=LETTER_PERIODS_SHOWN + 5)
    assert len(letter.periods) == LETTER_PERIODS_SHOWN and letter.more_periods == 5
    document = letter_document(letter, regency_name=None)
    assert document.periods[-1] == "... dan 5 periode sebelumnya"
    exactly = a_sanction(LetterKind.REVOCATION, LetterGround(GroundCode.MISSED_REPORTS), periods=LETTER_PERIODS_SHOWN)
    assert exactly.more_periods == 0 and len(letter_document(exactly, regency_name=None).periods) == \
        LETTER_PERIODS_SHOWN


def test_bahasa_indonesia_comes_before_english():
    document = letter_document(a_warning(), regency_name=None)
    pdf_text = text_of(PRINTER.render(document, token=TOKEN, issued_at=MORNING_AFTER))
    assert pdf_text.index("belum diterima") < pdf_text.index("was not received")


# -- the PDF ---------------------------------------------------------------------------------------------------


def test_the_pdf_reads_back_with_the_number_permit_ground_period_date_and_the_qr_token():
    letter = a_sanction(LetterKind.FREEZE, LetterGround(GroundCode.MISSED_REPORTS, "SE-3/2021",
                                                        "ThreeWarningsInARow"))
    pdf = PRINTER.render(letter_document(letter, regency_name="Kabupaten Bekasi"), token=TOKEN,
                         issued_at=letter.issued_at)
    text = text_of(pdf)
    for expected in ("SURAT PEMBEKUAN IOMKI", "Nomor: IOMKI-2021-000123/SPB-1", "Tanggal: 10 Juli 2021",
                     GROUND_LABELS[GroundCode.MISSED_REPORTS][0], "SE 3/2021", "tiga peringatan berturut-turut",
                     "Batas waktu Jumat, 2 Juli 2021 pukul 23.59 WIB", "Kabupaten Bekasi"):
        assert expected in text, expected
    assert TOKEN in re.sub(r"\s+", "", text.split("Token:", 1)[1])
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    images = [image for page in reader.pages for image in page.images]
    assert len(images) == 1
    assert [code.text for code in zxingcpp.read_barcodes(Image.open(io.BytesIO(images[0].data)))] == [TOKEN]
    assert reader.metadata.title == "IOMKI-2021-000123/SPB-1"


def test_the_same_letter_prints_to_the_same_bytes():
    letter = a_warning()
    document = letter_document(letter, regency_name=None)
    assert PRINTER.render(document, token=TOKEN, issued_at=letter.issued_at) == \
        PRINTER.render(document, token=TOKEN, issued_at=letter.issued_at)


def test_the_largest_letter_still_fits_the_event_that_carries_it():
    """The longest name, the longest officer's text and the most evidence the contract allows."""
    ground = LetterGround(GroundCode.OTHER, "S" * 200, "x" * 200, ("Pelanggaran berulang. " * 91)[:REASON_MAX_LENGTH])
    letter = a_sanction(LetterKind.REVOCATION, ground, periods=EVIDENCE_MAX_ITEMS,
                        company_name="PT " + "Nusantara Jaya " * 13)
    assert len(letter.company_name) <= NAME_MAX_LENGTH
    pdf = PRINTER.render(letter_document(letter, regency_name="Kabupaten Kepulauan Siau Tagulandang Biaro"),
                         token=TOKEN + "A" * 200, issued_at=letter.issued_at)
    assert len(pdf) <= LETTER_PDF_MAX_BYTES // 2
    assert "... dan 976 periode sebelumnya" in text_of(pdf)


def test_characters_the_standard_font_lacks_lose_their_accent_or_become_a_question_mark():
    assert printable("PT Kimia – “Bekasi” café") == "PT Kimia – “Bekasi” café"  # all in the font
    assert printable("PT Ośrodek Łąka Ṡ 中文") == "PT Osrodek ?aka S ??"
    letter = replace(a_warning(), company_name="PT Ośrodek 中")
    text = text_of(PRINTER.render(letter_document(letter, regency_name=None), token=TOKEN,
                                  issued_at=letter.issued_at))
    assert "Pimpinan PT Osrodek ?" in text


def test_the_certificate_states_the_permit_in_indonesian_then_english_on_the_letters_printer():
    permit = a_permit(export_oriented=True, issued_at=datetime(2021, 2, 28, 18, 0, tzinfo=UTC))  # 1 March in WIB
    document = certificate_document(permit, facility_name="Pabrik Cikarang", address="Jl. Industri 7",
                                    regency_name="Kabupaten Bekasi", province_name="Jawa Barat")
    assert (document.number, document.date_line, document.filename) == (
        "Nomor: IOMKI-2021-000123", "Tanggal terbit: 1 Maret 2021", "IOMKI-2021-000123_sertifikat.pdf")
    assert dict(document.ground)["Kelas sektor"] == (
        "Sektor kritikal (berorientasi ekspor)")
    assert dict(document.ground)["Kabupaten/Kota"] == "Kabupaten Bekasi (32.16)"
    text = " ".join(text_of(PRINTER.render(document, token=TOKEN, issued_at=permit.issued_at)).split())
    for expected in ("SERTIFIKAT IZIN OPERASIONAL", "PT Baja Nusantara", "8120000123456", "Pabrik Cikarang",
                     "Jl. Industri 7", "Jawa Barat (32)", "Sejak 1 Maret 2021", "critical sector (export-oriented)"):
        assert expected in text, expected
    assert text.index("menerangkan bahwa") < text.index("certifies that")


@pytest.mark.parametrize("status", [s for s in PermitStatus if s is not PermitStatus.ISSUED])
def test_only_a_permit_in_force_has_a_certificate(status):
    with pytest.raises(NoCertificate, match=status.value):
        certificate_document(a_permit(status=status), facility_name="P", address="A", regency_name=None,
                             province_name=None)
