"""The operators' dashboard as a person sees it: the five services as processes, the page in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from tests.support.platform import bearer, token
from tests.support.processes import ARTIFACTS, RunningServices, running_platform
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OPERATOR = bearer("operator")

# Three plants in Jawa Barat (one is closed by a cluster), one in Jawa Tengah.
PLANTS = [("8120000500001", "32", "32.16", "issue"), ("8120000500002", "32", "32.04", "issue"),
          ("8120000500003", "32", "32.04", None), ("8120000500004", "33", "33.74", "issue"),
          ("8120000500005", "32", "32.04", "issue")]
FROZEN_ON_INSPECTION = "8120000500005"


def application(nib: str, province: str, regency: str) -> dict[str, Any]:
    return {
        "company": {"nib": nib, "npwp": "01.234.567.8-901.000", "name": f"PT Dasbor {nib[-1]}"},
        "facility": {"name": f"Pabrik {nib[-1]}", "address": f"Jl. Industri No. {nib[-2:]}",
                     "province_code": province, "regency_code": regency},
        "kbli": ["20111"], "sector_class": "essential",
        "workforce": {"total": 200, "on_site_per_shift": [100, 100]},
        "health_protocol_commitment": True,
    }


def report(permit_id: str, period_id: str) -> dict[str, Any]:
    return {"permit_id": permit_id, "period_id": period_id,
            "workforce": {"total": 200, "on_site_per_shift": [100, 100]},
            "odp": 0, "pdp": 0, "new_positives": 0, "isolating_workers": 0, "tests": {"pcr": 4, "antigen": 20},
            "vaccinated": {"dose1": 180, "dose2": 150, "booster": 40}, "transport_modes": ["company_bus"],
            "protocol_checklist": dict.fromkeys(("temperature_screening", "masks", "distancing", "ventilation",
                                                 "disinfection", "handwash_stations", "pedulilindungi_scan"),
                                                True),
            "declared_true": True}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services() -> AsyncIterator[RunningServices]:
    # Short reporting periods so compliance has deadlines to count; no warning within the test, so no sanction
    # changes a permit's state while the page is read.
    async with running_platform("dash", {"IOMKI_REPORT_REGIME": "every:6s", "IOMKI_WARNING_DELAY": "PT1H",
                                         "IOMKI_REPORT_DUE_LEAD": "PT1S"}) as running:
        yield running


async def record_level(services: RunningServices, regency: str, level: str, effective_from: date) -> None:
    """A PPKM level as an operator's entry in the reports service's store."""
    connection = await asyncpg.connect(services.platform.admin_url)
    try:
        await connection.execute(
            "INSERT INTO reports.ppkm_levels (level_id, region_code, province_code, level, effective_from,"
            " instruction, source, actor, recorded_at) VALUES ($1, $2, $3, $4, $5, 'Inmendagri 42/2021', 'operator',"
            " 'test', now())", uuid.uuid4(), regency, regency.split(".")[0], level, effective_from)
    finally:
        await connection.close()


class Visible(HTMLParser):
    """The rendered DOM's text, by `data-test` mark, and every marked element's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.attributes: dict[str, dict[str, str | None]] = {}
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for _, open_mark in self._open:  # an element boundary separates words, as it does on screen
            if open_mark:
                self.text[open_mark] += " "
        mark = dict(attrs).get("data-test")
        if mark:
            self.attributes[mark] = dict(attrs)
            self.text.setdefault(mark, "")
        if tag not in ("rect", "br", "meta", "link", "input", "img"):
            self._open.append((tag, mark))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, mark in self._open:
            if mark:
                self.text[mark] += data

    def within(self, prefix: str) -> dict[str, str]:
        return {mark: " ".join(text.split()) for mark, text in self.text.items() if mark.startswith(prefix)}


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 -- Debian's Chromium with fixed flags, on the test's own page
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--virtual-time-budget=8000", *extra, url],
        capture_output=True, text=True, timeout=120, check=True,
    )


