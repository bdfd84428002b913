"""The console as people use it, in Debian's Chromium: the services, the development Keycloak and the console as
processes, as `make run` starts them. Each page is checked with axe-core and kept as a screenshot in both languages
under the test artifacts (`.data/test-artifacts/console/`)."""

from __future__ import annotations

import asyncio
from datetime import date
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support.issued_permits import APPLICATION, issued_permit
from tests.support.oidc import sample_password
from tests.support.platform import ROOT, bearer
from tests.support.processes import ARTIFACTS, RunningServices, running_platform
from tests.support.waiting import until
from tooling.embedded_keycloak import EmbeddedKeycloak
from tooling.ports import free_port

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE_VERSION = "4.14.1"
AXE_HOME = ROOT / ".data" / "npm"
AXE = AXE_HOME / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ARTIFACTS / "console"
LOCALES = ("id", "en")


def axe_core() -> Path:
    """axe-core from npm, fetched once under the data directory."""
    if not AXE.exists():
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",  # noqa: S603,S607 -- fixed arguments
                        "--prefix", str(AXE_HOME), f"axe-core@{AXE_VERSION}"], check=True, timeout=300)
    return AXE


@dataclass
class Scene:
    keycloak: EmbeddedKeycloak
    services: RunningServices
    console: str
    browser: Browser
    http: httpx.AsyncClient

    async def page(self, locale: str = "id") -> Page:
        """A fresh browser context (no cookies), reading in `locale` (the console's language link sets it)."""
        context = await self.browser.new_context(bypass_csp=True,  # axe-core is injected into each page
                                                 viewport={"width": 390, "height": 844})  # a phone first
        if locale != "id":
            await context.add_cookies([{"name": "iomki_bahasa", "value": locale, "url": self.console}])
        return await context.new_page()

    async def sign_in(self, page: Page, username: str) -> None:
        await page.goto(f"{self.console}/")
        await page.locator("header").get_by_role("link", name="Masuk").or_(
            page.locator("header").get_by_role("link", name="Sign in")).click()
        await page.locator("#username").fill(username)
        await page.locator("#password").fill(sample_password(username))
        await page.locator("#kc-login").click()
        await page.wait_for_url(f"{self.console}/**")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scene(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scene]:
    axe_core()
    keycloak = EmbeddedKeycloak(tmp_path_factory.mktemp("keycloak"), cache_dir=ROOT / ".data")
    try:
        await asyncio.to_thread(keycloak.start)
        # As `make run`: the provider's tokens (people at the console) beside the development secret's (the test's).
        trusted = {"IOMKI_OIDC_ISSUER": keycloak.issuer, "IOMKI_OIDC_AUDIENCE": "iomki"}
        async with running_platform("console", trusted) as services, async_playwright() as playwright, \
                httpx.AsyncClient(timeout=30) as http:
            services.ports["console"] = free_port()
            console = services.url("console")
            services.overrides["IOMKI_CONSOLE_URL"] = console
            services.start("console")
            await services.wait_ready()
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                yield Scene(keycloak, services, console, browser, http)
            finally:
                await browser.close()
    finally:
        await asyncio.to_thread(keycloak.stop)


async def checked(page: Page, name: str) -> None:
    """axe-core finds no violation of WCAG 2 A/AA on the page, and the page is kept as a screenshot."""
    await page.add_script_tag(path=str(AXE))
    results: dict[str, Any] = await page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})")
    violations = [(v["id"], v["help"], [node["target"] for node in v["nodes"]][:3]) for v in results["violations"]]
    SHOTS.mkdir(parents=True, exist_ok=True)
    locale = await page.evaluate("document.documentElement.lang")
    await page.screenshot(path=str(SHOTS / f"{name}-{locale}.png"), full_page=True)
    assert violations == [], f"{name} ({locale}): {violations}"


