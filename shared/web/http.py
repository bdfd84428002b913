"""What every service's HTTP API has in common: RFC 9457 problems, health, readiness, metrics, AsyncAPI."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AfterValidator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.contract import MAX_EVENT_BYTES, EventTooLarge
from shared.observability import Metrics, collecting_request_facts
from shared.storage.db import DATABASE_UNREACHABLE

log = structlog.get_logger(__name__)

PROBLEM = "application/problem+json"


class Problem(Exception):
    """An answer that is not a success, raised anywhere in a request and rendered as problem+json."""

    def __init__(
        self, status: int, title: str, detail: str | None = None, *, headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


# Free text in a request body: PostgreSQL text and jsonb cannot hold U+0000, so it is refused up front (422
# naming the field) instead of failing at the INSERT.
STORABLE = AfterValidator(_storable)
Text = Annotated[str, STORABLE]
# A constrained text puts its constraints before STORABLE (`Annotated[str, StringConstraints(...), STORABLE]`):
# a pattern after it would be checked but left out of the OpenAPI document.


def problem_response(status: int, title: str, detail: str | None = None, **extensions: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


# The bound a pydantic error names, when it names one: a client may word the refusal in its reader's language.
_LIMITS = ("max_length", "min_length", "ge", "gt", "le", "lt")


def field_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors as `{"field": "company.nib", "message": …, "type": "string_pattern_mismatch"}`, with the
    request part dropped, and the bound (`"limit": 13`) of a length or range error."""
    out = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        found: dict[str, Any] = {"field": ".".join(location) or "body", "message": error.get("msg", "invalid"),
                                 "type": error.get("type", "value_error")}
        context = error.get("ctx") or {}
        limit = next((context[name] for name in _LIMITS if isinstance(context.get(name), int | float)), None)
        if limit is not None:
            found["limit"] = limit
        out.append(found)
    return out


# The database or broker cannot serve right now, as opposed to a fault in the request or the code. Operator
# intervention covers a server shutting down (admin or crash shutdown, "cannot connect now") and cancelled
# statements; insufficient resources covers "too many connections".
_UNAVAILABLE = (*DATABASE_UNREACHABLE, asyncpg.InsufficientResourcesError, KafkaError, asyncio.TimeoutError)
RETRY_AFTER_SECONDS = "5"


ProblemTable = Mapping[type[Exception], Callable[[Any], Problem]]
"""A service's failures as problems, in one table in its `api.py`: each refusal or not-found type of its domain and
the problem a request that meets it gets. An exception takes the entry of its nearest type in the table (Starlette
looks up exception handlers along the exception's bases)."""


def _rendered(problem: Problem) -> JSONResponse:
    response = problem_response(problem.status, problem.title, problem.detail, **problem.extensions)
    response.headers.update(problem.headers)
    return response


def _answering(problem_of: Callable[[Any], Problem]) -> Callable[[Request, Any], Awaitable[JSONResponse]]:
    async def answer(_: Request, exc: Exception) -> JSONResponse:
        return _rendered(problem_of(exc))

    return answer


