"""The load and the settling of the fault-injection tests (test_faults.py, test_cluster_faults.py): a plan of
plants and faults from a seed, concurrent drivers over HTTP recording in the oracle what the platform accepted,
one fault at a time struck by the test's own `Strike`, then a wait for the platform to settle and a comparison
with the oracle, summarised under ARTIFACTS.

Requests whose answer is lost with a cut connection: applications, decisions, cases, contacts' exit tests and
acknowledgements are retried as they are idempotent by nature (one permit per plant, one decision per application,
one case per reference, one exit test per contact, one acknowledgement per alert: the retry's 409 names what the
lost attempt did); reports are not (a second one supersedes the first), so they are "maybe" and the oracle takes
whichever outcome the reports service shows, then expects the same downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from shared.regions import NATIONAL
from tests.support.oracle import (
    CLUSTER_LINKS, EXIT_TEST_FROM_DAY, SERVICES, SUBSCRIBED, Acknowledgement, Check, Contact, Oracle, Outcome, Plant,
    Receipt, Report, State, compare, fingerprint, pending, read_state, receipts_of, resent_after_crash,
)
from tests.support.platform import TestPlatform, bearer
from tests.support.processes import ARTIFACTS, RunningServices, running_platform
from tests.support.receiver import WebhookReceiver

SETTLE_SECONDS = 180  # generous: what it waits for is listed when it runs out
SETTLE_SECONDS_INTERRUPTED = 60  # when a fault or a driver failed, the platform may never settle: report sooner
STABLE_SECONDS = 3
LOAD_BETWEEN_FAULTS = 2  # the load meets the recovered platform before the next fault
LOAD_AFTER_FAULTS = 3  # the load goes on a little after the last fault, so that it meets the recovery
REGENCIES = ("32.16", "32.75")  # Kabupaten and Kota Bekasi, in Jawa Barat (32)
# Days between a listed contact's last exposure and the day its case is entered. A quarantine lasts 14 days, longer
# than a run, so the load's contacts meet their ends through the dates it gives: 15 and 14 days ago, the end has
# come (released as the case is entered); 13, it comes at the plant's next midnight (a run across it sees the timer
# fire); 6 and 5, an exit test counts today; 2 and 0, in quarantine for the whole run.
EXPOSED_DAYS_AGO = (15, 14, 13, 6, 5, 2, 0)
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def overrides() -> dict[str, str]:
    # Deadlines three days out: no period closes during the run, so no report is late and nothing is overdue.
    # High alerts climb regency → province → national within seconds when nobody acknowledges. A notice
    # whose attempt died with a killed notifier goes out again when its lease runs out: 30 s, not 2 min.
    deadline_day = WEEKDAYS[(date.today().weekday() + 3) % 7]
    return {"IOMKI_REPORT_REGIME": f"weekly:{deadline_day}@12:00", "IOMKI_ESCALATION_AFTER": "PT4S,PT4S",
            "IOMKI_WEBHOOK_TIMEOUT": "PT5S", "IOMKI_DELIVERY_LEASE": "PT30S",
            "IOMKI_RECOMMENDATION_ANSWER_WITHIN": "PT4S"}


# ------------------------------------------------------------------------------------------- the plan


def fault_seed() -> int:
    seed = int(os.environ.get("IOMKI_FAULT_SEED") or random.SystemRandom().randrange(1_000_000))
    print(f"\nfault injection: seed {seed} (IOMKI_FAULT_SEED={seed} replays this plan)")
    return seed


def plan_plants(rng: random.Random, count: int) -> list[Plant]:
    plants = []
    for index in range(count):
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
                # No e-mail: the notifier would tell the company of its cases and closures, and the platform
                # under faults has no mail server; the task forces' webhooks are what the oracle follows.
                "contact": {"phone": "+62218900000"},
            },
            planned_decision="reject" if rng.random() < 0.1 and index != 1 else "issue",
            # The second plant has three cases, which the load links into a cluster: every run has one.
            planned_cases=3 if index == 1 else rng.choice((0, 0, 0, 1, 2, 2, 3)),
        ))
    return plants


def plan_contacts(rng: random.Random, today: date, isolation_starts_on: date) -> list[Contact]:
    """A case's close contacts: half the time counted (each exposed, as the platform then assumes, on the case's
    first day of isolation), else listed, each with its own last exposure (`EXPOSED_DAYS_AGO`), some with an entry
    test taken that day, and most of those exposed 5 or 6 days ago with an exit test to take today."""
    if rng.random() < 0.5:
        return [Contact(number, isolation_starts_on, assumed=True) for number in range(1, rng.randint(0, 20) + 1)]
    contacts = []
    for number in range(1, rng.randint(1, 8) + 1):
        days_ago = rng.choice(EXPOSED_DAYS_AGO)
        entry = rng.choice(("negative", "positive")) if rng.random() < 0.2 else None
        exit_test = (rng.choice(("negative", "negative", "positive"))
                     if days_ago in (EXIT_TEST_FROM_DAY, EXIT_TEST_FROM_DAY + 1) and entry != "positive"
                     and rng.random() < 0.7 else None)
        contacts.append(Contact(number, today - timedelta(days=days_ago), entry_test=entry, planned_exit=exit_test))
    return contacts


@dataclass
class Fault:
    name: str  # "kill <service>", "kill broker", "restart broker", "restart database"; the cluster's have theirs
    at: float  # planned moment, seconds into the load (later when the fault before is not over by then)
    outage: float = 0.0  # how long the victim stays down, if the fault has one victim
    began: float | None = None
    ready: float | None = None  # every service answering /healthz again
    struck_at: float | None = None  # time.monotonic() just after the blow (a SIGKILL, a SIGSTOP, a stop)
    steps: list[str] = field(default_factory=list)  # what the injection did and waited for, and when
    failure: str | None = None
    origin: float = 0.0  # time.monotonic() when the load began

    def step(self, what: str) -> None:
        self.steps.append(f"+{time.monotonic() - self.origin:5.1f}s  {what}")

    def __str__(self) -> str:
        if self.began is None:
            return f"  {self.name:<18} planned at +{self.at:.1f}s, never injected"
        lines = [f"  +{self.began:5.1f}s  {self.name:<18} " + (f"down {self.outage:.1f}s, " if self.outage else "")
                 + (f"all services serving again at +{self.ready:.1f}s" if self.ready is not None else "not over")]
        lines += [f"             {step}" for step in self.steps]
        if self.failure:
            lines.append(f"             FAILED: {self.failure}")
        return "\n".join(lines)


Strike = Callable[[RunningServices, Fault], Awaitable[None]]
"""Inflict one fault and bring the platform back (the victim restarted, the cluster whole again)."""


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
        await asyncio.gather(self._applicant(), self._officer(), self._reporter(), self._case_reporter(),
                             self._acknowledger())

    def _going(self) -> bool:
        """The load goes on for its planned time, and at least until every fault was injected and is over."""
        return time.monotonic() < self.until or not self.faults_over.is_set()

    def _rng(self, driver: str) -> random.Random:
        return random.Random(f"{self.seed}-{driver}")  # noqa: S311 -- seeded per driver, repeatable

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
            # Three cases known by their ids are linked in a chain, which makes them a cluster.
            if linkable := [p for p in self.oracle.issued if len(p.case_ids) == 3 and None not in p.case_ids
                            and p.links < CLUSTER_LINKS]:
                await self.link_cases(rng.choice(linkable))
            # Contacts of cases known by their ids take the exit test planned for them.
            if testable := [(p, ref, contact) for p in self.oracle.issued for ref, listed in p.contacts.items()
                            if p.case_ids[p.cases.index(ref)] is not None
                            for contact in listed if contact.planned_exit and contact.exit_test is None]:
                await self.test_contact(*rng.choice(testable))
            await asyncio.sleep(rng.uniform(0.5, 1.5))

    async def _acknowledger(self) -> None:
        """Task forces (and the operator) acknowledge about half the high alerts, some at once, some after they
        climbed a level or two; the others climb to the national task force."""
        rng = self._rng("acknowledger")
        while self._going():
            await asyncio.sleep(rng.uniform(1.0, 2.5))
            listed = await self.read(f"{self.services.url('notifier')}/alerts?status=open&limit=1000", self.operator)
            high = [a for a in (listed or {}).get("alerts", []) if a["severity"] == "high"]
            climbing = [a for a in high if a["escalate_at"] is not None]  # those at the top stay open, and pile up
            if high and rng.random() < 0.5:
                await self.acknowledge(rng.choice(climbing if climbing and rng.random() < 0.7 else high), rng)

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

    async def answered(self, request: str, method: str, url: str, **kwargs) -> tuple[httpx.Response, bool]:
        """Tried until the platform answers for itself; and whether an attempt before may have landed (its answer
        was lost), so that a conflict can be told apart from a repeat of what landed."""
        uncertain = False
        while isinstance(answer := await self.send(request, method, url, **kwargs), Outcome):
            uncertain |= answer is Outcome.UNKNOWN
            await asyncio.sleep(0.5)
        return answer, uncertain

    async def apply(self, plant: Plant) -> None:
        permits, company = self.services.url("permits"), bearer("company", nib=plant.nib)
        answer, uncertain = await self.answered("apply", "POST", f"{permits}/permits", json=plant.application,
                                                headers=company)
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
        decision = {"decision": plant.planned_decision, "reason": "documents checked"}
        answer, uncertain = await self.answered("decide", "POST", url, headers=self.operator, json=decision)
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
            "new_positives": 0, "isolating_workers": 0, "tests": {"pcr": 4, "antigen": 20},
            "vaccinated": {"dose1": 280, "dose2": 250, "booster": 90}, "transport_modes": ["company bus"],
            "protocol_checklist": dict.fromkeys(("temperature_screening", "masks", "distancing", "ventilation",
                                                 "disinfection", "handwash_stations", "pedulilindungi_scan"), True),
            "case_handling": marker, "declared_true": True})
        if isinstance(answer, Outcome):
            plant.reports.append(Report(marker, answer))
        elif answer.status_code == 201:
            plant.reports.append(Report(marker, Outcome.ACCEPTED, answer.json()["report_id"]))
        else:
            raise AssertionError(f"report of plant {plant.index}: {answer.status_code} {answer.text}")

    async def report_case(self, plant: Plant, rng: random.Random) -> None:
        """A case confirmed yesterday, with its close contacts counted or listed (`plan_contacts`)."""
        reference = f"C-{plant.index}-{len(plant.cases) + 1}"
        today = datetime.now(plant.zone).date()
        confirmed_on, symptomatic = today - timedelta(days=1), rng.random() < 0.5
        # A symptomatic case isolates from its symptom onset; one without symptoms (no swab date given) from its
        # confirmation.
        isolation_starts_on = confirmed_on - timedelta(days=rng.randint(0, 2)) if symptomatic else confirmed_on
        contacts = plan_contacts(rng, today, isolation_starts_on)
        body: dict[str, Any] = {
            "facility_id": plant.facility_id, "case_ref": reference, "confirmed_on": confirmed_on.isoformat(),
            "symptomatic": symptomatic, "symptom_onset_on": isolation_starts_on.isoformat() if symptomatic else None}
        if contacts and not contacts[0].assumed:
            body["contacts"] = [{"last_exposure_on": c.last_exposure_on.isoformat()} | (
                {"entry_test": {"tested_on": c.last_exposure_on.isoformat(), "result": c.entry_test}}
                if c.entry_test else {}) for c in contacts]
        else:
            body["close_contacts"] = len(contacts)
        answer, uncertain = await self.answered("case", "POST", f"{self.services.url('incidents')}/cases", json=body,
                                                headers=bearer("company", nib=plant.nib))
        if answer.status_code == 404:
            return  # incidents has not learned of the plant yet (nor could a lost attempt have landed)
        if answer.status_code == 201 or (
                answer.status_code == 409 and uncertain and "already recorded" in answer.json()["detail"]):
            plant.cases.append(reference)
            plant.case_ids.append(answer.json()["case_id"] if answer.status_code == 201 else None)
            plant.contacts[reference] = contacts
            return
        raise AssertionError(f"case at plant {plant.index}: {answer.status_code} {answer.text}")

    async def test_contact(self, plant: Plant, reference: str, contact: Contact) -> None:
        """The contact's exit test, taken today: its contact id read from the case's line list first."""
        incidents, company = self.services.url("incidents"), bearer("company", nib=plant.nib)
        if contact.contact_id is None:
            case_id = plant.case_ids[plant.cases.index(reference)]
            listed = await self.read(f"{incidents}/cases/{case_id}/contacts?limit=500", company)
            if listed is None:
                return
            ids = {item["number"]: item["contact_id"] for item in listed["items"]}
            for listed_contact in plant.contacts[reference]:
                listed_contact.contact_id = ids[listed_contact.number]
        tested_on, result = datetime.now(plant.zone).date(), contact.planned_exit
        assert result is not None, "only a contact with a planned exit test is tested"
        left_as = {"negative": "released", "positive": "tested_positive"}[result]
        test = {"kind": "exit", "tested_on": tested_on.isoformat(), "result": result}
        answer, uncertain = await self.answered("test", "POST", f"{incidents}/contacts/{contact.contact_id}/tests",
                                                json=test, headers=company)
        if answer.status_code == 200 or (
                answer.status_code == 409 and uncertain and answer.json().get("current_status") == left_as):
            contact.exit_test = (tested_on, result)
            return
        raise AssertionError(f"exit test of contact {contact.number} of case {reference} at plant {plant.index}: "
                             f"{answer.status_code} {answer.text}")

    async def link_cases(self, plant: Plant) -> None:
        """The plant's next link, case to case (the same line), until it is accepted or shown to have landed."""
        first, second = plant.case_ids[plant.links], plant.case_ids[plant.links + 1]
        answer, uncertain = await self.answered("link", "POST", f"{self.services.url('incidents')}/cases/{first}/links",
                                                json={"linked_case_id": second, "kind": "same_line"},
                                                headers=bearer("company", nib=plant.nib))
        if answer.status_code == 201 or (answer.status_code == 409 and uncertain):
            plant.links += 1
            return
        raise AssertionError(f"link at plant {plant.index}: {answer.status_code} {answer.text}")

    async def acknowledge(self, alert: dict, rng: random.Random) -> None:
        """By the operator, or by the task force of the level the alert has reached."""
        level = alert["level"]
        if rng.random() < 0.5:
            role, headers = "operator", self.operator
        else:
            region = {"regency": alert["regency_code"], "province": alert["province_code"],
                      "national": NATIONAL}[level]
            role, headers = "task_force", bearer("task_force", region=region, sub=f"satgas-{level}-{region}")
        url = f"{self.services.url('notifier')}/alerts/{alert['alert_id']}/ack"
        answer, uncertain = await self.answered("ack", "POST", url, headers=headers)
        if answer.status_code == 200:
            level = answer.json()["level"]  # it may have climbed since it was listed
        elif answer.status_code == 409 and uncertain and answer.json().get("current_status") == "acknowledged":
            self.oracle.count("ack", "landed before its answer was lost")
        else:
            raise AssertionError(f"acknowledging alert {alert['alert_id']} as {role}: "
                                 f"{answer.status_code} {answer.text}")
        self.oracle.acknowledgements.append(Acknowledgement(alert["alert_id"], alert["event_type"], level, role))

    async def read(self, url: str, headers: dict[str, str]) -> dict | None:
        answer = await self.send("read", "GET", url, headers=headers)
        return answer.json() if isinstance(answer, httpx.Response) and answer.status_code == 200 else None


