"""The console as people use it, in Debian's Chromium: the services, the development Keycloak and the console as
processes, as `make run` starts them. Each page is checked with axe-core and kept as a screenshot in both languages
under the test artifacts (`.data/test-artifacts/console/`)."""

from __future__ import annotations

import asyncio
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
