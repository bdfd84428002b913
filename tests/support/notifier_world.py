"""A notifier against the real database and broker, with a real webhook receiver and a real SMTP server on loopback.

The receiver verifies every notice with a Standard Webhooks library (`standardwebhooks`), as a task force's would;
the tests publish the other services' events themselves (`World.publish`), as those services would.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from fpdf import FPDF
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from standardwebhooks import Webhook, WebhookVerificationError

from services.notifier.app import create_app
from shared.contract import (
    CONTENT_TYPE, EVENT_TYPES, CompanyContactsUpdated, CompanyLetterIssued, Envelope, Event, LetterKind,
)
from tests.support.platform import TestPlatform, bearer, patched_environ, running_service
from tests.support.waiting import eventually
from tooling.ports import free_port

OPERATOR = bearer("operator")


@dataclass
class Receiver:
    """Endpoints by path, each verifying with the secrets the notifier issued for it (`secrets`): a notice that does
    not verify is answered 401 and kept in `refused`."""

    port: int
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    refused: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    failures_left: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, list[str | bytes]] = field(default_factory=dict)  # bytes: a key as it is (pre-0005)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def holds(self, url: str, secret: str | bytes) -> None:
        self.secrets.setdefault(url.rsplit("/", 1)[-1], []).append(secret)

    async def handle(self, request: Request) -> Response:
        path = request.path_params["path"]
        headers, body = dict(request.headers), await request.body()
        if not any(verifies(secret, headers, body) for secret in self.secrets.get(path, [])):
            self.refused.append((path, headers, body))
            return Response("not signed by the secret held here", status_code=401)
        self.received.append((path, headers, body))
        if self.failures_left.get(path, 0) > 0:
            self.failures_left[path] -= 1
            return Response("try later", status_code=500)
        return Response(status_code=204)

    def on(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for p, headers, body in self.received if p == path]


def verifies(secret: str | bytes, headers: dict[str, str], body: bytes) -> bool:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode()))
        return "250 OK"

    def to(self, address: str) -> list[str]:
        return [content for rcpts, content in self.messages if address in rcpts]


@dataclass
class World:
    app: Any
    notifier: Any
    receiver: Receiver
    mailbox: Mailbox
    database_url: str
    producer: AIOKafkaProducer
    bootstrap: str

    async def publish(self, event: Event) -> Envelope:
        envelope = Envelope.wrap(event, service=event.topic.owner, time=datetime.now(UTC))
        await self.producer.send_and_wait(event.topic.name, envelope.to_bytes(), key=envelope.key,
                                          headers=[("content-type", CONTENT_TYPE.encode())])
        return envelope

    async def publish_envelope(self, envelope: Envelope) -> Envelope:
        """An envelope as it is (a redelivery publishes the same one again)."""
        await self.producer.send_and_wait(EVENT_TYPES[envelope.type].topic.name, envelope.to_bytes(),
                                          key=envelope.key, headers=[("content-type", CONTENT_TYPE.encode())])
        return envelope

    async def contacts(self, where: dict, *, company_name: str, email_address: str) -> None:
        """The company's contact, as permits sends it at application, taken in by the notifier."""
        await self.publish(CompanyContactsUpdated(**where, permit_id=uuid.uuid4(), nib="8120000123456",
                                                  company_name=company_name, email=email_address))
        connection = await asyncpg.connect(self.database_url)
        try:
            await eventually(lambda: connection.fetchval(
                "SELECT count(*) FROM notifier.company_contacts WHERE facility_id = $1", where["facility_id"]))
        finally:
            await connection.close()

    async def pairing(self, cause: Envelope, holds: str) -> None:
        """Wait until the notifier holds this half of a company letter's pairing (`alert_id` or `letter_number`)."""
        connection = await asyncpg.connect(self.database_url)

        async def held() -> bool:
            row = await connection.fetchrow("SELECT alert_id, letter_number FROM notifier.company_letters"
                                            " WHERE cause_event_id = $1", cause.id)
            return row is not None and row[holds] is not None

        try:
            await eventually(held)
        finally:
            await connection.close()

    async def register(self, level: str, region: str, contacts: list[dict]) -> str:
        """The receiver takes each webhook contact's secret, issued in the answer."""
        response = await self.notifier.post("/task-forces", headers=OPERATOR, json={
            "level": level, "region_code": region, "name": f"Satgas {region or 'Nasional'}", "contacts": contacts})
        assert response.status_code == 201, response.text
        issued = response.json()["webhook_secrets"]
        assert [i["contact"] for i in issued] == [n for n, c in enumerate(contacts) if c.get("webhook")]
        for i in issued:
            self.receiver.holds(contacts[i["contact"]]["webhook"], i["secret"])
        return response.json()["task_force_id"]

    async def subscribe(self, task_force_id: str, path: str, event_types: list[str]) -> str:
        """The receiver takes the subscription's secret, issued in the answer; returns the subscription's id."""
        response = await self.notifier.post("/subscriptions", headers=OPERATOR, json={
            "task_force_id": task_force_id, "channel": "webhook", "target": self.receiver.url(path),
            "event_types": event_types})
        assert response.status_code == 201, response.text
        self.receiver.holds(self.receiver.url(path), response.json()["secret"])
        return response.json()["subscription_id"]

    async def alert_for(self, facility_id: uuid.UUID, event_type: str) -> dict:
        async def found() -> dict | None:
            alerts = (await self.notifier.get("/alerts", headers=OPERATOR)).json()["alerts"]
            return next((a for a in alerts if a["facility_id"] == str(facility_id)
                         and a["event_type"] == event_type), None)
        return await eventually(found)

    async def deliveries(self, alert_id: str, *, settled: int) -> list[dict]:
        async def done() -> list[dict] | None:
            found = (await self.notifier.get(f"/alerts/{alert_id}/deliveries", headers=OPERATOR)).json()["deliveries"]
            return found if sum(d["status"] != "pending" for d in found) >= settled else None
        return await eventually(done)


