"""What a request must get past before a service reads it: a bounded body, and on a guarded route a valid token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel

from shared.web.access import Access, AuthenticatedFirst, Policy, Role, Rule, Scope, TokenVerifier, mint
from shared.web.http import BoundedBodies, install_problem_handlers

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret-" + "b" * 32
POLICY = Policy({"submit": Rule({Role.OPERATOR: Scope.ALL})}, verifier=TokenVerifier.development(SECRET))
LIMIT = 4096
UPLOAD_LIMIT = 4 * LIMIT


class Report(BaseModel):
    note: str


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(BoundedBodies, limit=LIMIT, uploads={r"/uploads/[^/]+": UPLOAD_LIMIT})
    routes = APIRouter(route_class=AuthenticatedFirst)

    @routes.post("/reports")
    async def submit(body: Report, access: Annotated[Access, POLICY.guard("submit")]) -> dict[str, int]:
        return {"length": len(body.note)}

    @routes.post("/open")
    async def unguarded(body: Report) -> dict[str, int]:
        return {"length": len(body.note)}

    @routes.post("/uploads/{name}")
    async def upload(name: str, request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    app.include_router(routes)
    return app


async def _post(path: str, content: bytes | AsyncIterator[bytes], token: str | None = None) -> httpx.Response:
    headers = {"content-type": "application/json"} | ({"authorization": f"Bearer {token}"} if token else {})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://service") as client:
        return await client.post(path, content=content, headers=headers)


OPERATOR = mint(SECRET, role=Role.OPERATOR)


async def test_a_guarded_route_answers_401_before_it_reads_a_body():
    for body in (b"{not json", b'{"note": 7}', b"{}"):
        response = await _post("/reports", body)
        assert response.status_code == 401, (body, response.text)
        assert response.json()["title"] == "Unauthorized"
    forged = await _post("/reports", b"{not json", token=OPERATOR[:-2] + "xx")
    assert forged.status_code == 401
    # With a valid token, the body is read and judged as before.
    assert (await _post("/reports", b"{not json", token=OPERATOR)).status_code == 422
    assert (await _post("/reports", b'{"note": "ok"}', token=OPERATOR)).json() == {"length": 2}


async def test_a_route_without_a_guard_reads_its_body_as_before():
    assert (await _post("/open", b"{not json")).status_code == 422
    assert (await _post("/open", b'{"note": "ok"}')).json() == {"length": 2}


async def test_a_body_declared_over_the_limit_is_refused_before_it_is_read():
    response = await _post("/reports", b'{"note": "' + b"x" * LIMIT + b'"}', token=OPERATOR)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == f"A request's body may take at most {LIMIT:,} bytes."


async def test_a_body_sent_in_chunks_is_refused_once_it_passes_the_limit():
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"note": "'
        for _ in range(64):  # 64 KiB in all, sixteen times the limit
            yield b"x" * 1024
        yield b'"}'

    response = await _post("/open", chunks())
    assert response.status_code == 413 and response.json()["title"] == "Payload too large"
    small = await _post("/open", b'{"note": "' + b"x" * (LIMIT - 20) + b'"}')
    assert small.status_code == 200 and small.json() == {"length": LIMIT - 20}


async def test_an_upload_path_takes_its_own_larger_limit_and_no_more():
    assert (await _post("/uploads/photo", b"x" * (2 * LIMIT))).json() == {"length": 2 * LIMIT}
    assert (await _post("/uploads/photo", b"x" * (UPLOAD_LIMIT + 1))).status_code == 413
    # Only the paths named: a longer one, or another, keeps the service's limit.
    assert (await _post("/uploads/photo/more", b"x" * (2 * LIMIT))).status_code == 413
    assert (await _post("/open", b"x" * (2 * LIMIT))).status_code == 413
