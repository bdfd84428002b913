"""`make bench`, section "alert latency": from a `ClusterDeclared` committed to the task force's webhook answering.

The incidents and notifier services run as processes on the bench's broker and database, and the regency task
force's health division has a webhook on loopback (the end-to-end tests' receiver). Background load flows
meanwhile: `ReportSubmitted` events at `BACKGROUND_RATE`/s through an outbox, the relay and the broker, which
both services consume. Then, one plant after another, a company reports three confirmed cases (POST /cases) and
links them (POST /cases/{id}/links): the last link makes a cluster, which incidents declares; the notifier raises
the alert and delivers it.

Measured per cluster, on one clock (the machine's): the `ClusterDeclared` outbox row's `created_at` (written in
the transaction that declares the cluster) to the moment the receiver took the webhook, split at the record's
timestamp on the topic (set as the incidents relay hands it to the broker), at the notifier's planning of the
delivery (the consumer side), and the delivery itself. The reference, in the same
run: the same receiver answering a POST from the bench directly (the floor of one webhook on loopback).

`python -m bench.alerts` runs this section alone, on a database and broker of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table

from bench.ingestion import (
    Plant, ServiceProcess, event_source, new_plants, permit_issued, publish, start_uvicorn, wait_until,
)
from bench.platform import alone, run_as_deployed
from services.notifier.channels import standard_webhook_headers
from shared.contract import ClusterDeclared, Envelope, ReportSubmitted
from shared.messaging.bus import connection_options
from shared.runtime import ServiceRuntime
from shared.settings import PlatformSettings
from shared.web.access import Role, mint
from tests.support.receiver import WebhookReceiver

# Sizes can be changed for a quick look; the defaults are what `make bench` reports.
CLUSTERS = int(os.environ.get("IOMKI_BENCH_CLUSTERS", "60"))
CLUSTER_INTERVAL = 0.5  # seconds between one plant's cluster and the next
BACKGROUND_RATE = int(os.environ.get("IOMKI_BENCH_BACKGROUND_RATE", "300"))  # ReportSubmitted/s meanwhile
REGENCY = "32.16"


async def run(settings: PlatformSettings, console: Console) -> None:
    console.print(f"alert latency: {CLUSTERS} clusters, one every {CLUSTER_INTERVAL}s, under "
                  f"{BACKGROUND_RATE} events/s of background…")
    admin = await asyncpg.connect(settings.database_url)  # the bench reads the services' tables as the operator
    services = [start_uvicorn(settings, name, f"services.{name}.app:create_app") for name in ("incidents", "notifier")]
    try:
        async with WebhookReceiver() as receiver, httpx.AsyncClient(timeout=30) as http, \
                event_source(settings) as source:
            for service in services:
                await service.wait_ready()
            incidents, notifier = services
            receiver.secrets.append(await register_task_force(http, notifier, settings, receiver.url))
            plants = new_plants(CLUSTERS)
            started = time.perf_counter()
            await learn_plants(admin, source, [permit_issued(plant, regency_code=REGENCY) for plant in plants])
            caught_up = time.perf_counter() - started
            stop_background = asyncio.Event()
            background = asyncio.create_task(steady_background(source, BACKGROUND_RATE, stop_background))
            try:
                await asyncio.sleep(2)  # the background is flowing before the first cluster
                for plant in plants:
                    await declare_cluster(http, incidents, settings, plant.facility_id, plant.nib)
                    await asyncio.sleep(CLUSTER_INTERVAL)
                await wait_until(lambda: _all_delivered(receiver, len(plants)), "every cluster's webhook", 120)
            finally:
                stop_background.set()
                background_rate = await background
            floor = await direct_webhooks(http, receiver)
            received = delivered_clusters(receiver)
        spans = await cluster_spans(admin, received, await publication_moments(settings, set(received)))
    finally:
        for service in services:
            service.stop()
        await admin.close()
    print_alerts(console, spans, floor, caught_up, background_rate)


async def register_task_force(http: httpx.AsyncClient, notifier: ServiceProcess, settings: PlatformSettings,
                              webhook: str) -> str:
    """The regency task force, whose health division takes cluster alerts on its webhook (the default route).
    Returns the webhook's secret, issued by the notifier."""
    operator = {"Authorization": f"Bearer {mint(settings.jwt_secret, role=Role.OPERATOR)}"}
    answer = await http.post(f"{notifier.url}/task-forces", headers=operator, json={
        "level": "regency", "region_code": REGENCY, "name": "Satgas COVID-19 Kabupaten Bekasi",
        "contacts": [{"division": "health", "webhook": webhook}]})
    answer.raise_for_status()
    return answer.json()["webhook_secrets"][0]["secret"]