def letter_pdf(number: str) -> bytes:
    """A small real PDF naming the letter, as permits prints one (its printer is permits' own business)."""
    pdf = FPDF()
    pdf.set_creation_date(datetime(2026, 11, 21, tzinfo=UTC))  # the same bytes each time it is made
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, f"SURAT PERINGATAN {number}")
    return bytes(pdf.output())


def letter_for(cause: Envelope, number: str, kind: LetterKind = LetterKind.WARNING) -> Envelope:
    """The letter permits issues for `cause`, on the internal topic, caused by it."""
    data = cause.data
    cause_type = cause.type.split(".")[1]
    event = CompanyLetterIssued(
        facility_id=data["facility_id"], province_code=data["province_code"], regency_code=data["regency_code"],
        permit_id=data["permit_id"], nib="8120000123456", letter_id=uuid.uuid4(), letter_number=number, kind=kind,
        cause_type=cause_type, cause_event_id=cause.id, issued_at=datetime.now(UTC),
        pdf_base64=base64.b64encode(letter_pdf(number)).decode())
    return cause.caused(event, service="permits")


def attachments(mail: str) -> list[tuple[str, bytes]]:
    message = email.message_from_string(mail, policy=email.policy.default)
    return [(part.get_filename(), part.get_content()) for part in message.iter_attachments()]  # type: ignore[attr-defined]


def plant(province: str, regency: str) -> dict:
    return {"facility_id": uuid.uuid4(), "province_code": province, "regency_code": regency}




@asynccontextmanager
async def notifier_world(platform: TestPlatform) -> AsyncIterator[World]:
    """A notifier with short timers, a webhook receiver and an SMTP server on loopback, and a producer to publish
    the other services' events as they would."""
    receiver = Receiver(free_port())
    server = uvicorn.Server(uvicorn.Config(
        Starlette(routes=[Route("/{path}", receiver.handle, methods=["POST"])]),
        host="127.0.0.1", port=receiver.port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    producer = AIOKafkaProducer(bootstrap_servers=platform.bootstrap)
    await producer.start()
    env = platform.env(IOMKI_ESCALATION_AFTER="PT1S,PT1S", IOMKI_NOTIFIER_TICK="PT0.2S",
                       IOMKI_DELIVERY_BACKOFF="PT0.2S", IOMKI_DELIVERY_MAX_ATTEMPTS="4",
                       IOMKI_SMTP_HOST="127.0.0.1", IOMKI_SMTP_PORT=str(smtp.port),
                       IOMKI_SMTP_FROM="satgas-alerts@iomki.example", IOMKI_LETTER_WAIT="PT10M")
    try:
        with patched_environ(env):
            app = create_app()
        async with running_service(app) as notifier:
            yield World(app, notifier, receiver, mailbox, platform.admin_url, producer, platform.bootstrap)
    finally:
        await producer.stop()
        smtp.stop()
        server.should_exit = True
        await serving


