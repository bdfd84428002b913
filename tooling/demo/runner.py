"""`iomki demo` (`make demo`): the platform on a compressed clock, and a few simulated weeks played over HTTP.

Companies apply and the ministry issues; plants in eight provinces and three time zones report each period
(a "week" of `--period-seconds`); some report late, a few miss and are warned, one is frozen by the sanction
ladder and one revoked; the frozen one is reactivated on its request, the revoked one's objection upheld; a
cluster of linked cases closes one plant on the task force's order and its alert climbs the task-force hierarchy
until the national task force acknowledges it; the regency's health office confirms one of the cluster's cases and
corrects another's symptom onset, and a single case elsewhere is entered with the line list of its close contacts,
one of whom a negative exit test releases on day 5 of quarantine. An industrial estate in Kabupaten Bekasi
confirms the plants inside it and reads their compliance and closures; a neighbour complains about one of them, its
region's industry office inspects it, finds the protocol broken and asks the ministry to freeze it, and an operator
approves. The closing summary is read from the services' APIs and checked against what the scenario planned; the
command exits 1 if they disagree.

`play(urls, secret, scenario)` is the story on its own, against any running platform (the e2e test runs it
against the test platform); `demo()` brings the platform up for it, like `iomki up`, and stops it after.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.clock import wait_until_set
from shared.observability import configure_logging
from shared.settings import SERVICES, PlatformSettings, local_url
from shared.storage.embedded import stop_embedded_postgres
from shared.regions import NATIONAL, local_zone
from shared.web.access import Role, mint
from tooling.demo.scenario import (
    CLUSTER_CASES, CLUSTER_REGENCY, COUNTED_CONTACTS, ESTATE_REGENCY, LINE_LIST_EXPOSED_DAYS_AGO, PPKM_REGENCY,
    PROVINCE_NAMES, REGIONS, Plant, Scenario, Week, cast, expected,
)
from tooling.demo.scenario import Role as Part
from tooling.demo.summary import Api, FieldStory, HealthStory, Summary, check, collect, render, render_checks
from tooling.launcher import Platform, development_secret
from tooling.ports import free_port



def demo_environment(period_seconds: float) -> dict[str, str]:
    """The services' clock, compressed: a reporting week lasts `period_seconds`; a warning goes out half a
    period after a missed deadline (so a late report inside that half is late, not warned); an unacknowledged
    high-severity alert climbs one level per period."""
    period = int(period_seconds)
    return {
        "IOMKI_REPORT_REGIME": f"every:{period}s",
        "IOMKI_WARNING_DELAY": f"PT{period / 2:g}S",
        "IOMKI_REPORT_DUE_LEAD": f"PT{period / 4:g}S",
        "IOMKI_ESCALATION_AFTER": f"PT{period}S,PT{period}S",
        "IOMKI_DELIVERY_BACKOFF": "PT1S",
    }


CORRECTIVE_ACTION = ("Petugas K3 khusus pelaporan IOMKI telah ditunjuk dan pengingat dipasang setiap pekan, agar "
                     "laporan tidak terlewat lagi.")
OBJECTION = "Laporan kami tertunda karena gangguan jaringan di kawasan industri; kami mohon pencabutan ditinjau ulang."
ONSET_CORRECTION = ("Penyelidikan epidemiologi Dinas Kesehatan: gejala pertama muncul sehari lebih awal dari yang "
                    "dicatat perusahaan.")


# ------------------------------------------------------------------------------------------ the task forces' end


@dataclass
class TaskForceEndpoint:
    """The task forces' webhook endpoint, on loopback, so that deliveries succeed; counts what it is sent."""

    port: int = field(default_factory=free_port)
    received: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{name}"

    async def _hook(self, request: Request) -> Response:
        await request.body()
        self.received += 1
        return Response(status_code=204)

    async def __aenter__(self) -> TaskForceEndpoint:
        app = Starlette(routes=[Route("/hook/{name}", self._hook, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error",
                                                     access_log=False))
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.should_exit = True
        await self._task


# ------------------------------------------------------------------------------------------ the story


class DemoFailure(Exception):
    pass


@dataclass
class Story:
    """The scenario being played: HTTP calls as the company, the ministry and the task forces."""

    http: httpx.AsyncClient
    urls: dict[str, str]
    secret: str
    scenario: Scenario
    console: Console
    plants: list[Plant]
    endpoint: TaskForceEndpoint
    permit_ids: dict[int, str] = field(default_factory=dict)
    facility_ids: dict[int, str] = field(default_factory=dict)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    deadlines: dict[int, datetime] = field(default_factory=dict)  # each plant's last deadline of its plan
    epilogue_periods: list[tuple[Week, datetime]] = field(default_factory=list)
    field_story: FieldStory = field(default_factory=FieldStory)
    health_story: HealthStory = field(default_factory=HealthStory)
    estate_number: str | None = None  # the estate's permit number, which its tenants name when they apply

    def headers(self, role: Role, *, region: str | None = None, nib: str | None = None,
                sub: str | None = None) -> dict[str, str]:
        token = mint(self.secret, role=role, region=region, nib=nib, sub=sub, ttl_seconds=3600)
        return {"Authorization": f"Bearer {token}"}

    @property
    def operator(self) -> dict[str, str]:
        return self.headers(Role.OPERATOR, sub="demo-ministry-officer")

    async def call(self, method: str, service: str, path: str, headers: dict[str, str], body: Any = None,
                   ok: tuple[int, ...] = (200, 201)) -> httpx.Response:
        response = await self.http.request(method, f"{self.urls[service]}{path}", headers=headers, json=body)
        if response.status_code not in ok:
            raise DemoFailure(f"{method} {service}{path} → {response.status_code}: {response.text[:400]}")
        return response

    # -- act 1: the directory of task forces ------------------------------------------------------------

    async def register_task_forces(self) -> None:
        regions = [("national", NATIONAL, "Satgas Penanganan COVID-19 Nasional")]
        for code, name, regencies, _ in REGIONS:
            regions.append(("province", code, f"Satgas COVID-19 Provinsi {name}"))
            regions += [("regency", regency, f"Satgas COVID-19 {regency}") for regency in regencies]
        regions.append(("regency", PPKM_REGENCY, "Satgas COVID-19 Kabupaten Karawang"))
        for level, code, name in regions:
            hook = self.endpoint.url(code or "ID")
            contacts = [{"division": division, "webhook": hook}
                        for division in ("health", "law_enforcement", "data_information")]
            created = await self.call("POST", "notifier", "/task-forces", self.operator,
                                      {"level": level, "region_code": code, "name": name, "contacts": contacts})
            if level == "province":  # the province's data division follows its plants' sanctions
                await self.call("POST", "notifier", "/subscriptions", self.operator, {
                    "task_force_id": created.json()["task_force_id"], "channel": "webhook", "target": hook,
                    "event_types": ["WarningIssued", "PermitFrozen", "PermitRevoked"]})
        self.console.log(f"Registered {len(regions)} task forces (national, {len(REGIONS)} provinces, "
                         f"{len(regions) - 1 - len(REGIONS)} regencies), each with a signed webhook")

    # -- act 2: applications and permits ----------------------------------------------------------------

    async def permit(self, plant: Plant, progress: Progress, task: Any) -> None:
        role = Role.ESTATE if plant.role is Part.ESTATE else Role.COMPANY
        applied = await self.call("POST", "permits", "/permits", self.headers(role, nib=plant.nib),
                                  plant.application(self.estate_number if plant.tenant else None))
        permit_id = applied.json()["permit_id"]
        self.facility_ids[plant.index] = applied.json()["facility_id"]
        issued = await self.call("POST", "permits", f"/permits/{permit_id}/decision", self.operator, {
            "decision": "issue", "reason": "documents complete; health protocol commitment signed"})
        self.permit_ids[plant.index] = permit_id
        if plant.role is Part.ESTATE:
            self.estate_number = issued.json()["permit_number"]
        progress.advance(task)

    # -- act 2b: the industrial estate confirms the plants that named it ---------------------------------------

    @property
    def estate(self) -> Plant:
        return next(p for p in self.plants if p.role is Part.ESTATE)

    def estate_headers(self) -> dict[str, str]:
        return self.headers(Role.ESTATE, nib=self.estate.nib, sub="demo-estate-manager")

    async def confirm_tenants(self) -> None:
        estate_id = self.permit_ids[self.estate.index]
        pending = (await self.call("GET", "permits", f"/estates/{estate_id}/tenants?status=pending&limit=200",
                                   self.estate_headers())).json()["items"]
        for tenancy in pending:
            await self.call("POST", "permits", f"/estates/{estate_id}/tenants/{tenancy['tenant_permit_id']}/decision",
                            self.estate_headers(), {"decision": "confirm", "reason": "pabrik berada di dalam kawasan"})
        self.field_story.tenants = len(pending)
        self.console.log(f"{self.estate.facility_name} ({self.estate_number}) confirms its {len(pending)} tenant "
                         f"plants in {ESTATE_REGENCY}: it reads their compliance and closures, and hears of their "
                         "alerts")

    # -- act 3: the weeks ------------------------------------------------------------------------------

    async def period(self, plant: Plant, seq: int, not_before: datetime | None) -> dict:
        """The plant's period `seq`, once reports has opened it (at the previous deadline's sweep)."""
        if not_before is not None:
            await _sleep_until(not_before + timedelta(seconds=1.2))
        path = f"/schedules/{self.permit_ids[plant.index]}?limit=3"
        for _ in range(int(self.scenario.period_seconds * 4) + 60):
            response = await self.call("GET", "reports", path, self.operator, ok=(200, 404))
            if response.status_code == 200:
                for period in response.json()["periods"]:
                    if period["seq"] == seq:
                        return period
            await asyncio.sleep(0.5)
        raise DemoFailure(f"period {seq} of plant {plant.index} never opened")

    async def live(self, plant: Plant, rng: random.Random, progress: Progress, task: Any) -> None:
        """One plant through the weeks of its plan."""
        length = self.scenario.period_seconds
        deadline = None
        for seq, week in enumerate(plant.plan, start=1):
            if week is Week.OVER:
                progress.advance(task, len(plant.plan) - seq + 1)
                return
            period = await self.period(plant, seq, deadline)
            starts, deadline = _at(period["starts_at"]), _at(period["deadline"])
            if week in (Week.ON_TIME, Week.OVER_CAP):
                await _sleep_until(starts + timedelta(seconds=length * rng.uniform(0.05, 0.45)))
                await self.report(plant, period, rng, week)
            elif week is Week.LATE:
                await _sleep_until(deadline + timedelta(seconds=min(1.0, length / 8)))
                await self.report(plant, period, rng)
            if plant.role is Part.CLUSTER and seq == 1:
                await self.cluster(plant)
            if plant.role is Part.CAPACITY:
                await self.capacity(plant, seq, week)
            progress.advance(task)
        if deadline is None:  # a scenario has four weeks at least
            raise DemoFailure(f"plant {plant.index} had no week to play")
        self.deadlines[plant.index] = deadline

    async def epilogue(self, plant: Plant, rng: random.Random, done: asyncio.Event) -> None:
        """After its plan, a plant files each new period's report as soon as it opens (a closed plant files
        none), until the story is over: the summary is read while no deadline is missed by accident. What it
        did is kept, so the expectations can count the periods that fell due before the summary was read."""
        deadline = self.deadlines[plant.index]
        closed = plant.plan[-1] is Week.CLOSED
        seq = len(plant.plan) + 1
        while True:
            delay = (deadline - datetime.now(UTC)).total_seconds() + 1.2
            if await wait_until_set(done, max(delay, 0)):
                return
            period = await self.period(plant, seq, None)
            if not closed:
                await self.report(plant, period, rng)
            deadline = _at(period["deadline"])
            self.epilogue_periods.append((Week.CLOSED if closed else Week.ON_TIME, deadline))
            seq += 1

    async def report(self, plant: Plant, period: dict, rng: random.Random, week: Week = Week.ON_TIME) -> None:
        body = plant.report(self.permit_ids[plant.index], period["period_id"], rng, week)
        answer = await self.call("POST", "reports", "/reports", self.headers(Role.COMPANY, nib=plant.nib), body)
        capacity = answer.json().get("capacity") or {}
        if capacity.get("checked") and not capacity.get("within"):
            excesses = ", ".join(f"{e['measure']} {e['count']} > {e['cap']}" for e in capacity["excesses"])
            self.console.log(f"[bold red]Over the PPKM cap[/]: {plant.company_name} ({plant.regency_code}), level "
                             f"{capacity['level']}, rule {capacity['rule']}: {excesses}")

    # -- act 3b: PPKM: a regency from level 3 to level 4, and a plant over its new cap ------------------------

    async def set_level(self, level: str, reason: str) -> None:
        await self.call("POST", "reports", "/ppkm/levels", self.operator, {
            "province_code": PPKM_REGENCY.split(".")[0], "regency_code": PPKM_REGENCY, "level": level,
            "effective_from": _local_today(PPKM_REGENCY).isoformat(),
            "instruction": "Inmendagri 22/2021", "reason": reason})
        self.console.log(f"PPKM [bold]level {level}[/] for Kabupaten Karawang ({PPKM_REGENCY}) from today, recorded "
                         "by the ministry's operator")

    async def capacity(self, plant: Plant, seq: int, week: Week) -> None:
        """After its first week the regency moves to level 4: the company reads what it may run now; the first week
        over the cap raises an alert that the regency's task force acknowledges."""
        facility = self.facility_ids[plant.index]
        if seq == 1:
            await self.set_level("4", "kasus meningkat; mengikuti Inmendagri untuk Kabupaten Karawang")
            allowance = (await self.call("GET", "reports", f"/plants/{facility}/allowance",
                                         self.headers(Role.COMPANY, nib=plant.nib))).json()
            self.console.log(f"{plant.company_name} reads its allowance: {allowance['summary_id']}")
        if week is Week.OVER_CAP and Week.OVER_CAP not in plant.plan[:seq - 1]:
            alert = await self.alert(facility, "CapacityBreachDetected")
            regency = self.headers(Role.TASK_FORCE, region=PPKM_REGENCY, sub=f"satgas-{PPKM_REGENCY}")
            await self.call("POST", "notifier", f"/alerts/{alert['alert_id']}/ack", regency)
            self.console.log(f"CapacityBreachDetected alert acknowledged by the regency task force {PPKM_REGENCY}")

    # -- act 4: a cluster, and its alert climbing the hierarchy ----------------------------------------

    async def case(self, plant: Plant, reference: str, **facts: Any) -> str:
        """The case's id, once incidents took it: confirmed today, with symptoms since two days before, its close
        contacts counted, unless `facts` say otherwise."""
        today = date.today()
        body = {"facility_id": self.facility_ids[plant.index], "case_ref": reference,
                "confirmed_on": today.isoformat(), "symptomatic": True,
                "symptom_onset_on": (today - timedelta(days=2)).isoformat(), "close_contacts": COUNTED_CONTACTS} | facts
        headers = self.headers(Role.COMPANY, nib=plant.nib)
        for _ in range(100):  # incidents learns of the plant from PermitIssued
            response = await self.call("POST", "incidents", "/cases", headers, body, ok=(201, 404))
            if response.status_code == 201:
                return str(response.json()["case_id"])
            await asyncio.sleep(0.3)
        raise DemoFailure(f"incidents never learned of plant {plant.index}")

    async def cluster(self, plant: Plant) -> None:
        """Three confirmed cases on one production line within 14 days: the company links them, they are a cluster,
        and the plant's closure is recommended to the regency task force, which orders it. Its reporting stops once
        the reports service knows it is closed, so that its periods are excused, not missed."""
        cases = [await self.case(plant, f"KLB-{plant.index:04d}-{number:02d}")
                 for number in range(1, CLUSTER_CASES + 1)]
        self.health_story.cluster_case_ids = cases
        company = self.headers(Role.COMPANY, nib=plant.nib)
        for first, second in itertools.pairwise(cases):
            await self.call("POST", "incidents", f"/cases/{first}/links", company,
                            {"linked_case_id": second, "kind": "same_line"})
        self.console.log(f"[bold red]Three confirmed cases on one line[/] at {plant.company_name}, "
                         f"{plant.regency_code}, linked by the company: a cluster")
        facility = self.facility_ids[plant.index]
        regency = self.headers(Role.TASK_FORCE, region=plant.regency_code, sub=f"satgas-{plant.regency_code}")
        listed = await _until(
            lambda: self.call("GET", "incidents", "/closure-recommendations?status=pending&limit=100", regency),
            lambda response: any(r["facility_id"] == facility for r in response.json()["items"]),
            "the cluster's closure recommendation")
        recommendation = next(r for r in listed.json()["items"] if r["facility_id"] == facility)
        await self.call("POST", "incidents", f"/closure-recommendations/{recommendation['recommendation_id']}/order",
                        regency, {})
        self.console.log(f"The regency task force {plant.regency_code} orders the recommended closure: "
                         f"{recommendation['scope']}, {recommendation['days']} days ({recommendation['rule']})")
        path = f"/schedules/{self.permit_ids[plant.index]}?limit=1"
        await _until(lambda: self._get("reports", path), lambda body: body["closed"], "the closure reaching reports")
        detail = await self._get("permits", f"/permits/{self.permit_ids[plant.index]}")
        self.console.log(f"Plant closed: permits shows it [bold]{detail['operating_status']}[/] "
                         f"(permit still {detail['status']}); its reports are excused while closed")
        self.closed.set()

    async def alerts(self) -> None:
        """The regency acknowledges the case alerts at once; nobody answers the cluster alert until it has
        climbed to the national task force, which acknowledges it."""
        await self.closed.wait()
        for plant in self.plants:
            if plant.role is Part.SINGLE_CASE:
                await self.traced_case(plant)
        watched = [p for p in self.plants if p.role in (Part.CLUSTER, Part.SINGLE_CASE)]
        for plant in watched:
            facility = self.facility_ids[plant.index]
            regency = self.headers(Role.TASK_FORCE, region=plant.regency_code, sub=f"satgas-{plant.regency_code}")
            # Every case also closes a room for disinfection (FacilityClosureOrdered, scope room).
            for event_type in ("CaseDetected", "FacilityClosureOrdered"):
                alert = await self.alert(facility, event_type)
                await asyncio.sleep(1.0)
                await self.call("POST", "notifier", f"/alerts/{alert['alert_id']}/ack", regency)
                self.console.log(f"{event_type} alert acknowledged by the regency task force {plant.regency_code}")
        cluster = next(p for p in self.plants if p.role is Part.CLUSTER)
        alert = await self.alert(self.facility_ids[cluster.index], "ClusterDeclared")
        self.console.log(f"[bold]ClusterDeclared[/] alert raised to the regency task force {cluster.regency_code}"
                         " (high severity); nobody answers")
        seen = "regency"
        while seen != "national":
            current = await self._get("notifier", f"/alerts/{alert['alert_id']}")
            if current["level"] != seen:
                seen = current["level"]
                self.console.log(f"[yellow]Escalated[/]: ClusterDeclared alert now with the {seen} task force")
            await asyncio.sleep(0.5)
        national = self.headers(Role.TASK_FORCE, region=NATIONAL, sub="satgas-nasional")
        acked = await self.call("POST", "notifier", f"/alerts/{alert['alert_id']}/ack", national)
        self.console.log(f"[green]Acknowledged[/] by the national task force "
                         f"{(_at(acked.json()['acknowledged_at']) - _at(acked.json()['first_seen_at'])).seconds} s "
                         "after it was raised")

    async def traced_case(self, plant: Plant) -> None:
        """One confirmed case, entered with the line list of its close contacts, each quarantined from their own last
        exposure; the first takes its exit test on day 5 of its quarantine, negative, and is released that day."""
        today = _local_today(plant.regency_code)
        exposures = [today - timedelta(days=days) for days in LINE_LIST_EXPOSED_DAYS_AGO]
        case_id = await self.case(plant, f"KSS-{plant.index:04d}-01", confirmed_on=today.isoformat(),
                                  symptom_onset_on=min(exposures).isoformat(), close_contacts=None,
                                  contacts=[{"last_exposure_on": day.isoformat()} for day in exposures])
        company = self.headers(Role.COMPANY, nib=plant.nib)
        listed = (await self.call("GET", "incidents", f"/cases/{case_id}/contacts", company)).json()
        first = listed["items"][0]
        released = (await self.call("POST", "incidents", f"/contacts/{first['contact_id']}/tests", company, {
            "kind": "exit", "tested_on": _local_today(plant.regency_code).isoformat(), "result": "negative"})).json()
        story = self.health_story
        story.traced_case_id, story.released_contact_id = case_id, released["contact_id"]
        story.exit_tested_on = released["exit_test"]["tested_on"]
        self.console.log(f"One confirmed case at {plant.company_name}, {plant.regency_code}, its {listed['total']} "
                         f"close contacts listed; contact #{released['number']} tests negative on day 5 of its "
                         f"quarantine: {released['status']}, the others stay until {listed['last_quarantine_ends_on']}")

    async def health_office(self) -> None:
        """The regency's health office checks the cluster's cases as the company entered them: it confirms the first,
        and corrects the second's symptom onset a day earlier, from which its isolation then counts; and it reads how
        many contacts its region traces per case."""
        await self.closed.wait()
        office = self.headers(Role.HEALTH_OFFICE, region=CLUSTER_REGENCY, sub="demo-dinkes-bekasi")
        confirmed, corrected = self.health_story.cluster_case_ids[:2]
        await self.call("POST", "incidents", f"/cases/{confirmed}/verification", office, {"verdict": "confirmed"})
        entered = (await self.call("GET", "incidents", f"/cases/{corrected}", office)).json()
        onset = date.fromisoformat(entered["symptom_onset_on"]) - timedelta(days=1)
        answer = (await self.call("POST", "incidents", f"/cases/{corrected}/verification", office, {
            "verdict": "corrected", "corrections": {"symptom_onset_on": onset.isoformat()},
            "reason": ONSET_CORRECTION})).json()
        self.health_story.corrected_onset = onset.isoformat()
        tracing = (await self.call("GET", "incidents", "/tracing", office)).json()
        self.console.log(f"The health office of {CLUSTER_REGENCY} confirms one cluster case and corrects another's "
                         f"symptom onset to {onset.isoformat()}: isolation {answer['isolation']['starts_on']} – "
                         f"{answer['isolation']['ends_on']}; its region traces {tracing['contacts_per_case']} contacts "
                         f"per case (target {tracing['target']})")

    # -- act 4b: a complaint, an inspection, and a freeze the region's office asks for ---------------------------

    async def field_supervision(self) -> None:
        """A neighbour complains about a plant of the estate (no login); the regency's industry office finds it in its
        worklist, inspects it with the task force, finds masks not worn and crowding at the gate, and asks the
        ministry to freeze the permit; an operator approves from the worklist. The complainant follows the
        complaint by its reference."""
        plant = next(p for p in self.plants if p.role is Part.COMPLAINED)
        permit_id = self.permit_ids[plant.index]
        await _until(lambda: self._get("reports", f"/reports?permit_id={permit_id}"), lambda body: body["reports"],
                     "the complained plant's first report")
        permit = await self._get("permits", f"/permits/{permit_id}")
        filed = await self.call("POST", "supervision", "/public/complaints", {}, {
            "permit_number": permit["permit_number"], "category": "protocol",
            "text": "Setiap pagi pekerja berdesakan di gerbang tanpa masker; tidak ada pemeriksaan suhu."})
        reference = self.field_story.reference = filed.json()["reference"]
        self.console.log(f"A neighbour complains about {plant.company_name} ({permit['permit_number']}), no login; "
                         f"reference {reference}")
        office = self.headers(Role.REGIONAL_OFFICE, region=ESTATE_REGENCY, sub="demo-disperinaker-bekasi")

        async def worklist() -> dict:
            return (await self.call("GET", "supervision", f"/worklist?regency={ESTATE_REGENCY}&limit=200",
                                    office)).json()
        ranked = await _until(worklist, lambda body: any(r["permit_id"] == permit_id and r["parts"]["complaints"]
                                                         for r in body["items"]), "the complaint in the worklist")
        rank = next(i for i, r in enumerate(ranked["items"], 1) if r["permit_id"] == permit_id)
        self.console.log(f"The regency's industry office ({ESTATE_REGENCY}) works its risk-ranked worklist: "
                         f"{plant.company_name} is number {rank} of {len(ranked['items'])}")
        complaints = (await self.call("GET", "supervision", f"/complaints?regency={ESTATE_REGENCY}", office)).json()
        complaint_ids = [c["complaint_id"] for c in complaints["items"] if c.get("permit_id") == permit_id]
        today = _local_today(ESTATE_REGENCY).isoformat()
        planned = (await self.call("POST", "supervision", "/inspections", office, {
            "permit_id": permit_id, "planned_on": today, "purpose": "menindaklanjuti pengaduan masyarakat",
            "complaint_ids": complaint_ids,
            "team": [{"name": "Dinas Perindustrian dan Tenaga Kerja Kab. Bekasi", "body": "regional_office"},
                     {"name": "Satgas COVID-19 Kab. Bekasi", "body": "task_force"}]})).json()
        findings = {"masks": "violated", "distancing": "violated", "temperature_screening": "violated",
                    "handwash_stations": "met", "ventilation": "met", "covid_team": "met"}
        notes = "Antrean di gerbang pagi tanpa masker dan tanpa pemeriksaan suhu."
        recorded = (await self.call("POST", "supervision", f"/inspections/{planned['inspection_id']}/record", office,
                                    {"inspected_on": today, "findings": findings, "notes": notes})).json()
        contradicted = recorded.get("contradicted_report_id")
        self.console.log(f"Inspection {planned['reference']}: 3 protocol items violated"
                         + (f", contradicting declared report {contradicted}" if contradicted else ""))
        request = (await self.call("POST", "supervision", "/sanction-requests", office, {
            "permit_id": permit_id, "action": "freeze", "inspection_id": planned["inspection_id"],
            "ground": {"code": "inspection_finding", "evidence": {}},
            "reason": "protokol kesehatan dilanggar di gerbang pabrik (hasil pemeriksaan)"})).json()
        self.field_story.request_id = request["request_id"]
        self.console.log(f"The office asks the ministry to freeze {permit['permit_number']} (it never sanctions "
                         "itself)")
        await self.decide_from_worklist("sanction_request", request["request_id"],
                                        f"/sanction-requests/{request['request_id']}/decision",
                                        {"decision": "approve", "reason": "temuan pemeriksaan terbukti"})
        await _until(lambda: self._get("permits", f"/permits/{permit_id}"), lambda b: b["status"] == "FROZEN",
                     "the requested freeze")
        status = await _until(lambda: self._public("supervision", f"/public/complaints/{reference}"),
                              lambda b: b["status"] == "inspected", "the complaint's status")
        self.console.log(f"[bold yellow]FROZEN[/] {permit['permit_number']} on the office's request, approved by the "
                         f"ministry; the complainant's reference {reference} reads: {status['status']}")

    async def alert(self, facility_id: str, event_type: str) -> dict:
        def found(body: dict) -> dict | None:
            return next((a for a in body["alerts"] if a["facility_id"] == facility_id
                         and a["event_type"] == event_type), None)
        body = await _until(lambda: self._get("notifier", "/alerts?limit=1000"), found, f"a {event_type} alert")
        return found(body)  # type: ignore[return-value]

    async def sanctions(self, stop: asyncio.Event) -> None:
        """Narrates the sanction ladder as permits applies it."""
        seen: set[tuple[str, str]] = set()
        names = {self.permit_ids.get(p.index): p for p in self.plants}
        while not stop.is_set():
            for status in ("FROZEN", "REVOKED"):
                for permit in (await self._get("permits", f"/permits?status={status}&limit=200"))["items"]:
                    if (permit["permit_id"], status) not in seen:
                        seen.add((permit["permit_id"], status))
                        plant = names.get(permit["permit_id"])
                        if plant is not None and plant.role is Part.COMPLAINED:
                            continue  # frozen on its office's request, as the field act tells
                        colour = "red" if status == "REVOKED" else "yellow"
                        self.console.log(f"[bold {colour}]{status}[/] {permit['permit_number']} "
                                         f"{permit['company_name']} ({permit['regency_code']}) by the sanction "
                                         f"ladder{'' if plant is None else ' — ' + plant.role.value}")
            await asyncio.sleep(1.0)

    # -- act 5: the casework: a reactivation on conditions, an objection ------------------------------------

    async def casework(self, rng: random.Random) -> None:
        """The frozen plant files its missed reports late and asks to be reactivated; the revoked one objects. The
        ministry's officer finds both in the worklists and decides: the first is reactivated, the revocation
        upheld."""
        frozen = next(p for p in self.plants if p.role is Part.FREEZE)
        permit_id, company = self.permit_ids[frozen.index], self.headers(Role.COMPANY, nib=frozen.nib)
        standing = await self._get("permits", f"/permits/{permit_id}/reactivation-requests")
        missed = next(c for c in standing["conditions"] if c["condition"] == "MissedReportsFiled")
        for period_id in missed.get("missing_periods", []):
            await self.call("POST", "reports", "/reports", company,
                            frozen.report(permit_id, period_id, rng))
        self.console.log(f"{frozen.company_name} files its {len(missed.get('missing_periods', []))} missed reports "
                         "late and asks to be reactivated")

        async def ask() -> httpx.Response:  # once permits has taken in the reports filed late
            return await self.call("POST", "permits", f"/permits/{permit_id}/reactivation-requests", company,
                                   {"corrective_action": CORRECTIVE_ACTION}, ok=(201, 409))
        asked = await _until(ask, lambda response: response.status_code == 201, "the reactivation request")
        request_id = asked.json()["request_id"]
        await self.decide_from_worklist("reactivation_request", request_id, f"/reactivation-requests/{request_id}/"
                                        "decision", {"decision": "approve", "reason": "laporan telah dilengkapi"})
        self.console.log(f"[bold green]REACTIVATED[/] {frozen.company_name}: its three periods filed late are "
                         "excused from the ladder")

        revoked = next(p for p in self.plants if p.role is Part.REVOKE)
        filed = await self.call("POST", "permits", f"/permits/{self.permit_ids[revoked.index]}/objections",
                                self.headers(Role.COMPANY, nib=revoked.nib), {"statement": OBJECTION})
        objection_id = filed.json()["objection_id"]
        self.console.log(f"{revoked.company_name} objects to its revocation, "
                         f"until {filed.json()['last_day']} (working days)")
        await self.decide_from_worklist("objection", objection_id, f"/objections/{objection_id}/decision",
                                        {"outcome": "upheld", "reason": "empat periode terlewat tanpa laporan"})
        self.console.log(f"Objection of {revoked.company_name} [bold]upheld[/]: the revocation stands")

    async def decide_from_worklist(self, kind: str, item_id: str, path: str, decision: dict[str, str]) -> None:
        def listed(body: dict) -> bool:
            return any(item["item_id"] == item_id for item in body["worklists"][0]["items"])
        worklist = await _until(lambda: self._get("permits", f"/worklists?kind={kind}&limit=200"), listed,
                                f"the {kind} in the worklists")
        self.console.log(f"Worklist {kind}: {worklist['worklists'][0]['total']} waiting, decided within "
                         f"{worklist['worklists'][0]['sla_working_days']} working days")
        await self.call("POST", "permits", path, self.operator, decision)

    async def _get(self, service: str, path: str) -> dict:
        return (await self.call("GET", service, path, self.operator)).json()

    async def _public(self, service: str, path: str) -> dict:
        return (await self.call("GET", service, path, {})).json()


async def play(urls: dict[str, str], secret: str, scenario: Scenario, console: Console | None = None) -> Summary:
    """Play the scenario against running services (`urls` by service name); the summary read back from their
    APIs, with its checks. Tokens are minted with `secret`, the services' IOMKI_JWT_SECRET."""
    console = console or Console(log_path=False)
    plants = cast(scenario)
    expect = expected(plants)
    rng = random.Random(scenario.seed)  # noqa: S311 -- the demo's seeded story, no secret
    provinces = sorted({p.province_code for p in plants})
    console.rule(f"[bold]iomki demo[/]: {len(plants)} plants, {len(provinces)} provinces, "
                 f"{scenario.weeks} weeks of {scenario.period_seconds:g} s")
    console.log("Provinces: " + ", ".join(f"{code} {PROVINCE_NAMES[code]}" for code in provinces))
    async with AsyncExitStack() as stack:
        endpoint = await stack.enter_async_context(TaskForceEndpoint())
        http = await stack.enter_async_context(httpx.AsyncClient(
            timeout=30, limits=httpx.Limits(max_connections=24, max_keepalive_connections=24)))
        story = Story(http, urls, secret, scenario, console, plants, endpoint)
        await story.register_task_forces()
        progress = stack.enter_context(Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=False))
        applying = progress.add_task("Applications issued", total=len(plants))
        gate = asyncio.Semaphore(12)

        async def permit(plant: Plant) -> None:
            async with gate:
                await story.permit(plant, progress, applying)
        await story.set_level("3", "level awal Kabupaten Karawang menurut Inmendagri")
        await story.permit(story.estate, progress, applying)  # first: its tenants name it when they apply
        await _together(permit(plant) for plant in plants if plant.role is not Part.ESTATE)
        await story.confirm_tenants()
        console.log(f"{len(plants)} permits issued; each plant's first reporting period opens now, in its own "
                    "time zone's schedule")
        weeks = progress.add_task(f"Plant-weeks played ({scenario.weeks} weeks)", total=len(plants) * scenario.weeks)
        stop = asyncio.Event()
        narrator = asyncio.create_task(story.sanctions(stop))
        try:
            await _together([story.alerts(), story.field_supervision(), story.health_office(),
                             *(story.live(plant, random.Random(rng.random()), progress, weeks)  # noqa: S311 -- as `rng`
                               for plant in plants)])
            done = asyncio.Event()
            revoke = next(p for p in plants if p.role is Part.REVOKE)

            async def last_sanctions() -> None:
                # The last warnings of the ladder go out half a period after the last deadlines.
                await asyncio.sleep(scenario.period_seconds / 2 + 2)
                await _until(lambda: story._get("permits", f"/permits/{story.permit_ids[revoke.index]}"),
                             lambda body: body["status"] == "REVOKED", "the revocation")
                await story.casework(random.Random(rng.random()))  # noqa: S311 -- as `rng`
                done.set()
            await _together([last_sanctions(), *(story.epilogue(plant, random.Random(rng.random()), done)  # noqa: S311 -- as `rng`
                                                 for plant in plants if plant.index in story.deadlines)])
        finally:
            stop.set()
            await narrator
        progress.stop()
        # A deadline that has just passed may not be swept yet (its period still open): let the sweep catch up,
        # reading again for a while when the services are still behind what the story did (a busy machine).
        passed = [deadline for _, deadline in story.epilogue_periods if deadline <= datetime.now(UTC)]
        if passed:
            await _sleep_until(max(passed) + timedelta(seconds=3))
        catching_up_until = time.monotonic() + 30
        while True:
            summary = await collect(Api(http, urls, story.operator), plants, story.permit_ids, endpoint.received,
                                    story.field_story, story.estate_headers(), story.health_story)
            until = _at(summary.compliance["ALL"]["until"])
            fell_due = Counter(week for week, deadline in story.epilogue_periods if deadline <= until)
            due_by_now = replace(expect, reports=expect.reports + fell_due[Week.ON_TIME],
                                 excused=expect.excused + fell_due[Week.CLOSED])
            summary.checks = check(summary, plants, story.permit_ids, story.facility_ids, due_by_now,
                                   story.field_story, story.health_story)
            if all(c.ok for c in summary.checks) or time.monotonic() > catching_up_until:
                break
            await asyncio.sleep(1)
    render(summary, console)
    render_checks(summary.checks, console)
    return summary


