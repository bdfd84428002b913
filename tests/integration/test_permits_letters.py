"""Warning and sanction letters over HTTP and the real broker: a plant is warned three times by the reports service
and frozen; each letter is numbered, downloadable as a PDF by the company, the operators and the task force of its
region and by nobody else, says what it must (read back with pypdf), carries the registry token its QR encodes
(scanned with zxing-cpp) and travels to the notifier on the internal topic."""

from __future__ import annotations

import base64
import io
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pypdf
import pytest
import pytest_asyncio
import zxingcpp
from PIL import Image

from services.permits.app import create_app
from shared import registry_tokens
from shared.clock import FakeClock
from shared.contract import (
    Envelope, GroundCode, SanctionAction, SanctionEvidence, SanctionRecommended, WarningCause, WarningIssued, decode,
)
from tests.support.kafka import publish, read_topic
from tests.support.platform import bearer, running_service
from tests.support.waiting import until

pytestmark = pytest.mark.integration

NIB, COMPETITOR = "8120000246810", "8120000135790"
OPERATOR = bearer("operator", sub="officer-ani")
COMPANY = bearer("company", nib=NIB, sub="k3-admin")
TASK_FORCE = bearer("task_force", region="32")
# Friday 9 July 2021, 23:59 in Jakarta, and the two Fridays before.
DEADLINES = [datetime(2021, 7, 9, 16, 59, tzinfo=UTC) - timedelta(days=7 * i) for i in (2, 1, 0)]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def permits(platform) -> AsyncIterator[httpx.AsyncClient]:
    clock = FakeClock(datetime(2021, 7, 10, 1, 0, tzinfo=UTC))  # Saturday 08:00 WIB
    async with running_service(create_app(clock=clock)) as client:
        yield client


async def issued_permit(permits: httpx.AsyncClient) -> dict[str, Any]:
    body = {
        "company": {"nib": NIB, "npwp": "01.234.567.8-901.000", "name": "PT Garmen Cikarang"},
        "facility": {"name": "Pabrik Jababeka", "address": f"Jababeka Blok {uuid.uuid4().hex[:8]}",
                     "province_code": "32", "regency_code": "32.16"},
        "kbli": ["14111"], "sector_class": "essential", "workforce": {"total": 600, "on_site_per_shift": [300]},
        "health_protocol_commitment": True, "contact": {"email": "k3@garmen.example"},
    }
    applied = await permits.post("/permits", json=body, headers=COMPANY)
    assert applied.status_code == 201, applied.text
    permit_id = applied.json()["permit_id"]
    issued = await permits.post(f"/permits/{permit_id}/decision", json={"decision": "issue", "reason": "ok"},
                                headers=OPERATOR)
    assert issued.status_code == 200, issued.text
    return applied.json() | issued.json()


async def warned_three_times(permits: httpx.AsyncClient, platform, permit: dict[str, Any]) -> list[Envelope]:
    warnings = [Envelope.wrap(WarningIssued(
        facility_id=permit["facility_id"], province_code="32", regency_code="32.16", permit_id=permit["permit_id"],
        warning_id=uuid.uuid4(), period_id=uuid.uuid4(), deadline=deadline, consecutive=n), service="reports")
        for n, deadline in enumerate(DEADLINES, start=1)]
    await publish(platform.bootstrap, *warnings, warnings[0])  # the first delivered twice
    await until(lambda: letters_of(permits, permit["permit_id"]), lambda found: len(found) == 3)
    return warnings