# ------------------------------------------------------------------------------------------- faults


async def inject(services: RunningServices, faults: list[Fault], strike: Strike, started: float,
                 over: asyncio.Event) -> None:
    """One fault at a time: wait for its moment, strike, wait until every service serves HTTP again (its start,
    which needs the database, is over; its broker connection may still be on its way), so that a restarting
    service never meets the next fault half started."""
    try:
        previous = 0.0
        for fault in faults:
            moment = max(fault.at, previous + LOAD_BETWEEN_FAULTS)
            await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
            fault.origin, fault.began = started, time.monotonic() - started
            try:
                await strike(services, fault)
                await serving(services)
            except BaseException as exc:  # the timeline shows which fault did not end, and why
                fault.failure = f"{type(exc).__name__}: {exc}"
                raise
            fault.ready = previous = time.monotonic() - started
        await asyncio.sleep(LOAD_AFTER_FAULTS)
    finally:
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


# ------------------------------------------------------------------------------------------- the run


async def load_under_faults(label: str, seed: int, plants: list[Plant], faults: list[Fault], strike: Strike, *,
                            load_seconds: float, own_database: bool = False, brokers: int = 1) -> None:
    """The platform as processes; the load for `load_seconds`, and on until `faults` are over; then settle,
    compare with the oracle, print the summary (and keep it under ARTIFACTS), and fail on any failed check."""
    oracle = Oracle(plants)
    receivers = {name: WebhookReceiver() for name in ("regency", "province", "national", "feed")}
    async with contextlib.AsyncExitStack() as stack:
        for receiver in receivers.values():
            await stack.enter_async_context(receiver)
        services = await stack.enter_async_context(
            running_platform(label, overrides(), own_database=own_database, brokers=brokers))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=20))
        await register_task_forces(http, services, receivers)

        started = time.monotonic()
        faults_over = asyncio.Event()
        load = Load(services, http, oracle, seed, until=started + load_seconds, faults_over=faults_over)
        interrupted = []
        try:
            async with asyncio.timeout(load_seconds + 240), asyncio.TaskGroup() as group:
                group.create_task(load.run())
                group.create_task(inject(services, faults, strike, started, faults_over))
        except TimeoutError:
            interrupted.append(f"the load and the faults ran past {load_seconds + 240}s")
        except ExceptionGroup as failures:
            interrupted += [f"{type(exc).__name__}: {exc}" for exc in failures.exceptions]
        loaded = time.monotonic() - started

        trace: list[str] = []
        state, receipts, waiting = await settle(services.platform, oracle, receivers, started, trace,
                                                SETTLE_SECONDS_INTERRUPTED if interrupted else SETTLE_SECONDS)
        settled = time.monotonic() - started
        unready = []
        try:
            await services.wait_ready(timeout=60)  # every service is up and answering after all it went through
        except AssertionError as exc:
            unready.append(str(exc))

        notifier_kills = [f.struck_at for f in faults if f.name == "kill notifier" and f.struck_at is not None]
        checks = [Check("the load and every fault ran to their end", len(faults), interrupted),
                  Check("settled: nothing left to publish, consume, commit, escalate or deliver", 1, waiting),
                  Check("every service ready after all it went through", len(SERVICES), unready),
                  *compare(oracle, state, receipts, notifier_kills)]
        failed = [check.name for check in checks if check.problems]
        if failed:  # the services' logs are there already; the broker's go with its data when the platform stops
            keep_broker_logs(services, label)
    report = summary(label, seed, faults, oracle, state, receipts, checks, loaded, settled, trace)
    print(report)
    (ARTIFACTS / f"{label}-summary.txt").write_text(report + "\n")
    assert not failed, f"seed {seed}: {len(failed)} checks failed: {failed} (logs in {ARTIFACTS})"


