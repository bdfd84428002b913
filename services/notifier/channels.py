"""The two ways a notice leaves the notifier: a signed webhook (httpx) and email over SMTP (aiosmtplib).

A channel either returns (the receiver took it) or raises `SendFailed` with an error that is safe to store
and log: it never repeats an address, because a company's e-mail address must not end up in a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
import httpx


class SendFailed(Exception):
    pass


def signature(secret: str, body: bytes) -> str:
    """DESIGN §4: `X-Iomki-Signature: sha256=<hex HMAC-SHA256 of the exact body>` with the subscription's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, *, delivery_id: uuid.UUID, target: str, secret: str | None, subject: str,
                   body: bytes) -> None:
        headers = {"Content-Type": "application/json", "X-Iomki-Delivery": str(delivery_id),
                   "User-Agent": "iomki-notifier/1"}
        if secret:
            headers["X-Iomki-Signature"] = signature(secret, body)
        try:
            response = await self._client.post(target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SendFailed(f"{type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise SendFailed(f"HTTP {response.status_code}")


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    sender: str
    starttls: bool
    timeout: float


class EmailChannel:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def send(self, *, delivery_id: uuid.UUID, target: str, secret: str | None, subject: str,
                   body: bytes) -> None:
        message = EmailMessage()
        message["From"] = self._server.sender
        message["To"] = target
        message["Subject"] = subject
        message["X-Iomki-Delivery"] = str(delivery_id)
        message.set_content(body.decode())
        try:
            await aiosmtplib.send(message, hostname=self._server.host, port=self._server.port,
                                  start_tls=self._server.starttls, timeout=self._server.timeout)
        except aiosmtplib.SMTPResponseException as exc:
            # The server's text may quote the refused address: keep only the class and the reply code.
            raise SendFailed(f"{type(exc).__name__} {exc.code}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendFailed(type(exc).__name__) from None
