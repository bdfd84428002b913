"""What a request leaves in the log: one line, carrying the facts its command recorded."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from structlog.testing import capture_logs

from shared.observability import Metrics, collecting_request_facts, record
from shared.web.http import install_request_logging


def _app() -> FastAPI:
    app = FastAPI()
    install_request_logging(app, Metrics("test"))

    @app.post("/reports", status_code=201)
    async def submit() -> dict[str, str]:
        record("report_submitted", permit_id="p-1", status="a fact that must not hide the response's status")
        return {}

    return app


async def _submitted() -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://reports") as client:
        return await client.post("/reports")


def test_outside_a_request_a_command_s_facts_make_a_line_of_their_own():
    with capture_logs() as lines:
        record("report_submitted", permit_id="p-1")
    assert lines == [{"event": "report_submitted", "permit_id": "p-1", "log_level": "info"}]


def test_inside_a_request_a_command_s_facts_are_kept_for_the_request_s_line():
    with capture_logs() as lines, collecting_request_facts() as facts:
        record("report_submitted", permit_id="p-1")
    assert lines == []
    assert facts == {"did": "report_submitted", "permit_id": "p-1"}


async def test_a_request_leaves_one_line_with_what_its_command_did():
    with capture_logs() as lines:
        response = await _submitted()
    assert response.status_code == 201
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "http_request" and line["did"] == "report_submitted" and line["permit_id"] == "p-1"
    assert (line["route"], line["status"]) == ("/reports", 201)

