"""Fault injection with an oracle: a steady mixed load (applications and decisions, reports, cases) while each
service is killed with SIGKILL, the broker restarted (it forgets everything) and PostgreSQL restarted; once
the platform settles, every service holds what the oracle computed from the accepted requests: no event lost,
none applied twice, no notice sent twice to one recipient for one step.

Requests whose answer is lost with a cut connection: applications, decisions and cases are retried as they
are idempotent by nature (one permit per plant, one decision per application, one case per reference: the
retry's 409 names what the lost attempt did); reports are not (a second one supersedes the first), so they
are "maybe" and the oracle takes whichever outcome the reports service shows, then expects the same
downstream. IOMKI_FAULT_SEED replays a run's plan (plants, decisions, cases, which fault when); how the
services' own timing interleaves with it differs from run to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.e2e.oracle import (
    SERVICES, SUBSCRIBED, Check, Oracle, Outcome, Plant, Receipt, Report, State, compare, fingerprint, pending,
    read_state, receipts_of, resent_after_crash,
)
from tests.e2e.processes import ARTIFACTS, RunningServices, running_platform
from tests.e2e.receiver import WebhookReceiver
from tests.platform import bearer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

LOAD_SECONDS = 60
SETTLE_SECONDS = 180  # generous: what it waits for is listed when it runs out
STABLE_SECONDS = 3
LOAD_AFTER_FAULTS = 3  # the load goes on a little after the last fault, so that it meets the recovery
PLANTS = 24
REGENCIES = ("32.16", "32.75")  # Kabupaten and Kota Bekasi, in Jawa Barat (32)
SECRET = "fault-injection-webhook-secret"
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def overrides() -> dict[str, str]:
    # Deadlines three days out: no period closes during the run, so no report is late and nothing is overdue.
    # High alerts climb regency → province → national within seconds when nobody acknowledges. A notice
    # whose attempt died with a killed notifier goes out again when its lease runs out: 30 s, not 2 min.
    deadline_day = WEEKDAYS[(date.today().weekday() + 3) % 7]
    return {"IOMKI_REPORT_REGIME": f"weekly:{deadline_day}@12:00", "IOMKI_ESCALATION_AFTER": "PT4S,PT4S",
            "IOMKI_WEBHOOK_TIMEOUT": "PT5S", "IOMKI_DELIVERY_LEASE": "PT30S"}


# ------------------------------------------------------------------------------------------- the plan


def plan_plants(rng: random.Random) -> list[Plant]:
    plants = []
    for index in range(PLANTS):
        nib = f"81299{index:08d}"
        plants.append(Plant(
            index=index, nib=nib,
            application={
                "company": {"nib": nib, "npwp": "01.234.567.8-901.000", "name": f"PT Uji Ketahanan {index}"},
                "facility": {"name": f"Pabrik {index}",
                             "address": f"Jl. Industri Blok {index} No. {rng.randint(1, 99)}",
                             "province_code": "32", "regency_code": REGENCIES[index % len(REGENCIES)]},
                "kbli": ["20111"], "sector_class": rng.choice(["critical", "essential", "non_essential"]),
                "workforce": {"total": 300, "on_site_per_shift": [150, 150]},
                "health_protocol_commitment": True,
                "contact": {"email": f"k3-{index}@uji.example", "phone": "+62218900000"},
            },
            planned_decision="reject" if rng.random() < 0.1 else "issue",
            planned_cases=rng.choice((0, 0, 0, 1, 2, 2, 3)),
        ))
    return plants


@dataclass
class Fault:
    name: str  # "kill <service>", "restart broker" or "restart database"
    at: float  # planned moment, seconds into the load
    outage: float  # how long the victim stays down
    began: float | None = None
    ready: float | None = None  # every service answering /readyz again

    def __str__(self) -> str:
        if self.began is None:
            return f"  {self.name:<18} planned at +{self.at:.1f}s, never injected"
        return (f"  +{self.began:5.1f}s  {self.name:<18} down {self.outage:.1f}s, "
                f"all services serving again at +{self.ready:.1f}s")


def plan_faults(rng: random.Random) -> list[Fault]:
    """Each service killed once, the broker and the database restarted once, in a random order, each at a
    random moment of its own slot of the load (so they never overlap)."""
    names = [f"kill {service}" for service in SERVICES] + ["restart broker", "restart database"]
    rng.shuffle(names)
    slot = (LOAD_SECONDS - 12) / len(names)
    return [Fault(name, 4 + i * slot + rng.uniform(0, slot / 2), rng.uniform(0.3, 3.0)) for i, name in enumerate(names)]


# ------------------------------------------------------------------------------------------- the load


class Load:
    """Concurrent drivers over HTTP, recording in the oracle what the platform accepted."""

    def __init__(self, services: RunningServices, http: httpx.AsyncClient, oracle: Oracle, seed: int,
                 until: float, faults_over: asyncio.Event) -> None:
        self.services = services
        self.http = http
        self.oracle = oracle
        self.seed = seed
        self.until = until
        self.faults_over = faults_over
        self.operator = bearer("operator")

    async def run(self) -> None:
        await asyncio.gather(self._applicant(), self._officer(), self._reporter(), self._case_reporter())

    def _going(self) -> bool:
        """The load goes on for its planned time, and at least until every fault was injected and is over."""
        return time.monotonic() < self.until or not self.faults_over.is_set()

    def _rng(self, driver: str) -> random.Random:
        return random.Random(f"{self.seed}-{driver}")

    # -- drivers ----------------------------------------------------------------------------------

    async def _applicant(self) -> None:
        rng = self._rng("applicant")
        for plant in self.oracle.plants:
            if not self._going():
                return
            await self.apply(plant)
            await asyncio.sleep(rng.uniform(0.4, 1.2))

    async def _officer(self) -> None:
        rng = self._rng("officer")
        while self._going():
            for plant in [p for p in self.oracle.plants if p.permit_id and p.decision is None]:
                await self.decide(plant)
            await asyncio.sleep(rng.uniform(0.3, 1.0))

    async def _reporter(self) -> None:
        rng = self._rng("reporter")
        while self._going():
            if issued := self.oracle.issued:
                await self.report(rng.choice(issued))
            await asyncio.sleep(rng.uniform(0.3, 1.0))

    async def _case_reporter(self) -> None:
        rng = self._rng("cases")
        while self._going():
            if due := [p for p in self.oracle.issued if len(p.cases) < p.planned_cases]:
                await self.report_case(rng.choice(due), rng)
            await asyncio.sleep(rng.uniform(0.5, 1.5))

    # -- requests ---------------------------------------------------------------------------------

    async def send(self, request: str, method: str, url: str, **kwargs) -> httpx.Response | Outcome:
        """One attempt; an Outcome when the platform did not answer with a decision of its own."""
        try:
            response = await self.http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            self.oracle.count(request, "unreachable")
            return Outcome.REFUSED
        except httpx.TransportError as exc:  # sent; the answer went down with the connection
            self.oracle.count(request, f"cut ({type(exc).__name__})")
            return Outcome.UNKNOWN
        self.oracle.count(request, str(response.status_code))
        if response.status_code == 503:
            return Outcome.REFUSED
        if response.status_code >= 500:
            return Outcome.UNKNOWN
        return response

    async def apply(self, plant: Plant) -> None:
        permits, company = self.services.url("permits"), bearer("company", nib=plant.nib)
        uncertain = False
        while True:
            answer = await self.send("apply", "POST", f"{permits}/permits", json=plant.application, headers=company)
            if isinstance(answer, Outcome):
                uncertain |= answer is Outcome.UNKNOWN
                await asyncio.sleep(0.5)
                continue
            if answer.status_code == 201:
                plant.permit_id, plant.facility_id = answer.json()["permit_id"], answer.json()["facility_id"]
                return
            if answer.status_code == 409 and uncertain and "existing_permit_id" in answer.json():
                self.oracle.count("apply", "landed before its answer was lost")
                plant.permit_id = answer.json()["existing_permit_id"]
                while (permit := await self.read(f"{permits}/permits/{plant.permit_id}", company)) is None:
                    await asyncio.sleep(0.5)
                plant.facility_id = permit["facility_id"]
                return
            raise AssertionError(f"apply for plant {plant.index}: {answer.status_code} {answer.text}")

    async def decide(self, plant: Plant) -> None:
        url = f"{self.services.url('permits')}/permits/{plant.permit_id}/decision"
        outcome = {"issue": "ISSUED", "reject": "REJECTED"}[plant.planned_decision]
        uncertain = False
        while True:
            answer = await self.send("decide", "POST", url, headers=self.operator,
                                     json={"decision": plant.planned_decision, "reason": "documents checked"})
            if isinstance(answer, Outcome):
                uncertain |= answer is Outcome.UNKNOWN
                await asyncio.sleep(0.5)
                continue
            if answer.status_code == 200 or (
                    answer.status_code == 409 and uncertain and answer.json().get("current_status") == outcome):
                plant.decision = plant.planned_decision
                return
            raise AssertionError(f"decision on plant {plant.index}: {answer.status_code} {answer.text}")

    async def report(self, plant: Plant) -> None:
        company = bearer("company", nib=plant.nib)
        schedule = await self.read(f"{self.services.url('reports')}/schedules/{plant.permit_id}", company)
        if schedule is None:  # reports has not learned of the permit yet, or is down
            return
        period = max((p for p in schedule["periods"] if p["status"] in ("open", "submitted")),
                     key=lambda p: p["seq"], default=None)
        if period is None:
            raise AssertionError(f"plant {plant.index} has no period open for reports: {schedule}")
        marker = f"fault-load report {plant.index}.{len(plant.reports) + 1}"
        answer = await self.send("report", "POST", f"{self.services.url('reports')}/reports", headers=company, json={
            "permit_id": plant.permit_id, "period_id": period["period_id"],
            "workforce": {"total": 300, "on_site_per_shift": [150, 140]}, "odp": 1, "pdp": 0,
            "confirmed_positive": 0, "tests": {"pcr": 4, "antigen": 20},
            "vaccinated": {"dose1": 280, "dose2": 250, "booster": 90}, "transport_modes": ["company bus"],
            "protocol_checklist": dict.fromkeys(("temperature_screening", "masks", "distancing", "ventilation",
                                                 "disinfection", "handwash_stations", "pedulilindungi_scan"), True),
            "case_handling": marker})
        if isinstance(answer, Outcome):
            plant.reports.append(Report(marker, answer))
        elif answer.status_code == 201:
            plant.reports.append(Report(marker, Outcome.ACCEPTED, answer.json()["report_id"]))
        else:
            raise AssertionError(f"report of plant {plant.index}: {answer.status_code} {answer.text}")

    async def report_case(self, plant: Plant, rng: random.Random) -> None:
        reference = f"C-{plant.index}-{len(plant.cases) + 1}"
        yesterday = datetime.now(ZoneInfo("Asia/Jakarta")).date() - timedelta(days=1)
        body = {"facility_id": plant.facility_id, "case_ref": reference, "confirmed_on": yesterday.isoformat(),
                "symptomatic": rng.random() < 0.5, "close_contacts": rng.randint(0, 20)}
        uncertain = False
        while True:
            answer = await self.send("case", "POST", f"{self.services.url('incidents')}/cases", json=body,
                                     headers=bearer("company", nib=plant.nib))
            if isinstance(answer, Outcome):
                uncertain |= answer is Outcome.UNKNOWN
                await asyncio.sleep(0.5)
                continue
            if answer.status_code == 404:
                return  # incidents has not learned of the plant yet (nor could a lost attempt have landed)
            if answer.status_code == 201 or (
                    answer.status_code == 409 and uncertain and "already recorded" in answer.json()["detail"]):
                plant.cases.append(reference)
                return
            raise AssertionError(f"case at plant {plant.index}: {answer.status_code} {answer.text}")

    async def read(self, url: str, headers: dict[str, str]) -> dict | None:
        answer = await self.send("read", "GET", url, headers=headers)
        return answer.json() if isinstance(answer, httpx.Response) and answer.status_code == 200 else None


# ------------------------------------------------------------------------------------------- faults


async def inject(services: RunningServices, faults: list[Fault], started: float,
                 kills: dict[str, list[float]], over: asyncio.Event) -> None:
    """One fault at a time: wait for its moment, inject it, bring the victim back, wait until every service
    serves HTTP again (its start, which needs the database, is over; its broker connection may still be on
    its way), so that a restarting service never meets the next fault half started."""
    platform = services.platform
    assert platform.broker is not None
    for fault in faults:
        await asyncio.sleep(max(0.0, started + fault.at - time.monotonic()))
        fault.began = time.monotonic() - started
        action, victim = fault.name.split()
        if action == "kill":
            services.kill(victim)
            kills[victim].append(time.monotonic())
            await asyncio.sleep(fault.outage)
            services.start(victim)
        elif victim == "broker":
            await asyncio.to_thread(platform.broker.stop)
            await asyncio.sleep(fault.outage)
            await asyncio.to_thread(platform.broker.start)
        else:
            await asyncio.to_thread(platform.stop_database)
            await asyncio.sleep(fault.outage)
            await asyncio.to_thread(platform.start_database)
        await serving(services)
        fault.ready = time.monotonic() - started
    await asyncio.sleep(LOAD_AFTER_FAULTS)
    over.set()


async def serving(services: RunningServices, timeout: float = 120) -> None:
    async with asyncio.timeout(timeout), httpx.AsyncClient(timeout=2) as client:
        for service, process in services.processes.items():
            while True:
                assert process.poll() is None, f"{service} exited: {services.log_path(service).read_text()[-3000:]}"
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{services.url(service)}/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)


# ------------------------------------------------------------------------------------------- the test


async def test_killed_services_and_restarted_broker_and_database_lose_nothing_and_repeat_nothing():
    seed = int(os.environ.get("IOMKI_FAULT_SEED") or random.SystemRandom().randrange(1_000_000))
    print(f"\nfault injection: seed {seed} (IOMKI_FAULT_SEED={seed} replays this plan)")
    rng = random.Random(seed)
    oracle = Oracle(plan_plants(rng))
    faults = plan_faults(rng)
    kills: dict[str, list[float]] = defaultdict(list)
    receivers = {name: WebhookReceiver() for name in ("regency", "province", "national", "feed")}
    async with contextlib.AsyncExitStack() as stack:
        for receiver in receivers.values():
            await stack.enter_async_context(receiver)
        services = await stack.enter_async_context(running_platform("faults", overrides(), own_database=True))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=20))
        await register_task_forces(http, services, receivers)

        started = time.monotonic()
        faults_over = asyncio.Event()
        load = Load(services, http, oracle, seed, until=started + LOAD_SECONDS, faults_over=faults_over)
        async with asyncio.timeout(LOAD_SECONDS + 240):
            await asyncio.gather(load.run(), inject(services, faults, started, kills, faults_over))
        loaded = time.monotonic() - started

        trace: list[str] = []
        state, receipts, waiting = await settle(services.platform.admin_url, oracle, receivers, started, trace)
        settled = time.monotonic() - started
        await services.wait_ready(timeout=60)  # every service is up and answering after all it went through

    checks = [Check("settled: nothing left to publish, consume, escalate or deliver", 1, waiting),
              *compare(oracle, state, receipts, kills["notifier"])]
    report = summary(seed, faults, oracle, state, receipts, checks, loaded, settled, trace)
    print(report)
    (ARTIFACTS / "faults-summary.txt").write_text(report + "\n")
    failed = [check.name for check in checks if check.problems]
    assert not failed, f"seed {seed}: {len(failed)} checks failed: {failed}"


async def register_task_forces(http: httpx.AsyncClient, services: RunningServices,
                               receivers: dict[str, WebhookReceiver]) -> None:
    """The health division of each regency's, the province's and the national task force on its own webhook;
    the national task force also subscribes a feed to permits issued and reports submitted."""
    notifier, operator = services.url("notifier"), bearer("operator")
    forces = [("regency", code, receivers["regency"]) for code in REGENCIES]
    forces += [("province", "32", receivers["province"]), ("national", "", receivers["national"])]
    for level, region, receiver in forces:
        created = await http.post(f"{notifier}/task-forces", headers=operator, json={
            "level": level, "region_code": region, "name": f"Satgas COVID-19 {level} {region}".strip(),
            "contacts": [{"division": "health", "webhook": receiver.url, "secret": SECRET}]})
        assert created.status_code == 201, created.text
    subscribed = await http.post(f"{notifier}/subscriptions", headers=operator, json={
        "task_force_id": created.json()["task_force_id"], "channel": "webhook", "target": receivers["feed"].url,
        "secret": SECRET, "event_types": list(SUBSCRIBED)})
    assert subscribed.status_code == 201, subscribed.text


async def settle(admin_url: str, oracle: Oracle, receivers: dict[str, WebhookReceiver], started: float,
                 trace: list[str]) -> tuple[State, list[Receipt], list[str]]:
    """Poll until nothing is pending and the state stays the same for a few seconds; what is still pending
    when the time is up becomes a failed check. `trace` gets what it waited for, each time that changes."""
    connection = await asyncpg.connect(admin_url)
    try:
        deadline = time.monotonic() + SETTLE_SECONDS
        previous, reported = None, None
        while True:
            state = await read_state(connection)
            receipts = [r for name, receiver in receivers.items() for r in receipts_of(name, receiver.deliveries)]
            waiting = pending(oracle, state, receipts)
            if waiting != reported:
                trace.append(f"  +{time.monotonic() - started:5.1f}s  " + ("; ".join(waiting) or "nothing pending"))
                reported = waiting
            current = None if waiting else fingerprint(state, receipts)
            if (current is not None and current == previous) or time.monotonic() > deadline:
                return state, receipts, waiting
            previous = current
            await asyncio.sleep(STABLE_SECONDS)
    finally:
        await connection.close()


def summary(seed: int, faults: list[Fault], oracle: Oracle, state: State, receipts: list[Receipt],
            checks: list[Check], loaded: float, settled: float, trace: list[str]) -> str:
    lines = [f"fault injection, seed {seed}: load {loaded:.0f}s, settled at +{settled:.0f}s", "injected:"]
    lines += [str(fault) for fault in faults]
    lines.append("requests (answers):")
    for request in ("apply", "decide", "report", "case", "read"):
        answers = {answer: n for (kind, answer), n in sorted(oracle.requests.items()) if kind == request}
        lines.append(f"  {request:<7} " + ", ".join(f"{answer} ×{n}" for answer, n in answers.items()))
    reports = [r for p in oracle.plants for r in p.reports]
    unknown = [r for r in reports if r.outcome is Outcome.UNKNOWN]
    lines.append(
        f"accepted: {len(oracle.applied)} applications, {len(oracle.issued)} issued, "
        f"{sum(r.outcome is Outcome.ACCEPTED for r in reports)} reports "
        f"({sum(r.outcome is Outcome.REFUSED for r in reports)} refused, {len(unknown)} unknown of which "
        f"{sum(r.marker in state.report_markers for r in unknown)} landed), "
        f"{sum(len(p.cases) for p in oracle.plants)} cases")
    lines.append(f"platform: {sum(len(e) for e in state.outbox.values())} events, {len(state.alerts)} alerts, "
                 f"{len(state.deliveries)} deliveries, {len(receipts)} webhook notices received "
                 f"({resent_after_crash(receipts)} re-sent after a killed notifier lost the record of its 200)")
    lines.append("settling:")
    lines += trace
    lines.append("checked:")
    lines += [str(check) for check in checks]
    return "\n".join(lines)
