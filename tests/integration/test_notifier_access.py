"""The notifier's access rules, generated from its POLICY: every action × role, in and out of region.

A role absent from an action's rule gets 403; a role present gets a 2xx; a task force asking about an alert
outside its region gets 404 (existence is not leaked) and does not see it in lists.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio

from services.notifier.api import POLICY
from services.notifier.app import create_app
from services.notifier.domain import Alert, EscalationChain, Grouping, Level, Plant
from shared.web.access import Role
from tests.support.platform import bearer, patched_environ, running_service

pytestmark = pytest.mark.integration

# One caller per role; the task force, the regional office, the company and the estate are real members of their
# scope.
CALLERS = {
    Role.OPERATOR: {},
    Role.TASK_FORCE: {"region": "32.16", "sub": "satgas-bekasi"},
    Role.COMPANY: {"nib": "8120000123456"},
    Role.AGENCY: {},
    Role.REGIONAL_OFFICE: {"region": "32", "sub": "disperindag-jabar"},
    Role.ESTATE: {"nib": "8120000654321"},
    Role.HEALTH_OFFICE: {"region": "32.16", "sub": "dinkes-bekasi"},
}
REGIONAL = ("task_force", "regional_office")


@dataclass
class Service:
    client: httpx.AsyncClient
    app: object
    task_force_id: str  # its contact 1 is a webhook
    subscription_id: str = ""  # a webhook subscription of that task force

    async def alert_in(self, regency: str) -> str:
        """An open cluster alert the regency task force was told of, put straight into the notifier's store."""
        alert = Alert.raise_for(
            "ClusterDeclared", Plant(uuid.uuid4(), regency[:2], regency), {}, now=datetime.now(UTC),
            chain=EscalationChain(), grouping=Grouping(),
        ).notified({Level.REGENCY})
        async with self.app.state.runtime.database.transaction() as work:
            await work.notifier.add_alert(alert)
        return str(alert.alert_id)


Call = Callable[[Service, dict[str, str], str], Awaitable[httpx.Response]]


async def register(s: Service, headers: dict[str, str], _: str) -> httpx.Response:
    return await s.client.post("/task-forces", headers=headers, json={
        "level": "regency", "region_code": "32.16", "name": "Satgas Kabupaten Bekasi",
        "contacts": [{"division": "health", "email": "kesehatan@satgas.example"},
                     {"division": "law_enforcement", "webhook": "http://127.0.0.1:9/hook"}]})


async def subscribe(s: Service, headers: dict[str, str], _: str) -> httpx.Response:
    return await s.client.post("/subscriptions", headers=headers, json={
        "task_force_id": s.task_force_id, "channel": "email", "target": "data@satgas.example",
        "event_types": ["PermitReactivated"]})


async def rotate_subscription_secret(s: Service, headers: dict[str, str], _: str) -> httpx.Response:
    return await s.client.post(f"/subscriptions/{s.subscription_id}/secret", headers=headers)


async def rotate_contact_secret(s: Service, headers: dict[str, str], _: str) -> httpx.Response:
    return await s.client.post(f"/task-forces/{s.task_force_id}/contacts/1/secret", headers=headers)


async def list_task_forces(s: Service, headers: dict[str, str], _: str) -> httpx.Response:
    return await s.client.get("/task-forces", headers=headers)


async def list_alerts(s: Service, headers: dict[str, str], _: str) -> httpx.Response:
    return await s.client.get("/alerts?status=open", headers=headers)


async def read_alert(s: Service, headers: dict[str, str], alert_id: str) -> httpx.Response:
    return await s.client.get(f"/alerts/{alert_id}", headers=headers)


async def read_deliveries(s: Service, headers: dict[str, str], alert_id: str) -> httpx.Response:
    return await s.client.get(f"/alerts/{alert_id}/deliveries", headers=headers)


async def acknowledge(s: Service, headers: dict[str, str], alert_id: str) -> httpx.Response:
    return await s.client.post(f"/alerts/{alert_id}/ack", headers=headers)


# Every route, under the POLICY action that guards it; `True` marks routes about one alert (region-scoped).
ROUTES: dict[str, list[tuple[Call, bool]]] = {
    "manage_directory": [(register, False), (subscribe, False), (rotate_subscription_secret, False),
                         (rotate_contact_secret, False)],
    "read_directory": [(list_task_forces, False)],
    "read_alerts": [(list_alerts, False), (read_alert, True), (read_deliveries, True)],
    "acknowledge": [(acknowledge, True)],
}