async def test_the_dashboard_shows_permits_compliance_closures_and_alerts(services):
    permits, incidents, reports = services.url("permits"), services.url("incidents"), services.url("reports")
    async with httpx.AsyncClient(timeout=10) as http:
        ids: dict[str, dict[str, str]] = {}
        for nib, province, regency, decision in PLANTS:
            applied = await http.post(f"{permits}/permits", json=application(nib, province, regency),
                                      headers=bearer("company", nib=nib))
            assert applied.status_code == 201, applied.text
            ids[nib] = applied.json()
            if decision:
                decided = await http.post(f"{permits}/permits/{ids[nib]['permit_id']}/decision", headers=OPERATOR,
                                          json={"decision": decision, "reason": "documents complete"})
                assert decided.status_code == 200, decided.text
        frozen = await http.post(f"{permits}/permits/{ids[FROZEN_ON_INSPECTION]['permit_id']}/freeze",
                                 headers=OPERATOR, json={"reason": "masker tidak dipakai di lini produksi", "ground": {
                                     "code": "inspection_finding", "evidence": {"finding": "BAP-32.04/2026/001"}}})
        assert frozen.status_code == 200, frozen.text

        # A cluster: three linked confirmed cases at the first plant raise an alert; the task force closes it.
        closed_nib = PLANTS[0][0]
        closed_plant = ids[closed_nib]["facility_id"]
        case_ids = []
        for reference in ("C-DASH-1", "C-DASH-2", "C-DASH-3"):
            case = await until(lambda ref=reference: http.post(f"{incidents}/cases", headers=bearer(
                "company", nib=closed_nib), json={"facility_id": closed_plant, "case_ref": ref,
                                                   "confirmed_on": date.today().isoformat(), "symptomatic": True,
                                                   "symptom_onset_on": date.today().isoformat(),
                                                   "close_contacts": 4}),
                               lambda answer: answer.status_code != 404)
            assert case.status_code == 201, case.text
            case_ids.append(case.json()["case_id"])
        for case_id, other in zip(case_ids, case_ids[1:], strict=False):
            linked = await http.post(f"{incidents}/cases/{case_id}/links", headers=OPERATOR,
                                     json={"linked_case_id": other, "kind": "same_shift"})
            assert linked.status_code == 201, linked.text
        pending = await http.get(f"{incidents}/closure-recommendations", headers=OPERATOR,
                                 params={"status": "pending", "limit": 500})
        [recommendation] = [r for r in pending.json()["items"] if r["facility_id"] == closed_plant]
        ordered = await http.post(f"{incidents}/closure-recommendations/{recommendation['recommendation_id']}/order",
                                  headers=OPERATOR)
        assert ordered.status_code == 200, ordered.text
        await until(lambda: http.get(f"{services.url('notifier')}/alerts", headers=OPERATOR),
                    lambda answer: any(a["facility_id"] == closed_plant and a["event_type"] == "ClusterDeclared"
                                       for a in answer.json()["alerts"]))
        # Kota Bandung's regency 32.04 is at PPKM level 3 since yesterday, as an operator recorded it.
        await record_level(services, "32.04", "3", date.today() - timedelta(days=1))
        # One plant in Jawa Barat reports; nobody in Jawa Tengah does. Deadlines pass in both provinces.
        reporter_nib = PLANTS[1][0]
        reporter = ids[reporter_nib]["permit_id"]
        schedule = await until(lambda: http.get(f"{reports}/schedules/{reporter}", headers=OPERATOR),
                               lambda answer: answer.status_code == 200 and answer.json()["periods"])
        submitted = await http.post(f"{reports}/reports", headers=bearer("company", nib=reporter_nib),
                                    json=report(reporter, schedule.json()["periods"][-1]["period_id"]))
        assert submitted.status_code == 201, submitted.text
        checked = submitted.json()["capacity"]
        assert (checked["checked"], checked["level"]) == (True, "3")
        for province, reported in (("32", 1), ("33", 0)):
            await until(lambda p=province: http.get(f"{reports}/compliance", params={"province": p},
                                                    headers=OPERATOR),
                        lambda answer, r=reported: answer.json()["periods_due"] > 0
                        and answer.json()["reported"] == r)

    url = f"{permits}/dashboard#token={token('operator')}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    with tempfile.TemporaryDirectory() as profile:
        dom = chromium(url, Path(profile), "--dump-dom").stdout
        screenshot.unlink(missing_ok=True)
        chromium(url, Path(profile), f"--screenshot={screenshot}", "--window-size=1400,1300",
                 "--hide-scrollbars")
    assert screenshot.stat().st_size > 10_000

    page = Visible()
    page.feed(dom)
    assert "Updated" in page.text["status"] and "unavailable" not in page.text["status"], page.text["status"]

    # Permits by state and by province, as a person reads them off the page.
    assert page.within("total-") == {"total-SUBMITTED": "1 Submitted", "total-ISSUED": "3 Issued",
                                     "total-FROZEN": "1 Frozen", "total-REVOKED": "0 Revoked",
                                     "total-REJECTED": "0 Rejected"}
    assert page.within("province-") == {
        "province-32": "Jawa Barat (32) 1 2 1 0 0 4", "province-33": "Jawa Tengah (33) 0 1 0 0 0 1"}

    # Sanctions by ground: the freeze counted under the inspection's finding, nothing else.
    grounds = page.within("ground-")
    assert grounds["ground-inspection_finding"] == "Inspection finding (temuan pemeriksaan) 1 0"
    assert grounds["ground-inspection_finding-freeze"] == "1"
    counts = {mark: text for mark, text in grounds.items() if mark.endswith(("-freeze", "-revoke"))}
    every_ground = ("missed_reports", "false_declaration", "inspection_finding", "closure_not_observed",
                    "company_request", "capacity_breaches", "other")
    assert counts == {f"ground-{g}-{a}": "0" for g in every_ground for a in ("freeze", "revoke")} | {
        "ground-inspection_finding-freeze": "1"}

    # A compliance bar per province, as long as its reporting rate, with the rate in words beside it.
    west, central = page.attributes["compliance-bar-32"], page.attributes["compliance-bar-33"]
    assert float(west["data-rate"]) > 0 and int(west["width"]) > 0
    assert re.match(r"[1-9]\d* % reported \(1/\d+\)", page.within("compliance-label-")["compliance-label-32"])
    assert central["data-rate"] == "0" and central["width"] == "0"
    assert page.within("compliance-label-")["compliance-label-33"].startswith("0 % reported (0/")

    # PPKM: Jawa Barat at the level of its most restrictive regency, Jawa Tengah at none; plants by class, the
    # breaches of this week and the first doses of the one report (180 of 200), as the reports service counts them.
    ppkm = page.within("ppkm-")
    assert (ppkm["ppkm-32-level"], ppkm["ppkm-32.04-level"], ppkm["ppkm-33-level"]) == ("Level 3", "Level 3", "—")
    assert (ppkm["ppkm-32.04-dose1"], ppkm["ppkm-32-dose1"], ppkm["ppkm-33-dose1"]) == ("90 %", "90 %", "—")
    assert ppkm["ppkm-32.04-breaches"] == ppkm["ppkm-32-breaches"] == ("0" if checked["within"] else "1")
    classes = ("critical", "essential", "non_essential", "unknown")
    for code, plants in (("32", 3), ("32.04", 2), ("32.16", 1), ("33", 1), ("33.74", 1)):
        assert sum(int(ppkm[f"ppkm-{code}-{c}"]) for c in classes) == plants, code
    async with httpx.AsyncClient(timeout=10) as http:
        counted = (await http.get(f"{reports}/compliance", params={"regency": "32.04"},
                                  headers=OPERATOR)).json()["ppkm"]["totals"]["plants"]
    assert {key: ppkm[f"ppkm-32.04-{key}"] for key in counted} == {key: str(n) for key, n in counted.items()}

    # The closed plant, closed by its cluster; and its open alert at the regency level.
    closure = " ".join(page.text[f"closure-{closed_plant}"].split())
    assert "plant closed" in closure and "32.16 · Jawa Barat" in closure and "cluster " in closure
    alert = " ".join(page.text[f"alert-{closed_plant}-ClusterDeclared"].split())
    assert alert.startswith("regency high ClusterDeclared"), alert

    # Close contacts traced per case by province: the cluster's three cases with four contacts each, below 15.
    assert page.within("tracing-") == {
        "tracing-32": "Jawa Barat (32) 3 12 4.0 < 15 1", "tracing-32-ratio": "4.0 < 15",
        "tracing-33": "Jawa Tengah (33) 0 0 — 0", "tracing-33-ratio": "—"}


async def test_the_services_let_only_the_dashboards_origin_read_them_from_a_browser(services):
    dashboard_origin = services.url("permits")
    async with httpx.AsyncClient(timeout=10) as http:
        config = (await http.get(f"{dashboard_origin}/dashboard/config.json")).json()
        assert config["services"] == {name: services.url(name) for name in services.ports}
        for origin, allowed in ((dashboard_origin, True), ("http://evil.example", False)):
            preflight = await http.options(f"{services.url('notifier')}/alerts", headers={
                "Origin": origin, "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization"})
            assert (preflight.headers.get("access-control-allow-origin") == origin) is allowed, preflight.headers
        # Reads only: a browser page may not write through CORS.
        write = await http.options(f"{services.url('permits')}/permits", headers={
            "Origin": dashboard_origin, "Access-Control-Request-Method": "POST"})
        assert "POST" not in write.headers.get("access-control-allow-methods", "")
