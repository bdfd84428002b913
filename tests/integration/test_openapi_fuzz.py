"""Hostile input over HTTP: schemathesis fuzzes every operation of every service's `/openapi.json`.

Each service runs in-process on the real database and broker (`running_service`) and is served on a loopback
uvicorn server in the session's event loop; schemathesis sends its generated requests from a worker thread
(it is synchronous), so the loop stays free to answer them. Whatever the input, a service must never answer
5xx, and every error must be an RFC 9457 problem (`application/problem+json` with its status and title).

Bounded for CI: a fixed, derandomized number of examples per operation and generation mode.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from services.incidents.app import create_app as incidents_app
from services.notifier.app import create_app as notifier_app
from services.permits.app import create_app as permits_app
from services.reports.app import create_app as reports_app
from services.supervision.app import create_app as supervision_app
from shared.web.http import PROBLEM
from tests.support.platform import bearer, running_service
from tooling.ports import free_port

pytestmark = [
    pytest.mark.integration,
    # schemathesis' own strategies draw from `random`; that is its business, not a finding about our APIs.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

SERVICES: dict[str, Callable[[], FastAPI]] = {
    "permits": permits_app, "reports": reports_app, "incidents": incidents_app, "notifier": notifier_app,
    "supervision": supervision_app,
}
# Reachable without a token: the public registry (DESIGN §4), the public's complaints and the operations endpoints.
PUBLIC = ("/registry/", "/public/", "/healthz", "/readyz", "/metrics", "/asyncapi")
COMPANY_NIB = "8120000123456"


@dataclass(frozen=True)
class Served:
    name: str
    base_url: str
    schema: Any  # schemathesis' OpenApiSchema, loaded from the service's own /openapi.json


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=sorted(SERVICES))
async def served(request: pytest.FixtureRequest, platform: Any) -> AsyncIterator[Served]:
    """One service at a time (the parameter groups the tests), listening on a loopback port."""
    app = SERVICES[request.param]()
    async with running_service(app):
        port = free_port()
        # The lifespan already ran in `running_service`; uvicorn only serves HTTP on the same loop.
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                               log_level="warning", access_log=False))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.02)
        base_url = f"http://127.0.0.1:{port}"
        await _until_ready(base_url)
        schema = await asyncio.to_thread(schemathesis.openapi.from_url, f"{base_url}/openapi.json")
        try:
            yield Served(request.param, base_url, schema)
        finally:
            server.should_exit = True
            await serving


async def _until_ready(base_url: str, timeout: float = 30.0) -> None:
    """Fuzz a service that is up: until its consumers have joined, /readyz rightly answers 503."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(base_url=base_url) as client:
        while (await client.get("/readyz")).status_code != 200:
            assert asyncio.get_running_loop().time() < deadline, "the service never became ready"
            await asyncio.sleep(0.2)


def problem_json(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """Every error is an RFC 9457 problem: the problem+json media type, and a body naming its status."""
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith(PROBLEM):
        raise AssertionError(f"{response.status_code} answered as {content_type!r}, not {PROBLEM}")
    body = json.loads(response.content)
    if body.get("status") != response.status_code or not body.get("title"):
        raise AssertionError(f"problem body lacks a matching status and a title: {body}")
    return None


def _public(path: str) -> bool:
    return path.startswith(PUBLIC)


def fuzz(served: Served, *, headers: dict[str, str], examples: int,
         expect: Callable[[schemathesis.Case, schemathesis.Response], None] | None = None) -> list[str]:
    """Run every operation with positive and negative data; the failures, one line (and reproduction) each."""
    failures: list[str] = []
    for result in served.schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                      print_blob=False)
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                response = case.call(base_url=served.base_url, headers=headers, timeout=10)
                case.validate_response(response, checks=[not_a_server_error, problem_json],
                                       headers=headers, transport_kwargs={"base_url": served.base_url})
                if expect is not None:
                    expect(case, response)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request can be generated"
                # Nothing to get wrong: the operation takes no parameters and no body.
            except (AssertionError, FailureGroup) as exc:  # a Failure is an AssertionError
                failures.append(f"{served.name} {operation.label} [{mode.value}]: {exc}")
    return failures


async def test_operator_input_never_causes_a_server_error(served: Served) -> None:
    failures = await asyncio.to_thread(fuzz, served, headers=bearer("operator"), examples=20)
    assert not failures, "\n\n".join(failures)


async def test_company_input_never_causes_a_server_error(served: Served) -> None:
    def authenticated(case: schemathesis.Case, response: schemathesis.Response) -> None:
        assert response.status_code != 401, f"a valid company token was refused: {response.content!r}"

    failures = await asyncio.to_thread(fuzz, served, headers=bearer("company", nib=COMPANY_NIB), examples=8,
                                       expect=authenticated)
    assert not failures, "\n\n".join(failures)


async def test_anonymous_requests_are_refused_before_anything_else(served: Served) -> None:
    def refused(case: schemathesis.Case, response: schemathesis.Response) -> None:
        # A body that is not even well-formed may be refused as such (400/422) before the token is looked at;
        # nothing else (a 404 or 409 would tell what exists) may reach a caller without a token.
        if not _public(case.operation.path):
            assert response.status_code in (400, 401, 422), (
                f"{case.operation.label} without a token answered {response.status_code}: {response.content!r}")

    failures = await asyncio.to_thread(fuzz, served, headers={}, examples=5, expect=refused)
    assert not failures, "\n\n".join(failures)
