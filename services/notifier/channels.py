"""The two ways a notice leaves the notifier: a webhook signed per Standard Webhooks (httpx) and email over SMTP
(aiosmtplib).

A channel either returns (the receiver took it) or raises `SendFailed` with a `reason`, a short category a task
force may read (`FailureReason`), and a `detail` for the log only. Neither ever repeats an address, because a
company's e-mail address must not end up in a log line, nor a webhook URL, which often carries a token.

A webhook connects only to an address the outbound policy permits, and to the very address it checked (the
check is in the connection's network backend), so a name that resolves differently a second time gains nothing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import socket
import ssl
import typing
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

import aiosmtplib
import httpcore
import httpx

from services.notifier.domain import (
    Attachment, FailureReason, InvalidWebhook, OutboundPolicy, signing_key, webhook_url,
)
from shared.contract import single_email


class SendFailed(Exception):
    def __init__(self, reason: str, *, detail: str = "", permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason
        self.permanent = permanent


class AddressNotAllowed(Exception):
    def __init__(self, refused: list[str]) -> None:
        super().__init__(f"refused {', '.join(refused)}")
        self.refused = refused


class HostNotFound(Exception):
    pass


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving the host itself: it connects to the first address the policy
    permits and refuses when there is none. TLS still verifies (and sends SNI for) the URL's host name, which
    httpcore passes to `start_tls` independently of the address connected to."""

    def __init__(self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise HostNotFound(type(exc).__name__) from None
        addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in found))
        permitted = [a for a in addresses if self._policy.permits(ipaddress.ip_address(a))]
        if not permitted:
            raise AddressNotAllowed(addresses)
        return await self._inner.connect_tcp(permitted[0], port, timeout=timeout, local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise AddressNotAllowed([path])

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over `GuardedBackend`. httpx has no argument for a network backend, so the pool it
    built is replaced by the same pool with one (only `ssl_context` and the backend differ from its defaults)."""

    def __init__(self, tls: ssl.SSLContext, policy: OutboundPolicy) -> None:
        super().__init__(verify=tls, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls, max_connections=httpx.Limits().max_connections or 100,
            max_keepalive_connections=httpx.Limits().max_keepalive_connections,
            keepalive_expiry=httpx.Limits().keepalive_expiry, network_backend=GuardedBackend(policy))


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _transport_failure(exc: BaseException) -> SendFailed:
    """What went wrong getting a notice through, as a category; the types along the way for the log."""
    chain = _chain(exc)
    detail = " <- ".join(type(e).__name__ for e in chain)
    for link in chain:
        if isinstance(link, AddressNotAllowed):
            return SendFailed(FailureReason.ADDRESS_NOT_ALLOWED, detail=f"{detail}: {link}")
        if isinstance(link, HostNotFound):
            return SendFailed(FailureReason.HOST_NOT_FOUND, detail=f"{detail}: {link}")
        if isinstance(link, ssl.SSLError | ssl.CertificateError):
            return SendFailed(FailureReason.TLS_ERROR, detail=f"{detail}: {getattr(link, 'reason', '')}")
    if any(isinstance(link, httpx.TimeoutException | TimeoutError | aiosmtplib.SMTPTimeoutError) for link in chain):
        return SendFailed(FailureReason.TIMEOUT, detail=detail)
    if any(isinstance(link, ConnectionRefusedError) for link in chain) or "refused" in str(exc).lower():
        return SendFailed(FailureReason.CONNECTION_REFUSED, detail=detail)
    if isinstance(exc, httpx.ConnectError | aiosmtplib.SMTPConnectError | OSError):
        return SendFailed(FailureReason.CONNECTION_FAILED, detail=detail)
    return SendFailed(FailureReason.PROTOCOL_ERROR, detail=detail)


def standard_webhook_headers(delivery_id: uuid.UUID, at: datetime, secrets: tuple[str, ...],
                             body: bytes) -> dict[str, str]:
    """Standard Webhooks: `webhook-id` (the delivery, the same on every retry, for the receiver's dedup),
    `webhook-timestamp` (this attempt, Unix seconds, for its replay window) and `webhook-signature`, one
    `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` per secret, separated by spaces."""
    timestamp = str(int(at.timestamp()))
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    signatures = " ".join("v1," + base64.b64encode(hmac.new(signing_key(secret), signed, hashlib.sha256).digest())
                          .decode() for secret in secrets)
    return {"webhook-id": str(delivery_id), "webhook-timestamp": timestamp, "webhook-signature": signatures}


class WebhookChannel:
    """`client` must send through `GuardedTransport` (see `app.py`); `allow_http` only in development."""

    def __init__(self, client: httpx.AsyncClient, *, allow_http: bool = False) -> None:
        self._client = client
        self._allow_http = allow_http

    async def send(self, *, delivery_id: uuid.UUID, target: str, secrets: tuple[str, ...], at: datetime,
                   subject: str, body: bytes, attachment: Attachment | None = None) -> None:
        """A webhook is the signed JSON body alone: letters go to companies, which are told by e-mail only."""
        if not secrets:  # a notice nobody can verify is never sent
            raise ValueError(f"delivery {delivery_id} has no secret to sign with")
        try:  # again: a target stored before a rule, or before the platform left development
            webhook_url(target, allow_http=self._allow_http)
        except InvalidWebhook as exc:
            raise SendFailed(FailureReason.INVALID_ADDRESS, detail=str(exc).split(":")[0], permanent=True) from None
        headers = {"Content-Type": "application/json", "User-Agent": "iomki-notifier/1",
                   **standard_webhook_headers(delivery_id, at, secrets, body)}
        try:
            response = await self._client.post(target, content=body, headers=headers)
        except (httpx.HTTPError, AddressNotAllowed, HostNotFound, OSError) as exc:
            raise _transport_failure(exc) from None
        if not 200 <= response.status_code < 300:
            raise SendFailed(FailureReason.http(response.status_code))


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

    async def send(self, *, delivery_id: uuid.UUID, target: str, secrets: tuple[str, ...], at: datetime,
                   subject: str, body: bytes, attachment: Attachment | None = None) -> None:
        try:  # again: a company's address arrives on an event, and may have been stored before a rule
            recipient = single_email(target)
        except ValueError as exc:
            raise SendFailed(FailureReason.INVALID_ADDRESS, detail=str(exc), permanent=True) from None
        message = EmailMessage()
        message["From"] = self._server.sender
        message["To"] = recipient
        message["Subject"] = subject
        message["X-Iomki-Delivery"] = str(delivery_id)  # an e-mail's only id: a reader's dedup, support's reference
        message.set_content(body.decode())
        if attachment is not None:
            maintype, _, subtype = attachment.media_type.partition("/")
            message.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                                   filename=attachment.filename)
        try:
            await aiosmtplib.send(message, hostname=self._server.host, port=self._server.port,
                                  start_tls=self._server.starttls, timeout=self._server.timeout)
        except aiosmtplib.SMTPResponseException as exc:
            # The server's text may quote the refused address: keep only the class and the reply code.
            raise SendFailed(FailureReason.smtp(exc.code), detail=f"{type(exc).__name__} {exc.code}") from None
        except aiosmtplib.SMTPRecipientsRefused:
            raise SendFailed(FailureReason.RECIPIENT_REFUSED, detail="SMTPRecipientsRefused") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _transport_failure(exc) from None
