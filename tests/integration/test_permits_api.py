"""The permits service over HTTP and over the real broker: a plant's permit from application to revocation."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from shared import registry_tokens
from services.permits.api import qr_png
from services.permits.app import create_app
from shared.clock import FakeClock
from shared.contract import (
    CONTENT_TYPE, ClosureScope, Envelope, FacilityClosureOrdered, FacilityReopened, SanctionAction,
    SanctionEvidence, SanctionRecommended, decode,
)
from tests.support.kafka import read_topic
from tests.support.platform import bearer, running_service
from tests.support.waiting import until

pytestmark = pytest.mark.integration

NIB = "8120000765432"
OPERATOR = bearer("operator", sub="officer-ani")
COMPANY = bearer("company", nib=NIB, sub="company-admin")
FINDING = {"reason": "field data false", "ground": {"code": "inspection_finding",
                                                    "evidence": {"finding": "BAP-32.16/2026/004"}}}


def application(address: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "company": {"nib": NIB, "npwp": "01.234.567.8-901.000", "name": "PT Tekstil Priangan"},
        "facility": {"name": "Pabrik Majalaya", "address": address, "province_code": "32", "regency_code": "32.04"},
        "kbli": ["13112"], "sector_class": "essential",
        "workforce": {"total": 800, "on_site_per_shift": [300, 300]},
        "health_protocol_commitment": True,
        "contact": {"email": "hse@priangan.example", "phone": "+62225950000"},
    }
    for key, value in changes.items():
        body[key] = value
    return body


def a_plant() -> str:
    return f"Jl. Raya Majalaya No. {uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def permits(platform, clock) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(create_app(clock=clock)) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def producer(platform) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=platform.bootstrap)
    await producer.start()
    yield producer
    await producer.stop()


async def issued_permit(permits: httpx.AsyncClient, address: str | None = None,
                        body: dict[str, Any] | None = None) -> dict[str, Any]:
    applied = await permits.post("/permits", json=body or application(address or a_plant()), headers=COMPANY)
    assert applied.status_code == 201, applied.text
    issued = await permits.post(f"/permits/{applied.json()['permit_id']}/decision",
                                json={"decision": "issue", "reason": "documents complete"}, headers=OPERATOR)
    assert issued.status_code == 200, issued.text
    return applied.json() | issued.json()


async def publish(producer: AIOKafkaProducer, topic: str, envelope: Envelope) -> None:
    await producer.send_and_wait(topic, envelope.to_bytes(), key=envelope.key,
                                 headers=[("content-type", CONTENT_TYPE.encode())])


# -- applications -------------------------------------------------------------------------------------------


async def test_every_invalid_field_is_named_in_one_problem(permits):
    body = application(a_plant(), kbli=["1311"], health_protocol_commitment=False,
                       workforce={"total": 100, "on_site_per_shift": [50, 150]})
    body["company"] = body["company"] | {"npwp": "12.345"}
    body["facility"] = body["facility"] | {"province_code": "33"}
    answer = await permits.post("/permits", json=body, headers=OPERATOR)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in answer.json()["errors"]}
    assert fields == {"company.npwp", "facility.regency_code", "kbli.0", "workforce.on_site_per_shift.1",
                      "health_protocol_commitment"}


async def test_a_malformed_body_is_a_422_not_a_500(permits):
    answer = await permits.post("/permits", json={"company": "PT"}, headers=OPERATOR)
    assert answer.status_code == 422
    assert answer.json()["errors"]


async def test_values_the_database_cannot_hold_are_422s_naming_the_field_not_500s(permits):
    # Found by tests/integration/test_openapi_fuzz.py: a NUL in free text, and a count beyond int4.
    nul = await permits.post("/permits", json=application("Jl. Industri\x00 No. 1"), headers=OPERATOR)
    assert nul.status_code == 422, nul.text
    assert [e["field"] for e in nul.json()["errors"]] == ["facility.address"]
    huge = await permits.post("/permits", json=application(
        a_plant(), workforce={"total": 3_000_000_000, "on_site_per_shift": [1]}), headers=OPERATOR)
    assert huge.status_code == 422, huge.text
    assert [e["field"] for e in huge.json()["errors"]] == ["workforce.total"]


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


async def test_codes_in_full_width_digits_or_with_a_final_newline_are_refused_naming_each_field(permits):
    # "１２３４５" matched `\d{5}` and "8120000765432\n" matched `^\d{13}$`: both were accepted as codes.
    body = application(a_plant(), kbli=["13112".translate(FULL_WIDTH), "24101\n"])
    body["company"] = body["company"] | {"nib": NIB + "\n"}
    body["facility"] = body["facility"] | {"province_code": "32".translate(FULL_WIDTH),
                                           "regency_code": "32.04".translate(FULL_WIDTH)}
    answer = await permits.post("/permits", json=body, headers=OPERATOR)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in answer.json()["errors"]} == {
        "company.nib", "kbli.0", "kbli.1", "facility.province_code", "facility.regency_code"}
    full_width_nib = application(a_plant())
    full_width_nib["company"] = full_width_nib["company"] | {"nib": NIB.translate(FULL_WIDTH)}
    answer = await permits.post("/permits", json=full_width_nib, headers=OPERATOR)
    assert answer.status_code == 422 and [e["field"] for e in answer.json()["errors"]] == ["company.nib"]


async def test_one_application_cannot_carry_sixty_thousand_kbli_codes_or_an_endless_name(permits):
    address = a_plant()
    codes = [f"{n:05d}".translate(FULL_WIDTH) for n in range(60_000)]
    flood = await permits.post("/permits", json=application(address, kbli=codes), headers=OPERATOR)
    assert flood.status_code == 413, flood.text[:300]  # over a megabyte: refused before it is read
    within_the_body_limit = await permits.post("/permits", json=application(address, kbli=codes[:5000]),
                                               headers=OPERATOR)
    assert within_the_body_limit.status_code == 422, within_the_body_limit.text[:300]
    assert within_the_body_limit.json()["errors"] == [{"field": "kbli", "message": "List should have at most 20 "
                                                                                   "items after validation, not 5000",
                                                       "type": "too_long", "limit": 20}]
    one_too_many = await permits.post("/permits", json=application(
        address, kbli=[f"{n:05d}" for n in range(21)]), headers=OPERATOR)
    assert one_too_many.status_code == 422
    assert [e["field"] for e in one_too_many.json()["errors"]] == ["kbli"]
    long_name = application(address)
    long_name["facility"] = long_name["facility"] | {"name": "Pabrik " + "x" * 200}
    refused = await permits.post("/permits", json=long_name, headers=OPERATOR)
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "facility.name",
                                         "message": "String should have at most 200 characters",
                                         "type": "string_too_long", "limit": 200}]
    # None of them was written: the plant is still free, and its first valid application is taken.
    twenty = await permits.post("/permits", json=application(address, kbli=[f"{n:05d}" for n in range(1, 21)]),
                                headers=OPERATOR)
    assert twenty.status_code == 201, twenty.text


async def test_query_and_path_codes_are_ascii_and_whole_too(permits):
    answer = await permits.get("/permits", params={"nib": NIB.translate(FULL_WIDTH)}, headers=OPERATOR)
    assert answer.status_code == 422 and [e["field"] for e in answer.json()["errors"]] == ["nib"]
    answer = await permits.get("/permits", params={"cursor": "A" * 65}, headers=OPERATOR)
    assert answer.status_code == 422 and [e["field"] for e in answer.json()["errors"]] == ["cursor"]
    number = (await issued_permit(permits))["permit_number"]
    assert (await permits.get(f"/registry/{number}")).status_code == 200
    assert (await permits.get(f"/registry/{number}%0A")).status_code == 404
    assert (await permits.get(f"/registry/{number.translate(FULL_WIDTH)}")).status_code == 404


async def test_the_served_openapi_document_states_what_the_api_enforces(permits):
    document = (await permits.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    kbli = schemas["ApplicationIn"]["properties"]["kbli"]
    assert (kbli["maxItems"], kbli["items"]["pattern"], kbli["items"]["maxLength"]) == (20, "^[0-9]{5}$", 32)
    assert schemas["Company"]["properties"]["nib"]["pattern"] == "^[0-9]{13}$"
    assert schemas["Facility"]["properties"]["name"]["maxLength"] == 200
    assert schemas["Workforce"]["properties"]["on_site_per_shift"]["maxItems"] == 8


async def test_a_forged_cursor_past_any_position_is_a_422_not_a_500(permits):
    forged = base64.urlsafe_b64encode(b"s:" + b"9" * 22).decode()
    answer = await permits.get("/permits", params={"cursor": forged}, headers=OPERATOR)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "cursor"


async def test_a_second_active_application_for_the_same_plant_names_the_existing_permit(permits):
    address = a_plant()
    first = await permits.post("/permits", json=application(address), headers=COMPANY)
    assert first.status_code == 201
    again = await permits.post("/permits", json=application("  " + address.upper() + " "), headers=COMPANY)
    assert again.status_code == 409
    assert again.json()["existing_permit_id"] == first.json()["permit_id"]
    assert first.json()["permit_id"] in again.json()["detail"]


async def test_a_revoked_plant_reapplies_after_fourteen_days_as_the_same_facility(permits, clock):
    address = a_plant()
    permit = await issued_permit(permits, address)
    revoked = await permits.post(f"/permits/{permit['permit_id']}/revoke", json=FINDING,
                                 headers=OPERATOR)
    assert revoked.status_code == 200 and revoked.json()["status"] == "REVOKED"
    reapply_from = (clock.now() + timedelta(days=14)).date().isoformat()

    too_soon = await permits.post("/permits", json=application(address), headers=COMPANY)
    assert too_soon.status_code == 409
    assert reapply_from in too_soon.json()["detail"]

    clock.advance(timedelta(days=14, seconds=1))
    later = await permits.post("/permits", json=application(address), headers=COMPANY)
    assert later.status_code == 201, later.text
    assert later.json()["facility_id"] == permit["facility_id"]


async def test_another_company_at_the_same_address_neither_blocks_nor_inherits_the_plant(permits, clock):
    """A plant is a company's: company B applying at A's address is another plant; its answers never name A's."""
    other_nib = "8120000765999"
    other = bearer("company", nib=other_nib, sub="other-admin")

    def of_other(address: str) -> dict[str, Any]:
        body = application(address)
        return body | {"company": body["company"] | {"nib": other_nib, "name": "PT Lain"}}

    address = a_plant()
    permit = await issued_permit(permits, address)
    theirs = await permits.post("/permits", json=of_other(address), headers=other)
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["facility_id"] != permit["facility_id"]
    again = await permits.post("/permits", json=of_other(address), headers=other)
    assert again.status_code == 409 and again.json()["existing_permit_id"] == theirs.json()["permit_id"]
    assert permit["permit_id"] not in again.text

    revoked = await permits.post(f"/permits/{permit['permit_id']}/revoke", json=FINDING,
                                 headers=OPERATOR)
    assert revoked.status_code == 200
    await permits.post(f"/permits/{theirs.json()['permit_id']}/decision",
                       json={"decision": "reject", "reason": "not this address"}, headers=OPERATOR)
    after = await permits.post("/permits", json=of_other(address), headers=other)  # A's revocation is not B's wait
    assert after.status_code == 201, after.text
    assert after.json()["facility_id"] == theirs.json()["facility_id"] != permit["facility_id"]