async def test_an_officer_checks_a_permit_by_its_number_and_by_its_scanned_code_without_signing_in(scene: Scene):
    application = APPLICATION | {"company": APPLICATION["company"] | {"nib": "8120000960001", "name": "PT Gerbang"},
                                 "facility": APPLICATION["facility"] | {"regency_code": "32.04"}}
    await issued_permit(scene.http, scene.services, application)
    numbered = await scene.http.get(f"{scene.services.url('permits')}/permits", params={"nib": "8120000960001"},
                                    headers=bearer("operator"))
    number = numbered.json()["items"][0]["permit_number"]
    token = (await scene.http.get(f"{scene.services.url('permits')}/registry/{number}")).json()["token"]

    for locale, valid, field_label, check in (("id", "Berlaku: pabrik ini boleh beroperasi",
                                               "Nomor izin, atau teks kode QR-nya", "Periksa"),
                                              ("en", "Valid: this plant may operate",
                                               "Permit number, or the text of its QR code", "Check")):
        page = await scene.page(locale)
        await page.goto(f"{scene.console}/verify")
        await checked(page, "verify-form")
        await page.get_by_label(field_label).fill(number)
        await page.get_by_role("button", name=check, exact=True).click()
        await expect(page.get_by_role("heading", name=valid)).to_be_visible()
        await expect(page.locator(".verdict")).to_contain_text("PT Gerbang")
        await checked(page, "verify-valid")

        await page.get_by_label(field_label).fill(token)  # what the camera reads from the printed QR
        await page.get_by_role("button", name=check, exact=True).click()
        await expect(page.get_by_role("heading", name=valid)).to_be_visible()
        await expect(page.locator(".signature")).to_contain_text("dipindai" if locale == "id" else "scanned")

        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        await page.get_by_label(field_label).fill(forged)
        await page.get_by_role("button", name=check, exact=True).click()
        await expect(page.locator("#code-error")).to_contain_text("IOMKI")
        await expect(page.get_by_label(field_label)).to_have_attribute("aria-invalid", "true")
        await checked(page, "verify-forged")
        await page.context.close()


async def test_a_person_signs_in_at_the_provider_reads_in_either_language_and_signing_out_ends_both_sessions(
        scene: Scene):
    page = await scene.page()
    await page.goto(f"{scene.console}/")
    await checked(page, "start")
    await scene.sign_in(page, "satgas-bekasi")
    await expect(page.get_by_role("heading", name="Selamat datang, Satgas Kabupaten Bekasi")).to_be_visible()
    await expect(page.locator(".who")).to_contain_text("gugus tugas · 32.16")
    cookies = {cookie["name"]: cookie for cookie in await page.context.cookies(scene.console)}
    session = cookies["iomki_console"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    await checked(page, "start-signed-in")

    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name="Welcome, Satgas Kabupaten Bekasi")).to_be_visible()
    await expect(page.locator(".who")).to_contain_text("task force · 32.16")
    await checked(page, "start-signed-in")

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{scene.console}/")
    await expect(page.locator("header").get_by_role("link", name="Sign in")).to_be_visible()
    # The provider's session ended too: signing in again asks for the password.
    await page.locator("header").get_by_role("link", name="Sign in").click()
    await expect(page.locator("#password")).to_be_visible()
    await page.context.close()


async def test_a_form_posted_without_the_sessions_csrf_token_changes_nothing(scene: Scene):
    page = await scene.page()
    await scene.sign_in(page, "operator")
    cookies = {cookie["name"]: cookie["value"] for cookie in await page.context.cookies(scene.console)}
    async with httpx.AsyncClient(cookies=cookies, follow_redirects=False) as forger:
        forged = await forger.post(f"{scene.console}/logout", data={"csrf": "not-the-sessions"})
    assert forged.status_code == 303 and forged.headers["location"] == "/"
    await page.goto(f"{scene.console}/")
    await expect(page.get_by_role("button", name="Keluar")).to_be_visible()  # still signed in
    await page.context.close()


