"""Structured logs and Prometheus metrics, the same in every service."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import pydantic_core
import stamina
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = structlog.get_logger(__name__)
_request_facts: ContextVar[dict[str, Any] | None] = ContextVar("iomki_request_facts", default=None)


def configure_logging(service: str, log_format: str = "auto", level: int = logging.INFO) -> None:
    """JSON lines when not on a terminal, the console renderer on one; every line names the service.

    Context bound with `structlog.contextvars` (event id, type, correlation id, request id) is merged into
    every line emitted while an event or request is handled.
    """
    on_terminal = sys.stderr.isatty() if log_format == "auto" else log_format == "console"
    if on_terminal:
        renderer: Any = structlog.dev.ConsoleRenderer()
        logger_factory: Any = structlog.PrintLoggerFactory(file=sys.stderr)
    else:  # pydantic's serialiser, straight to bytes: a third cheaper than json.dumps and a text stream
        renderer = structlog.processors.JSONRenderer(serializer=_json_line)
        logger_factory = structlog.BytesLoggerFactory(file=sys.stderr.buffer)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    # Each retry site logs its own event (what is retried, and why); stamina's own line would repeat it.
    stamina.instrumentation.set_on_retry_hooks([])
    # Library loggers (uvicorn, aiokafka) at warning level only, through the standard handler.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")


def _json_line(event: dict[str, Any], **_: Any) -> bytes:
    return pydantic_core.to_json(event, fallback=repr)


def retried(event: str, **facts: Any) -> Callable[[BaseException], bool]:
    """stamina's `on` for work that must outlive an outage: any error is logged as `event` and retried; a
    cancellation never is (stamina hands `on` every exception, `CancelledError` included)."""

    def on(exc: BaseException) -> bool:
        if not isinstance(exc, Exception):
            return False
        log.warning(event, **facts, error=f"{type(exc).__name__}: {exc}")
        return True

    return on


def record(what: str, **facts: Any) -> None:
    """Log what a command did. Within an HTTP request its facts go on the request's own line (`http_request`,
    with `did=what`): one line per request, not two, since a second line was a noticeable share of a report's
    handling. Anywhere else they make a line of their own, named `what`."""
    request_facts = _request_facts.get()
    if request_facts is None:
        log.info(what, **facts)
    else:
        request_facts.update(facts, did=what)


@contextmanager
def collecting_request_facts() -> Iterator[dict[str, Any]]:
    """The facts `record` gathers while a request is handled, for its line."""
    facts: dict[str, Any] = {}
    token = _request_facts.set(facts)
    try:
        yield facts
    finally:
        _request_facts.reset(token)


class Metrics:
    """One registry per service process, exposed at /metrics."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.events_consumed = Counter(
            "iomki_events_consumed_total", "Events handled", ["topic", "type"], registry=registry
        )
        self.events_duplicate = Counter(
            "iomki_events_duplicate_total", "Redelivered events skipped by the inbox", ["topic"], registry=registry
        )
        self.events_failed = Counter(
            "iomki_events_failed_total", "Handler attempts that raised", ["topic", "type"], registry=registry
        )
        self.events_dead_lettered = Counter(
            "iomki_events_dead_lettered_total", "Messages sent to the dead-letter topic", ["topic", "reason"],
            registry=registry,
        )
        self.events_published = Counter(
            "iomki_events_published_total", "Outbox events published", ["topic"], registry=registry
        )
        self.handler_latency = Histogram(
            "iomki_handler_latency_seconds", "Time to handle one event", ["type"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=registry,
        )
        self.outbox_backlog = Gauge("iomki_outbox_backlog", "Outbox events not yet published", registry=registry)
        self.outbox_lag = Gauge(
            "iomki_outbox_lag_seconds", "Age of the oldest unpublished outbox event", registry=registry
        )
        self.http_requests = Histogram(
            "iomki_http_request_seconds", "HTTP requests", ["method", "route", "status"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=registry,
        )
        self.service = service