# -- the lifecycle over HTTP --------------------------------------------------------------------------------


async def test_an_officer_freezes_reactivates_and_revokes_and_history_records_each_step(permits):
    permit = await issued_permit(permits)
    pid = permit["permit_id"]
    for action, status in (("freeze", "FROZEN"), ("reactivate", "ISSUED"), ("freeze", "FROZEN"),
                           ("revoke", "REVOKED")):
        ground = {"ground": {"code": "company_request"}} if action != "reactivate" else {}
        answer = await permits.post(f"/permits/{pid}/{action}", json={"reason": f"{action} per review"} | ground,
                                    headers=OPERATOR | {"x-request-id": f"req-{action}-{status}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == status

    illegal = await permits.post(f"/permits/{pid}/reactivate", json=FINDING, headers=OPERATOR)
    assert illegal.status_code == 409
    assert illegal.json()["current_status"] == "REVOKED" and "REVOKED" in illegal.json()["detail"]

    history = (await permits.get(f"/permits/{pid}/history", headers=COMPANY)).json()["transitions"]
    assert [t["to_status"] for t in history] == ["SUBMITTED", "ISSUED", "FROZEN", "ISSUED", "FROZEN", "REVOKED"]
    assert history[-1] | {"at": None} == {
        "from_status": "FROZEN", "to_status": "REVOKED", "action": "revoke", "actor": "officer-ani",
        "role": "operator", "reason": "revoke per review", "at": None, "causation_id": "req-revoke-REVOKED",
        "ground": {"code": "company_request", "ladder": None, "rule": None, "text": "revoke per review",
                   "evidence": {"missed_periods": [], "warnings": [], "breaches": [], "report_id": None,
                                "closure_id": None,
                                "finding": None}}}
    assert history[0]["actor"] == "company-admin" and history[0]["role"] == "company"

    detail = (await permits.get(f"/permits/{pid}", headers=OPERATOR)).json()
    assert detail["freeze_count"] == 2 and detail["reapply_after"] is not None
    assert detail["contact"]["email"] == "hse@priangan.example"


async def test_an_unknown_permit_is_404(permits):
    answer = await permits.post(f"/permits/{uuid.uuid4()}/freeze", json=FINDING, headers=OPERATOR)
    assert answer.status_code == 404


async def test_search_filters_and_pages_with_a_cursor(permits):
    nib = "8120000999111"
    company = bearer("company", nib=nib)
    created = []
    for _ in range(5):
        body = application(a_plant())
        body["company"] = body["company"] | {"nib": nib}
        created.append((await permits.post("/permits", json=body, headers=company)).json()["permit_id"])
    await permits.post(f"/permits/{created[0]}/decision", json={"decision": "issue", "reason": "ok"},
                       headers=OPERATOR)

    seen, cursor = [], None
    while True:
        params = {"nib": nib, "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await permits.get("/permits", params=params, headers=OPERATOR)).json()
        seen += [item["permit_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created

    issued = (await permits.get("/permits", params={"nib": nib, "status": "ISSUED", "regency": "32.04",
                                                    "province": "32", "sector": "essential"},
                                headers=OPERATOR)).json()["items"]
    assert [item["permit_id"] for item in issued] == [created[0]]
    bad = await permits.get("/permits", params={"cursor": "garbage!"}, headers=OPERATOR)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


async def test_search_by_permit_number_and_by_the_start_of_the_company_name_with_a_cursor(permits):
    nib, tag = "8120000999222", uuid.uuid4().hex[:8]
    company = bearer("company", nib=nib)
    created = []
    for name in (f"PT Sinar {tag} Abadi", f"pt  SINAR {tag} abadi jaya", f"CV Sinar {tag} Abadi"):
        body = application(a_plant())
        body["company"] = body["company"] | {"nib": nib, "name": name}
        created.append((await permits.post("/permits", json=body, headers=company)).json()["permit_id"])
    decided = await permits.post(f"/permits/{created[2]}/decision", json={"decision": "issue", "reason": "ok"},
                                 headers=OPERATOR)
    number = decided.json()["permit_number"]

    seen, cursor = [], None
    while True:
        params = {"company": f"  pt sinar   {tag} ", "limit": 1} | ({"cursor": cursor} if cursor else {})
        answer = await permits.get("/permits", params=params, headers=OPERATOR)
        assert answer.status_code == 200, answer.text
        seen += [item["permit_id"] for item in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == created[:2]
    both = await permits.get("/permits", params={"company": f"PT SINAR {tag} ABADI JAYA", "nib": nib},
                             headers=OPERATOR)
    assert [item["permit_id"] for item in both.json()["items"]] == [created[1]]
    assert (await permits.get("/permits", params={"company": f"Sinar {tag}"}, headers=OPERATOR)).json()["items"] == []
    own = await permits.get("/permits", params={"company": f"pt sinar {tag}"}, headers=bearer("company",
                                                                                                nib="8120000999333"))
    assert own.json()["items"] == []  # a company finds only its own plants, whatever the name asked

    by_number = (await permits.get("/permits", params={"number": number}, headers=OPERATOR)).json()
    assert [item["permit_id"] for item in by_number["items"]] == [created[2]] and by_number["next_cursor"] is None
    assert (await permits.get("/permits", params={"number": number, "status": "FROZEN"},
                              headers=OPERATOR)).json()["items"] == []

    for params, field, words in (
        ({"number": "IOMKI-26-1"}, "number", "not a permit number"),
        ({"number": number + "\n"}, "number", "not a permit number"),
        ({"company": "pt"}, "company", "at least 3 characters"),
        ({"company": " ab \t "}, "company", "at least 3 characters"),
        ({"company": "x" * 201}, "company", ""),
        ({"company": "pt\x00x"}, "company", "NUL"),
    ):
        bad = await permits.get("/permits", params=params, headers=OPERATOR)
        assert bad.status_code == 422, (params, bad.text)
        error = bad.json()["errors"][0]
        assert error["field"] == field and words in error["message"], (params, error)


async def test_the_summary_counts_permits_by_province_and_status_and_scopes_a_task_force(permits):
    async def summary(headers: dict[str, str], **params: str) -> dict[str, Any]:
        answer = await permits.get("/permits/summary", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    before = await summary(OPERATOR)
    await issued_permit(permits)
    await permits.post("/permits", json=application(a_plant()), headers=COMPANY)
    central_java = application(a_plant(), facility={"name": "Pabrik Semarang", "address": a_plant(),
                                                     "province_code": "33", "regency_code": "33.74"})
    assert (await permits.post("/permits", json=central_java, headers=COMPANY)).status_code == 201

    after = await summary(bearer("agency"))
    provinces = {p["province_code"]: p for p in after["by_province"]}
    earlier = {p["province_code"]: p for p in before["by_province"]}
    west = provinces["32"]
    assert west["province_name"] == "Jawa Barat"
    def grown(code: str, status: str | None = None) -> int:
        now = provinces[code]["by_status"][status] if status else provinces[code]["total"]
        if code not in earlier:
            return now
        return now - (earlier[code]["by_status"][status] if status else earlier[code]["total"])

    assert {code: grown(code) for code in provinces} == {code: 0 for code in provinces} | {"32": 2, "33": 1}
    assert grown("32", "ISSUED") == 1 and grown("32", "SUBMITTED") == 1 and grown("33", "SUBMITTED") == 1
    assert after["total"] - before["total"] == 3
    assert after["by_status"]["SUBMITTED"] - before["by_status"]["SUBMITTED"] == 2

    # A task force sees its own province only, and 404 for another's.
    west_java = await summary(bearer("task_force", region="32"))
    assert [p["province_code"] for p in west_java["by_province"]] == ["32"]
    assert west_java["total"] == west["total"]
    other = await permits.get("/permits/summary", params={"province": "33"},
                              headers=bearer("task_force", region="32"))
    assert other.status_code == 404


async def test_sanctions_are_counted_by_ground_province_and_month_and_an_unfounded_ground_is_refused(permits):
    async def sanctions(headers: dict[str, str], **params: str) -> dict[str, Any]:
        answer = await permits.get("/permits/summary", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()["sanctions"]

    def counted(summary: dict[str, Any], province: str, action: str, ground: str) -> int:
        return sum(r["sanctions"] for r in summary["rows"] if (r["province_code"], r["action"], r["ground"],
                                                               r["month"]) == (province, action, ground, month))

    month = datetime.now(UTC).astimezone(ZoneInfo("Asia/Jakarta")).date().isoformat()[:7]
    before = await sanctions(OPERATOR)
    west = await issued_permit(permits)
    central_java = application(a_plant(), facility={"name": "Pabrik Semarang", "address": a_plant(),
                                                     "province_code": "33", "regency_code": "33.74"})
    central = await issued_permit(permits, body=central_java)

    elsewhere = {"code": "closure_not_observed", "evidence": {"closure_id": str(uuid.uuid4())}}
    unfounded = await permits.post(f"/permits/{west['permit_id']}/freeze", headers=OPERATOR,
                                   json={"reason": "tidak ada", "ground": elsewhere})
    assert unfounded.status_code == 422
    assert [e["field"] for e in unfounded.json()["errors"]] == ["ground.evidence.closure_id"]
    by_hand = await permits.post(f"/permits/{west['permit_id']}/freeze", headers=OPERATOR, json={
        "reason": "tiga laporan terlewat", "ground": {"code": "missed_reports"}})
    assert by_hand.status_code == 422 and by_hand.json()["errors"][0]["field"] == "ground.code"
    no_ground = await permits.post(f"/permits/{west['permit_id']}/freeze", headers=OPERATOR,
                                   json={"reason": "no ground"})
    assert no_ground.status_code == 422 and "ground" in no_ground.text
    unknown = await permits.post(f"/permits/{west['permit_id']}/freeze", headers=OPERATOR,
                                 json={"reason": "x", "ground": {"code": "rumour"}})
    assert unknown.status_code == 422

    assert (await permits.post(f"/permits/{west['permit_id']}/freeze", json=FINDING, headers=OPERATOR)).is_success
    assert (await permits.post(f"/permits/{west['permit_id']}/revoke", json=FINDING, headers=OPERATOR)).is_success
    other = {"reason": "pemalsuan dokumen izin yang ditemukan kemudian", "ground": {"code": "other"}}
    assert (await permits.post(f"/permits/{central['permit_id']}/revoke", json=other, headers=OPERATOR)).is_success

    after = await sanctions(bearer("agency"))
    assert counted(after, "32", "freeze", "inspection_finding") - counted(before, "32", "freeze",
                                                                          "inspection_finding") == 1
    assert counted(after, "32", "revoke", "inspection_finding") - counted(before, "32", "revoke",
                                                                          "inspection_finding") == 1
    assert counted(after, "33", "revoke", "other") - counted(before, "33", "revoke", "other") == 1
    assert after["by_ground"]["revoke"]["other"] - before["by_ground"]["revoke"]["other"] == 1
    assert set(after["by_ground"]["freeze"]) == {"missed_reports", "false_declaration", "inspection_finding",
                                                 "closure_not_observed", "company_request", "capacity_breaches",
                                                 "other"}
    # A task force counts its own province's sanctions only.
    west_java = await sanctions(bearer("task_force", region="32"))
    assert {r["province_code"] for r in west_java["rows"]} == {"32"}


# -- permit numbers -----------------------------------------------------------------------------------------


async def test_hundreds_of_permits_issued_concurrently_get_unique_gap_free_numbers(permits, clock):
    count = 200
    limit = asyncio.Semaphore(20)

    async def apply() -> str:
        async with limit:
            answer = await permits.post("/permits", json=application(a_plant()), headers=COMPANY)
            return answer.json()["permit_id"]

    async def issue(permit_id: str) -> str:
        async with limit:
            answer = await permits.post(f"/permits/{permit_id}/decision", json={"decision": "issue", "reason": "ok"},
                                        headers=OPERATOR)
            assert answer.status_code == 200, answer.text
            return answer.json()["permit_number"]

    ids = await asyncio.gather(*(apply() for _ in range(count)))
    numbers = await asyncio.gather(*(issue(permit_id) for permit_id in ids))
    assert len(set(numbers)) == count

    # Every number of the year, whoever issued it in this session, is exactly 1..N.
    year = clock.now().year
    sequences = sorted(int(n.rsplit("-", 1)[1]) for n in await all_numbers(permits, year))
    assert sequences == list(range(1, len(sequences) + 1))


async def all_numbers(permits: httpx.AsyncClient, year: int) -> list[str]:
    database = permits._transport.app.state.runtime.database  # type: ignore[attr-defined]
    async with database.reading() as work:
        return await work.permits.numbers_of_year(year)


# -- the public registry ------------------------------------------------------------------------------------


async def test_the_registry_answers_without_a_token_and_without_personal_data(permits):
    permit = await issued_permit(permits)
    number = permit["permit_number"]
    answer = await permits.get(f"/registry/{number}")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "valid" and body["company_name"] == "PT Tekstil Priangan"
    assert body["plant_regency"] == {"code": "32.04", "name": "Kabupaten Bandung"}
    assert body["sector_class"] == "essential" and body["validity"]["operating_allowed"] is True
    text = answer.text
    for personal in ("hse@priangan.example", "+62225950000", NIB, "01.234.567.8-901.000", "Majalaya"):
        assert personal not in text

    keys = (await permits.get("/registry/keys")).json()["keys"]
    claims = registry_tokens.verify(body["token"], registry_tokens.public_key_from_text(keys[0]["x"]))
    assert claims.permit_number == number

    qr = await permits.get(f"/registry/{number}/qr.png")
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/png"
    assert qr.content == qr_png(body["token"])  # the QR encodes exactly the signed token

    assert (await permits.get("/registry/IOMKI-1999-000001")).status_code == 404
    assert (await permits.get("/registry/nonsense/qr.png")).status_code == 404


# -- events over the real broker ----------------------------------------------------------------------------


def sanction(permit: dict[str, Any], action: SanctionAction) -> Envelope:
    return Envelope.wrap(SanctionRecommended(
        facility_id=permit["facility_id"], province_code="32", regency_code="32.04", permit_id=permit["permit_id"],
        action=action, rule="ThreeWarningsInARow", ladder="SE-3/2021",
        evidence=SanctionEvidence(missed_periods=[uuid.uuid4() for _ in range(3)],
                                   warnings=[uuid.uuid4() for _ in range(3)]),
    ), service="reports")


async def test_a_recommended_freeze_arriving_twice_freezes_once_and_is_published(permits, producer, platform):
    permit = await issued_permit(permits)
    pid, facility = permit["permit_id"], permit["facility_id"]

    # reports recommends a freeze; the broker delivers it twice.
    freeze = sanction(permit, SanctionAction.FREEZE)
    freeze_event = SanctionRecommended.model_validate(freeze.data)
    await publish(producer, "iomki.reports", freeze)
    await publish(producer, "iomki.reports", freeze)
    # Then incidents closes the plant (same key, so it is handled after both copies above).
    closure = Envelope.wrap(FacilityClosureOrdered(
        facility_id=facility, province_code="32", regency_code="32.04", closure_id=uuid.uuid4(),
        scope=ClosureScope.PLANT, reason="cluster of 3 cases", starts_at=datetime.now(UTC),
        ends_at=datetime.now(UTC) + timedelta(days=5)), service="incidents")
    await publish(producer, "iomki.incidents", closure)

    async def read():
        return (await permits.get(f"/permits/{pid}", headers=OPERATOR)).json()

    detail = await until(read, lambda d: d["status"] == "FROZEN" and d["operating_status"] == "closed")
    # Closure is not a freeze: it is shown but does not count.
    assert detail["freeze_count"] == 1
    history = (await permits.get(f"/permits/{pid}/history", headers=OPERATOR)).json()["transitions"]
    freezes = [t for t in history if t["action"] == "freeze"]
    assert len(freezes) == 1
    assert (freezes[0]["actor"], freezes[0]["role"], freezes[0]["causation_id"]) == ("reports", "system",
                                                                                    str(freeze.id))

    messages = await read_topic(platform.bootstrap, "iomki.permits",
                                until=lambda ms: any(str(freeze.id).encode() in m.value for m in ms))
    # At-least-once on the wire (a relay that crashed after sending sends again): count distinct events, one.
    caused = (decode(m.value) for m in messages if str(freeze.id).encode() in m.value)
    frozen = list({d.envelope.id: d for d in caused if d.envelope.causationid == str(freeze.id)}.values())
    assert len(frozen) == 1 and frozen[0].envelope.type == "iomki.PermitFrozen.v1"
    assert frozen[0].envelope.causationid == str(freeze.id)
    assert frozen[0].envelope.correlationid == freeze.correlationid
    assert frozen[0].event.freeze_count == 1 and "ThreeWarningsInARow" in frozen[0].event.reason
    # Its ground: missed reports under the ladder that judged them, resting on the periods it named.
    ground = frozen[0].event.ground
    assert ground is not None and (ground.code, ground.ladder, ground.rule) == (
        "missed_reports", "SE-3/2021", "ThreeWarningsInARow")
    assert ground.evidence.missed_periods == freeze_event.evidence.missed_periods

    # A second freeze recommendation for a frozen permit is illegal: logged and ignored, not a failure.
    await publish(producer, "iomki.reports", sanction(permit, SanctionAction.FREEZE))
    revoke = sanction(permit, SanctionAction.REVOKE)
    await publish(producer, "iomki.reports", revoke)
    detail = await until(read, lambda d: d["status"] == "REVOKED")
    assert detail["freeze_count"] == 1
    registry_view = (await permits.get(f"/registry/{permit['permit_number']}")).json()
    assert registry_view["status"] == "revoked"


async def test_a_closed_plant_shows_closed_in_the_registry_until_it_reopens(permits, producer):
    permit = await issued_permit(permits)
    closure_id = uuid.uuid4()
    now = datetime.now(UTC)
    about = dict(facility_id=permit["facility_id"], province_code="32", regency_code="32.04")
    await publish(producer, "iomki.incidents", Envelope.wrap(FacilityClosureOrdered(
        **about, closure_id=closure_id, scope=ClosureScope.PLANT, reason="cluster", starts_at=now,
        ends_at=now + timedelta(days=5)), service="incidents"))

    async def registry_status():
        return (await permits.get(f"/registry/{permit['permit_number']}")).json()["status"]

    await until(registry_status, lambda s: s == "closed")
    await publish(producer, "iomki.incidents", Envelope.wrap(FacilityReopened(
        **about, closure_id=closure_id, reopened_at=now + timedelta(days=5)), service="incidents"))
    await until(registry_status, lambda s: s == "valid")
    detail = (await permits.get(f"/permits/{permit['permit_id']}", headers=OPERATOR)).json()
    assert detail["status"] == "ISSUED" and detail["freeze_count"] == 0
