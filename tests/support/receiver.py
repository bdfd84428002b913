"""A real webhook receiver on loopback that verifies and records what it is sent.

It verifies every notice as any task force's receiver would, with a Standard Webhooks library
(`standardwebhooks`), against the secrets the notifier issued for it (`secrets`, filled by the test from the
answers to its registrations): a notice that does not verify is answered 401 and kept apart in `refused`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook, WebhookVerificationError

from tooling.ports import free_port


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.monotonic)


@dataclass
class WebhookReceiver:
    port: int = field(default_factory=free_port)
    secrets: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    refused: list[Delivery] = field(default_factory=list)
    failures_left: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def verifies(self, delivery: Delivery) -> bool:
        """Whether one of the receiver's secrets verifies the notice (signature, and a timestamp within 5 min)."""
        for secret in self.secrets:
            try:
                Webhook(secret).verify(delivery.body, delivery.headers, json_parse=False)
                return True
            except WebhookVerificationError:
                continue
        return False

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            if self.failures_left > 0:
                self.failures_left -= 1
                return Response(status_code=503)
            delivery = Delivery({k.lower(): v for k, v in request.headers.items()}, await request.body())
            if not self.verifies(delivery):
                self.refused.append(delivery)
                return Response(status_code=401)
            self.deliveries.append(delivery)
            return Response(status_code=200)

        return app

    async def __aenter__(self) -> WebhookReceiver:
        self._server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning"))
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.should_exit = True
        await self._task

    async def wait_for(self, predicate, timeout: float = 60) -> Delivery:
        async with asyncio.timeout(timeout):
            while True:
                for delivery in self.deliveries:
                    if predicate(delivery):
                        return delivery
                await asyncio.sleep(0.1)