async def learn_plants(admin: asyncpg.Connection, source: ServiceRuntime, issued: list[Envelope]) -> None:
    """Issue the plants and wait until both services have consumed every event up to them (a new consumer group
    reads its topics from the start, earlier sections' events included)."""
    await publish(source, issued)
    ids = [envelope.id for envelope in issued]
    for schema in ("incidents", "notifier"):
        await wait_until(lambda schema=schema: _inbox_holds(admin, schema, ids), f"{schema} to learn the plants", 300)


async def _inbox_holds(admin: asyncpg.Connection, schema: str, ids: list[uuid.UUID]) -> bool:
    return await admin.fetchval(f"SELECT count(*) FROM {schema}.inbox WHERE event_id = ANY($1)", ids) == len(ids)


async def steady_background(source: ServiceRuntime, rate: int, stop: asyncio.Event) -> float:
    """`ReportSubmitted` of other plants at a steady rate (a few per 10 ms transaction) until `stop`; the rate
    achieved (lower when the machine cannot keep up)."""
    plants = new_plants(500)
    per_tick, tick = max(1, rate // 100), 0.01
    started = next_tick = time.perf_counter()
    emitted = 0
    while not stop.is_set():
        async with source.database.transaction() as work:
            await work.outbox.add(*(report_submitted(plants[(emitted + i) % len(plants)]) for i in range(per_tick)))
        emitted += per_tick
        next_tick += tick
        await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
    return emitted / (time.perf_counter() - started)


def report_submitted(plant: Plant) -> Envelope:
    now = datetime.now(UTC)
    return Envelope.wrap(ReportSubmitted(
        facility_id=plant.facility_id, province_code="32", regency_code=REGENCY, permit_id=plant.permit_id,
        report_id=uuid.uuid4(), period_id=uuid.uuid4(), period_starts_at=now, deadline=now, late=False,
        workforce_total=400, on_site_total=300, odp=1, pdp=0, confirmed_positive=0, new_positives=0,
        isolating_workers=0, tests_pcr=10, tests_antigen=40, vaccinated_dose1=380, vaccinated_dose2=350,
        vaccinated_booster=120,
    ), service="reports")


async def declare_cluster(http: httpx.AsyncClient, incidents: ServiceProcess, settings: PlatformSettings,
                          facility_id: uuid.UUID, nib: str) -> None:
    """Three confirmed cases at one plant on one day, linked in a chain: the second link makes a cluster (more than
    2 linked cases within 14 days)."""
    company = {"Authorization": f"Bearer {mint(settings.jwt_secret, role=Role.COMPANY, nib=nib)}"}
    case_ids = []
    for reference in ("C-BENCH-1", "C-BENCH-2", "C-BENCH-3"):
        answer = await http.post(f"{incidents.url}/cases", headers=company, json={
            "facility_id": str(facility_id), "case_ref": reference, "confirmed_on": date.today().isoformat(),
            "symptomatic": True, "symptom_onset_on": (date.today() - timedelta(days=1)).isoformat(),
            "close_contacts": 8})
        answer.raise_for_status()
        case_ids.append(answer.json()["case_id"])
    for case_id, other in zip(case_ids, case_ids[1:], strict=False):
        linked = await http.post(f"{incidents.url}/cases/{case_id}/links", headers=company,
                                 json={"linked_case_id": other, "kind": "same_line"})
        linked.raise_for_status()


def delivered_clusters(receiver: WebhookReceiver) -> dict[uuid.UUID, float]:
    """Each plant's cluster webhook and when the receiver took it, as epoch seconds (PostgreSQL's clock)."""
    wall_minus_monotonic = time.time() - time.monotonic()
    found = {}
    for delivery in receiver.deliveries:
        notice = json.loads(delivery.body)
        if notice["event_type"] == "ClusterDeclared":
            found.setdefault(uuid.UUID(notice["facility_id"]), delivery.received_at + wall_minus_monotonic)
    return found


async def _all_delivered(receiver: WebhookReceiver, count: int) -> bool:
    return len(delivered_clusters(receiver)) >= count


STAGES = ("declared → published by the incidents relay", "published → delivery planned (broker, notifier consumer)",
          "planned → webhook received (delivery worker, HTTP)")


async def publication_moments(settings: PlatformSettings, plants: set[uuid.UUID]) -> dict[uuid.UUID, float]:
    """When the incidents relay handed each plant's `ClusterDeclared` to the broker: the record's timestamp (ms),
    which its producer sets as it adds the record to a batch."""
    consumer = AIOKafkaConsumer(ClusterDeclared.topic.name, **connection_options(settings), group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: dict[uuid.UUID, float] = {}
    try:
        async with asyncio.timeout(60):
            while len(found) < len(plants):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        if json.loads(record.value)["type"] == ClusterDeclared.type_name():
                            found.setdefault(uuid.UUID(record.key.decode()), record.timestamp / 1000)
    finally:
        await consumer.stop()
    return found


async def cluster_spans(admin: asyncpg.Connection, received: dict[uuid.UUID, float],
                        published: dict[uuid.UUID, float]) -> list[list[float]]:
    """Per cluster, in ms: each of `STAGES`, then the whole, declared → webhook received."""
    rows = await admin.fetch(
        "SELECT encode(o.key, 'escape')::uuid AS facility_id, extract(epoch FROM o.created_at) AS declared,"
        " extract(epoch FROM min(d.created_at)) AS planned"
        " FROM incidents.outbox o"
        " JOIN notifier.alerts a ON a.facility_id = encode(o.key, 'escape')::uuid AND a.event_type = 'ClusterDeclared'"
        " JOIN notifier.deliveries d ON d.alert_id = a.alert_id"
        " WHERE o.event_type = $1 GROUP BY 1, 2",
        ClusterDeclared.type_name())
    spans = []
    for row in rows:
        if row["facility_id"] not in received:
            continue
        moments = [float(row["declared"]), published[row["facility_id"]], float(row["planned"]),
                   received[row["facility_id"]]]
        spans.append([(later - earlier) * 1000 for earlier, later in itertools.pairwise(moments)]
                     + [(moments[-1] - moments[0]) * 1000])
    return spans


async def direct_webhooks(http: httpx.AsyncClient, receiver: WebhookReceiver, count: int = 100) -> list[float]:
    """The receiver answering the bench's own POSTs of a notice-sized body, signed as the notifier signs and
    verified as every notice is: the floor of one webhook."""
    body = json.dumps({"event_type": "Floor", "details": {"x": "y" * 400}}).encode()
    spans = []
    for _ in range(count):
        headers = standard_webhook_headers(uuid.uuid4(), datetime.now(UTC), tuple(receiver.secrets), body)
        started = time.perf_counter()
        (await http.post(receiver.url, content=body, headers={"Content-Type": "application/json", **headers})
         ).raise_for_status()
        spans.append((time.perf_counter() - started) * 1000)
    return spans


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def print_alerts(console: Console, spans: list[list[float]], floor: list[float], caught_up: float,
                 background: float) -> None:
    table = Table(title=f"alert latency: ClusterDeclared committed → task force webhook 200 ({len(spans)} clusters)")
    table.add_column("measure")
    table.add_column("p50", justify="right")
    table.add_column("p99", justify="right")
    table.add_column("target", justify="right")
    whole = [span[-1] for span in spans]
    table.add_row("declared → webhook received", f"{percentile(whole, 0.5):.0f} ms",
                  f"{percentile(whole, 0.99):.0f} ms", "p99 < 250 ms")
    for index, stage in enumerate(STAGES):
        stage_spans = [span[index] for span in spans]
        table.add_row(f"  {stage}", f"{percentile(stage_spans, 0.5):.0f} ms", f"{percentile(stage_spans, 0.99):.0f} ms",
                      "")
    table.add_row("reference: one webhook POST from the bench to the same receiver", f"{percentile(floor, 0.5):.1f} ms",
                  f"{percentile(floor, 0.99):.1f} ms", "")
    table.add_row("background load (ReportSubmitted through the pipeline)", f"{background:,.0f} events/s", "", "")
    table.add_row("both services caught up with the topics' history", f"{caught_up:.1f} s", "", "")
    console.print(table)


if __name__ == "__main__":
    run_as_deployed(alone(run))
