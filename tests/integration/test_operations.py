"""What an operator and a monitoring system read from every service, without a token."""

from __future__ import annotations

import asyncio
import importlib

import httpx
import pytest
import structlog.testing

from services.incidents.app import create_app
from services.permits.app import create_app as permits_app
from shared.settings import PlatformSettings
from tests.support.platform import running_service

pytestmark = pytest.mark.integration


async def test_health_readiness_metrics_and_documents_need_no_token(platform):
    async with running_service(create_app()) as incidents:
        assert (await incidents.get("/healthz")).json() == {"status": "ok", "service": "incidents"}

        async with asyncio.timeout(30):
            while (ready := await incidents.get("/readyz")).status_code != 200:
                assert ready.headers["content-type"] == "application/problem+json"
                assert ready.json()["status"] == 503 and not all(ready.json()["checks"].values())
                await asyncio.sleep(0.2)
        assert ready.json() == {"status": "ready", "checks": {"database": True, "broker": True}}

        metrics = (await incidents.get("/metrics")).text
        for family in ("iomki_events_consumed_total", "iomki_events_published_total", "iomki_events_failed_total",
                       "iomki_handler_latency_seconds", "iomki_outbox_lag_seconds", "iomki_http_request_seconds"):
            assert f"# TYPE {family.removesuffix('_total')}" in metrics

        asyncapi = (await incidents.get("/asyncapi")).json()
        assert asyncapi["asyncapi"].startswith("3.")
        addresses = {channel["address"] for channel in asyncapi["channels"].values()}
        assert {"iomki.incidents", "iomki.permits", "iomki.reports"} <= addresses
        assert any("ClusterDeclared" in name for name in asyncapi["components"]["messages"])

        openapi = (await incidents.get("/openapi.json")).json()
        assert "/cases" in openapi["paths"] and "/closures/{closure_id}/clear" in openapi["paths"]
        assert (await incidents.get("/docs")).status_code == 200

        unknown = await incidents.get("/no-such-path")
        assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"


async def test_every_answer_carries_its_request_id_and_is_counted_by_route_template(platform):
    async with running_service(create_app()) as incidents:
        given = await incidents.get("/no-such-path", headers={"x-request-id": "req-operations-1"})
        assert given.headers["x-request-id"] == "req-operations-1"
        generated = await incidents.get("/healthz")
        assert len(generated.headers["x-request-id"]) == 36  # a fresh UUID when the caller sends none
        metrics = (await incidents.get("/metrics")).text
        assert 'route="unmatched",status="404"' in metrics
        assert 'method="GET",route="/healthz",status="200"' in metrics


async def test_a_task_that_ignores_its_cancellation_and_holds_a_connection_delays_the_stop_by_the_grace_only(platform):
    began, released = asyncio.Event(), asyncio.Event()
    app = create_app()
    runtime = app.state.runtime

    async def holds_on() -> None:  # periodic work that swallows one cancellation, as a careless library might
        async with runtime.database.pool.acquire():  # and holds a connection meanwhile
            began.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await released.wait()

    runtime.every(3600, "holds-on", holds_on)
    runtime.stop_grace = 0.5
    with structlog.testing.capture_logs() as logs:
        async with running_service(app) as incidents:
            assert (await incidents.get("/healthz")).status_code == 200
            await began.wait()
    stuck = [line for line in logs if line["event"] == "tasks_did_not_stop"]
    assert len(stuck) == 1 and list(stuck[0]["tasks"]) == ["incidents-holds-on"]
    assert "holds_on" in stuck[0]["tasks"]["incidents-holds-on"]  # where it waits, to the function
    assert any(line["event"] == "database_connections_not_returned" for line in logs)
    assert any(line["event"] == "service_stopped" for line in logs)
    straggler = next(task for task in asyncio.all_tasks() if task.get_name() == "incidents-holds-on")
    straggler.cancel()
    released.set()
    await asyncio.wait([straggler], timeout=5)
    assert straggler.done()


@pytest.mark.parametrize(("service", "path"), [("permits", "/permits"), ("reports", "/reports"),
                                               ("incidents", "/cases"), ("notifier", "/subscriptions")])
async def test_every_service_answers_401_before_a_body_and_413_to_a_body_over_its_limit(platform, service, path):
    app = importlib.import_module(f"services.{service}.app").create_app()
    async with running_service(app) as client:
        unauthenticated = await client.post(path, content=b"{not json", headers={"content-type": "application/json"})
        assert unauthenticated.status_code == 401, unauthenticated.text
        limit = PlatformSettings().max_request_bytes
        oversized = await client.post(path, content=b"x" * (limit + 1), headers={"content-type": "application/json"})
        assert oversized.status_code == 413, oversized.text
        assert oversized.json()["detail"] == f"A request's body may take at most {limit:,} bytes."


async def test_an_address_over_its_rate_without_a_token_gets_429_and_the_next_address_does_not(platform):
    # The permits service as deployed, its public rate set low: the registry and the operations endpoints share it.
    app = permits_app(PlatformSettings(public_rate_per_minute=3))
    async with running_service(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as agency:
            answers = [(await agency.get(path)).status_code
                       for path in ("/registry/keys", "/healthz", "/registry/IOMKI-NONE", "/metrics")]
            assert answers == [200, 200, 404, 429]
            refused = await agency.get("/registry/keys")
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["status"] == 429 and int(refused.headers["retry-after"]) == 20
        neighbour = httpx.ASGITransport(app=app, client=("198.51.100.9", 50000))
        async with httpx.AsyncClient(transport=neighbour, base_url="http://testserver") as other:
            assert (await other.get("/registry/keys")).status_code == 200