CASES = [(action, call, about_alert, role)
         for action, calls in ROUTES.items() for call, about_alert in calls for role in Role]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(platform):
    with patched_environ(platform.env()):
        app = create_app()
    async with running_service(app) as client:
        created = await register(Service(client, app, ""), bearer("operator"), "")
        assert created.status_code == 201, created.text
        task_force_id = created.json()["task_force_id"]
        subscribed = await client.post("/subscriptions", headers=bearer("operator"), json={
            "task_force_id": task_force_id, "channel": "webhook", "target": "http://127.0.0.1:9/feed",
            "event_types": ["PermitReactivated"]})
        assert subscribed.status_code == 201, subscribed.text
        yield Service(client, app, task_force_id, subscribed.json()["subscription_id"])


def test_every_policy_action_has_its_routes_here():
    assert set(ROUTES) == set(POLICY.rules)


@pytest.mark.parametrize(("action", "call", "about_alert", "role"), CASES,
                         ids=[f"{a}-{c.__name__}-{r.value}" for a, c, _, r in CASES])
async def test_each_role_gets_what_the_policy_says(service: Service, action, call, about_alert, role):
    alert_id = await service.alert_in("32.16")
    response = await call(service, bearer(role, **CALLERS[role]), alert_id)
    if role in POLICY.rules[action].allow:
        assert 200 <= response.status_code < 300, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["rule"] == action


@pytest.mark.parametrize(("call", "region", "role"), [
    (call, region, role) for action, calls in ROUTES.items() for call, about_alert in calls if about_alert
    for region in ("32.17", "33") for role in REGIONAL if Role(role) in POLICY.rules[action].allow],
    ids=lambda value: getattr(value, "__name__", value))
async def test_a_task_force_or_office_outside_the_plants_region_gets_not_found(service: Service, call, region, role):
    alert_id = await service.alert_in("32.16")
    response = await call(service, bearer(role, region=region), alert_id)
    assert response.status_code == 404, response.text


async def test_a_regency_task_force_cannot_acknowledge_another_regencys_alert(service: Service):
    # Karawang (32.15) tries to silence a Bekasi (32.16) cluster; the alert keeps escalating.
    alert_id = await service.alert_in("32.16")
    refused = await service.client.post(f"/alerts/{alert_id}/ack", headers=bearer("task_force", region="32.15"))
    assert refused.status_code == 404
    still = await service.client.get(f"/alerts/{alert_id}", headers=bearer("operator"))
    assert still.json()["status"] == "open" and still.json()["escalate_at"] is not None


@pytest.mark.parametrize("role", REGIONAL)
async def test_lists_show_a_task_force_or_office_only_its_region(service: Service, role):
    bekasi, karawang = await service.alert_in("32.16"), await service.alert_in("32.15")
    bandung_province = await service.alert_in("33.01")

    async def seen(**claims: str) -> set[str]:
        response = await service.client.get("/alerts", headers=bearer(role, **claims))
        return {a["alert_id"] for a in response.json()["alerts"]}

    regency, province = await seen(region="32.16"), await seen(region="32")
    assert bekasi in regency and karawang not in regency
    assert {bekasi, karawang} <= province and bandung_province not in province
    forces = (await service.client.get("/task-forces", headers=bearer(role, region="32.17"))).json()
    assert forces["task_forces"] == []


async def test_a_regions_alerts_page_newest_first_each_once_and_a_cursor_not_given_is_refused(service: Service):
    made = [await service.alert_in("35.07") for _ in range(5)]
    task_force = bearer("task_force", region="35.07")
    seen: list[dict] = []
    after = None
    for _ in range(len(made)):
        page = (await service.client.get("/alerts", headers=task_force,
                                         params={"limit": 2} | ({"after": after} if after else {}))).json()
        seen += page["alerts"]
        after = page["next"]
        if after is None:
            break
    assert sorted(a["alert_id"] for a in seen) == sorted(made)
    assert [a["first_seen_at"] for a in seen] == sorted((a["first_seen_at"] for a in seen), reverse=True)
    for forged in ("not-a-cursor", "MjAyNnxub3Q", "x" * 201):
        refused = await service.client.get("/alerts", headers=task_force, params={"after": forged})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"].endswith("after")


