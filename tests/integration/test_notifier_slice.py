"""The notifier against the real database and broker, a real HTTP receiver and a real SMTP server.

Stories: a Bekasi task force subscribed to warnings gets a signed webhook and the company an e-mail with the
warning's letter attached (the letter and the event arriving in either order, or the letter late); a
flaky receiver is retried until it answers, a dead one is marked failed; a cluster nobody answers climbs
from the regency to the province and to BNPB, and the province acknowledges it; a task force rotates its
webhook secret and its receiver verifies with either secret until it has moved over.

The receiver verifies every notice with a Standard Webhooks library (`standardwebhooks`), as a task force's would
(tests/support/notifier_world.py).
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet
import pytest_asyncio

from services.notifier.app import create_app
from services.notifier.sealing import SealedSecrets, SecretSeal
from services.notifier.domain import (
    Alert, Channel, Delivery, EscalationChain, Grouping, Level, Plant, Recipient, SecretRef,
)
from shared.clock import FakeClock
from shared.contract import (
    ClosureAuthority, ClosureRecommendationDecided, ClosureRecommended, ClosureScope, ClusterDeclared,
    CompanyContactsUpdated, Envelope, FacilityClosureOrdered, GroundCode, LetterKind, PermitFrozen, PermitReactivated,
    RecommendationDecision, ReportDue, SanctionGround, WarningIssued, decode,
)
from shared.storage.secret_files import keep_secret_once
from tests.support.kafka import read_topic
from tests.support.notifier_world import (
    OPERATOR, World, attachments, letter_for, letter_pdf, notifier_world, plant, verifies,
)
from tests.support.platform import bearer, patched_environ, running_service
from tests.support.waiting import eventually
from tooling.ports import free_port

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(platform):
    async with notifier_world(platform) as world:
        yield world


def warning(where: dict) -> WarningIssued:
    return WarningIssued(**where, permit_id=uuid.uuid4(), warning_id=uuid.uuid4(), period_id=uuid.uuid4(),
                         deadline=datetime(2026, 11, 21, 16, 59, tzinfo=UTC), consecutive=1)


def report_due(where: dict) -> ReportDue:
    return ReportDue(**where, permit_id=uuid.uuid4(), period_id=uuid.uuid4(),
                     deadline=datetime(2026, 11, 21, 16, 59, tzinfo=UTC))


def cluster(where: dict) -> ClusterDeclared:
    return ClusterDeclared(**where, cluster_id=uuid.uuid4(), case_count=2, window_days=14,
                           first_confirmed_on=date(2026, 11, 18), last_confirmed_on=date(2026, 11, 20))


async def test_a_warning_reaches_the_subscribed_task_force_signed_and_the_company_by_email(world: World):
    # The Bekasi task force wants every warning for its plants on its webhook.
    bekasi = await world.register("regency", "32.16", [{"division": "health", "email": "kes@bekasi.example"}])
    await world.subscribe(bekasi, "bekasi", ["WarningIssued"])
    # Karawang, next door, wants warnings too, but only for its own plants.
    karawang = await world.register("regency", "32.15", [{"division": "health", "email": "kes@karawang.example"}])
    await world.subscribe(karawang, "karawang", ["WarningIssued"])

    cibitung = plant("32", "32.16")
    await world.publish(CompanyContactsUpdated(**cibitung, permit_id=uuid.uuid4(), nib="8120000123456",
                                               company_name="PT Baja Nusantara", email="k3@baja.example",
                                               phone="+62211234567"))
    connection = await asyncpg.connect(world.database_url)
    try:
        await eventually(lambda: connection.fetchval(
            "SELECT count(*) FROM notifier.company_contacts WHERE facility_id = $1", cibitung["facility_id"]))
    finally:
        await connection.close()

    cause = await world.publish(warning(cibitung))
    # Permits issues the warning's letter, on the internal topic: the company's e-mail goes with it.
    await world.publish_envelope(letter_for(cause, "IOMKI-2026-000123/SP-1"))
    alert = await world.alert_for(cibitung["facility_id"], "WarningIssued")
    assert alert["severity"] == "low" and alert["regency_code"] == "32.16"

    # Other plants of the session may warn Bekasi too: take this plant's notice.
    def this_alert(path: str) -> list[tuple[dict[str, str], bytes]]:
        return [hook for hook in world.receiver.on(path) if alert["alert_id"].encode() in hook[1]]

    hooks = await eventually(lambda: asyncio.sleep(0, this_alert("bekasi")))
    headers, body = hooks[0]  # verified by the receiver with the secret issued for Bekasi's subscription
    assert int(headers["webhook-timestamp"]) == pytest.approx(datetime.now(UTC).timestamp(), abs=60)
    assert len(headers["webhook-signature"].split(" ")) == 1 and "x-iomki-signature" not in headers
    assert not any(path == "bekasi" for path, _, _ in world.receiver.refused)
    notice = json.loads(body)
    assert notice["event_type"] == "WarningIssued" and notice["alert_id"] == alert["alert_id"]
    assert notice["details"]["facility_id"] == str(cibitung["facility_id"])

    mails = await eventually(lambda: asyncio.sleep(0, world.mailbox.to("k3@baja.example")))
    message = email.message_from_string(mails[0], policy=email.policy.default)
    assert message["Subject"] == ("[IOMKI] Surat Peringatan IOMKI-2026-000123/SP-1 / "
                                  "Warning letter IOMKI-2026-000123/SP-1")
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Yth. Pimpinan PT Baja Nusantara,")
    assert text.index("terlampir") < text.index("is attached")  # Bahasa Indonesia first, English second
    assert attachments(mails[0]) == [("IOMKI-2026-000123_SP-1.pdf", letter_pdf("IOMKI-2026-000123/SP-1"))]

    deliveries = await world.deliveries(alert["alert_id"], settled=2)
    assert sorted((d["channel"], d["recipient_kind"], d["status"], d["attachment"]) for d in deliveries) == [
        ("email", "company", "delivered", "IOMKI-2026-000123_SP-1.pdf"), ("webhook", "task_force", "delivered", None)]
    assert all("target" not in d and d["attempt_log"][0]["succeeded"] for d in deliveries)
    assert headers["webhook-id"] == next(d["delivery_id"] for d in deliveries if d["channel"] == "webhook")
    assert not any(str(cibitung["facility_id"]).encode() in body for _, body in world.receiver.on("karawang"))

    # Agencies see that an alert was raised and delivered, never to which address.
    messages = await read_topic(world.bootstrap, "iomki.alerts", until=lambda ms: sum(
        alert["alert_id"].encode() in m.value and b"AlertDelivered" in m.value for m in ms) >= 2)
    ours = [decode(m.value) for m in messages if alert["alert_id"].encode() in m.value]
    raised = [d for d in ours if d.envelope.type == "iomki.AlertRaised.v1"]
    assert len(raised) == 1 and raised[0].envelope.causationid == str(cause.id)
    assert all(b"@" not in m.value and b"bekasi" not in m.value for m in messages)


async def test_a_freeze_letter_that_comes_first_waits_for_its_event_and_goes_once_in_one_email(world: World):
    """The letter (internal topic) and the freeze (permits' topic) travel apart: here the letter is first, and each
    is delivered twice. The company gets one e-mail, with the letter."""
    cikande = plant("36", "36.04")
    await world.contacts(cikande, company_name="PT Kimia Cikande", email_address="hse@kimia.example")
    frozen = Envelope.wrap(PermitFrozen(
        **cikande, permit_id=uuid.uuid4(), nib="8120000123456", permit_number="IOMKI-2026-000777",
        reason="Perusahaan meminta", freeze_count=1, ground=SanctionGround(code=GroundCode.COMPANY_REQUEST)),
        service="permits", time=datetime.now(UTC))
    letter = letter_for(frozen, "IOMKI-2026-000777/SPB-1", LetterKind.FREEZE)
    await world.publish_envelope(letter)
    await world.publish_envelope(letter)
    await world.pairing(frozen, "letter_number")
    await world.publish_envelope(frozen)
    await world.publish_envelope(frozen)

    alert = await world.alert_for(cikande["facility_id"], "PermitFrozen")
    deliveries = await world.deliveries(alert["alert_id"], settled=1)
    assert [(d["recipient_kind"], d["status"], d["attachment"]) for d in deliveries] == [
        ("company", "delivered", "IOMKI-2026-000777_SPB-1.pdf")]
    mails = world.mailbox.to("hse@kimia.example")
    assert len(mails) == 1 and "Surat Pembekuan IOMKI IOMKI-2026-000777/SPB-1" in mails[0]
    assert attachments(mails[0]) == [("IOMKI-2026-000777_SPB-1.pdf", letter_pdf("IOMKI-2026-000777/SPB-1"))]


async def test_an_email_whose_letter_does_not_come_in_time_goes_without_it_and_the_letter_follows(world: World):
    """The bounded wait: the company is told of the warning even while the permits service is down, and gets the
    letter in a second e-mail when it comes; never the notice twice, never the letter twice."""
    serang = plant("36", "36.73")
    await world.contacts(serang, company_name="PT Baja Serang", email_address="k3@bajaserang.example")
    cause = await world.publish(warning(serang))
    await world.pairing(cause, "alert_id")
    connection = await asyncpg.connect(world.database_url)
    try:  # the wait (IOMKI_LETTER_WAIT) runs out
        await connection.execute("UPDATE notifier.company_letters SET wait_until = now() - interval '1 second'"
                                 " WHERE cause_event_id = $1", cause.id)
    finally:
        await connection.close()
    first = await eventually(lambda: asyncio.sleep(0, world.mailbox.to("k3@bajaserang.example")))
    assert "[IOMKI] Pemberitahuan peringatan / Notice of a warning" in first[0] and attachments(first[0]) == []

    letter = letter_for(cause, "IOMKI-2026-000888/SP-4")
    await world.publish_envelope(letter)
    await world.publish_envelope(letter)
    mails = await eventually(lambda: asyncio.sleep(0, m if len(m := world.mailbox.to("k3@bajaserang.example")) > 1
                                                   else None))
    assert "Menyusul pemberitahuan kami tentang peringatan" in mails[1]
    assert attachments(mails[1]) == [("IOMKI-2026-000888_SP-4.pdf", letter_pdf("IOMKI-2026-000888/SP-4"))]
    alert = await world.alert_for(serang["facility_id"], "WarningIssued")
    deliveries = await world.deliveries(alert["alert_id"], settled=2)
    assert sorted((d["attachment"] or "") for d in deliveries) == ["", "IOMKI-2026-000888_SP-4.pdf"]
    await asyncio.sleep(1)  # a few more ticks of the timer: nothing else goes out
    assert len(world.mailbox.to("k3@bajaserang.example")) == 2


async def test_an_event_no_route_names_alerts_only_the_task_forces_subscribed_to_it(world: World):
    """Most events alert nobody, and are checked a run at a time; a task force subscribed to one still gets it,
    for its own region only."""
    purwakarta = await world.register("regency", "32.14", [{"division": "health", "email": "kes@purwakarta.example"}])
    await world.subscribe(purwakarta, "purwakarta", ["ReportDue"])
    subscribed, elsewhere = plant("32", "32.14"), plant("33", "33.01")
    published = [await world.publish(report_due(where)) for where in (elsewhere, subscribed, elsewhere, subscribed)]

    alert = await world.alert_for(subscribed["facility_id"], "ReportDue")
    assert alert["severity"] == "low" and alert["regency_code"] == "32.14"
    hooks = await eventually(lambda: asyncio.sleep(0, [
        hook for hook in world.receiver.on("purwakarta") if alert["alert_id"].encode() in hook[1]]))
    assert json.loads(hooks[0][1])["event_type"] == "ReportDue"

    connection = await asyncpg.connect(world.database_url)
    try:  # every event consumed, the other plant's included …
        await eventually(lambda: connection.fetchval(
            "SELECT count(*) = $2 FROM notifier.inbox WHERE event_id = ANY($1)", [e.id for e in published], 4))
    finally:
        await connection.close()
    # … and grouped into the one alert, while the plant nobody subscribed for has none.
    alerts = (await world.notifier.get("/alerts", headers=OPERATOR)).json()["alerts"]
    assert [a["count"] for a in alerts if a["facility_id"] == str(subscribed["facility_id"])] == [2]
    assert not [a for a in alerts if a["facility_id"] == str(elsewhere["facility_id"])]


async def test_the_national_task_force_is_id_even_when_registered_with_an_empty_code_and_covers_every_plant(
        world: World):
    """`ID` names the country in the directory as in a national task force's token; an empty code, the directory's
    earlier name for it, is still taken."""
    national = await world.register("national", "", [{"division": "health", "email": "pusdalops@bnpb.example"}])
    # An event no route names: only a subscription alerts anyone of it.
    await world.subscribe(national, "nasional", ["PermitReactivated"])
    listed = (await world.notifier.get("/task-forces", headers=OPERATOR)).json()["task_forces"]
    assert [tf["region_code"] for tf in listed if tf["task_force_id"] == national] == ["ID"]

    papua = plant("91", "91.01")
    await world.publish(PermitReactivated(**papua, permit_id=uuid.uuid4(), nib="8120000777777",
                                          permit_number="IOMKI-2026-000091", reason="reports resumed"))
    alert = await world.alert_for(papua["facility_id"], "PermitReactivated")
    assert alert["regency_code"] == "91.01"


async def test_a_flaky_receiver_is_retried_until_it_answers_and_a_dead_one_is_marked_failed(world: World):
    # Satpol PP's endpoint in Kota Bandung fails twice before answering.
    bandung = await world.register("regency", "32.73", [{"division": "law_enforcement",
                                                         "webhook": world.receiver.url("satpolpp")}])
    world.receiver.failures_left["satpolpp"] = 2
    dead_port = free_port()
    response = await world.notifier.post("/subscriptions", headers=OPERATOR, json={
        "task_force_id": bandung, "channel": "webhook", "target": f"http://127.0.0.1:{dead_port}/gone",
        "event_types": ["PermitFrozen"]})
    assert response.status_code == 201, response.text

    where = plant("32", "32.73")
    await world.publish(PermitFrozen(**where, permit_id=uuid.uuid4(), nib="8120000999999",
                                     permit_number="IOMKI-2026-000042", reason="3 warnings", freeze_count=1))
    alert = await world.alert_for(where["facility_id"], "PermitFrozen")
    deliveries = {d["status"]: d for d in await world.deliveries(alert["alert_id"], settled=2)}

    delivered, failed = deliveries["delivered"], deliveries["failed"]
    assert delivered["attempts"] == 3
    assert [(a["succeeded"], a["error"]) for a in delivered["attempt_log"]] == [
        (False, "HTTP 500"), (False, "HTTP 500"), (True, None)]
    assert failed["attempts"] == 4 and failed["last_error"] == "connection refused"
    assert [a["succeeded"] for a in failed["attempt_log"]] == [False] * 4
    # The receiver saw the same webhook-id (for its dedup) and the same bytes on every try, each try signed anew.
    tries = [hook for hook in world.receiver.on("satpolpp") if alert["alert_id"].encode() in hook[1]]
    assert len(tries) == 3 and len({(h["webhook-id"], b) for h, b in tries}) == 1
    assert tries[0][0]["webhook-id"] == delivered["delivery_id"]


async def test_a_cluster_nobody_answers_climbs_to_bnpb_and_the_province_acknowledges(world: World):
    await world.register("regency", "34.01", [{"division": "health", "email": "kes@kulonprogo.example"}])
    await world.register("regency", "34.02", [{"division": "health", "email": "kes@bantul.example"}])
    await world.register("province", "34", [{"division": "health", "webhook": world.receiver.url("diy")}])
    await world.register("national", "", [{"division": "health", "email": "pusdalops@bnpb.example"}])

    where = plant("34", "34.01")
    await world.publish(cluster(where))
    await world.publish(cluster(where))  # the incidents service re-announces it: one alert, counted twice
    alert = await world.alert_for(where["facility_id"], "ClusterDeclared")

    async def at_national() -> dict | None:
        found = (await world.notifier.get(f"/alerts/{alert['alert_id']}", headers=OPERATOR)).json()
        return found if found["level"] == "national" else None
    top = await eventually(at_national)
    assert top["count"] == 2 and top["status"] == "open"
    assert [(e["from_level"], e["to_level"]) for e in top["escalations"]] == [
        ("regency", "province"), ("province", "national")]
    assert top["notified_levels"] == ["regency", "province", "national"]

    await eventually(lambda: asyncio.sleep(0, world.mailbox.to("pusdalops@bnpb.example")))
    assert world.mailbox.to("kes@kulonprogo.example") and not world.mailbox.to("kes@bantul.example")
    assert await eventually(lambda: asyncio.sleep(0, world.receiver.on("diy")))

    # Bantul's task force cannot even see Kulon Progo's alert; Yogyakarta province acknowledges it.
    other = await world.notifier.post(f"/alerts/{alert['alert_id']}/ack",
                                      headers=bearer("task_force", region="34.02", sub="satgas-bantul"))
    assert other.status_code == 404
    acked = await world.notifier.post(f"/alerts/{alert['alert_id']}/ack",
                                      headers=bearer("task_force", region="34", sub="satgas-diy"))
    assert acked.status_code == 200, acked.text
    assert (acked.json()["status"], acked.json()["acknowledged_by"]) == ("acknowledged", "satgas-diy")
    again = await world.notifier.post(f"/alerts/{alert['alert_id']}/ack", headers=OPERATOR)
    assert again.status_code == 409 and again.json()["current_status"] == "acknowledged"
    acknowledged = (await world.notifier.get("/alerts?status=acknowledged", headers=OPERATOR)).json()["alerts"]
    assert alert["alert_id"] in {a["alert_id"] for a in acknowledged}

    messages = await read_topic(world.bootstrap, "iomki.alerts", until=lambda ms: any(
        alert["alert_id"].encode() in m.value and b"AlertAcknowledged" in m.value for m in ms))
    types = [decode(m.value).envelope.type for m in messages if alert["alert_id"].encode() in m.value]
    assert types.count("iomki.AlertRaised.v1") == 1
    assert types.count("iomki.AlertEscalated.v1") == 2  # never twice for the same step
    assert types.count("iomki.AlertAcknowledged.v1") == 1


async def test_a_rooms_closure_informs_a_plants_climbs_and_the_company_reads_of_both(world: World):
    """A case closes a room of a Polewali Mandar plant for its disinfection: low, the regency's health division and
    the company hear of it, and it stays there. The task force then closes the whole plant: an alert of its own (not
    counted into the room's), high, climbing to the province while nobody answers; the company reads of it too."""
    await world.register("regency", "76.02", [{"division": "health", "email": "kes@polman.example"}])
    await world.register("province", "76", [{"division": "health", "email": "kes@sulbar.example"}])
    where = plant("76", "76.02")
    await world.contacts(where, company_name="PT Kakao Polewali", email_address="k3@kakao.example")
    now = datetime.now(UTC)
    await world.publish(FacilityClosureOrdered(**where, closure_id=uuid.uuid4(), scope=ClosureScope.ROOM,
                                               reason="Disinfeksi setelah kasus c-0007", starts_at=now,
                                               ends_at=now + timedelta(hours=24)))
    room = await world.alert_for(where["facility_id"], "FacilityClosureOrdered")
    assert (room["severity"], room["level"]) == ("low", "regency")
    await world.publish(FacilityClosureOrdered(**where, closure_id=uuid.uuid4(), scope=ClosureScope.PLANT,
                                               reason="Klaster 3 kasus terkait", starts_at=now,
                                               ends_at=now + timedelta(days=5), ordered_by=ClosureAuthority.TASK_FORCE,
                                               ordered_by_actor="satgas-polman"))

    async def climbed() -> dict | None:
        alerts = (await world.notifier.get("/alerts", headers=OPERATOR)).json()["alerts"]
        closed = next((a for a in alerts if a["facility_id"] == str(where["facility_id"])
                       and a["alert_id"] != room["alert_id"]), None)
        return closed if closed is not None and closed["level"] != "regency" else None
    closed = await eventually(climbed)
    assert (closed["event_type"], closed["severity"]) == ("FacilityClosureOrdered", "high")
    after = (await world.notifier.get(f"/alerts/{room['alert_id']}", headers=OPERATOR)).json()
    assert (after["count"], after["level"], after["escalations"]) == (1, "regency", [])

    def subjects(address: str) -> list[str]:
        # A long subject is folded onto the next line: read back without the fold's space.
        return sorted(email.message_from_string(m, policy=email.policy.default)["Subject"].strip()
                      for m in world.mailbox.to(address))
    await eventually(lambda: asyncio.sleep(0, len(world.mailbox.to("k3@kakao.example")) == 2))
    assert subjects("k3@kakao.example") == ["[IOMKI] Penutupan pabrik Anda / Closure of your plant",
                                            "[IOMKI] Ruangan ditutup untuk disinfeksi / A room closed for disinfection"]
    await eventually(lambda: asyncio.sleep(0, world.mailbox.to("kes@sulbar.example")))
    await eventually(lambda: asyncio.sleep(0, len(world.mailbox.to("kes@polman.example")) == 2))
    assert subjects("kes@polman.example") == ["[iomki high] FacilityClosureOrdered in 76.02",
                                              "[iomki low] FacilityClosureOrdered in 76.02"]
    # The province hears of the plant's closure only.
    assert subjects("kes@sulbar.example") == ["[iomki high] FacilityClosureOrdered in 76.02"]


async def test_a_closure_recommendation_climbs_until_the_task_force_decides_it(world: World):
    """The decision, made in the incidents service, answers the recommendation's alert: it stops climbing,
    acknowledged in the name of the role that decided; the decision itself is the task force's information."""
    await world.register("regency", "76.04", [{"division": "health", "email": "kes@mamasa.example"}])
    where = plant("76", "76.04")
    recommendation_id, cluster_id = uuid.uuid4(), uuid.uuid4()
    await world.publish(ClosureRecommended(
        **where, recommendation_id=recommendation_id, cluster_id=cluster_id, scope=ClosureScope.PLANT, days=5,
        rule="a cluster closes the plant for 5 days", case_count=3, first_confirmed_on=date(2026, 11, 16),
        last_confirmed_on=date(2026, 11, 20), answer_by=datetime.now(UTC) + timedelta(hours=24)))
    recommended = await world.alert_for(where["facility_id"], "ClosureRecommended")
    assert (recommended["severity"], recommended["status"]) == ("high", "open")
    await world.publish(ClosureRecommendationDecided(
        **where, recommendation_id=recommendation_id, cluster_id=cluster_id, decision=RecommendationDecision.DECLINED,
        reason="Kasus tertular di luar pabrik.", decided_by_role="task_force"))
    decided = await world.alert_for(where["facility_id"], "ClosureRecommendationDecided")
    assert decided["severity"] == "low"

    answered = (await world.notifier.get(f"/alerts/{recommended['alert_id']}", headers=OPERATOR)).json()
    assert (answered["status"], answered["acknowledged_by"], answered["acknowledged_role"]) == (
        "acknowledged", f"decision:{recommendation_id}", "task_force")
    def texts() -> list[str]:
        return [email.message_from_string(m, policy=email.policy.default).get_body(("plain",))  # type: ignore[union-attr]
                .get_content() for m in world.mailbox.to("kes@mamasa.example")]
    told = await eventually(lambda: asyncio.sleep(0, [t for t in texts() if decided["alert_id"] in t]))
    assert "ditolak (task_force). Alasan: Kasus tertular di luar pabrik." in told[0]


async def test_a_subscription_target_is_matched_whole_and_its_event_types_are_bounded(world: World):
    # `re.match` with `$` took "kes@bekasi.example\n": a line break on its way into a mail header.
    bekasi = await world.register("regency", "32.16", [{"division": "health", "email": "kes@bekasi.example"}])
    for channel, target in (("email", "kes@bekasi.example\n"), ("webhook", "http://127.0.0.1:9/hook\n")):
        response = await world.notifier.post("/subscriptions", headers=OPERATOR, json={
            "task_force_id": bekasi, "channel": channel, "target": target, "event_types": ["PermitFrozen"]})
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["body"]
        assert response.json()["errors"][0]["message"].startswith(f"Value error, a{'n' if channel == 'email' else ''} "
                                                                  f"{channel} target must be")
    long_type = await world.notifier.post("/subscriptions", headers=OPERATOR, json={
        "task_force_id": bekasi, "channel": "email", "target": "kes@bekasi.example",
        "event_types": ["PermitFrozen" * 6]})
    assert long_type.status_code == 422
    assert long_type.json()["errors"] == [{"field": "event_types.0",
                                           "message": "String should have at most 64 characters",
                                           "type": "string_too_long", "limit": 64}]
    newline_contact = await world.notifier.post("/task-forces", headers=OPERATOR, json={
        "level": "regency", "region_code": "32.16", "name": "Satgas Bekasi",
        "contacts": [{"division": "health", "email": "kes@bekasi.example\n"}]})
    assert newline_contact.status_code == 422
    assert [e["field"] for e in newline_contact.json()["errors"]] == ["contacts.0.email"]


async def test_bad_contact_data_fails_its_own_delivery_and_never_stops_the_rest_of_the_batch(world: World):
    """A company's address with a second header in it (it came on the contacts topic, written before the permits
    API checked it), and two webhooks into the platform's own network: each is recorded as failed with a reason
    a task force may read; the webhook that is fine is delivered, and nobody else got a copy."""
    tegal = await world.register("regency", "33.28", [{"division": "health", "email": "kes@tegal.example"}])
    for path, target in (("metadata", "http://169.254.169.254/latest/meta-data/"),
                         ("internal", "http://10.0.0.1/hook"), ("tegal", world.receiver.url("tegal"))):
        response = await world.notifier.post("/subscriptions", headers=OPERATOR, json={
            "task_force_id": tegal, "channel": "webhook", "target": target, "event_types": ["WarningIssued"]})
        assert response.status_code == 201, (path, response.text)
        world.receiver.holds(target, response.json()["secret"])
    pabrik = plant("33", "33.28")
    await world.publish(CompanyContactsUpdated(**pabrik, permit_id=uuid.uuid4(), nib="8120000555555",
                                               company_name="PT Logam Tegal",
                                               email="k3@logam.example\r\nBcc: spy@evil.example"))
    connection = await asyncpg.connect(world.database_url)
    try:
        await eventually(lambda: connection.fetchval(
            "SELECT count(*) FROM notifier.company_contacts WHERE facility_id = $1", pabrik["facility_id"]))
    finally:
        await connection.close()

    cause = await world.publish(warning(pabrik))
    await world.publish_envelope(letter_for(cause, "IOMKI-2026-000555/SP-1"))
    alert = await world.alert_for(pabrik["facility_id"], "WarningIssued")
    deliveries = await world.deliveries(alert["alert_id"], settled=4)
    outcomes = sorted((d["channel"], d["status"], d["last_error"], d["attempts"]) for d in deliveries)
    assert outcomes == [
        ("email", "failed", "invalid address", 1),  # it can never work: failed at once, not retried
        ("webhook", "delivered", None, 1),
        ("webhook", "failed", "address not allowed", 4),  # retried with backoff, then failed for good
        ("webhook", "failed", "address not allowed", 4),
    ]
    assert all(a["error"] in (None, "invalid address", "address not allowed")
               for d in deliveries for a in d["attempt_log"])
    assert [b for _, b in world.receiver.on("tegal") if alert["alert_id"].encode() in b]
    assert not world.mailbox.to("spy@evil.example") and not world.mailbox.to("k3@logam.example")


async def test_a_contact_is_one_address_and_a_webhook_url_has_no_credentials(world: World):
    tegal = await world.register("regency", "33.28", [{"division": "health", "email": "kes@tegal.example"}])
    for target in ("a@b.example\r\nBcc: x@y.example", "a@x.example, b@y.example", "Satgas <a@x.example>"):
        response = await world.notifier.post("/subscriptions", headers=OPERATOR, json={
            "task_force_id": tegal, "channel": "email", "target": target, "event_types": ["PermitFrozen"]})
        assert response.status_code == 422, (target, response.text)
    for webhook in ("https://user:pw@hooks.tegal.example/x", "https://hooks.tegal.example/x#y"):
        response = await world.notifier.post("/task-forces", headers=OPERATOR, json={
            "level": "regency", "region_code": "33.28", "name": "Satgas Tegal",
            "contacts": [{"division": "health", "webhook": webhook}]})
        assert response.status_code == 422, (webhook, response.text)
        assert [e["field"] for e in response.json()["errors"]] == ["contacts.0.webhook"]


async def test_outside_development_a_webhook_must_be_https(platform):
    """In production (an identity provider's key, or IOMKI_ENVIRONMENT=production) plain http is refused where
    it enters, so a notice is never sent in clear."""
    # Production seals with configured keys only: here the development key the session's other notifiers seal
    # with, first, so that this one seals nothing again under another and opens what they sealed.
    keys = f"{development_key(platform)},{Fernet.generate_key().decode()}"
    with patched_environ(platform.env(IOMKI_ENVIRONMENT="production", IOMKI_WEBHOOK_SECRET_KEYS=keys)):
        app = create_app()
    async with running_service(app) as notifier:
        registered = await notifier.post("/task-forces", headers=OPERATOR, json={
            "level": "regency", "region_code": "33.28", "name": "Satgas Tegal",
            "contacts": [{"division": "health", "webhook": "http://hooks.tegal.example/x"}]})
        assert registered.status_code == 422, registered.text
        assert registered.json()["errors"] == [{"field": "contacts.0.webhook",
                                                "message": "a webhook target must be an https URL"}]
        registered = await notifier.post("/task-forces", headers=OPERATOR, json={
            "level": "regency", "region_code": "33.28", "name": "Satgas Tegal",
            "contacts": [{"division": "health", "webhook": "https://hooks.tegal.example/x"}]})
        assert registered.status_code == 201, registered.text
        response = await notifier.post("/subscriptions", headers=OPERATOR, json={
            "task_force_id": registered.json()["task_force_id"], "channel": "webhook",
            "target": "http://hooks.tegal.example/x", "event_types": ["PermitFrozen"]})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "target", response.text


async def test_an_escalation_that_keeps_failing_backs_off_and_the_alerts_behind_it_still_climb(platform):
    """Serang's regency task force has a contact whose division was renamed by hand in the database to one this
    version does not know: reading Serang's directory fails, so a Serang cluster cannot escalate. It fails once
    per attempt, each attempt later than the one before; the Lebak clusters due behind it climb on time."""
    start = datetime.now(UTC)
    clock = FakeClock(start)
    env = platform.env(IOMKI_ESCALATION_AFTER="PT1H,PT4H", IOMKI_NOTIFIER_TICK="PT0.2S")
    with patched_environ(env):
        app = create_app(clock=clock)
    connection = await asyncpg.connect(platform.admin_url)
    try:
        async def serang_alert() -> asyncpg.Record:
            return await connection.fetchrow(
                "SELECT level, escalation_attempts, escalation_next_attempt_at, escalation_last_error"
                " FROM notifier.alerts WHERE alert_id = $1", broken.alert_id)

        async with running_service(app) as notifier:
            response = await notifier.post("/task-forces", headers=OPERATOR, json={
                "level": "regency", "region_code": "36.04", "name": "Satgas Serang",
                "contacts": [{"division": "health", "email": "kes@serang.example"}]})
            assert response.status_code == 201, response.text
            await connection.execute("UPDATE notifier.task_force_contacts SET division = 'logistics'"
                                     " WHERE task_force_id = $1", uuid.UUID(response.json()["task_force_id"]))

            def raised(where: dict, at: datetime) -> Alert:
                return Alert.raise_for("ClusterDeclared", Plant(**where), {}, now=at, chain=EscalationChain(),
                                       grouping=Grouping())
            broken = raised(plant("36", "36.04"), start)  # due first
            behind = [raised(plant("36", "36.02"), start + timedelta(minutes=m)) for m in (1, 2)]
            async with app.state.runtime.database.transaction() as work:
                for alert in (broken, *behind):
                    await work.notifier.add_alert(alert)

            now = clock.advance(timedelta(hours=2))

            async def climbed(alert_id: uuid.UUID) -> dict | None:
                found = (await notifier.get(f"/alerts/{alert_id}", headers=OPERATOR)).json()
                return found if found["level"] == "province" else None
            for alert in behind:
                found = await eventually(lambda a=alert: climbed(a.alert_id))
                assert [(e["from_level"], e["to_level"]) for e in found["escalations"]] == [("regency", "province")]

            first = await eventually(lambda: _after_escalation_attempts(serang_alert, 1))
            assert (first["level"], first["escalation_attempts"]) == ("regency", 1)
            assert first["escalation_next_attempt_at"] == now + timedelta(seconds=30)
            assert first["escalation_last_error"] == "ValueError"  # the kind of failure, never an address
            await asyncio.sleep(1)  # several more sweeps: it waits for its next attempt, not retried each sweep
            assert (await serang_alert())["escalation_attempts"] == 1

            # Each further failure waits twice as long as the one before.
            clock.advance(timedelta(seconds=30))
            second = await eventually(lambda: _after_escalation_attempts(serang_alert, 2))
            assert second["escalation_next_attempt_at"] - clock.now() == timedelta(minutes=1)
            assert second["level"] == "regency"
    finally:  # the directory as this version can read it again, for the tests after this one
        await connection.execute("UPDATE notifier.task_force_contacts SET division = 'health'"
                                 " WHERE division = 'logistics'")
        await connection.close()


def development_key(platform) -> str:
    """The key a development notifier seals webhook secrets with, kept under the data directory."""
    path = platform.settings().data_dir / "notifier-webhook-secret-key"
    return keep_secret_once(path, Fernet.generate_key()).decode().strip()


async def _after_escalation_attempts(read: Any, attempts: int) -> asyncpg.Record | None:
    row = await read()
    return row if row["escalation_attempts"] >= attempts else None


# -- webhook secrets ------------------------------------------------------------------------------


async def test_a_webhook_secret_is_shown_once_and_the_database_holds_it_only_sealed(world: World):
    """Cirebon's task force gets its contact's secret and its subscription's in the answers that create them, and
    nowhere after: not in the directory, not in the database in the clear, not on a delivery."""
    cirebon = await world.register("regency", "32.09", [
        {"division": "health", "email": "kes@cirebon.example"},
        {"division": "health", "webhook": world.receiver.url("cirebon")}])
    await world.subscribe(cirebon, "cirebon-feed", ["WarningIssued"])
    [contact_secret], [subscription_secret] = world.receiver.secrets["cirebon"], world.receiver.secrets["cirebon-feed"]
    for secret in (contact_secret, subscription_secret):
        assert isinstance(secret, str) and secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    listed = await world.notifier.get("/task-forces", headers=OPERATOR)
    assert "whsec_" not in listed.text and "secret" not in listed.text
    assert [c["position"] for tf in listed.json()["task_forces"] if tf["task_force_id"] == cirebon
            for c in tf["contacts"]] == [0, 1]

    where = plant("32", "32.09")
    await world.publish(warning(where))
    alert = await world.alert_for(where["facility_id"], "WarningIssued")
    await world.deliveries(alert["alert_id"], settled=1)
    connection = await asyncpg.connect(world.database_url)
    try:
        rows = await connection.fetch(
            "SELECT secret, secret_sealed FROM notifier.subscriptions WHERE task_force_id = $1"
            " UNION ALL SELECT secret, secret_sealed FROM notifier.task_force_contacts WHERE task_force_id = $1"
            " AND webhook IS NOT NULL", uuid.UUID(cirebon))
        assert len(rows) == 2 and all(r["secret"] is None and r["secret_sealed"] for r in rows)
        everything = await connection.fetchval(
            "SELECT string_agg(t::text, ' ') FROM (SELECT s::text FROM notifier.subscriptions s UNION ALL"
            " SELECT c::text FROM notifier.task_force_contacts c UNION ALL SELECT d::text FROM notifier.deliveries d"
            " UNION ALL SELECT o::text FROM notifier.outbox o) t")
        for secret in (contact_secret, subscription_secret):
            assert secret not in everything and secret.removeprefix("whsec_") not in everything
        columns = await connection.fetch("SELECT column_name FROM information_schema.columns"
                                         " WHERE table_schema = 'notifier' AND table_name = 'deliveries'")
        assert "secret" not in {c["column_name"] for c in columns}
    finally:
        await connection.close()


async def test_after_a_rotation_a_receiver_verifies_with_either_secret_until_it_moves_over(world: World):
    """Cimahi rotates its subscription's secret and its contact's. Until the grace period ends each notice is
    signed with both, so the receiver still holding only the old secret keeps verifying; the receiver given only
    the new one verifies too."""
    cimahi = await world.register("regency", "32.77", [{"division": "law_enforcement",
                                                        "webhook": world.receiver.url("cimahi-contact")}])
    subscription = await world.subscribe(cimahi, "cimahi", ["PermitFrozen"])
    old_subscription_secret = world.receiver.secrets["cimahi"][0]
    old_contact_secret = world.receiver.secrets["cimahi-contact"][0]

    # The task force's own new secret, in the one form taken; or one the platform issues.
    own = "whsec_" + base64.b64encode(b"cimahi-satgas-own-secret-32bytes").decode()
    rotated = await world.notifier.post(f"/subscriptions/{subscription}/secret", headers=OPERATOR,
                                        json={"secret": own})
    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["secret"] == own
    until = datetime.fromisoformat(rotated.json()["previous_secret_valid_until"])
    assert abs(until - datetime.now(UTC) - timedelta(hours=24)) < timedelta(minutes=1)  # the default grace
    contact = await world.notifier.post(f"/task-forces/{cimahi}/contacts/0/secret", headers=OPERATOR)
    assert contact.status_code == 201, contact.text
    new_contact_secret = contact.json()["secret"]
    assert new_contact_secret.startswith("whsec_") and new_contact_secret != old_contact_secret
    listed = await world.notifier.get("/task-forces", headers=OPERATOR)
    assert own not in listed.text and new_contact_secret not in listed.text

    where = plant("32", "32.77")
    await world.publish(PermitFrozen(**where, permit_id=uuid.uuid4(), nib="8120000444444",
                                     permit_number="IOMKI-2026-000077", reason="3 warnings", freeze_count=1))
    alert = await world.alert_for(where["facility_id"], "PermitFrozen")
    await world.deliveries(alert["alert_id"], settled=2)
    for path, old, new in (("cimahi", old_subscription_secret, own),
                           ("cimahi-contact", old_contact_secret, new_contact_secret)):
        headers, body = next(hook for hook in world.receiver.on(path) if alert["alert_id"].encode() in hook[1])
        assert len(headers["webhook-signature"].split(" ")) == 2
        assert verifies(old, headers, body) and verifies(new, headers, body)
        assert not verifies("whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode(), headers, body)


async def test_a_secret_stored_in_the_clear_before_is_sealed_at_start_and_still_signs(world: World, platform):
    """A Garut subscription from before migration 0005, its secret in the clear: a notifier starting seals it and
    clears the text, and its receiver, holding that text, still verifies (with the text's own bytes as the key)."""
    garut = await world.register("regency", "32.05", [{"division": "health", "email": "kes@garut.example"}])
    subscription = await world.subscribe(garut, "garut", ["PermitFrozen"])
    legacy = "garut-webhook-secret-from-2025"  # noqa: S105 -- free text, as secrets were before
    connection = await asyncpg.connect(world.database_url)
    try:
        await connection.execute("UPDATE notifier.subscriptions SET secret = $2, secret_sealed = NULL"
                                 " WHERE subscription_id = $1", uuid.UUID(subscription), legacy)
        with patched_environ(platform.env()):
            starting = create_app()
        async with running_service(starting):
            row = await connection.fetchrow("SELECT secret, secret_sealed FROM notifier.subscriptions"
                                            " WHERE subscription_id = $1", uuid.UUID(subscription))
        assert row["secret"] is None and row["secret_sealed"] and legacy.encode() not in row["secret_sealed"]
    finally:
        await connection.close()

    world.receiver.secrets["garut"] = [legacy.encode()]  # what its receiver held all along
    where = plant("32", "32.05")
    await world.publish(PermitFrozen(**where, permit_id=uuid.uuid4(), nib="8120000333333",
                                     permit_number="IOMKI-2026-000005", reason="3 warnings", freeze_count=1))
    alert = await world.alert_for(where["facility_id"], "PermitFrozen")
    [delivery] = await world.deliveries(alert["alert_id"], settled=1)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 1)  # verified at the first try


async def test_a_delivery_whose_subscription_is_gone_fails_at_once_as_recipient_removed(world: World):
    """A delivery refers to where its secret lives; with that gone there is nothing to sign with and nobody to
    send to: it fails for good at the first attempt, saying so."""
    alert = Alert.raise_for("PermitFrozen", Plant(uuid.uuid4(), "32", "32.10"), {}, now=datetime.now(UTC),
                            chain=EscalationChain(), grouping=Grouping())
    orphan = Delivery.planned(alert.alert_id, Recipient(
        Channel.WEBHOOK, world.receiver.url("majalengka"), Level.REGENCY, uuid.uuid4(),
        SecretRef(subscription_id=uuid.uuid4())), datetime.now(UTC))
    async with world.app.state.runtime.database.transaction() as work:
        await work.notifier.add_alert(alert)
        await work.notifier.add_deliveries([(orphan, "subject", b"{}", None)], datetime.now(UTC))
    [delivery] = await world.deliveries(str(alert.alert_id), settled=1)
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("failed", 1, "recipient removed")
    assert not world.receiver.on("majalengka")


async def test_a_new_key_put_first_seals_every_secret_again_so_the_old_one_can_go(world: World, platform):
    """The at-rest key is rotated: a notifier started with a new key first and the old one after it seals every
    stored secret again under the new one. Sealed back under the old key afterwards, for the tests after this."""
    # At least this contact's secret is stored, whichever tests ran before.
    await world.register("regency", "32.06", [{"division": "health", "webhook": world.receiver.url("tasik")}])
    old, new = development_key(platform), Fernet.generate_key().decode()

    async def start_with(keys: str) -> None:
        with patched_environ(platform.env(IOMKI_WEBHOOK_SECRET_KEYS=keys)):
            app = create_app()
        async with running_service(app):
            pass

    connection = await asyncpg.connect(world.database_url)
    try:
        async def sealed() -> list[SealedSecrets]:
            rows = await connection.fetch(
                "SELECT subscription_id::text AS owner, secret_sealed, previous_secret_sealed, secret_rotated_at"
                " FROM notifier.subscriptions WHERE secret_sealed IS NOT NULL UNION ALL"
                " SELECT task_force_id::text || '/' || position, secret_sealed, previous_secret_sealed,"
                " secret_rotated_at FROM notifier.task_force_contacts WHERE secret_sealed IS NOT NULL ORDER BY owner")
            return [SealedSecrets(bytes(r["secret_sealed"]), r["previous_secret_sealed"] and bytes(
                r["previous_secret_sealed"]), r["secret_rotated_at"]) for r in rows]

        before = await sealed()
        await start_with(f"{new},{old}")
        after = await sealed()
        assert len(after) == len(before) >= 1
        assert [SecretSeal([new]).open(s) for s in after] == [SecretSeal([old]).open(s) for s in before]
        await start_with(f"{old},{new}")
        assert [SecretSeal([old]).open(s) for s in await sealed()] == [SecretSeal([old]).open(s) for s in before]
    finally:
        await connection.close()