def keep_broker_logs(services: RunningServices, label: str) -> None:
    assert services.platform.broker is not None
    for node in services.platform.broker.nodes:
        if node.log_path.exists():
            shutil.copyfile(node.log_path, ARTIFACTS / f"{label}-kafka-node-{node.node_id}.log")


async def register_task_forces(http: httpx.AsyncClient, services: RunningServices,
                               receivers: dict[str, WebhookReceiver]) -> None:
    """The health division of each regency's, the province's and the national task force on its own webhook;
    the national task force also subscribes a feed to permits issued and reports submitted."""
    notifier, operator = services.url("notifier"), bearer("operator")
    forces = [("regency", code, receivers["regency"]) for code in REGENCIES]
    forces += [("province", "32", receivers["province"]), ("national", NATIONAL, receivers["national"])]
    for level, region, receiver in forces:
        created = await http.post(f"{notifier}/task-forces", headers=operator, json={
            "level": level, "region_code": region, "name": f"Satgas COVID-19 {level} {region}".strip(),
            "contacts": [{"division": "health", "webhook": receiver.url}]})
        assert created.status_code == 201, created.text
        receiver.secrets += [issued["secret"] for issued in created.json()["webhook_secrets"]]
    subscribed = await http.post(f"{notifier}/subscriptions", headers=operator, json={
        "task_force_id": created.json()["task_force_id"], "channel": "webhook", "target": receivers["feed"].url,
        "event_types": list(SUBSCRIBED)})
    assert subscribed.status_code == 201, subscribed.text
    receivers["feed"].secrets.append(subscribed.json()["secret"])


