"""Requests anyone may send without a token are limited per client address: the public registry and the
operations endpoints answer 429 with Retry-After to an address over its rate, and only to that address."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from shared.settings import PlatformSettings
from shared.web.http import install_problem_handlers
from shared.web.rate_limit import PUBLIC_PATHS, ClientRates, PublicRateLimit, client_key


class Ticking:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limited_app(per_minute: int, clock: Ticking, address_header: str | None = None) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(PublicRateLimit, per_minute=per_minute, address_header=address_header, clock=clock)

    @app.get("/registry/{number}")
    async def registry(number: str) -> dict[str, str]:
        return {"permit_number": number}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/permits")
    async def permits() -> dict[str, str]:
        return {"needs": "a token"}

    return app


def client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://svc")


async def test_the_request_after_a_minutes_worth_gets_429_with_retry_after_and_another_address_does_not():
    clock = Ticking()
    app = limited_app(per_minute=5, clock=clock)
    async with client_from(app, "203.0.113.7") as agency, client_from(app, "198.51.100.9") as neighbour:
        for n in range(5):  # registry and operations share the address's budget
            path = "/healthz" if n % 2 else f"/registry/IOMKI-{n}"
            assert (await agency.get(path)).status_code == 200
        refused = await agency.get("/registry/IOMKI-6")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["title"] == "Too many requests"
        assert refused.headers["retry-after"] == "12"  # one request back every 60 s / 5
        assert (await agency.get("/healthz")).status_code == 429

        assert (await neighbour.get("/registry/IOMKI-1")).status_code == 200

        clock.now += 12  # as long as Retry-After said
        assert (await agency.get("/registry/IOMKI-6")).status_code == 200
        assert (await agency.get("/registry/IOMKI-7")).status_code == 429


async def test_routes_that_need_a_token_are_not_counted():
    app = limited_app(per_minute=1, clock=Ticking())
    async with client_from(app, "203.0.113.7") as client:
        for _ in range(3):
            assert (await client.get("/permits")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/healthz", headers={"Authorization": "Bearer anything"})).status_code == 429


async def test_behind_a_trusted_proxy_the_address_it_adds_is_the_client():
    app = limited_app(per_minute=1, clock=Ticking(), address_header="X-Forwarded-For")
    async with client_from(app, "10.0.0.2") as proxy:
        # The proxy appends the address it saw; what the client wrote before it is not believed.
        assert (await proxy.get("/healthz", headers={"x-forwarded-for": "1.1.1.1, 203.0.113.7"})).status_code == 200
        assert (await proxy.get("/healthz", headers={"x-forwarded-for": "2.2.2.2, 203.0.113.7"})).status_code == 429
        assert (await proxy.get("/healthz", headers={"x-forwarded-for": "203.0.113.8"})).status_code == 200


def test_memory_is_bounded_the_longest_unseen_address_is_forgotten():
    clock = Ticking()
    rates = ClientRates(1, max_clients=2, clock=clock)
    assert rates.wait("a") == 0 and rates.wait("b") == 0
    assert rates.wait("a") > 0  # seen again: now the most recent
    assert rates.wait("c") == 0  # b, the longest unseen, is forgotten
    assert len(rates._buckets) == 2 and "b" not in rates._buckets
    assert rates.wait("b") == 0  # and starts again with a full bucket


def test_an_ipv6_client_is_limited_by_its_64_prefix():
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("testclient") == "testclient"


def test_the_default_rate_leaves_scrapers_and_tests_alone(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("IOMKI_PUBLIC_RATE_PER_MINUTE", raising=False)
    assert PlatformSettings().public_rate_per_minute == 1200
    monkeypatch.setenv("IOMKI_PUBLIC_RATE_PER_MINUTE", "60")
    monkeypatch.setenv("IOMKI_CLIENT_ADDRESS_HEADER", "X-Forwarded-For")
    settings = PlatformSettings()
    assert (settings.public_rate_per_minute, settings.client_address_header) == (60, "X-Forwarded-For")


def test_a_rate_may_be_counted_per_hour():
    clock = Ticking()
    rates = ClientRates(10, period=3600.0, clock=clock)
    assert [rates.wait("a") for _ in range(10)] == [0.0] * 10
    assert rates.wait("a") == pytest.approx(360.0)  # one more after a tenth of the hour
    clock.now += 360.0
    assert rates.wait("a") == 0.0 and rates.wait("a") > 0


def test_the_public_complaint_paths_are_public():
    assert "/public/complaints".startswith(PUBLIC_PATHS)
