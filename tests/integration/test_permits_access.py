"""Access to the permits service, generated from its POLICY: every action × every role.

A role the rule does not list gets 403; a listed role gets 2xx on an object in its scope and 404 on one
outside it (existence does not leak). When POLICY changes, these cases change with it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.permits.api import POLICY
from services.permits.app import create_app
from shared.contract import Envelope, GroundCode, GroundEvidence, SanctionAction, SanctionGround, SanctionRequested
from shared.web.access import Role, Scope
from tests.support.kafka import publish
from tests.support.platform import bearer, running_service
from tests.support.waiting import poll

pytestmark = pytest.mark.integration

OWNER_NIB, COMPETITOR_NIB, TENANT_NIB = "8120000111222", "8120000333444", "8120000555666"
OPERATOR = bearer("operator")
OWNER = bearer("company", nib=OWNER_NIB)
CORRECTIVE_ACTION = "Petugas K3 pelaporan ditunjuk dan pengingat mingguan dipasang di ruang kendali."

# For each role, a caller whose scope covers the plant or estate (Kab. Bekasi, 32.16, owned by OWNER_NIB) and one
# whose scope does not.
IN_SCOPE = {Role.OPERATOR: {}, Role.TASK_FORCE: {"region": "32"}, Role.COMPANY: {"nib": OWNER_NIB},
            Role.AGENCY: {}, Role.REGIONAL_OFFICE: {"region": "32"}, Role.ESTATE: {"nib": OWNER_NIB},
            Role.HEALTH_OFFICE: {"region": "32.16"}}
OUT_OF_SCOPE = {Role.TASK_FORCE: {"region": "33"}, Role.COMPANY: {"nib": COMPETITOR_NIB},
                Role.REGIONAL_OFFICE: {"region": "33"}, Role.ESTATE: {"nib": COMPETITOR_NIB},
                Role.HEALTH_OFFICE: {"region": "33.74"}}


def application(nib: str) -> dict[str, Any]:
    return {
        "company": {"nib": nib, "npwp": "0012345678901000", "name": "PT Kimia Bekasi"},
        "facility": {"name": "Pabrik Cikarang", "address": f"Jababeka Blok {uuid.uuid4().hex[:10]}",
                     "province_code": "32", "regency_code": "32.16"},
        # The table reads basic chemicals as non-essential: the claim of a critical class is in review.
        "kbli": ["20111"], "sector_class": "critical",
        "workforce": {"total": 90, "on_site_per_shift": [45, 45]},
        "health_protocol_commitment": True,
    }


def estate_application(nib: str) -> dict[str, Any]:
    return application(nib) | {"kind": "estate", "kbli": ["68130"], "sector_class": None,
                               "company": {"nib": nib, "npwp": "0012345678901000", "name": "PT Kawasan Bekasi"}}


@dataclass(frozen=True)
class Request:
    """How to perform one POLICY action, and the state the permit must be in for it to be legal."""

    method: str
    path: str
    body: dict[str, Any] | None
    needs: tuple[str, ...]  # the operator's steps that bring a fresh permit to the right state


REQUESTS: dict[str, list[Request]] = {
    "apply": [Request("POST", "/permits", None, ())],
    "read": [Request("GET", "/permits/{id}", None, ()), Request("GET", "/permits/{id}/history", None, ()),
             Request("GET", "/permits/{id}/reactivation-requests", None, ("issue", "freeze", "request"))],
    "summary": [Request("GET", "/permits/summary?province=32", None, ())],
    "decide": [Request("POST", "/permits/{id}/decision", {"decision": "reject", "reason": "incomplete"}, ())],
    "freeze": [Request("POST", "/permits/{id}/freeze",
                       {"reason": "3 warnings", "ground": {"code": "company_request"}}, ("issue",))],
    "reactivate": [Request("POST", "/permits/{id}/reactivate", {"reason": "reports resumed"}, ("issue", "freeze"))],
    "revoke": [Request("POST", "/permits/{id}/revoke",
                       {"reason": "false data", "ground": {"code": "inspection_finding",
                                                           "evidence": {"finding": "BAP-1"}}}, ("issue",))],
    # A freeze on the company's own request rests on no missed period: the statement is the one condition left.
    "request_reactivation": [Request("POST", "/permits/{id}/reactivation-requests",
                                     {"corrective_action": CORRECTIVE_ACTION}, ("issue", "freeze"))],
    "reactivation_queue": [Request("GET", "/reactivation-requests?province=32", None, ("issue", "freeze", "request"))],
    "decide_reactivation": [Request("POST", "/reactivation-requests/{request}/decision",
                                    {"decision": "reject", "reason": "belum cukup"}, ("issue", "freeze", "request"))],
    "object": [Request("POST", "/permits/{id}/objections", {"statement": "laporan sudah dikirim"},
                       ("issue", "freeze"))],
    "read_objections": [Request("GET", "/permits/{id}/objections", None, ())],
    "decide_objection": [Request("POST", "/objections/{objection}/decision",
                                 {"outcome": "upheld", "reason": "misses confirmed"}, ("issue", "freeze", "object"))],
    "worklists": [Request("GET", "/worklists?region=32&kind=application&limit=5", None, ())],
    # A freeze is a letter (SPB-1): the company downloads its own, a task force those of its region.
    "letters": [Request("GET", "/permits/{id}/letters", None, ("issue", "freeze")),
                Request("GET", "/permits/{id}/letters/SPB-1", None, ("issue", "freeze"))],
    "sector_table": [Request("GET", "/kbli-sectors", None, ())],
    "class_reviews": [Request("GET", "/class-reviews?permit_id={id}", None, ())],
    "decide_class_review": [Request("POST", "/class-reviews/{review}/decision",
                                    {"decision": "reject", "reason": "KBLI utama kimia dasar"}, ("review",))],
    # The permit is the owner's estate, a plant of another company naming it.
    "tenants": [Request("GET", "/estates/{id}/tenants?status=pending", None, ("estate", "issue", "tenant"))],
    "decide_tenancy": [Request("POST", "/estates/{id}/tenants/{tenant}/decision",
                               {"decision": "decline", "reason": "bukan penyewa"}, ("estate", "issue", "tenant")),
                       Request("POST", "/estates/{id}/tenants/{tenant}/release", {"reason": "pindah"},
                               ("estate", "issue", "tenant", "confirm"))],
    "sanction_requests": [Request("GET", "/sanction-requests?regency=32.16", None, ()),
                          Request("GET", "/sanction-requests/{sanction}", None, ("issue", "sanction"))],
    "decide_sanction_request": [Request("POST", "/sanction-requests/{sanction}/decision",
                                        {"decision": "decline", "reason": "bukti kurang"}, ("issue", "sanction"))],
}


def test_every_policy_action_has_a_request():
    assert REQUESTS.keys() == POLICY.rules.keys()


CASES = [(action, role, request) for action in POLICY.rules for role in Role for request in REQUESTS[action]]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def permits(platform) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(create_app()) as client:
        yield client


async def a_permit(permits: httpx.AsyncClient, steps: tuple[str, ...], bootstrap: str = "") -> dict[str, str]:
    """A fresh permit of the owner's (an estate's, if the first step says so), brought through `steps`: its id, and
    its reactivation request's, objection's, class review's, tenant's or sanction request's if asked."""
    first = estate_application(OWNER_NIB) if steps[:1] == ("estate",) else application(OWNER_NIB)
    applied = await permits.post("/permits", json=first, headers=OPERATOR)
    assert applied.status_code == 201, applied.text
    ids = {"id": applied.json()["permit_id"]}
    for step in steps:
        if step == "estate":
            continue
        if step == "tenant":  # another company's plant names the estate
            number = (await permits.get(f"/permits/{ids['id']}", headers=OPERATOR)).json()["permit_number"]
            plant = application(TENANT_NIB)
            plant["facility"]["estate_permit_number"] = number
            tenant = await permits.post("/permits", json=plant, headers=OPERATOR)
            assert tenant.status_code == 201, tenant.text
            ids["tenant"] = tenant.json()["permit_id"]
            continue
        if step == "confirm":
            confirmed = await permits.post(f"/estates/{ids['id']}/tenants/{ids['tenant']}/decision",
                                           json={"decision": "confirm", "reason": "Blok A"}, headers=OPERATOR)
            assert confirmed.status_code == 200, confirmed.text
            continue
        if step == "sanction":  # the regency's office asks for a freeze, on an inspection's finding
            ids["sanction"] = await a_sanction_request(permits, bootstrap, ids["id"])
            continue
        if step == "request":
            asked = await permits.post(f"/permits/{ids['id']}/reactivation-requests",
                                       json={"corrective_action": CORRECTIVE_ACTION}, headers=OWNER)
            assert asked.status_code == 201, asked.text
            ids["request"] = asked.json()["request_id"]
            continue
        if step == "review":  # the claim every permit here makes, in review
            shown = await permits.get(f"/permits/{ids['id']}", headers=OPERATOR)
            ids["review"] = shown.json()["sector"]["open_review"]["review_id"]
            continue
        if step == "object":  # the owner objects, within the window of a freeze just made
            filed = await permits.post(f"/permits/{ids['id']}/objections", json={"statement": "setup"},
                                       headers=bearer(Role.COMPANY, nib=OWNER_NIB))
            assert filed.status_code == 201, filed.text
            ids["objection"] = filed.json()["objection_id"]
            continue
        path, body = {"issue": ("decision", {"decision": "issue", "reason": "ok"}),
                      "freeze": ("freeze", {"reason": "setup", "ground": {"code": "company_request"}})}[step]
        assert (await permits.post(f"/permits/{ids['id']}/{path}", json=body, headers=OPERATOR)).status_code == 200
    return ids