async def settle(platform: TestPlatform, oracle: Oracle, receivers: dict[str, WebhookReceiver], started: float,
                 trace: list[str], within: float) -> tuple[State, list[Receipt], list[str]]:
    """Poll until nothing is pending and the state stays the same for a few seconds; what is still pending
    when the time is up becomes a failed check. `trace` gets what it waited for, each time that changes."""
    connection = await asyncpg.connect(platform.admin_url)
    try:
        deadline = time.monotonic() + within
        previous, reported = None, None
        while True:
            state = await read_state(connection, platform.bootstrap)
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


def summary(label: str, seed: int, faults: list[Fault], oracle: Oracle, state: State, receipts: list[Receipt],
            checks: list[Check], loaded: float, settled: float, trace: list[str]) -> str:
    lines = [f"fault injection ({label}), seed {seed}: load {loaded:.0f}s, settled at +{settled:.0f}s", "injected:"]
    lines += [str(fault) for fault in faults]
    lines.append("requests (answers):")
    for request in ("apply", "decide", "report", "case", "link", "test", "ack", "read"):
        answers = {answer: n for (kind, answer), n in sorted(oracle.requests.items()) if kind == request}
        lines.append(f"  {request:<7} " + ", ".join(f"{answer} ×{n}" for answer, n in answers.items()))
    reports = [r for p in oracle.plants for r in p.reports]
    unknown = [r for r in reports if r.outcome is Outcome.UNKNOWN]
    contacts = [c for p in oracle.plants for listed in p.contacts.values() for c in listed]
    lines.append(
        f"accepted: {len(oracle.applied)} applications, {len(oracle.issued)} issued, "
        f"{sum(r.outcome is Outcome.ACCEPTED for r in reports)} reports "
        f"({sum(r.outcome is Outcome.REFUSED for r in reports)} refused, {len(unknown)} unknown of which "
        f"{sum(r.marker in state.report_markers for r in unknown)} landed), "
        f"{sum(len(p.cases) for p in oracle.plants)} cases ({sum(p.clustered for p in oracle.plants)} plants with "
        f"three linked) with {len(contacts)} close contacts ({sum(not c.assumed for c in contacts)} listed, "
        f"{sum(c.exit_test is not None for c in contacts)} exit tests), {len(oracle.acknowledgements)} "
        "acknowledgements ("
        + ", ".join(f"{n} at {level}" for level, n in Counter(a.level for a in oracle.acknowledgements).items()) + ")")
    acknowledged = sum(a["status"] == "acknowledged" for a in state.alerts)
    lines.append(f"platform: {sum(len(e) for e in state.outbox.values())} events, {len(state.alerts)} alerts "
                 f"({acknowledged} acknowledged), "
                 f"{len(state.deliveries)} deliveries, {len(receipts)} webhook notices received "
                 f"({resent_after_crash(receipts)} re-sent after a killed notifier lost the record of its 200)")
    lines.append("settling:")
    lines += trace
    lines.append("checked:")
    lines += [str(check) for check in checks]
    return "\n".join(lines)
