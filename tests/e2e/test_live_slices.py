"""Live slices across the services, as processes over the real broker and database."""

from __future__ import annotations

import asyncio
import json

from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest
import pytest_asyncio

from shared.contract import decode
from tests.support.issued_permits import APPLICATION, issued_permit
from tests.support.kafka import read_topic
from tests.support.platform import JWT_SECRET, bearer
from tests.support.processes import RunningServices, running_platform
from tests.support.receiver import WebhookReceiver
from tests.support.waiting import poll

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services() -> AsyncIterator[RunningServices]:
    async with running_platform("e2e", {"IOMKI_REPORT_REGIME": "every:4s", "IOMKI_WARNING_DELAY": "PT0S",
                                        "IOMKI_REPORT_DUE_LEAD": "PT1S"}) as running:
        yield running


async def test_an_unreported_period_reaches_the_regency_task_force_as_a_signed_webhook(services):
    """A company applies and the ministry issues the permit; reports opens a short schedule; a period passes
    unreported, so reports emits ReportOverdue, then WarningIssued; the notifier delivers the warning to the
    plant's regency task force's webhook, signed with its secret."""
    platform = services.platform
    async with WebhookReceiver() as receiver, httpx.AsyncClient(timeout=10) as http:
        operator = bearer("operator")

        # The regency task force of Kab. Bekasi subscribes its webhook to warnings.
        task_force = await http.post(f"{services.url('notifier')}/task-forces", headers=operator, json={
            "level": "regency", "region_code": "32.16", "name": "Satgas COVID-19 Kabupaten Bekasi",
            "contacts": [{"division": "law_enforcement", "email": "gakkum@satgas.example"}]})
        assert task_force.status_code == 201, task_force.text
        subscription = await http.post(f"{services.url('notifier')}/subscriptions", headers=operator, json={
            "task_force_id": task_force.json()["task_force_id"], "channel": "webhook", "target": receiver.url,
            "event_types": ["WarningIssued"]})
        assert subscription.status_code == 201, subscription.text
        secret = subscription.json()["secret"]  # issued by the platform, shown this once
        receiver.secrets.append(secret)

        permit_id, facility_id = await issued_permit(http, services, APPLICATION)

        # Reports opened a schedule from PermitIssued, and the first period goes unreported.
        overdue_period = await wait_for_overdue_period(http, services.url("reports"), permit_id, operator)

        # The notifier delivers the warning to the task force's webhook, signed with its secret: the receiver
        # took it only once a Standard Webhooks library verified it.
        delivery = await receiver.wait_for(lambda d: facility_id.encode() in d.body)
        assert delivery.headers["webhook-id"] and not receiver.refused
        assert "WarningIssued" in json.dumps(json.loads(delivery.body))

    # And the facts travelled on the public topic, in order for the plant.
    reports = await read_topic(platform.bootstrap, "iomki.reports", until=lambda ms: has_warning(ms, facility_id))
    types = [decode(m.value).envelope.type for m in reports if m.key == facility_id.encode()]
    assert types.index("iomki.ReportOverdue.v1") < types.index("iomki.WarningIssued.v1")
    warning = next(d for m in reports if m.key == facility_id.encode()
                   and (d := decode(m.value)).envelope.type == "iomki.WarningIssued.v1")
    assert str(warning.event.period_id) == overdue_period

    # No token, secret or contact detail ever reached a log line of any service.
    secrets = [operator["Authorization"].split()[1], JWT_SECRET, secret, APPLICATION["contact"]["email"],
               APPLICATION["contact"]["phone"], "gakkum@satgas.example"]
    for service in services.processes:
        logged = services.log_path(service).read_text()
        assert "service_started" in logged  # the logs are there to be read
        for secret in secrets:
            assert secret not in logged, f"{service} logged a secret or contact detail"


async def test_a_cluster_closes_the_plant_in_permits_and_alerts_the_regency_task_force(services):
    """Three confirmed cases at one plant, linked on one line: incidents declares a cluster and recommends the
    plant's closure; the regency task force orders it; permits shows the plant closed (not frozen); the notifier
    raises a high-severity alert for the regency task force, who acknowledges it."""
    application = {**APPLICATION, "company": {**APPLICATION["company"], "nib": "8120000777777"},
                   "facility": {**APPLICATION["facility"], "address": "Jl. Sentra Industri No. 12, Cikarang",
                                "name": "Pabrik Cikarang"}}
    async with httpx.AsyncClient(timeout=10) as http:
        permit_id, facility_id = await issued_permit(http, services, application)
        company = bearer("company", nib="8120000777777")
        today = date.today().isoformat()
        case_ids = []
        for reference in ("C-2026-101", "C-2026-102", "C-2026-103"):
            async with asyncio.timeout(60):  # incidents learns of the plant from PermitIssued
                while (case := await http.post(f"{services.url('incidents')}/cases", headers=company, json={
                        "facility_id": facility_id, "case_ref": reference, "confirmed_on": today,
                        "symptomatic": True, "symptom_onset_on": today, "close_contacts": 12})).status_code == 404:
                    await asyncio.sleep(0.3)
            assert case.status_code == 201, case.text
            case_ids.append(case.json()["case_id"])
        for case_id, other in zip(case_ids, case_ids[1:], strict=False):
            linked = await http.post(f"{services.url('incidents')}/cases/{case_id}/links", headers=company,
                                     json={"linked_case_id": other, "kind": "same_line"})
            assert linked.status_code == 201, linked.text
        bekasi = bearer("task_force", region="32.16")
        pending = await http.get(f"{services.url('incidents')}/closure-recommendations", headers=bekasi,
                                 params={"status": "pending", "limit": 500})
        [recommendation] = [r for r in pending.json()["items"] if r["facility_id"] == facility_id]
        ordered = await http.post(f"{services.url('incidents')}/closure-recommendations/"
                                  f"{recommendation['recommendation_id']}/order", headers=bekasi)
        assert ordered.status_code == 200, ordered.text

        permit = await poll(http, f"{services.url('permits')}/permits/{permit_id}", bearer("operator"),
                            lambda body: body["operating_status"] == "closed")
        assert permit["status"] == "ISSUED" and permit["freeze_count"] == 0

        alerts = await poll(http, f"{services.url('notifier')}/alerts", bekasi,
                            lambda body: any(a["facility_id"] == facility_id and a["event_type"] == "ClusterDeclared"
                                             for a in body["alerts"]))
        cluster = next(a for a in alerts["alerts"]
                       if a["facility_id"] == facility_id and a["event_type"] == "ClusterDeclared")
        assert cluster["severity"] == "high" and cluster["level"] == "regency"
        acknowledged = await http.post(f"{services.url('notifier')}/alerts/{cluster['alert_id']}/ack", headers=bekasi)
        assert acknowledged.status_code == 200, acknowledged.text
        assert acknowledged.json()["status"] == "acknowledged"


def has_warning(messages, facility_id: str) -> bool:
    return any(m.key == facility_id.encode() and b"iomki.WarningIssued.v1" in m.value for m in messages)


async def wait_for_overdue_period(http: httpx.AsyncClient, base: str, permit_id: str, headers: dict) -> str:
    async with asyncio.timeout(60):
        while True:
            schedule = await http.get(f"{base}/schedules/{permit_id}", headers=headers)
            if schedule.status_code == 200:
                overdue = [p for p in schedule.json()["periods"] if p["status"] == "overdue"]
                if overdue:
                    return overdue[0]["period_id"]
            await asyncio.sleep(0.5)