async def test_an_operator_finds_an_application_in_the_worklist_issues_it_and_freezes_it_on_a_ground(scene: Scene):
    application = APPLICATION | {"company": APPLICATION["company"] | {"nib": "8120000960002", "name": "PT Antrian"},
                                 "facility": APPLICATION["facility"] | {"province_code": "33",
                                                                        "regency_code": "33.74"}}
    applied = await scene.http.post(f"{scene.services.url('permits')}/permits", json=application,
                                    headers=bearer("company", nib="8120000960002"))
    assert applied.status_code == 201, applied.text
    page = await scene.page()
    await scene.sign_in(page, "operator")
    await page.goto(f"{scene.console}/worklists?queue=applications&region=33.74")
    await checked(page, "operator-worklist")
    await page.get_by_role("link", name="PT Antrian").click()
    await expect(page.get_by_role("heading", name="Putuskan permohonan")).to_be_visible()
    await checked(page, "operator-file-submitted")

    await page.get_by_role("button", name="Simpan keputusan").click()  # no reason: refused beside the field
    await expect(page.locator("#decision-reason")).to_have_attribute("aria-invalid", "true")
    await page.get_by_label("Terbitkan izin").check()
    await page.get_by_label("Alasan (ditampilkan kepada perusahaan)").fill("Dokumen lengkap")
    await page.get_by_role("button", name="Simpan keputusan").click()
    await expect(page.get_by_text("Izin telah diterbitkan.")).to_be_visible()

    await page.locator("#ground-code").select_option("other")
    await page.get_by_label("Alasan (dikutip dalam surat)").fill("Pelanggaran berulang")
    await page.get_by_role("button", name="Bekukan izin").click()
    await expect(page.get_by_text("Izin telah dibekukan.")).to_be_visible()
    await checked(page, "operator-file-frozen")
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_text("frozen").first).to_be_visible()
    await checked(page, "operator-file-frozen")
    await page.goto(f"{scene.console}/search?nib=8120000960002")
    await expect(page.get_by_role("link", name="PT Antrian")).to_be_visible()
    await checked(page, "operator-search")
    await page.context.close()


async def test_a_task_force_acknowledges_its_regions_alert_on_a_phone(scene: Scene):
    application = APPLICATION | {"company": APPLICATION["company"] | {"nib": "8120000960003", "name": "PT Sirene"}}
    _, facility_id = await issued_permit(scene.http, scene.services, application)
    case = {"facility_id": facility_id, "case_ref": "C-KONSOL-1", "confirmed_on": date.today().isoformat(),
            "symptomatic": False, "close_contacts": 0}

    async def entered() -> httpx.Response:
        return await scene.http.post(f"{scene.services.url('incidents')}/cases", json=case,
                                     headers=bearer("company", nib="8120000960003"))
    await until(entered, lambda response: response.status_code == 201, "the incidents service to take the case")

    async def open_alerts() -> list[dict[str, Any]]:
        response = await scene.http.get(f"{scene.services.url('notifier')}/alerts", params={"status": "open"},
                                        headers=bearer("task_force", region="32.16"))
        return list(response.json()["alerts"])
    await until(open_alerts, bool, "an open alert for Kabupaten Bekasi")

    page = await scene.page()
    await scene.sign_in(page, "satgas-bekasi")
    await page.goto(f"{scene.console}/alerts")
    await expect(page.get_by_role("heading", name="Peringatan terbuka di wilayah Anda")).to_be_visible()
    await checked(page, "task-force-alerts")
    await page.get_by_role("button", name="Konfirmasi diterima").first.click()
    await expect(page.get_by_text("Penerimaan peringatan telah dikonfirmasi")).to_be_visible()
    await checked(page, "task-force-alert-acknowledged")
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name="Open alerts in your region")).to_be_visible()
    await checked(page, "task-force-alerts")
    await page.goto(f"{scene.console}/recommendations")
    await checked(page, "task-force-recommendations")
    await page.goto(f"{scene.console}/closures")
    await checked(page, "task-force-closures")
    await page.context.close()


COMPANY_NIB = "8120000123456"  # the sample user `perusahaan`'s


