"""Warning and sanction letters as PDF (fpdf2), the QR (segno) carrying the permit's signed registry token.

The letter's words come from the domain (`letter_document`); this only lays them out on A4. The standard Helvetica
font is used, so that nothing is embedded and a letter stays a few KiB: it covers Bahasa Indonesia and the Latin
names companies register under; a character it lacks is printed as its unaccented letter, or as `?`.
"""

from __future__ import annotations

import io
import unicodedata
from datetime import datetime

import segno
from fpdf import FPDF

from services.permits.domain import LetterDocument

ENCODING = "windows-1252"  # the standard fonts' encoding in fpdf2 when set so: dashes and curly quotes too
MARGIN = 20.0  # mm
QR_SIZE = 32.0  # mm: scans from paper at arm's length


def printable(text: str) -> str:
    """`text` in what the standard fonts can print: characters they lack lose their accents, or become `?`."""
    try:
        text.encode(ENCODING)
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for character in text:
        try:
            character.encode(ENCODING)
            out.append(character)
        except UnicodeEncodeError:
            bare = "".join(c for c in unicodedata.normalize("NFKD", character) if not unicodedata.combining(c))
            out.append(bare if bare and all(_encodes(c) for c in bare) else "?")
    return "".join(out)


def _encodes(character: str) -> bool:
    try:
        character.encode(ENCODING)
        return True
    except UnicodeEncodeError:
        return False


def qr_png(token: str) -> bytes:
    """The QR of a signed registry token, medium error correction for worn paper."""
    buffer = io.BytesIO()
    segno.make(token, error="m", micro=False).save(buffer, kind="png", scale=4, border=4)
    return buffer.getvalue()


class PdfLetters:
    """`LetterPrinter`: deterministic, the same letter printed twice is the same bytes (its date is the letter's)."""

    def render(self, document: LetterDocument, *, token: str, issued_at: datetime) -> bytes:
        pdf = FPDF(format="A4")
        pdf.core_fonts_encoding = ENCODING
        pdf.set_margins(MARGIN, MARGIN, MARGIN)
        pdf.set_auto_page_break(True, margin=MARGIN)
        pdf.set_creation_date(issued_at)
        pdf.set_title(printable(document.number.removeprefix("Nomor: ")))
        pdf.set_subject(printable(document.title))
        pdf.set_author("Kementerian Perindustrian Republik Indonesia")
        pdf.set_creator("iomki")
        pdf.set_lang("id")
        pdf.add_page()
        width = pdf.w - 2 * MARGIN

        def line(text: str, *, size: float = 10.5, style: str = "", align: str = "L", height: float = 5.5) -> None:
            pdf.set_font("Helvetica", style=style, size=size)
            pdf.multi_cell(width, height, printable(text), align=align, new_x="LMARGIN", new_y="NEXT")

        line("KEMENTERIAN PERINDUSTRIAN REPUBLIK INDONESIA", size=12, style="B", align="C")
        line(document.subtitle, size=9.5, align="C")
        pdf.set_line_width(0.4)
        pdf.line(MARGIN, pdf.get_y() + 1.5, pdf.w - MARGIN, pdf.get_y() + 1.5)
        pdf.ln(6)
        line(document.title, size=14, style="B", align="C", height=7)
        line(document.number, align="C")
        line(document.date_line, align="R")
        pdf.ln(2)
        for text in document.addressee:
            line(text)
        pdf.ln(3)
        for paragraph in document.paragraphs:
            line(paragraph, align="J")
            pdf.ln(2)
        for label, value in document.ground:
            pdf.set_font("Helvetica", style="B", size=10.5)
            pdf.cell(45, 5.5, printable(label))
            pdf.set_font("Helvetica", size=10.5)
            pdf.multi_cell(width - 45, 5.5, printable(value), new_x="LMARGIN", new_y="NEXT")
        if document.periods:
            pdf.ln(2)
            line(document.periods_heading, style="B")
            for period in document.periods:
                line(period, size=10)
        pdf.ln(3)
        line(document.english, size=8.5, style="I", align="J", height=4.5)
        pdf.ln(4)
        if pdf.get_y() + QR_SIZE + 12 > pdf.h - MARGIN:
            pdf.add_page()
        top = pdf.get_y()
        pdf.image(io.BytesIO(qr_png(token)), x=MARGIN, y=top, w=QR_SIZE, h=QR_SIZE)
        pdf.set_xy(MARGIN + QR_SIZE + 5, top)
        pdf.set_font("Helvetica", size=9)
        pdf.multi_cell(width - QR_SIZE - 5, 4.5, printable(document.verification), new_x="LEFT", new_y="NEXT")
        pdf.set_font("Courier", size=6)
        pdf.multi_cell(width - QR_SIZE - 5, 3, f"Token: {token}", new_x="LMARGIN", new_y="NEXT")
        return bytes(pdf.output())
