"""Reactivation on conditions over the real database and broker, the permits and reports services side by side.

A plant misses three periods and the reports ladder freezes it; the company files the three late, states its
corrective action and asks; an operator approves; reports excuses the three periods, and the next single miss is a
first warning, not a second freeze. The reports service runs on a fake clock (hourly periods, warnings at the
deadline), so the story takes seconds and no deadline passes unless the test moves the clock.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from services.permits.app import create_app as permits_app
from services.reports.app import ReportsSettings
from services.reports.app import create_app as reports_app
from shared.clock import FakeClock
from shared.contract import decode
from tests.support.kafka import read_topic
from tests.support.platform import bearer, running_service
from tests.support.waiting import poll, until

pytestmark = pytest.mark.integration

NIB = "8120000246810"
COMPANY = bearer("company", nib=NIB, sub="k3-admin@baja-cikarang")
OPERATOR = bearer("operator", sub="officer-ani")
TASK_FORCE = bearer("task_force", region="32")
STATEMENT = ("Kami menunjuk petugas K3 khusus pelaporan IOMKI dan memasang pengingat otomatis setiap jam 17.00 "
             "sebelum tenggat, agar tidak ada laporan yang terlewat lagi.")


@dataclass(frozen=True)
class Services:
    permits: httpx.AsyncClient
    reports: httpx.AsyncClient
    clock: FakeClock  # the reports service's


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(platform) -> AsyncIterator[Services]:
    clock = FakeClock(datetime.now(UTC))
    settings = ReportsSettings(IOMKI_REPORT_REGIME="every:3600s", IOMKI_WARNING_DELAY="PT0S",
                               IOMKI_REPORT_DUE_LEAD="PT6H", IOMKI_REPORT_SWEEP_SECONDS="0.2")
    async with running_service(permits_app()) as permits, \
            running_service(reports_app(clock=clock, reports_settings=settings)) as reports:
        yield Services(permits, reports, clock)


def application() -> dict[str, Any]:
    return {
        "company": {"nib": NIB, "npwp": "01.234.567.8-901.000", "name": "PT Baja Cikarang"},
        "facility": {"name": "Pabrik Cikarang", "address": f"Jababeka Blok {uuid.uuid4().hex[:8]}",
                     "province_code": "32", "regency_code": "32.16"},
        "kbli": ["24101"], "sector_class": "essential",
        "workforce": {"total": 600, "on_site_per_shift": [300, 300]},
        "health_protocol_commitment": True,
    }


def report(permit_id: str, period_id: str) -> dict[str, Any]:
    return {
        "permit_id": permit_id, "period_id": period_id,
        "workforce": {"total": 600, "on_site_per_shift": [280, 290]},
        "odp": 1, "pdp": 0, "new_positives": 0, "isolating_workers": 0, "tests": {"pcr": 4, "antigen": 30},
        "vaccinated": {"dose1": 550, "dose2": 500, "booster": 120},
        "transport_modes": ["company_bus"],
        "protocol_checklist": {"temperature_screening": True, "masks": True, "distancing": True,
                               "ventilation": True, "disinfection": True, "handwash_stations": True,
                               "pedulilindungi_scan": True},
        "case_handling": "", "declared_true": True,
    }


async def issued(permits: httpx.AsyncClient) -> dict[str, Any]:
    applied = await permits.post("/permits", json=application(), headers=COMPANY)
    assert applied.status_code == 201, applied.text
    permit_id = applied.json()["permit_id"]
    answer = await permits.post(f"/permits/{permit_id}/decision", json={"decision": "issue", "reason": "lengkap"},
                                headers=OPERATOR)
    assert answer.status_code == 200, answer.text
    return answer.json() | {"facility_id": applied.json()["facility_id"]}


async def frozen_by_hand(permits: httpx.AsyncClient, ground: dict[str, Any] | None = None) -> str:
    """An issued permit an officer froze on a ground that rests on no missed period."""
    permit_id = (await issued(permits))["permit_id"]
    answer = await permits.post(f"/permits/{permit_id}/freeze", headers=OPERATOR, json={
        "reason": "perusahaan meminta penghentian sementara",
        "ground": ground or {"code": "company_request"}})
    assert answer.status_code == 200, answer.text
    return permit_id


def events_of(messages, facility_id: str) -> list:
    seen, events = set(), []
    # Only this plant's: other tests publish malformed and hostile messages to the same topic.
    for message in (m for m in messages if facility_id.encode() in m.value):
        decoded = decode(message.value)
        if decoded.envelope.subject == facility_id and decoded.envelope.id not in seen:
            seen.add(decoded.envelope.id)
            events.append(decoded)
    return events


def of_type(events: list, name: str) -> list:
    return [d for d in events if d.envelope.type == f"iomki.{name}.v1"]


async def test_frozen_by_three_warnings_filed_late_reactivated_on_request_and_a_later_miss_is_a_first_warning(
        platform, services):
    permits, reports, clock = services.permits, services.reports, services.clock
    permit = await issued(permits)
    permit_id, facility_id = permit["permit_id"], permit["facility_id"]
    schedule_url = f"/schedules/{permit_id}"
    requests_url = f"/permits/{permit_id}/reactivation-requests"
    [first] = (await poll(reports, schedule_url, COMPANY, lambda s: s["periods"]))["periods"]

    # Three hourly deadlines pass with nothing reported: three warnings in a row, and the ladder freezes the permit.
    clock.set(datetime.fromisoformat(first["deadline"]) + timedelta(hours=2, minutes=30))
    schedule = await poll(reports, schedule_url, COMPANY, lambda s: s["frozen"] and len(s["periods"]) == 4)
    missed = [p["period_id"] for p in schedule["periods"][:3]]
    assert [(p["status"], p["warned"]) for p in schedule["periods"]] == [("overdue", True)] * 3 + [("open", False)]
    frozen = (await permits.get(f"/permits/{permit_id}", headers=COMPANY)).json()
    assert frozen["status"] == "FROZEN"
    history = (await permits.get(f"/permits/{permit_id}/history", headers=COMPANY)).json()["transitions"]
    assert history[-1]["ground"]["code"] == "missed_reports"
    assert history[-1]["ground"]["evidence"]["missed_periods"] == missed

    # Asked at once: refused, the three periods named, in Bahasa Indonesia then English.
    refused = await permits.post(requests_url, json={"corrective_action": STATEMENT}, headers=COMPANY)
    assert refused.status_code == 409, refused.text
    [unmet] = refused.json()["unmet"]
    assert unmet["condition"] == "MissedReportsFiled" and unmet["missing_periods"] == missed
    assert unmet["message"].startswith("Laporan untuk 3 periode yang terlewat belum disampaikan")
    assert " / The reports of 3 missed period(s) have not been filed" in unmet["message"]

    # The company files the three, late; the permits service learns of each from ReportSubmitted.
    for period_id in missed:
        filed = await reports.post("/reports", json=report(permit_id, period_id), headers=COMPANY)
        assert filed.status_code == 201, filed.text
        assert filed.json()["late"] is True
    standing = await poll(permits, requests_url, COMPANY, lambda s: all(c["met"] for c in s["conditions"]))
    assert [c["condition"] for c in standing["conditions"]] == ["PermitIsFrozen", "MissedReportsFiled",
                                                                "OneOpenRequestAtATime"]

    asked = await permits.post(requests_url, json={"corrective_action": STATEMENT}, headers=COMPANY)
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["status"] == "pending" and request["missed_periods"] == missed
    assert request["requested_by"] == {"sub": "k3-admin@baja-cikarang"} and request["decision"] is None

    # The task force of the province sees where it stands, and may not decide it.
    seen = (await permits.get(requests_url, headers=TASK_FORCE)).json()
    assert [(r["request_id"], r["status"]) for r in seen["requests"]] == [(request["request_id"], "pending")]
    forbidden = await permits.post(f"/reactivation-requests/{request['request_id']}/decision", headers=TASK_FORCE,
                                   json={"decision": "approve", "reason": "ok"})
    assert forbidden.status_code == 403

    # In the operators' queue, the operator approves it.
    queue = (await permits.get("/reactivation-requests", params={"limit": 200}, headers=OPERATOR)).json()
    assert request["request_id"] in [item["request_id"] for item in queue["items"]]
    decided = await permits.post(f"/reactivation-requests/{request['request_id']}/decision", headers=OPERATOR,
                                 json={"decision": "approve", "reason": "laporan lengkap, tindakan memadai"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved" and decided.json()["permit"]["status"] == "ISSUED"
    assert decided.json()["decision"]["by"] == {"sub": "officer-ani", "role": "operator"}
    step = (await permits.get(f"/permits/{permit_id}/history", headers=COMPANY)).json()["transitions"][-1]
    assert (step["action"], step["to_status"], step["actor"]) == ("reactivate", "ISSUED", "officer-ani")
    standing = (await permits.get(requests_url, headers=COMPANY)).json()
    assert standing["requests"][0]["decision"]["reason"] == "laporan lengkap, tindakan memadai"

    messages = await read_topic(platform.bootstrap, "iomki.permits",
                                until=lambda ms: of_type(events_of(ms, facility_id), "PermitReactivated"))
    events = events_of(messages, facility_id)
    [requested] = of_type(events, "ReactivationRequested")
    assert [str(p) for p in requested.event.missed_periods] == missed
    [reactivated] = of_type(events, "PermitReactivated")
    assert str(reactivated.event.request_id) == request["request_id"]
    assert [str(p) for p in reactivated.event.excused_periods] == missed

    # The reports service excuses the three: still reported late, with their warnings, but excused.
    schedule = await poll(reports, schedule_url, COMPANY,
                          lambda s: not s["frozen"] and all(p["excused_on_reactivation"] for p in s["periods"][:3]))
    assert [(p["status"], p["warned"], p["excused_by_request"]) for p in schedule["periods"][:3]] == [
        ("late", True, request["request_id"])] * 3
    assert not schedule["periods"][3]["excused_on_reactivation"]

    # The next period is missed: its warning is the first in a row, and nothing is recommended.
    clock.set(datetime.fromisoformat(schedule["periods"][3]["deadline"]) + timedelta(minutes=30))
    schedule = await poll(reports, schedule_url, COMPANY, lambda s: s["periods"][3]["warned"])
    messages = await read_topic(platform.bootstrap, "iomki.reports",
                                until=lambda ms: len(of_type(events_of(ms, facility_id), "WarningIssued")) == 4)
    events = events_of(messages, facility_id)
    assert [w.event.consecutive for w in of_type(events, "WarningIssued")] == [1, 2, 3, 1]
    # A recommendation would have been stored with the warning, in its transaction: the freeze is the only one.
    connection = await asyncpg.connect(platform.admin_url)
    try:
        sanctions = await connection.fetch("SELECT action, rule FROM reports.sanctions WHERE permit_id = $1",
                                           uuid.UUID(permit_id))
    finally:
        await connection.close()
    assert [(s["action"], s["rule"]) for s in sanctions] == [("freeze", "ThreeWarningsInARow")]
    assert (await permits.get(f"/permits/{permit_id}", headers=COMPANY)).json()["status"] == "ISSUED"

    # Revoked, so that nothing of this plant is left for a later sweep.
    revoked = await permits.post(f"/permits/{permit_id}/revoke", headers=OPERATOR, json={
        "reason": "akhir cerita", "ground": {"code": "company_request"}})
    assert revoked.status_code == 200, revoked.text
    await poll(reports, schedule_url, COMPANY, lambda s: s["ended"])


async def test_a_statement_too_short_or_too_long_is_a_bad_request_naming_the_field(services):
    permits = services.permits
    permit_id = await frozen_by_hand(permits)
    url = f"/permits/{permit_id}/reactivation-requests"

    short = await permits.post(url, json={"corrective_action": "sudah diperbaiki ..."}, headers=COMPANY)
    assert short.status_code == 422, short.text
    body = short.json()
    assert [u["condition"] for u in body["unmet"]] == ["CorrectiveActionStated"]
    [error] = body["errors"]
    assert error["field"] == "corrective_action"
    assert error["message"].startswith("Pernyataan tindakan perbaikan wajib diisi, sekurang-kurangnya 30 huruf")
    assert body["detail"] == error["message"]

    for refused in ({"corrective_action": "a" * 4001}, {}, {"corrective_action": "nul\x00" * 20}):
        answer = await permits.post(url, json=refused, headers=COMPANY)
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "corrective_action", answer.text
    assert (await permits.get(url, headers=COMPANY)).json()["requests"] == []


async def test_a_permit_not_frozen_is_a_conflict_naming_every_condition_unmet(services):
    permits = services.permits
    permit_id = (await issued(permits))["permit_id"]
    answer = await permits.post(f"/permits/{permit_id}/reactivation-requests", json={"corrective_action": "x"},
                                headers=COMPANY)
    assert answer.status_code == 409, answer.text
    assert [u["condition"] for u in answer.json()["unmet"]] == ["PermitIsFrozen", "CorrectiveActionStated"]
    assert answer.json()["unmet"][0]["message"].startswith("Izin tidak sedang dibekukan")
    assert [e["field"] for e in answer.json()["errors"]] == ["corrective_action"]


async def test_one_request_at_a_time_a_rejection_with_its_reason_then_asking_again(platform, services):
    permits = services.permits
    permit_id = await frozen_by_hand(permits)
    url = f"/permits/{permit_id}/reactivation-requests"
    first = (await permits.post(url, json={"corrective_action": STATEMENT}, headers=COMPANY)).json()
    assert first["missed_periods"] == []  # a freeze on the company's own request owes no report

    again = await permits.post(url, json={"corrective_action": STATEMENT}, headers=COMPANY)
    assert again.status_code == 409
    assert again.json()["unmet"] == [{"condition": "OneOpenRequestAtATime", "met": False,
                                      "message": again.json()["unmet"][0]["message"],
                                      "open_request": first["request_id"]}]

    decision_url = f"/reactivation-requests/{first['request_id']}/decision"
    rejected = await permits.post(decision_url, headers=OPERATOR,
                                  json={"decision": "reject", "reason": "bukti pelatihan belum dilampirkan"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected", rejected.text
    assert rejected.json()["permit"]["status"] == "FROZEN"
    twice = await permits.post(decision_url, headers=OPERATOR, json={"decision": "approve", "reason": "ok"})
    assert twice.status_code == 409 and twice.json()["request_status"] == "rejected"

    standing = (await permits.get(url, headers=COMPANY)).json()
    assert standing["requests"][0]["decision"]["reason"] == "bukti pelatihan belum dilampirkan"
    second = await permits.post(url, json={"corrective_action": STATEMENT + " Bukti pelatihan terlampir."},
                                headers=COMPANY)
    assert second.status_code == 201, second.text

    facility_id = (await permits.get(f"/permits/{permit_id}", headers=OPERATOR)).json()["facility_id"]
    messages = await read_topic(platform.bootstrap, "iomki.permits",
                                until=lambda ms: len(of_type(events_of(ms, facility_id),
                                                             "ReactivationRequested")) == 2)
    [rejection] = of_type(events_of(messages, facility_id), "ReactivationRejected")
    assert (str(rejection.event.request_id), rejection.event.reason) == (first["request_id"],
                                                                         "bukti pelatihan belum dilampirkan")


async def test_the_queue_oldest_first_by_region_in_pages_and_a_decision_on_nothing_is_not_found(services):
    permits = services.permits
    asked = []
    for _ in range(3):
        permit_id = await frozen_by_hand(permits)
        answer = await permits.post(f"/permits/{permit_id}/reactivation-requests",
                                    json={"corrective_action": STATEMENT}, headers=COMPANY)
        asked.append(answer.json()["request_id"])

    seen, cursor = [], None
    while True:
        params = {"limit": 2, "province": "32"} | ({"cursor": cursor} if cursor else {})
        page = (await permits.get("/reactivation-requests", params=params, headers=OPERATOR)).json()
        seen += [item["request_id"] for item in page["items"]]
        assert all(item["permit"]["province_code"] == "32" for item in page["items"])
        if not (cursor := page["next_cursor"]):
            break
    assert [r for r in seen if r in asked] == asked  # oldest first, each once
    elsewhere = (await permits.get("/reactivation-requests", params={"province": "33"}, headers=OPERATOR)).json()
    assert not set(asked) & {item["request_id"] for item in elsewhere["items"]}
    other_region = await permits.get("/reactivation-requests", params={"province": "32"},
                                     headers=bearer("task_force", region="33"))
    assert other_region.status_code == 404
    own_region = (await permits.get("/reactivation-requests", headers=TASK_FORCE)).json()
    assert set(asked) <= {item["request_id"] for item in own_region["items"]}

    unknown = await permits.post(f"/reactivation-requests/{uuid.uuid4()}/decision", headers=OPERATOR,
                                 json={"decision": "approve", "reason": "ok"})
    assert unknown.status_code == 404
    bad = await permits.post(f"/reactivation-requests/{asked[0]}/decision", headers=OPERATOR,
                             json={"decision": "maybe", "reason": ""})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"decision", "reason"}


async def test_a_declared_report_filed_for_the_permit_grounds_a_false_declaration(platform, services):
    permits, reports = services.permits, services.reports
    permit = await issued(permits)
    permit_id = permit["permit_id"]
    [period] = (await poll(reports, f"/schedules/{permit_id}", COMPANY, lambda s: s["periods"]))["periods"]
    filed = await reports.post("/reports", json=report(permit_id, period["period_id"]), headers=COMPANY)
    assert filed.status_code == 201, filed.text
    report_id = filed.json()["report_id"]

    def contradicted(report: str) -> dict[str, Any]:
        return {"reason": "jumlah pekerja di lokasi tidak sesuai laporan",
                "ground": {"code": "false_declaration", "evidence": {"report_id": report, "finding": "BAP-77"}}}

    unknown = await permits.post(f"/permits/{permit_id}/freeze", json=contradicted(str(uuid.uuid4())),
                                 headers=OPERATOR)
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["ground.evidence.report_id"]

    async def freeze_on_it() -> httpx.Response:
        return await permits.post(f"/permits/{permit_id}/freeze", json=contradicted(report_id), headers=OPERATOR)
    # Refused only until the permits service has learnt of the report from ReportSubmitted.
    answer = await until(freeze_on_it, lambda a: a.status_code != 422, "the declared report never grounded it",
                         timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "FROZEN"