async def a_sanction_request(permits: httpx.AsyncClient, bootstrap: str, permit_id: str) -> str:
    """A regional office's request on the supervision topic, once the permits service has it."""
    permit = (await permits.get(f"/permits/{permit_id}", headers=OPERATOR)).json()
    request_id = uuid.uuid4()
    await publish(bootstrap, Envelope.wrap(SanctionRequested(
        facility_id=permit["facility_id"], province_code="32", regency_code="32.16", permit_id=permit_id,
        request_id=request_id, action=SanctionAction.FREEZE, reason="Masker tidak dipakai",
        ground=SanctionGround(code=GroundCode.INSPECTION_FINDING, evidence=GroundEvidence(finding="INSP-2021-000001")),
        office_region="32.16", requested_at=datetime.now(UTC)), service="supervision"))
    await poll(permits, f"/sanction-requests/{request_id}", OPERATOR, lambda body: body["status"] == "pending")
    return str(request_id)


async def perform(permits: httpx.AsyncClient, request: Request, claims: dict[str, str], role: Role,
                  nib: str, bootstrap: str) -> httpx.Response:
    if request.path == "/permits":
        return await permits.post("/permits", json=application(nib), headers=bearer(role, **claims))
    ids = await a_permit(permits, request.needs, bootstrap)
    return await permits.request(request.method, request.path.format(**ids), json=request.body,
                                 headers=bearer(role, **claims))