async def test_a_company_applies_for_a_plants_permit_and_files_its_weekly_report_from_a_kept_draft(scene: Scene):
    page = await scene.page()
    await scene.sign_in(page, "perusahaan")
    await page.goto(f"{scene.console}/apply")
    await checked(page, "company-apply")
    npwp = page.get_by_label("NPWP", exact=True)
    await npwp.fill("12.34")  # the browser says so as it is typed: the pattern does not match
    assert await npwp.evaluate("input => input.validity.patternMismatch")
    await npwp.fill("01.234.567.8-901.000")
    assert await npwp.evaluate("input => input.validity.valid")
    await page.get_by_label("Nama perusahaan", exact=True).fill("PT Uji Perusahaan")
    await page.get_by_label("Nama pabrik", exact=True).fill("Pabrik Konsol Bekasi")
    await page.get_by_label("Alamat pabrik", exact=True).fill("Jl. Konsol Raya No. 1, Bekasi")
    # The regency list follows the province chosen: Central Java's cities are not offered for West Java.
    await page.get_by_label("Provinsi", exact=True).select_option("32")
    regency = page.get_by_label("Kabupaten/kota", exact=True)
    assert await regency.locator("option[value='33.74']").evaluate("option => option.parentElement.disabled")
    await regency.select_option("32.75")
    await page.get_by_label("Kode KBLI", exact=True).fill("20111")
    await page.get_by_label("Jumlah pekerja", exact=True).fill("200")
    await page.get_by_label("Pekerja di lokasi per sif", exact=True).fill("40, 30")
    await page.get_by_role("button", name="Kirim permohonan").click()  # the commitment unticked
    await expect(page.locator("#f-health_protocol_commitment")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Alamat pabrik", exact=True)).to_have_value("Jl. Konsol Raya No. 1, Bekasi")
    await expect(regency).to_have_value("32.75")  # what was chosen is kept
    await checked(page, "company-apply-refused")
    await page.get_by_label("Perusahaan berkomitmen menerapkan protokol kesehatan di pabrik.").check()
    await page.get_by_role("button", name="Kirim permohonan").click()
    await expect(page.get_by_text("Permohonan Anda telah diajukan. Kementerian akan memutuskannya.")).to_be_visible()
    await checked(page, "company-plant-applied")
    permit_id = page.url.split("/plants/")[1].split("?")[0]

    permits = scene.services.url("permits")
    issued = await scene.http.post(f"{permits}/permits/{permit_id}/decision", headers=bearer("operator"),
                                   json={"decision": "issue", "reason": "Dokumen lengkap"})
    assert issued.status_code == 200, issued.text

    async def schedule() -> httpx.Response:  # the reports service opens the first period as it hears of the issue
        return await scene.http.get(f"{scene.services.url('reports')}/schedules/{permit_id}",
                                    headers=bearer("company", nib=COMPANY_NIB))
    await until(schedule, lambda r: r.status_code == 200 and any(
        p["status"] == "open" for p in r.json()["periods"]), "an open reporting period for the new permit")

    await page.goto(f"{scene.console}/plants")
    await checked(page, "company-plants")
    await page.get_by_role("link", name="Pabrik Konsol Bekasi").click()
    await expect(page.get_by_text("diterbitkan").first).to_be_visible()
    await page.get_by_role("link", name="Sampaikan laporan mingguan").click()
    await checked(page, "company-report")
    for label, value in (("Jumlah pekerja", "200"), ("Di lokasi, sif 1", "40"), ("Di lokasi, sif 2", "30"),
                         ("Pekerja yang telah menerima dosis pertama", "200"),
                         ("Pekerja yang telah menerima dosis kedua", "190"),
                         ("Pekerja yang telah menerima dosis penguat", "120"),
                         ("Tes PCR pada periode ini", "5"), ("Tes antigen pada periode ini", "40"),
                         ("Pekerja dalam pemantauan (ODP)", "0"), ("Pekerja dalam pengawasan (PDP)", "0"),
                         ("Pekerja baru terkonfirmasi positif sejak laporan sebelumnya", "0")):
        await page.get_by_label(label, exact=True).fill(value)
    await page.get_by_label("Bus perusahaan", exact=True).check()
    await page.get_by_label("Suhu tubuh diperiksa di gerbang", exact=True).check()
    await page.get_by_label("Semua orang memakai masker", exact=True).check()

    await page.reload()  # the draft is kept in the browser: nothing typed is lost
    await expect(page.locator("#draft-status")).to_have_attribute("data-restored", "yes")
    await expect(page.get_by_label("Tes antigen pada periode ini", exact=True)).to_have_value("40")
    await expect(page.get_by_label("Di lokasi, sif 2", exact=True)).to_have_value("30")
    await expect(page.get_by_label("Bus perusahaan", exact=True)).to_be_checked()
    await page.get_by_label("Saya menyatakan bahwa data dalam laporan ini benar.").check()
    await page.get_by_role("button", name="Kirim laporan").click()
    await expect(page.get_by_role("status")).to_contain_text("Laporan Anda telah diterima")
    await expect(page.get_by_role("cell", name="dilaporkan tepat waktu")).to_be_visible()
    await checked(page, "company-plant-reported")
    assert await page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('iomki-report-draft'))") == []
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("cell", name="reported on time")).to_be_visible()
    await checked(page, "company-plant-reported")
    await page.context.close()


