"""Requests anyone may send without a token are limited per client address: the public registry, the operations
endpoints and the API documents. A client over its rate gets 429 with Retry-After.

A token bucket per address, in the memory of one process: a minute's worth of requests at once, then the rate.
With several instances behind a balancer, an address may send up to that many times more; that is the point of
the limit (no one client takes an instance's time), not an exact quota.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.web.http import problem_response

# The paths that answer without a token, by prefix. A token sent to one of them changes nothing: it is not read.
PUBLIC_PATHS = ("/registry/", "/public/", "/healthz", "/readyz", "/metrics", "/asyncapi", "/docs", "/redoc",
                "/openapi.json")
# The addresses remembered at most; the longest unseen is forgotten first (and starts again with a full bucket).
MAX_CLIENTS = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class ClientRates:
    """Token buckets by client address: `count` requests at once, refilled at `count` per `period` seconds (a
    minute unless said otherwise)."""

    def __init__(self, count: int, *, period: float = 60.0, max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(count)
        self.per_second = count / period
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait(self, client: str) -> float:
        """0 when `client` may go on now (and its request is counted), else the seconds before it may."""
        now = self._clock()
        bucket = self._buckets.pop(client, None) or _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.per_second)
        bucket.at = now
        self._buckets[client] = bucket  # the most recently seen last
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.per_second


def client_key(address: str) -> str:
    """The unit a limit applies to: an IPv4 address, or an IPv6 /64 (one subscriber's usual allocation)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class PublicRateLimit:
    """429 for a client address over `per_minute` requests to the public paths.

    The address is the connection's peer, or, when `address_header` names one (e.g. `x-forwarded-for`: only when
    every request comes through a proxy that sets it), the last address in that header, the one the proxy added.
    """

    def __init__(self, app: ASGIApp, per_minute: int, address_header: str | None = None,
                 max_clients: int = MAX_CLIENTS, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.rates = ClientRates(per_minute, max_clients=max_clients, clock=clock)
        self.address_header = address_header.lower().encode("latin-1") if address_header else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PUBLIC_PATHS):
            await self.app(scope, receive, send)
            return
        wait = self.rates.wait(client_key(client_address(scope, self.address_header)))
        if wait:
            response = problem_response(429, "Too many requests",
                                        "This address sent more requests than the service answers without a token;"
                                        " try again after the time in Retry-After.")
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def client_address(scope: Scope, address_header: bytes | None) -> str:
    """The connection's peer, or, when `address_header` names one (lower case), the last address in that header: the
    one the trusted proxy added."""
    if address_header is not None:
        given = [value for name, value in scope["headers"] if name == address_header]
        if given:
            last = given[-1].decode("latin-1").split(",")[-1].strip()
            if last:
                return last[:64]
    client = scope.get("client")
    return client[0] if client else "unknown"
