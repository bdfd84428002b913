"""One live slice across the four services, as four processes over the real broker and database.

A company applies for a permit and the ministry issues it; reports opens a short reporting schedule; a period
passes unreported, so reports emits ReportOverdue and then WarningIssued; the notifier raises an alert for the
plant's regency task force and delivers it to that task force's webhook, signed with its secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import httpx
import pytest

from shared.contract import decode
from tests.e2e.processes import RunningServices
from tests.e2e.receiver import WebhookReceiver
from tests.kafka import read_topic
from tests.platform import JWT_SECRET, bearer, start_platform, stop_platform

pytestmark = pytest.mark.e2e

NIB = "8120000654321"
SECRET = "satgas-bekasi-webhook-secret"
APPLICATION = {
    "company": {"nib": NIB, "npwp": "01.234.567.8-901.000", "name": "PT Kimia Cibitung"},
    "facility": {"name": "Pabrik Cibitung 2", "address": "Jl. Industri Raya No. 7, Cibitung",
                 "province_code": "32", "regency_code": "32.16"},
    "kbli": ["20111"], "sector_class": "essential",
    "workforce": {"total": 300, "on_site_per_shift": [150, 150]},
    "health_protocol_commitment": True,
    "contact": {"email": "k3@kimia.example", "phone": "+62218900000"},
}


async def test_an_unreported_period_reaches_the_regency_task_force_as_a_signed_webhook():
    platform = await start_platform("e2e", own_broker=True)
    services = RunningServices(platform, {"IOMKI_REPORT_REGIME": "every:4s", "IOMKI_WARNING_DELAY": "PT0S",
                                          "IOMKI_REPORT_DUE_LEAD": "PT1S"})
    try:
        for service in ("permits", "reports", "incidents", "notifier"):
            services.start(service)
        await services.wait_ready()
        async with WebhookReceiver() as receiver, httpx.AsyncClient(timeout=10) as http:
            operator = bearer("operator")

            # The regency task force of Kab. Bekasi subscribes its webhook to warnings.
            task_force = await http.post(f"{services.url('notifier')}/task-forces", headers=operator, json={
                "level": "regency", "region_code": "32.16", "name": "Satgas COVID-19 Kabupaten Bekasi",
                "contacts": [{"division": "law_enforcement", "email": "gakkum@satgas.example"}]})
            assert task_force.status_code == 201, task_force.text
            subscription = await http.post(f"{services.url('notifier')}/subscriptions", headers=operator, json={
                "task_force_id": task_force.json()["task_force_id"], "channel": "webhook", "target": receiver.url,
                "secret": SECRET, "event_types": ["WarningIssued"]})
            assert subscription.status_code == 201, subscription.text

            # A company applies; the ministry issues the permit.
            applied = await http.post(f"{services.url('permits')}/permits", json=APPLICATION,
                                      headers=bearer("company", nib=NIB))
            assert applied.status_code == 201, applied.text
            permit_id, facility_id = applied.json()["permit_id"], applied.json()["facility_id"]
            issued = await http.post(f"{services.url('permits')}/permits/{permit_id}/decision", headers=operator,
                                     json={"decision": "issue", "reason": "documents complete"})
            assert issued.status_code == 200, issued.text
            assert issued.json()["status"] == "ISSUED"

            # Reports opened a schedule from PermitIssued, and the first period goes unreported.
            overdue_period = await wait_for_overdue_period(http, services.url("reports"), permit_id, operator)

            # The notifier delivers the warning to the task force's webhook, signed with its secret.
            delivery = await receiver.wait_for(lambda d: facility_id.encode() in d.body)
            expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
            assert delivery.headers["x-iomki-signature"] == f"sha256={expected}"
            assert delivery.headers["x-iomki-delivery"]
            assert "WarningIssued" in json.dumps(json.loads(delivery.body))

        # And the facts travelled on the public topic, in order for the plant.
        reports = await read_topic(platform.bootstrap, "iomki.reports", until=lambda ms: has_warning(ms, facility_id))
        types = [decode(m.value).envelope.type for m in reports if m.key == facility_id.encode()]
        assert types.index("iomki.ReportOverdue.v1") < types.index("iomki.WarningIssued.v1")
        warning = next(d for m in reports if m.key == facility_id.encode()
                       and (d := decode(m.value)).envelope.type == "iomki.WarningIssued.v1")
        assert str(warning.event.period_id) == overdue_period

        # No token, secret or contact detail ever reached a log line of any service.
        secrets = [operator["Authorization"].split()[1], JWT_SECRET, SECRET, APPLICATION["contact"]["email"],
                   APPLICATION["contact"]["phone"], "gakkum@satgas.example"]
        for service in services.processes:
            logged = services.log_path(service).read_text()
            assert "service_started" in logged  # the logs are there to be read
            for secret in secrets:
                assert secret not in logged, f"{service} logged a secret or contact detail"
    finally:
        services.stop()
        await stop_platform(platform, stop_server=False)


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