async def test_a_company_objects_to_a_freeze_and_asks_for_reactivation_and_an_operator_decides_both(scene: Scene):
    application = APPLICATION | {"company": APPLICATION["company"] | {"nib": COMPANY_NIB, "name": "PT Uji Perusahaan"},
                                 "facility": {"name": "Pabrik Beku Bekasi", "address": "Jl. Beku No. 9, Bekasi",
                                              "province_code": "32", "regency_code": "32.75"}}
    permit_id, _ = await issued_permit(scene.http, scene.services, application)
    frozen = await scene.http.post(f"{scene.services.url('permits')}/permits/{permit_id}/freeze",
                                   headers=bearer("operator"), json={
                                       "ground": {"code": "other", "evidence": {}},
                                       "reason": "Protokol kesehatan dilanggar berulang kali"})
    assert frozen.status_code == 200, frozen.text

    company = await scene.page()
    await scene.sign_in(company, "perusahaan")
    await company.goto(f"{scene.console}/plants/{permit_id}")
    await expect(company.get_by_role("heading", name="Pengaktifan kembali dan keberatan")).to_be_visible()
    await checked(company, "company-plant-frozen")
    await company.get_by_label("Alasan keputusan tersebut keliru").fill(
        "Pelanggaran yang disebutkan telah kami perbaiki sebelum pembekuan dijatuhkan.")
    await company.get_by_role("button", name="Ajukan keberatan ini").click()
    await expect(company.get_by_text("Keberatan Anda telah diajukan.")).to_be_visible()

    corrective = company.get_by_label("Tindakan perbaikan yang telah dilakukan")
    await corrective.fill("Sudah diperbaiki")  # too short: refused beside the field, kept as typed
    await company.get_by_role("button", name="Ajukan pengaktifan kembali").click()
    await expect(corrective).to_have_attribute("aria-invalid", "true")
    await expect(corrective).to_have_value("Sudah diperbaiki")
    await expect(company.locator("#f-corrective_action-error")).to_contain_text("30")
    await checked(company, "company-reactivation-refused")
    await corrective.fill("Kami memasang tempat cuci tangan di setiap lini dan memeriksa suhu semua pekerja.")
    await company.get_by_role("button", name="Ajukan pengaktifan kembali").click()
    await expect(company.get_by_role("status")).to_contain_text("Permohonan pengaktifan kembali Anda telah diajukan")
    await checked(company, "company-casework-filed")

    operator = await scene.page()
    await scene.sign_in(operator, "operator")
    await operator.goto(f"{scene.console}/worklists?queue=objections&region=32.75")
    await checked(operator, "operator-worklist-objections")
    await operator.get_by_role("link", name="PT Uji Perusahaan").first.click()
    await expect(operator.get_by_role("heading", name="Putuskan keberatan")).to_be_visible()
    await expect(operator.get_by_text("Protokol kesehatan dilanggar berulang kali")).to_be_visible()
    await checked(operator, "operator-objection")
    await operator.get_by_label("Pertahankan sanksi: sanksi tetap berlaku").check()
    await operator.get_by_label("Alasan (ditampilkan kepada perusahaan)").fill("Pelanggaran tercatat dalam inspeksi")
    await operator.get_by_role("button", name="Simpan keputusan").click()
    await expect(operator.get_by_text("Keputusan atas keberatan telah disimpan.")).to_be_visible()

    await operator.goto(f"{scene.console}/worklists?queue=reactivation&region=32.75")
    await checked(operator, "operator-worklist-reactivation")
    await operator.get_by_role("link", name="PT Uji Perusahaan").first.click()
    await expect(operator.get_by_role("heading", name="Putuskan permohonan ini")).to_be_visible()
    await checked(operator, "operator-reactivation")
    await operator.get_by_label("Setujui: aktifkan kembali izin").check()
    await operator.get_by_role("button", name="Simpan keputusan").click()  # no reason: the browser asks for one
    assert await operator.locator("#decision-reason").evaluate("area => area.validity.valueMissing")
    await operator.get_by_label("Alasan (ditampilkan kepada perusahaan)").fill("Perbaikan telah diverifikasi")
    await operator.get_by_role("button", name="Simpan keputusan").click()
    await expect(operator.get_by_text("Permohonan pengaktifan kembali telah disetujui")).to_be_visible()
    await checked(operator, "operator-file-reactivated")
    await operator.get_by_role("link", name="English").click()
    await expect(operator.get_by_role("cell", name="approved: the permit is reactivated")).to_be_visible()
    await checked(operator, "operator-file-reactivated")
    await operator.context.close()

    await company.reload()
    await expect(company.get_by_role("cell", name="disetujui: izin diaktifkan kembali")).to_be_visible()
    await expect(company.get_by_role("cell", name="Perbaikan telah diverifikasi").first).to_be_visible()
    await expect(company.get_by_role("cell", name="ditolak: sanksi tetap berlaku")).to_be_visible()
    await checked(company, "company-casework-decided")
    await company.get_by_role("link", name="English").click()
    await expect(company.get_by_role("cell", name="approved: the permit is reactivated")).to_be_visible()
    await checked(company, "company-casework-decided")
    await company.context.close()


