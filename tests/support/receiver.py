"""A real webhook receiver on loopback that records what it is sent."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request, Response

from tooling.ports import free_port


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.monotonic)


@dataclass
class WebhookReceiver:
    port: int = field(default_factory=free_port)
    deliveries: list[Delivery] = field(default_factory=list)
    failures_left: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            if self.failures_left > 0:
                self.failures_left -= 1
                return Response(status_code=503)
            self.deliveries.append(Delivery({k.lower(): v for k, v in request.headers.items()}, await request.body()))
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