async def test_no_token_is_401_and_an_unknown_alert_is_404(service: Service):
    assert (await service.client.get("/alerts")).status_code == 401
    unknown = await service.client.get(f"/alerts/{uuid.uuid4()}", headers=bearer("operator"))
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/task-forces", {"level": "regency", "region_code": "32", "name": "Satgas", "contacts": [
        {"division": "health", "email": "k@satgas.example"}]}, "region_code"),
    ("/task-forces", {"level": "regency", "region_code": "32.16", "name": "Satgas", "contacts": [
        {"division": "health", "webhook": "http://127.0.0.1:9/hook", "secret": "s" * 32}]}, "contacts.0.secret"),
    ("/task-forces", {"level": "regency", "region_code": "32.16", "name": "Satgas", "contacts": [
        {"division": "health", "email": "k@satgas.example", "secret": "whsec_" + "a" * 44}]}, "contacts.0"),
    ("/task-forces", {"level": "regency", "region_code": "32.16", "name": "Satgas", "contacts": [
        {"division": "logistics", "email": "k@satgas.example"}]}, "contacts.0.division"),
    ("/subscriptions", {"task_force_id": str(uuid.uuid4()), "channel": "webhook", "target": "http://x/hook",
                        "secret": "whsec_" + "a" * 30 + "\u00e9", "event_types": ["WarningIssued"]}, "secret"),
    ("/subscriptions", {"task_force_id": str(uuid.uuid4()), "channel": "email", "target": "a@b.example",
                        "secret": "whsec_" + "a" * 44, "event_types": ["WarningIssued"]}, "body"),
    ("/subscriptions", {"task_force_id": str(uuid.uuid4()), "channel": "email", "target": "a@b.example",
                        "event_types": ["CompanyContactsUpdated"]}, "body"),
    # PostgreSQL text cannot hold a NUL (found by test_openapi_fuzz.py): refused up front, not a 500.
    ("/task-forces", {"level": "national", "region_code": "", "name": "Satgas\x00", "contacts": [
        {"division": "health", "email": "k@satgas.example"}]}, "name"),
    ("/task-forces", {"level": "national", "region_code": "", "name": "Satgas", "contacts": [
        {"division": "health", "email": "k\x00@satgas.example"}]}, "contacts.0.email"),
])
async def test_bad_directory_input_is_a_422_naming_the_field(service: Service, path, body, field):
    response = await service.client.post(path, json=body, headers=bearer("operator"))
    assert response.status_code == 422, response.text
    assert field in {error["field"] for error in response.json()["errors"]}


async def test_subscribing_an_unknown_task_force_is_404(service: Service):
    response = await service.client.post("/subscriptions", headers=bearer("operator"), json={
        "task_force_id": str(uuid.uuid4()), "channel": "email", "target": "a@b.example",
        "event_types": ["WarningIssued"]})
    assert response.status_code == 404


async def test_a_secret_is_rotated_only_where_the_caller_may_see_and_only_for_a_webhook(service: Service):
    operator = bearer("operator")
    unknown = await service.client.post(f"/subscriptions/{uuid.uuid4()}/secret", headers=operator)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    email_contact = await service.client.post(f"/task-forces/{service.task_force_id}/contacts/0/secret",
                                              headers=operator)
    assert email_contact.status_code == 404, email_contact.text
    no_such_contact = await service.client.post(f"/task-forces/{service.task_force_id}/contacts/49/secret",
                                                headers=operator)
    assert no_such_contact.status_code == 404
    beyond = await service.client.post(f"/task-forces/{service.task_force_id}/contacts/50/secret", headers=operator)
    assert beyond.status_code == 422
    email = await service.client.post("/subscriptions", headers=operator, json={
        "task_force_id": service.task_force_id, "channel": "email", "target": "data@satgas.example",
        "event_types": ["PermitReactivated"]})
    assert email.status_code == 201 and "secret" not in email.json()
    not_a_webhook = await service.client.post(f"/subscriptions/{email.json()['subscription_id']}/secret",
                                              headers=operator)
    assert not_a_webhook.status_code == 404
    bad = await service.client.post(f"/subscriptions/{service.subscription_id}/secret", headers=operator,
                                    json={"secret": "whsec_short"})
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["secret"]
    assert bad.json()["errors"][0]["message"].endswith(
        "a webhook secret must be whsec_ followed by the base64 of 24 to 64 bytes")