async def letters_of(permits: httpx.AsyncClient, permit_id: str, headers: dict[str, str] = OPERATOR) -> list[dict]:
    answer = await permits.get(f"/permits/{permit_id}/letters", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["letters"]


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


async def test_three_warnings_and_a_freeze_each_have_a_numbered_letter_the_company_downloads(permits, platform):
    permit = await issued_permit(permits)
    pid, number = permit["permit_id"], permit["permit_number"]
    warnings = await warned_three_times(permits, platform, permit)

    frozen = await permits.post(f"/permits/{pid}/freeze", headers=OPERATOR, json={
        "reason": "Pabrik tetap beroperasi tanpa laporan", "ground": {"code": "other"}})
    assert frozen.status_code == 200, frozen.text
    letters = await letters_of(permits, pid, COMPANY)
    assert [(le["number"], le["kind"], le["ground"]) for le in letters] == [
        (f"{number}/SP-1", "warning", "missed_reports"), (f"{number}/SP-2", "warning", "missed_reports"),
        (f"{number}/SP-3", "warning", "missed_reports"), (f"{number}/SPB-1", "freeze", "other")]
    assert [le["periods"][0]["deadline"] for le in letters[:3]] == [d.isoformat() for d in DEADLINES]
    assert letters[0]["periods"][0]["period_id"] == warnings[0].data["period_id"]
    assert letters[0]["download"] == f"/permits/{pid}/letters/SP-1"

    # The company, the operators and the Jawa Barat task force download it; the file is named for it.
    for headers in (COMPANY, OPERATOR, TASK_FORCE):
        answer = await permits.get(f"/permits/{pid}/letters/SP-3", headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/pdf"
        assert answer.headers["content-disposition"] == f'attachment; filename="{number}_SP-3.pdf"'
    text = text_of(answer.content)
    for expected in ("SURAT PERINGATAN", f"Nomor: {number}/SP-3", "Tanggal: 10 Juli 2021", f"Nomor izin: {number}",
                     "PT Garmen Cikarang", "Kabupaten Bekasi", "Jumat, 9 Juli 2021 pukul 23.59 WIB",
                     "peringatan ke-3 berturut-turut", "Tidak menyampaikan laporan pelaksanaan IOMKI"):
        assert expected in text, expected


async def test_a_letter_is_the_same_pdf_by_id_by_number_and_whole_number_and_its_qr_token_verifies(
        permits, platform):
    permit = await issued_permit(permits)
    pid, number = permit["permit_id"], permit["permit_number"]
    await warned_three_times(permits, platform, permit)
    letter = (await letters_of(permits, pid))[1]

    by_id, by_number, whole = [await permits.get(f"/permits/{pid}/letters/{ref}", headers=COMPANY)
                               for ref in (letter["letter_id"], "SP-2", f"{number}/SP-2")]
    assert by_id.status_code == by_number.status_code == whole.status_code == 200
    assert by_id.content == by_number.content == whole.content  # printed again, the same bytes

    reader = pypdf.PdfReader(io.BytesIO(by_id.content))
    images = [image for page in reader.pages for image in page.images]
    assert len(images) == 1  # the QR, which an officer's device scans
    scanned = zxingcpp.read_barcodes(Image.open(io.BytesIO(images[0].data)))
    assert [code.format for code in scanned] == [zxingcpp.BarcodeFormat.QRCode]
    token = scanned[0].text
    assert token == re.sub(r"\s+", "", text_of(by_id.content).split("Token:", 1)[1])  # printed beside it too
    keys = (await permits.get("/registry/keys")).json()["keys"]
    claims = registry_tokens.verify(token, registry_tokens.public_key_from_text(keys[0]["x"]))
    assert (claims.permit_number, claims.company_name) == (number, "PT Garmen Cikarang")
    assert token == (await permits.get(f"/registry/{number}")).json()["token"]


async def test_the_sanction_letter_lists_the_warned_periods_and_reaches_the_internal_topic_with_its_pdf(
        permits, platform):
    permit = await issued_permit(permits)
    pid, number = permit["permit_id"], permit["permit_number"]
    await warned_three_times(permits, platform, permit)
    revoked = await permits.post(f"/permits/{pid}/revoke", headers=OPERATOR, json={
        "reason": "masker tidak dipakai", "ground": {"code": "inspection_finding",
                                                     "evidence": {"finding": "BAP-32.16/2021/017"}}})
    assert revoked.status_code == 200, revoked.text
    letter = (await letters_of(permits, pid))[-1]
    assert (letter["number"], letter["ground"], letter["periods"]) == (f"{number}/SPC-1", "inspection_finding", [])
    pdf = (await permits.get(f"/permits/{pid}/letters/SPC-1", headers=COMPANY)).content
    text = text_of(pdf)
    assert "SURAT PENCABUTAN IOMKI" in text and "Pelanggaran protokol kesehatan" in text
    assert "masker tidak dipakai" in text and "24 Juli 2021" in text  # may apply again 14 days on

    messages = await read_topic(platform.bootstrap, "iomki.internal.contacts", until=lambda ms: any(
        letter["letter_id"].encode() in m.value for m in ms))
    sent = [decode(m.value) for m in messages if letter["letter_id"].encode() in m.value]
    event = sent[0].event
    assert (event.letter_number, event.kind.value, event.cause_type) == (  # type: ignore[attr-defined]
        f"{number}/SPC-1", "revocation", "PermitRevoked")
    assert base64.b64decode(event.pdf_base64) == pdf  # type: ignore[attr-defined]
    published = await read_topic(platform.bootstrap, "iomki.permits", until=lambda ms: any(
        str(event.cause_event_id).encode() in m.value for m in ms))  # type: ignore[attr-defined]
    revocation = next(decode(m.value) for m in published if str(event.cause_event_id).encode() in m.value)
    assert revocation.envelope.type == "iomki.PermitRevoked.v1" and sent[0].envelope.causationid == str(
        revocation.envelope.id)


async def test_another_company_or_region_does_not_find_the_letters_and_a_bad_reference_is_named(permits, platform):
    permit = await issued_permit(permits)
    pid = permit["permit_id"]
    await permits.post(f"/permits/{pid}/freeze", headers=OPERATOR, json={
        "reason": "atas permintaan perusahaan", "ground": {"code": "company_request"}})
    assert (await permits.get(f"/permits/{pid}/letters/SPB-1", headers=COMPANY)).status_code == 200
    for outsider in (bearer("company", nib=COMPETITOR), bearer("task_force", region="33")):
        for path in (f"/permits/{pid}/letters", f"/permits/{pid}/letters/SPB-1"):
            assert (await permits.get(path, headers=outsider)).status_code == 404, (outsider, path)
    assert (await permits.get(f"/permits/{pid}/letters/SPB-2", headers=COMPANY)).status_code == 404
    assert (await permits.get(f"/permits/{pid}/letters/{uuid.uuid4()}", headers=COMPANY)).status_code == 404
    elsewhere = await permits.get(f"/permits/{pid}/letters/IOMKI-1999-000001/SPB-1", headers=COMPANY)
    assert elsewhere.status_code == 404  # another permit's number
    for bad in ("SPX-1", "SP-%EF%BC%91", "..%2F..%2Fetc", "SP-0x1", "IOMKI-2021-000001%2FSP-1%2FSP-1"):
        answer = await permits.get(f"/permits/{pid}/letters/{bad}", headers=COMPANY)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["errors"][0]["field"] == "letter", answer.text
    assert (await permits.get(f"/permits/{pid}/letters", headers=bearer("agency"))).status_code == 403


async def test_a_capacity_breach_warning_states_the_breach_and_repeated_breaches_freeze_on_the_capacity_ground(
        permits, platform):
    """The reports service warns twice of staff on site over the PPKM cap, then recommends a freeze on repeated
    breaches: the warnings follow the missed-report warning in the SP sequence and say what was breached and when;
    the freeze rests on the capacity ground, its breaches its evidence, and its letter lists their periods."""
    permit = await issued_permit(permits)
    pid, number = permit["permit_id"], permit["permit_number"]
    about = dict(facility_id=permit["facility_id"], province_code="32", regency_code="32.16", permit_id=pid)
    missed = Envelope.wrap(WarningIssued(**about, warning_id=uuid.uuid4(), period_id=uuid.uuid4(),
                                         deadline=DEADLINES[0], consecutive=1), service="reports")
    breaches = [Envelope.wrap(WarningIssued(
        **about, warning_id=uuid.uuid4(), period_id=uuid.uuid4(), deadline=deadline, consecutive=n,
        cause=WarningCause.CAPACITY_BREACH, breach_id=uuid.uuid4()), service="reports")
        for n, deadline in enumerate(DEADLINES[1:], start=1)]
    await publish(platform.bootstrap, missed, *breaches)
    await until(lambda: letters_of(permits, pid), lambda found: len(found) == 3)

    letters = await letters_of(permits, pid, COMPANY)
    assert [(le["number"], le["ground"]) for le in letters] == [
        (f"{number}/SP-1", "missed_reports"), (f"{number}/SP-2", "capacity_breaches"),
        (f"{number}/SP-3", "capacity_breaches")]
    text = text_of((await permits.get(f"/permits/{pid}/letters/SP-3", headers=COMPANY)).content)
    for expected in ("SURAT PERINGATAN", f"Nomor: {number}/SP-3", "Jumlah pekerja di lokasi melampaui batas PPKM",
                     "Jumat, 9 Juli 2021 pukul 23.59 WIB", "peringatan ke-2", "over the PPKM cap"):
        assert expected in text, expected
    assert "belum diterima" not in text and "Tidak menyampaikan laporan" not in text
    assert text.index("melampaui batas PPKM") < text.index("over the PPKM cap")  # Bahasa Indonesia first

    evidence = [b.data["breach_id"] for b in breaches]
    await publish(platform.bootstrap, Envelope.wrap(SanctionRecommended(
        **about, action=SanctionAction.FREEZE, rule="RepeatedCapacityBreaches", ladder="PPKM",
        ground=GroundCode.CAPACITY_BREACHES, evidence=SanctionEvidence(
            missed_periods=[], warnings=[b.data["warning_id"] for b in breaches], breaches=evidence)),
        service="reports"))
    await until(lambda: letters_of(permits, pid), lambda found: len(found) == 4)

    history = (await permits.get(f"/permits/{pid}/history", headers=OPERATOR)).json()["transitions"]
    ground = history[-1]["ground"]
    assert (history[-1]["action"], history[-1]["actor"], ground["code"], ground["ladder"], ground["rule"]) == (
        "freeze", "reports", "capacity_breaches", "PPKM", "RepeatedCapacityBreaches")
    assert ground["evidence"]["breaches"] == evidence
    letter = (await letters_of(permits, pid))[-1]
    assert (letter["number"], letter["ground"]) == (f"{number}/SPB-1", "capacity_breaches")
    assert [p["period_id"] for p in letter["periods"]] == [b.data["period_id"] for b in breaches]
    text = text_of((await permits.get(f"/permits/{pid}/letters/SPB-1", headers=COMPANY)).content)
    for expected in ("SURAT PEMBEKUAN IOMKI", "Berulang kali melampaui batas jumlah pekerja di lokasi pada masa PPKM",
                     "jumlah pekerja di lokasi berulang kali melampaui batas PPKM",
                     "Jumat, 2 Juli 2021 pukul 23.59 WIB", "Jumat, 9 Juli 2021 pukul 23.59 WIB"):
        assert expected in text, expected
    assert re.search(r"Ketentuan\s*PPKM", text)  # the capacity ladder, not a circular


async def test_an_issued_permit_has_a_certificate_with_the_registry_qr_read_as_its_letters_are(permits):
    permit = await issued_permit(permits)
    pid, number = permit["permit_id"], permit["permit_number"]
    for headers in (COMPANY, OPERATOR, TASK_FORCE):
        answer = await permits.get(f"/permits/{pid}/certificate", headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/pdf"
        assert answer.headers["content-disposition"] == f'attachment; filename="{number}_sertifikat.pdf"'
        assert answer.content.startswith(b"%PDF")
    text = " ".join(text_of(answer.content).split())  # lines wrapped as the page is wide
    for expected in ("SERTIFIKAT IZIN OPERASIONAL", f"Nomor: {number}", "PT Garmen Cikarang", NIB,
                     "Pabrik Jababeka", "Jababeka Blok", "Kabupaten Bekasi", "Jawa Barat", "Sektor",
                     "Tanggal terbit: 10 Juli 2021", f"Certificate of permit {number}"):
        assert expected in text, expected
    assert text.index("Kementerian Perindustrian menerangkan") < text.index("The Ministry of Industry certifies")
    images = [image for page in pypdf.PdfReader(io.BytesIO(answer.content)).pages for image in page.images]
    scanned = zxingcpp.read_barcodes(Image.open(io.BytesIO(images[0].data)))
    assert scanned[0].text == (await permits.get(f"/registry/{number}")).json()["token"]  # the registry's own code

    for outsider in (bearer("company", nib=COMPETITOR), bearer("task_force", region="33")):
        assert (await permits.get(f"/permits/{pid}/certificate", headers=outsider)).status_code == 404
    assert (await permits.get(f"/permits/{pid}/certificate", headers=bearer("agency"))).status_code == 403

    frozen = await permits.post(f"/permits/{pid}/freeze", headers=OPERATOR, json={
        "reason": "atas permintaan perusahaan", "ground": {"code": "company_request"}})
    assert frozen.status_code == 200, frozen.text
    refused = await permits.get(f"/permits/{pid}/certificate", headers=COMPANY)
    assert refused.status_code == 409 and refused.json()["current_status"] == "FROZEN"
    assert "only for an issued permit" in refused.json()["detail"]
    applied = await permits.post("/permits", headers=COMPANY, json={
        "company": {"nib": NIB, "npwp": "01.234.567.8-901.000", "name": "PT Garmen Cikarang"},
        "facility": {"name": "Pabrik Baru", "address": f"Jababeka Blok {uuid.uuid4().hex[:8]}",
                     "province_code": "32", "regency_code": "32.16"},
        "kbli": ["14111"], "workforce": {"total": 60, "on_site_per_shift": [30]},
        "health_protocol_commitment": True})
    waiting = await permits.get(f"/permits/{applied.json()['permit_id']}/certificate", headers=COMPANY)
    assert waiting.status_code == 409 and waiting.json()["current_status"] == "SUBMITTED"