async def _together(coroutines: Any) -> None:
    """Run concurrently; the first failure cancels the rest and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                group.create_task(coroutine)
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None


def _local_today(region_code: str) -> date:
    """Today where the region is: the day its plants' dates are checked against."""
    return datetime.now(UTC).astimezone(local_zone(region_code)).date()


async def _sleep_until(moment: datetime) -> None:
    delay = (moment - datetime.now(UTC)).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


async def _until(fetch: Any, condition: Any, what: str, timeout: float = 120) -> Any:
    try:
        async with asyncio.timeout(timeout):
            while True:
                body = await fetch()
                if condition(body):
                    return body
                await asyncio.sleep(0.5)
    except TimeoutError:
        raise DemoFailure(f"timed out waiting for {what}") from None


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ------------------------------------------------------------------------------------------ the command


class DemoPlatform(Platform):
    """`iomki up`'s platform, with each service's log in a file so the story stays readable."""

    def start_service(self, service: str) -> None:
        env = {**os.environ, **self.environment}
        with open(self.settings.data_dir / f"{service}.log", "ab") as log:
            # This interpreter, running one of the platform's own services by its fixed name.
            self.processes[service] = subprocess.Popen([sys.executable, "-m", f"services.{service}"],  # noqa: S603
                                                       env=env, stdout=log, stderr=log)