@pytest.mark.parametrize(("action", "role", "request_"), CASES,
                         ids=[f"{a}-{r.value}-{q.method}{q.path}" for a, r, q in CASES])
async def test_policy(permits, platform, action, role, request_):
    scope = POLICY.rules[action].allow.get(role)
    answer = await perform(permits, request_, IN_SCOPE[role], role, OWNER_NIB, platform.bootstrap)
    if scope is None:
        assert answer.status_code == 403, answer.text
        assert answer.json()["rule"] == action
        return
    assert 200 <= answer.status_code < 300, answer.text
    if scope is not Scope.ALL:
        # Out of scope: another region's task force, or a competitor applying in or reading another's name.
        outsider = await perform(permits, request_, OUT_OF_SCOPE[role], role, OWNER_NIB, platform.bootstrap)
        assert outsider.status_code == 404, outsider.text


async def test_a_company_reading_a_competitors_permit_gets_404(permits):
    competitor = (await a_permit(permits, ("issue",)))["id"]
    answer = await permits.get(f"/permits/{competitor}", headers=bearer("company", nib=COMPETITOR_NIB))
    assert answer.status_code == 404
    unknown = await permits.get(f"/permits/{uuid.uuid4()}", headers=bearer("company", nib=COMPETITOR_NIB))
    assert answer.json()["detail"] == unknown.json()["detail"]  # indistinguishable from a permit that is not there


async def test_searches_return_only_what_is_in_the_callers_scope(permits):
    permit_id = (await a_permit(permits, ()))["id"]
    for claims, role, visible in ((IN_SCOPE[Role.TASK_FORCE], Role.TASK_FORCE, True),
                                  (OUT_OF_SCOPE[Role.TASK_FORCE], Role.TASK_FORCE, False),
                                  (IN_SCOPE[Role.COMPANY], Role.COMPANY, True),
                                  (OUT_OF_SCOPE[Role.COMPANY], Role.COMPANY, False)):
        ids, cursor = [], None
        while True:
            page = (await permits.get("/permits", params={"limit": 200} | ({"cursor": cursor} if cursor else {}),
                                      headers=bearer(role, **claims))).json()
            ids += [item["permit_id"] for item in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert (permit_id in ids) is visible, (role, claims)
    assert (await permits.get("/permits", headers=bearer("agency"))).status_code == 403


async def test_the_registry_needs_no_token_and_guarded_routes_need_one(permits):
    permit_id = (await a_permit(permits, ("issue",)))["id"]
    number = (await permits.get(f"/permits/{permit_id}", headers=OPERATOR)).json()["permit_number"]
    assert (await permits.get(f"/registry/{number}")).status_code == 200
    assert (await permits.get(f"/registry/{number}", headers=bearer("agency"))).status_code == 200
    assert (await permits.get("/registry/keys")).status_code == 200
    assert (await permits.get(f"/permits/{permit_id}")).status_code == 401
