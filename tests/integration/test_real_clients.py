"""A permit issued on a three-node Apache Kafka, read by clients that share nothing with iomki and by the
operator's CLI.

The agency example (librdkafka and the CloudEvents SDK) and Kafka's own console consumer (Java) each read the
`PermitIssued` the permits service published; `iomki events tail` shows it, and `iomki status` reads every
service's group caught up on the cluster, from the offsets the groups committed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from click.testing import Result

from shared.contract import decode
from shared.settings import SERVICES
from tests.support.processes import RunningServices, cli_invoker, running_platform
from tests.support.kafka import read_topic
from tests.support.platform import ROOT, bearer
from tooling.embedded_kafka import broker_classpath

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "agency_subscriber.py"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"  # in kafka-tools, which deploy/kafka pins
NIB = "8120000135790"
APPLICATION = {
    "company": {"nib": NIB, "npwp": "02.345.678.9-012.000", "name": "PT Sepatu Cibaduyut"},
    "facility": {"name": "Bengkel Cibaduyut 3", "address": "Jl. Cibaduyut Raya No. 77, Bandung",
                 "province_code": "32", "regency_code": "32.73"},
    "kbli": ["15201"], "sector_class": "essential",
    "workforce": {"total": 140, "on_site_per_shift": [70, 70]},
    "health_protocol_commitment": True,
    "contact": {"email": "k3@cibaduyut.example", "phone": "+62225401234"},
}


@dataclass(frozen=True)
class IssuedPermit:
    permit_id: str
    facility_id: str
    on_topic: int  # messages on iomki.permits once its PermitIssued is there: this permit's events, nothing else


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster() -> AsyncIterator[RunningServices]:
    """The five services as processes on three Kafka nodes (topics replicated three times, two in sync)."""
    async with running_platform("clients", brokers=3) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def permit(cluster: RunningServices) -> IssuedPermit:
    # A shoe workshop in Bandung applies, and an officer issues its permit.
    async with httpx.AsyncClient(base_url=cluster.url("permits"), timeout=10) as http:
        applied = await http.post("/permits", json=APPLICATION, headers=bearer("company", nib=NIB))
        assert applied.status_code == 201, applied.text
        permit_id = applied.json()["permit_id"]
        issued = await http.post(f"/permits/{permit_id}/decision", json={"decision": "issue", "reason": "complete"},
                                 headers=bearer("operator"))
        assert issued.status_code == 200, issued.text
    records = await read_topic(cluster.platform.bootstrap, "iomki.permits", until=lambda records: any(
        decode(r.value).envelope.type == "iomki.PermitIssued.v1" for r in records))
    return IssuedPermit(permit_id, applied.json()["facility_id"], len(records))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cli(cluster: RunningServices) -> Callable[..., Any]:
    return cli_invoker(cluster)


async def test_an_agency_reads_the_permit_issued_with_librdkafka_and_the_cloudevents_sdk(cluster, permit):
    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(EXAMPLE), "--bootstrap", cluster.platform.bootstrap, "--group", "agency-dinkes-jabar",
         "--topic", "iomki.permits", "--max", str(permit.on_topic), "--timeout", "60"],
        capture_output=True, text=True, timeout=90,
    )

    assert run.returncode == 0, run.stderr
    issued = [line for line in map(json.loads, run.stdout.splitlines()) if line["type"] == "iomki.PermitIssued.v1"]
    assert len(issued) == 1
    assert issued[0]["key"] == issued[0]["subject"] == permit.facility_id
    assert issued[0]["data"]["permit_id"] == permit.permit_id


async def test_kafkas_own_console_consumer_reads_the_permit_issued(cluster, permit, tmp_path):
    logging = tmp_path / "log4j2.properties"  # the tool's own log on standard error: standard output is the events
    logging.write_text("appender.err.type = Console\nappender.err.name = err\nappender.err.target = SYSTEM_ERR\n"
                       "appender.err.layout.type = PatternLayout\nappender.err.layout.pattern = %p %m%n\n"
                       "rootLogger.level = warn\nrootLogger.appenderRef.err.ref = err\n")
    classpath = await asyncio.to_thread(broker_classpath, ROOT / ".data")
    run = await asyncio.to_thread(
        subprocess.run,
        ["java", f"-Dlog4j2.configurationFile={logging}", "-cp", classpath, CONSOLE_CONSUMER,
         "--bootstrap-server", cluster.platform.bootstrap, "--topic", "iomki.permits", "--from-beginning",
         "--formatter-property", "print.key=true",  # then a tab, then the value
         "--max-messages", str(permit.on_topic), "--timeout-ms", "30000"],
        capture_output=True, text=True, timeout=90,
    )

    assert run.returncode == 0, run.stderr
    read = [line.split("\t", 1) for line in run.stdout.splitlines()]
    assert len(read) == permit.on_topic, run.stderr
    issued = [(key, event) for key, value in read if (event := json.loads(value))["type"] == "iomki.PermitIssued.v1"]
    assert len(issued) == 1
    key, event = issued[0]
    assert key == event["subject"] == permit.facility_id
    assert event["data"]["permit_id"] == permit.permit_id


async def test_events_tail_shows_the_permit_issued(cli, permit):
    result = await cli("events", "tail", "--topic", "iomki.permits", "--type", "PermitIssued", "--from-beginning",
                       "--limit", "1", "--timeout", "30", "--json")

    [event] = [json.loads(line) for line in ok(result).splitlines()]
    assert event["type"] == "iomki.PermitIssued.v1" and event["data"]["permit_id"] == permit.permit_id
    assert event["key"] == event["subject"] == permit.facility_id


async def test_status_reads_every_group_caught_up_and_the_dead_letters(cli, cluster, permit):
    # Something not an event on iomki.reports: the four groups reading it (permits, incidents, notifier,
    # supervision) dead-letter it and move on, so every service's group has committed offsets.
    producer = AIOKafkaProducer(bootstrap_servers=cluster.platform.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait("iomki.reports", b"not an event", key=b"no-plant")
    finally:
        await producer.stop()

    async with asyncio.timeout(60):
        while len(letters := json.loads(ok(await cli("dlq", "list", "--json")))) < 4:
            await asyncio.sleep(0.5)
    assert sorted(letter["consumer_group"] for letter in letters) == ["iomki-incidents", "iomki-notifier",
                                                                     "iomki-permits", "iomki-supervision"]

    async with asyncio.timeout(60):
        while True:
            report = json.loads(ok(await cli("status", "--json")))
            groups = {group["group"]: group for group in report["consumer_groups"]}
            if all(groups[f"iomki-{service}"]["lag"] == 0 for service in SERVICES):
                break
            await asyncio.sleep(0.5)
    assert [(s["service"], s["healthy"], s["ready"]) for s in report["services"]] == [
        (service, True, True) for service in SERVICES]
    assert groups["iomki-reports"]["topics"]["iomki.permits"]["end"] == permit.on_topic
    assert groups["iomki-permits"]["topics"]["iomki.reports"]["end"] >= 1
    assert report["dlq_messages"] == 4 and "lag_note" not in report

    human = await cli("status")
    assert "Consumer lag on" in ok(human) and "iomki-reports" in human.stdout


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result.stdout


async def test_the_brokers_classpath_is_fetched_into_a_folder_named_relative_to_the_process(tmp_path, monkeypatch):
    """`make run` names its data folder relatively (`.data`); Maven would write it beside the pom instead."""
    monkeypatch.chdir(tmp_path)
    classpath = await asyncio.to_thread(broker_classpath, Path("relative-cache"))
    kept = list((tmp_path / "relative-cache").glob("kafka-classpath-*.txt"))
    assert len(kept) == 1 and kept[0].read_text() == classpath
    assert all(Path(jar).is_absolute() and Path(jar).exists() for jar in classpath.split(os.pathsep))
