"""The operators' worklists over HTTP: an application, a reactivation request, an objection and a company's sector
class claim wait for a decision, each held to its service level in the ministry's working days; what is overdue comes
first; a task force sees its own region's, and nobody else sees them at all."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.permits.app import PermitsSettings, create_app
from shared.clock import FakeClock
from tests.support.platform import bearer, running_service

pytestmark = pytest.mark.integration

NIB = "8120000765321"
COMPANY = bearer("company", nib=NIB, sub="k3-admin")
OPERATOR = bearer("operator", sub="officer-ani")
# Monday 5 July 2021, 09:00 in Jakarta.
T0 = datetime(2021, 7, 5, 2, 0, tzinfo=UTC)
CORRECTIVE_ACTION = "Petugas pelaporan baru ditunjuk dan pengingat mingguan dipasang untuk setiap Jumat sore."


def application(province: str, regency: str, sector_class: str = "essential") -> dict[str, Any]:
    return {
        "company": {"nib": NIB, "npwp": "01.234.567.8-901.000", "name": "PT Antrian Kerja"},
        "facility": {"name": "Pabrik", "address": f"Jl. Antrian {uuid.uuid4().hex[:8]}", "province_code": province,
                     "regency_code": regency},
        "kbli": ["13112"], "sector_class": sector_class, "workforce": {"total": 80, "on_site_per_shift": [40]},
        "health_protocol_commitment": True,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def clock() -> FakeClock:
    return FakeClock(T0)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def permits(platform, clock) -> AsyncIterator[httpx.AsyncClient]:
    # Applications held to two working days here, class reviews to four, to show the settings are read.
    settings = PermitsSettings(IOMKI_SLA_APPLICATION_WORKING_DAYS="2", IOMKI_SLA_CLASS_REVIEW_WORKING_DAYS="4",
                               IOMKI_SLA_SANCTION_REQUEST_WORKING_DAYS="6")
    async with running_service(create_app(clock=clock, permits_settings=settings)) as client:
        yield client


async def applied(permits: httpx.AsyncClient, province: str = "32", regency: str = "32.04",
                  sector_class: str = "essential") -> str:
    answer = await permits.post("/permits", json=application(province, regency, sector_class), headers=COMPANY)
    assert answer.status_code == 201, answer.text
    return answer.json()["permit_id"]


async def frozen(permits: httpx.AsyncClient) -> str:
    permit_id = await applied(permits)
    for path, body in (("decision", {"decision": "issue", "reason": "lengkap"}),
                       ("freeze", {"reason": "atas permintaan perusahaan", "ground": {"code": "company_request"}})):
        answer = await permits.post(f"/permits/{permit_id}/{path}", json=body, headers=OPERATOR)
        assert answer.status_code == 200, answer.text
    return permit_id


async def worklists(permits: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = await permits.get("/worklists", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return {w["kind"]: w for w in answer.json()["worklists"]}


def mine(worklist: dict[str, Any], *item_ids: str) -> list[dict[str, Any]]:
    return [item for item in worklist["items"] if item["item_id"] in item_ids]


async def test_what_waits_is_listed_with_its_service_level_and_overdue_first(permits, clock):
    clock.set(T0)
    application_id = await applied(permits)
    requested = await permits.post(f"/permits/{await frozen(permits)}/reactivation-requests",
                                   json={"corrective_action": CORRECTIVE_ACTION}, headers=COMPANY)
    assert requested.status_code == 201, requested.text
    objected = await permits.post(f"/permits/{await frozen(permits)}/objections",
                                  json={"statement": "Kami tidak pernah meminta pembekuan ini."}, headers=COMPANY)
    assert objected.status_code == 201, objected.text
    request_id, objection_id = requested.json()["request_id"], objected.json()["objection_id"]
    # A weaving mill that claims to be critical: the table reads it essential, and an operator reviews the claim.
    claimed = await applied(permits, sector_class="critical")
    review_id = (await permits.get(f"/permits/{claimed}", headers=OPERATOR)).json()["sector"]["open_review"][
        "review_id"]

    # Wednesday: nothing is late yet.
    clock.set(T0 + timedelta(days=2))
    lists = await worklists(permits, OPERATOR, limit=200)
    assert {kind: w["sla_working_days"] for kind, w in lists.items()} == {
        "application": 2, "reactivation_request": 3, "objection": 10, "class_review": 4, "sanction_request": 6}
    [review] = mine(lists["class_review"], review_id)
    assert (review["permit_id"], review["received_at"], review["due_at"], review["overdue"]) == (
        claimed, T0.isoformat(), "2021-07-10T00:00:00+07:00", False)  # Tuesday to Friday, due at Friday's end
    [waiting] = mine(lists["application"], application_id)
    assert waiting["permit_id"] == application_id and waiting["company_name"] == "PT Antrian Kerja"
    assert (waiting["received_at"], waiting["due_at"], waiting["overdue"]) == (
        T0.isoformat(), "2021-07-08T00:00:00+07:00", False)  # Tuesday and Wednesday, due at Wednesday's end
    assert waiting["age_hours"] == 48.0
    assert [i["overdue"] for i in mine(lists["reactivation_request"], request_id)] == [False]
    assert [i["overdue"] for i in mine(lists["objection"], objection_id)] == [False]

    # Friday: the application is overdue, and comes before a newer one that is not.
    clock.set(T0 + timedelta(days=4))
    newer = await applied(permits)
    lists = await worklists(permits, OPERATOR, limit=200)
    order = [item["item_id"] for item in lists["application"]["items"]]
    assert order.index(application_id) < order.index(newer)
    assert [i["overdue"] for i in mine(lists["application"], application_id, newer)] == [True, False]
    assert lists["application"]["overdue"] >= 1 and lists["application"]["total"] >= 2
    assert [i["overdue"] for i in mine(lists["reactivation_request"], request_id)] == [True]  # due Thursday's end
    assert [i["overdue"] for i in mine(lists["objection"], objection_id)] == [False]  # ten working days
    assert [i["overdue"] for i in mine(lists["class_review"], review_id)] == [False]  # due at Friday's end
    clock.set(T0 + timedelta(days=5))  # Saturday
    lists = await worklists(permits, OPERATOR, kind="class_review", limit=200)
    assert [i["overdue"] for i in mine(lists["class_review"], review_id)] == [True]
    assert lists["class_review"]["overdue"] >= 1

    # Decided, they leave their lists.
    decided = await permits.post(f"/reactivation-requests/{request_id}/decision",
                                 json={"decision": "approve", "reason": "cukup"}, headers=OPERATOR)
    assert decided.status_code == 200, decided.text
    lists = await worklists(permits, OPERATOR, kind="reactivation_request", limit=200)
    assert list(lists) == ["reactivation_request"] and mine(lists["reactivation_request"], request_id) == []


async def test_a_task_force_sees_its_own_region_only_and_the_list_is_bounded(permits, clock):
    clock.set(T0)
    west = await applied(permits, "32", "32.16")
    central = await applied(permits, "33", "33.74")
    bekasi = await worklists(permits, bearer("task_force", region="32.16"), kind="application", limit=200)
    ids = [item["item_id"] for item in bekasi["application"]["items"]]
    assert west in ids and central not in ids
    assert {item["regency_code"] for item in bekasi["application"]["items"]} == {"32.16"}
    java = await worklists(permits, bearer("task_force", region="33"), kind="application", limit=200)
    assert central in [item["item_id"] for item in java["application"]["items"]]
    assert {item["province_code"] for item in java["application"]["items"]} == {"33"}
    # Class reviews too: a claim in Bekasi is Bekasi's task force's to see, not Central Java's.
    claimed = await applied(permits, "32", "32.16", sector_class="non_essential")
    own = await worklists(permits, bearer("task_force", region="32.16"), kind="class_review", limit=200)
    assert claimed in [item["permit_id"] for item in own["class_review"]["items"]]
    assert {item["regency_code"] for item in own["class_review"]["items"]} == {"32.16"}
    elsewhere = await worklists(permits, bearer("task_force", region="33"), kind="class_review", limit=200)
    assert claimed not in [item["permit_id"] for item in elsewhere["class_review"]["items"]]

    assert len((await worklists(permits, OPERATOR, kind="application", limit=1))["application"]["items"]) == 1
    # An operator narrows to a region; a task force may narrow its own, never look at another's.
    narrowed = await worklists(permits, OPERATOR, kind="application", region="33.74", limit=200)
    assert {item["regency_code"] for item in narrowed["application"]["items"]} == {"33.74"}
    assert (await permits.get("/worklists", params={"region": "33"},
                              headers=bearer("task_force", region="32"))).status_code == 404
    for params in ({"limit": 0}, {"limit": 201}, {"kind": "permits"}, {"region": "32.1"}, {"region": "３２"}):
        assert (await permits.get("/worklists", params=params, headers=OPERATOR)).status_code == 422
    assert (await permits.get("/worklists", headers=COMPANY)).status_code == 403


async def test_a_long_list_pages_by_its_cursor_each_item_once_in_arrival_order(permits, clock):
    clock.set(T0)
    arrived = []
    for minute in range(5):
        clock.set(T0 + timedelta(minutes=minute))
        arrived.append(await applied(permits, "35", "35.07"))
    # Two arrivals in one instant, after the others: the item's id decides their order, and neither is skipped.
    clock.set(T0 + timedelta(minutes=5))
    arrived += [await applied(permits, "35", "35.07"), await applied(permits, "35", "35.07")]
    seen: list[str] = []
    after = None
    while True:
        page = await worklists(permits, OPERATOR, kind="application", region="35.07", limit=2,
                               **({"after": after} if after else {}))
        listed = page["application"]
        assert listed["total"] == len(arrived)
        seen += [item["item_id"] for item in listed["items"]]
        after = listed["next"]
        if after is None:
            break
    assert seen == arrived[:5] + sorted(arrived[5:])
    whole = await worklists(permits, OPERATOR, kind="application", region="35.07", limit=200)
    assert whole["application"]["next"] is None

    for params in ({"after": after or "x"}, {"kind": ["application", "objection"], "after": "x"},
                   {"kind": "application", "after": "bm90IGEgY3Vyc29y"}, {"kind": "application", "after": "x" * 201}):
        refused = await permits.get("/worklists", params=params, headers=OPERATOR)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"].endswith("after")
