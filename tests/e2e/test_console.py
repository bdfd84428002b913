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