def install_problem_handlers(app: FastAPI, table: ProblemTable | None = None) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return _rendered(exc)

    for failure, problem_of in (table or {}).items():
        app.add_exception_handler(failure, _answering(problem_of))

    @app.exception_handler(EventTooLarge)
    async def _too_large(_: Request, exc: EventTooLarge) -> JSONResponse:
        # Every service's writes go through its outbox: whatever a request would publish, it is refused whole.
        return problem_response(422, "Event too large", f"The request would publish an event of {exc.size:,} bytes "
                                f"({exc.event_type}), over the {MAX_EVENT_BYTES:,} bytes an event may take; shorten "
                                "its lists or texts.", event_type=exc.event_type, size=exc.size)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(422, "Invalid request", "One or more fields are invalid.",
                                errors=field_errors(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}.get(exc.status_code,
                                                                                           "Request failed")
        response = problem_response(exc.status_code, title, str(exc.detail) if exc.detail else None)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    for unavailable in _UNAVAILABLE:
        @app.exception_handler(unavailable)
        async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
            log.warning("dependency_unavailable", error=f"{type(exc).__name__}: {exc}")
            response = problem_response(503, "Service unavailable",
                                        "A dependency (database or broker) is unreachable; retry shortly.")
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
            return response

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request_failed", error=f"{type(exc).__name__}: {exc}")
        return problem_response(500, "Internal error", "The failure was logged.")


class BoundedBodies:
    """Requests whose body is over `limit` bytes get 413 before it is read whole: at once when their Content-Length
    says so, else as soon as the chunks received pass it (FastAPI answers the HTTPException raised while it reads).

    `uploads`: paths (regular expressions matched whole) that take larger bodies, with their own limit: a service's
    file uploads, which its route bounds again."""

    def __init__(self, app: ASGIApp, limit: int, uploads: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.uploads = [(re.compile(path), larger) for path, larger in (uploads or {}).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = next((larger for path, larger in self.uploads if path.fullmatch(scope["path"])), self.limit)
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await problem_response(413, "Payload too large", self._detail(limit))(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise StarletteHTTPException(413, self._detail(limit))
            return message

        await self.app(scope, counted, send)

    @staticmethod
    def _detail(limit: int) -> str:
        return f"A request's body may take at most {limit:,} bytes."


def install_request_logging(app: FastAPI, metrics: Metrics) -> None:
    """One log line per request with its id and what its command did (`record`); the Authorization header and
    query values are never logged."""
    app.add_middleware(_RequestLogging, metrics=metrics)


# A caller's request id becomes the correlation id of the events its request causes, and a log field: taken only
# when it is a short run of visible ASCII (a UUID, a trace id), otherwise replaced by a fresh one.
REQUEST_ID_MAX_LENGTH = 200
_REQUEST_ID = re.compile(rb"[!-~]{1,%d}" % REQUEST_ID_MAX_LENGTH)


class _RequestLogging:
    """Plain ASGI: Starlette's `@app.middleware("http")` runs each request's app in a task of its own and
    passes the response through a memory stream, a cost on every request of every service.

    It runs on every request, so it reads and writes the raw header lists itself and binds the request's ids with
    structlog's tokens: Starlette's header classes and `bound_contextvars` (which copies the whole context to
    save what it shadows) made this middleware a fifth of POST /reports in-process."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Bound once, when the app first runs: the module's logger is a proxy that builds a bound logger from the
        # configuration on every call.
        self.log = log.bind()
        self._histograms: dict[tuple[str, str, int], Any] = {}  # one histogram per method, route and status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == b"x-request-id"), None)
        request_id = given.decode("ascii") if given and _REQUEST_ID.fullmatch(given) else str(uuid.uuid4())
        request_id_header = (b"x-request-id", request_id.encode("latin-1"))
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*(header for header in message.get("headers", ())
                                        if header[0].lower() != b"x-request-id"), request_id_header]
            await send(message)

        bound = structlog.contextvars.bind_contextvars(request_id=request_id, correlation_id=request_id)
        try:
            with collecting_request_facts() as facts:
                await self.app(scope, receive, send_with_id)
                elapsed = time.perf_counter() - started
                template = getattr(scope.get("route"), "path", "unmatched")
                self._histogram(scope["method"], template, status).observe(elapsed)
                if template not in ("/healthz", "/readyz", "/metrics"):
                    self.log.info("http_request", **facts | {"method": scope["method"], "route": template,
                                                              "status": status, "ms": round(elapsed * 1000, 2)})
        finally:
            structlog.contextvars.reset_contextvars(**bound)

    def _histogram(self, method: str, route: str, status: int) -> Any:
        key = (method, route, status)
        histogram = self._histograms.get(key)
        if histogram is None:
            histogram = self._histograms[key] = self.metrics.http_requests.labels(method, route, str(status))
        return histogram


def operations_router(
    *,
    metrics: Metrics,
    checks: dict[str, Callable[[], Awaitable[bool]]],
    asyncapi: Callable[[], Any],
) -> APIRouter:
    """`/healthz` (the process lives), `/readyz` (each dependency answers), `/metrics`, `/asyncapi`."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": metrics.service}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        results = {}
        for name, check in checks.items():
            try:
                async with asyncio.timeout(2):
                    results[name] = bool(await check())
            except Exception:
                results[name] = False
        if all(results.values()):
            return JSONResponse({"status": "ready", "checks": results})
        down = " and ".join(name for name, ok in results.items() if not ok)
        response = problem_response(503, "Service unavailable", f"Not ready: {down} not answering.",
                                    checks=results)
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    @router.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/asyncapi")
    async def asyncapi_document() -> JSONResponse:
        return JSONResponse(asyncapi())

    return router
