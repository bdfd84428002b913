"""The company's e-mail about a warning or a sanction and its letter: what is due in every order of arrival, at the
edge of the bounded wait, and what the e-mail says."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.domain import (
    LETTER_EVENTS, CompanyContact, CompanyLetter, Directory, LetterPairing, LetterStep, LetterWait, company_notice,
    company_recipient, letter_step, route_for,
)

pytestmark = pytest.mark.unit

NOW = datetime(2021, 7, 10, 1, 0, tzinfo=UTC)
WAIT = LetterWait()
LETTER = CompanyLetter("IOMKI-2021-000123/SP-2", "warning", NOW, b"%PDF-1.3 letter")


def arrived(*, event: bool, letter: bool, **changes) -> LetterPairing:
    pairing = LetterPairing(uuid.uuid4(), uuid.uuid4(),
                            alert_id=uuid.uuid4() if event else None, event_type="WarningIssued" if event else None,
                            wait_until=NOW + WAIT.longest if event else None, letter=LETTER if letter else None)
    return replace(pairing, **changes)


def test_the_letter_events_tell_the_company():
    assert all(route_for(event_type).company for event_type in LETTER_EVENTS)
    assert LETTER_EVENTS == {"WarningIssued", "PermitFrozen", "PermitRevoked"}


@pytest.mark.parametrize("first", ["event", "letter"])
def test_whichever_half_comes_second_sends_the_email_with_the_letter_once(first):
    half = arrived(event=first == "event", letter=first == "letter")
    assert letter_step(half, NOW) is LetterStep.WAIT
    both = arrived(event=True, letter=True)
    assert letter_step(both, NOW) is LetterStep.SEND_WITH_LETTER
    assert letter_step(replace(both, notice_planned=True, letter_sent=True), NOW) is LetterStep.DONE


def test_a_letter_alone_waits_however_long_for_its_event():
    assert letter_step(arrived(event=False, letter=True), NOW + timedelta(days=365)) is LetterStep.WAIT


def test_the_wait_ends_exactly_at_its_bound():
    event_only = arrived(event=True, letter=False)
    assert letter_step(event_only, NOW + WAIT.longest - timedelta(microseconds=1)) is LetterStep.WAIT
    assert letter_step(event_only, NOW + WAIT.longest) is LetterStep.SEND_WITHOUT_LETTER


def test_a_letter_after_the_wait_follows_on_its_own_once():
    told = arrived(event=True, letter=False, notice_planned=True)
    assert letter_step(told, NOW + timedelta(hours=2)) is LetterStep.DONE
    late = replace(told, letter=LETTER)
    assert letter_step(late, NOW + timedelta(hours=2)) is LetterStep.SEND_LETTER_ALONE
    assert letter_step(replace(late, letter_sent=True), NOW + timedelta(hours=2)) is LetterStep.DONE


@pytest.mark.parametrize(("event", "letter", "notice", "sent"), list(itertools.product([False, True], repeat=4)))
def test_every_state_leads_to_exactly_one_notice_and_at_most_one_letter(event, letter, notice, sent):
    """Whatever has arrived and been planned, a step never plans what was planned already."""
    pairing = arrived(event=event, letter=letter, notice_planned=notice and event, letter_sent=sent and letter)
    for moment in (NOW, NOW + WAIT.longest):
        step = letter_step(pairing, moment)
        if pairing.notice_planned:
            assert step in (LetterStep.SEND_LETTER_ALONE, LetterStep.DONE, LetterStep.WAIT)
        if pairing.letter_sent:
            assert step in (LetterStep.DONE, LetterStep.WAIT)
        if step is LetterStep.SEND_WITH_LETTER:
            assert pairing.letter is not None and not pairing.notice_planned


def test_the_company_is_a_recipient_only_with_an_address_and_a_route_that_tells_it():
    with_address = Directory((), (), CompanyContact(uuid.uuid4(), "8120000123456", "PT A", "k3@a.example"))
    without = Directory((), (), CompanyContact(uuid.uuid4(), "8120000123456", "PT A", None))
    recipient = company_recipient(route_for("WarningIssued"), with_address)
    assert recipient is not None and recipient.target == "k3@a.example" and recipient.kind == "company"
    assert company_recipient(route_for("WarningIssued"), without) is None
    assert company_recipient(route_for("PossibleClusterRaised"), with_address) is None


def test_the_email_with_the_letter_names_it_in_bahasa_indonesia_then_english():
    subject, body = company_notice(LetterStep.SEND_WITH_LETTER, "WarningIssued", "PT Baja Nusantara", LETTER)
    text = body.decode()
    assert subject == "[IOMKI] Surat Peringatan IOMKI-2021-000123/SP-2 / Warning letter IOMKI-2021-000123/SP-2"
    assert text.startswith("Yth. Pimpinan PT Baja Nusantara,")
    assert text.index("Surat Peringatan nomor IOMKI-2021-000123/SP-2 terlampir.") < text.index(
        "The warning letter IOMKI-2021-000123/SP-2 is attached.")
    assert LETTER.filename == "IOMKI-2021-000123_SP-2.pdf" and LETTER.permit_number == "IOMKI-2021-000123"


@pytest.mark.parametrize(("event_type", "kind", "name"), [("PermitFrozen", "freeze", "Surat Pembekuan IOMKI"),
                                                          ("PermitRevoked", "revocation", "Surat Pencabutan IOMKI")])
def test_a_sanctions_email_names_its_letter(event_type, kind, name):
    letter = CompanyLetter("IOMKI-2021-000123/SPB-1", kind, NOW, b"%PDF")
    subject, _ = company_notice(LetterStep.SEND_WITH_LETTER, event_type, None, letter)
    assert subject.startswith(f"[IOMKI] {name} IOMKI-2021-000123/SPB-1")


def test_without_the_letter_the_email_says_it_follows_and_the_late_letter_says_it_follows_up():
    subject, body = company_notice(LetterStep.SEND_WITHOUT_LETTER, "PermitRevoked", None, None)
    assert subject == "[IOMKI] Pemberitahuan pencabutan IOMKI / Notice of the revocation of your permit"
    assert "Surat Pencabutan IOMKI menyusul" in body.decode() and body.decode().startswith("Yth. Pimpinan perusahaan,")
    _, late = company_notice(LetterStep.SEND_LETTER_ALONE, "WarningIssued", "PT A", LETTER)
    assert late.decode().count("Menyusul pemberitahuan kami tentang peringatan") == 1
    _, unattached = company_notice(LetterStep.SEND_WITH_LETTER, "WarningIssued", "PT A", replace(LETTER, pdf=None))
    assert "dapat diunduh di portal IOMKI" in unattached.decode() and "terlampir" not in unattached.decode()
