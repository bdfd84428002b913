"""`iomki status`: is every service up and keeping up? Health and readiness, outbox backlog and dead letters
from each service's /metrics, consumer lag per group from the broker, and the size of the DLQ.

Exits 1 when a service is down or not ready, so a script can wait on it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from shared.contract import DLQ
from shared.settings import SERVICES, PlatformSettings, service_url
from tooling.cli.dlq import read_dead_letters
from tooling.cli.support import CliFailure, JsonOption, emit, kafka_options, out, shown, table


def status(as_json: JsonOption = False) -> None:
    """Every service's health and readiness, outbox backlog, dead letters, consumer lag and DLQ size."""
    services = [_service(service) for service in SERVICES]
    report: dict[str, Any] = {"services": services, "broker": PlatformSettings().bootstrap}
    report |= asyncio.run(_broker_figures())
    emit(report, as_json, _render)
    if not all(s["healthy"] and s["ready"] for s in services):
        raise CliFailure("a service is down or not ready")


def _service(service: str) -> dict[str, Any]:
    base = service_url(service)
    found: dict[str, Any] = {"service": service, "url": base, "healthy": False, "ready": False, "checks": {},
                             "outbox_backlog": None, "outbox_lag_seconds": None, "dead_lettered_total": None}
    try:
        with httpx.Client(base_url=base, timeout=5) as client:
            found["healthy"] = client.get("/healthz").status_code == 200
            ready = client.get("/readyz")
            found["ready"] = ready.status_code == 200
            found["checks"] = ready.json().get("checks", {})
            found |= _metrics(client.get("/metrics").text)
    except httpx.HTTPError as exc:
        found["error"] = "unreachable: is the platform running? try make run" \
            if isinstance(exc, httpx.ConnectError) else f"{type(exc).__name__}: {exc}"
    return found


def _metrics(text: str) -> dict[str, Any]:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ("iomki_outbox_backlog", "iomki_outbox_lag_seconds",
                               "iomki_events_dead_lettered_total"):
                values[sample.name] = values.get(sample.name, 0) + sample.value
    return {"outbox_backlog": int(values.get("iomki_outbox_backlog", 0)),
            "outbox_lag_seconds": round(values.get("iomki_outbox_lag_seconds", 0), 3),
            "dead_lettered_total": int(values.get("iomki_events_dead_lettered_total", 0))}


async def _broker_figures() -> dict[str, Any]:
    try:
        async with asyncio.timeout(30):
            groups = await _consumer_lag()
            dlq = len(await read_dead_letters())
        return {"consumer_groups": groups, "dlq_messages": dlq}
    except (KafkaError, OSError, TimeoutError) as exc:
        return {"consumer_groups": [], "dlq_messages": None,
                "broker_error": str(exc) or type(exc).__name__}


async def _consumer_lag() -> list[dict[str, Any]]:
    options = kafka_options()
    admin = AIOKafkaAdminClient(request_timeout_ms=10_000, **options)
    await admin.start()
    try:
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **options)
        await consumer.start()
        try:
            return [await _group_lag(admin, consumer, f"iomki-{service}") for service in SERVICES]
        finally:
            await consumer.stop()
    finally:
        await admin.close()


async def _group_lag(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group: str) -> dict[str, Any]:
    """What the group committed on each partition it consumes, against the partition's end offset."""
    committed = {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()
                 if meta.offset >= 0}
    ends = await consumer.end_offsets(list(committed)) if committed else {}
    by_topic: dict[str, dict[str, int]] = {}
    for tp, offset in sorted(committed.items()):
        figures = by_topic.setdefault(tp.topic, {"committed": 0, "end": 0, "lag": 0})
        figures["committed"] += offset
        figures["end"] += ends[tp]
        figures["lag"] += max(ends[tp] - offset, 0)
    return {"group": group, "topics": by_topic,
            "lag": sum(t["lag"] for t in by_topic.values()) if by_topic else None}


def _render(report: dict[str, Any]) -> None:
    table("Services", ["service", "health", "ready", "outbox backlog", "outbox lag s", "dead-lettered"],
          [[s["service"], _flag(s["healthy"]),
            _flag(s["ready"]) + ("" if s["ready"] else " " + _failed_checks(s)), s["outbox_backlog"],
            s["outbox_lag_seconds"], s["dead_lettered_total"]] for s in report["services"]])
    for s in report["services"]:
        if s.get("error"):
            out.print(f"[red]{shown(s['service'])}[/red] ({shown(s['url'])}): {shown(s['error'])}")
    if "broker_error" in report:
        out.print(f"[red]broker {shown(report['broker'])}[/red]: {shown(report['broker_error'])}")
        return
    rows = []
    for group in report["consumer_groups"]:
        if not group["topics"]:
            rows.append([group["group"], "—", "", "", "no committed offsets"])
        for topic, figures in group["topics"].items():
            rows.append([group["group"], topic, figures["committed"], figures["end"], figures["lag"]])
    table(f"Consumer lag on {report['broker']}", ["group", "topic", "committed", "end", "lag"], rows)
    dlq = report["dlq_messages"]
    out.print(f"DLQ {shown(DLQ.name)}: [{'red' if dlq else 'green'}]{shown(dlq)} message(s)[/]"
              + (" — see `iomki dlq list`" if dlq else ""))


def _flag(ok: bool) -> str:
    return "[green]ok[/green]" if ok else "[red]down[/red]"


def _failed_checks(service: dict[str, Any]) -> str:
    failed = [name for name, ok in service["checks"].items() if not ok]
    return f"({', '.join(failed)})" if failed else ""