async def test_an_operator_reads_the_platforms_figures_on_the_dashboard(scene: Scene):
    application = APPLICATION | {"company": APPLICATION["company"] | {"nib": "8120000960004", "name": "PT Dasbor"},
                                 "facility": APPLICATION["facility"] | {"province_code": "35",
                                                                        "regency_code": "35.78"}}
    applied = await scene.http.post(f"{scene.services.url('permits')}/permits", json=application,
                                    headers=bearer("company", nib="8120000960004"))
    assert applied.status_code == 201, applied.text
    page = await scene.page()
    await scene.sign_in(page, "operator")
    await page.locator("header").get_by_role("link", name="Dasbor").click()
    await expect(page.get_by_role("heading", name="Dasbor", exact=True)).to_be_visible()
    province = page.locator("[data-test=province-35]")
    await expect(province).to_contain_text("Jawa Timur (35)")
    await expect(province.locator("td").first).to_have_text("1")  # submitted, awaiting the ministry
    await expect(page.get_by_role("heading", name="Izin menurut status")).to_be_visible()
    await checked(page, "operator-dashboard")
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name="Permits by state")).to_be_visible()
    await expect(page.locator("[data-test=total-SUBMITTED]")).to_contain_text("Submitted")
    await checked(page, "operator-dashboard")
    await page.context.close()


async def test_a_task_force_follows_its_regions_cases_and_clusters_on_a_phone(scene: Scene):
    application = APPLICATION | {"company": APPLICATION["company"] | {"nib": "8120000960005", "name": "PT Klaster"}}
    _, facility_id = await issued_permit(scene.http, scene.services, application)
    case = {"facility_id": facility_id, "case_ref": "C-KONSOL-2", "confirmed_on": date.today().isoformat(),
            "symptomatic": False, "close_contacts": 0}

    async def entered() -> httpx.Response:
        return await scene.http.post(f"{scene.services.url('incidents')}/cases", json=case,
                                     headers=bearer("company", nib="8120000960005"))
    await until(entered, lambda response: response.status_code == 201, "the incidents service to take the case")

    page = await scene.page()
    await scene.sign_in(page, "satgas-bekasi")
    await page.locator("header").get_by_role("link", name="Kasus dan klaster").click()
    await expect(page.get_by_role("heading", name="Kasus dan klaster di wilayah Anda")).to_be_visible()
    plant = page.locator("article").filter(has_text="PT Klaster")
    await expect(plant).to_contain_text("Sedang isolasi")  # the case's worker (a first case closes a room too)
    await expect(page.get_by_role("heading", name="Pelacakan kontak")).to_be_visible()
    await expect(page.get_by_role("heading", name="Kepatuhan pelaporan")).to_be_visible()
    await checked(page, "task-force-incidents")
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name="Cases and clusters in your region")).to_be_visible()
    await expect(page.locator("article").filter(has_text="PT Klaster")).to_contain_text("In isolation")
    await checked(page, "task-force-incidents")
    await page.context.close()