def demo(
    plants: Annotated[int, typer.Option(help="How many plants apply and report")] = 240,
    period_seconds: Annotated[float, typer.Option(help="Length of a reporting period (a simulated week)")] = 20.0,
    weeks: Annotated[int, typer.Option(help="How many periods to play (at least 4)")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the scenario's random choices")] = 2021,
) -> None:
    """Bring the platform up on a compressed clock and play a few weeks of a realistic scenario."""
    console = Console(log_path=False)
    try:
        scenario = Scenario(plants=plants, period_seconds=period_seconds, weeks=weeks, seed=seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    # A database and a Kafka log of their own (under .data/demo, fresh each run) so that `make run`'s data stays
    # untouched and the summary counts only this story; an external DATABASE_URL or KAFKA_BOOTSTRAP is used as it is.
    os.environ.setdefault("IOMKI_DATA_DIR", str(Path(".data") / "demo"))
    os.environ.update(demo_environment(period_seconds) | {"IOMKI_LOG_FORMAT": "json"})
    settings = PlatformSettings()
    configure_logging("demo", "console", level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    if not settings.database_url:
        stop_embedded_postgres(settings.data_dir / "postgres")
        shutil.rmtree(settings.data_dir / "postgres", ignore_errors=True)
    if not settings.kafka_bootstrap:
        shutil.rmtree(settings.data_dir / "kafka", ignore_errors=True)
    platform = DemoPlatform(settings)

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    ok = False
    try:
        with console.status("Preparing database, broker, topics and migrations…"):
            asyncio.run(platform.prepare())
        for service in SERVICES:
            platform.start_service(service)
        with console.status(f"Starting the {len(SERVICES)} services…"):
            ready = asyncio.run(platform.wait_ready())
        if not all(ready.values()):
            console.print(f"[red]not ready[/]: {[s for s, up in ready.items() if not up]}; "
                          f"see {settings.data_dir}/<service>.log")
            raise typer.Exit(1)
        console.print(f"Platform up (logs in {settings.data_dir}/<service>.log); clock: "
                      + ", ".join(f"{k}={v}" for k, v in demo_environment(period_seconds).items()))
        urls = {service: local_url(service) for service in SERVICES}
        summary = asyncio.run(play(urls, development_secret(settings), scenario, console))
        ok = summary.ok
        console.print("[bold green]The services' APIs agree with the scenario.[/]" if ok else
                      "[bold red]The services' APIs disagree with the scenario (see ✘ above).[/]")
    except DemoFailure as exc:
        console.print(f"[bold red]demo failed[/]: {exc}")
    except KeyboardInterrupt:
        console.print("interrupted")
    finally:
        console.print("Stopping services, broker and database…")
        platform.stop()
        console.print("Stopped.")
    raise typer.Exit(0 if ok else 1)
