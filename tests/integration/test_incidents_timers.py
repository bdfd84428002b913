"""Durable timers: a case's isolation, each of its contacts' quarantine and its room closure end after a restart.

The service that set the timers stops; another instance starts eleven days later (a fake clock) and fires
each timer once: the case closes, the room reopens, each contact's quarantine ends, and nothing fires twice. A
contact released by a negative exit test on day 5 has no timer left to fire.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import asyncpg
import pytest

from services.incidents.app import create_app
from shared.clock import FakeClock
from shared.contract import decode
from tests.support.kafka import read_topic
from tests.support.platform import bearer, running_service
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

NIB = "8120000777777"
OPERATOR = bearer("operator")


async def test_timers_fire_once_after_a_restart(platform):
    facility_id = uuid.uuid4()
    start = datetime.now(UTC)
    today = start.astimezone(timezone(timedelta(hours=7))).date()
    app = create_app(clock=FakeClock(start))
    async with running_service(app) as first:
        # The plant as PermitIssued would leave it (its consumption is the slice test's subject).
        async with app.state.runtime.database.transaction() as work:
            await work.incidents.learn_plant(facility_id=facility_id, permit_id=uuid.uuid4(), nib=NIB,
                                             province_code="32", regency_code="32.75", workforce_total=300, now=start)
        # Three contacts last exposed four days ago (out on day 10), one five days ago, tested out today (day 5).
        created = await first.post("/cases", headers=bearer("company", nib=NIB), json={
            "facility_id": str(facility_id), "case_ref": "TX-01", "confirmed_on": today.isoformat(),
            "symptomatic": False, "contacts": [exposed(today, 4)] * 3 + [exposed(today, 5)]})
        assert created.status_code == 201, created.text
        case_id = created.json()["case_id"]
        contacts = (await first.get(f"/cases/{case_id}/contacts", headers=OPERATOR)).json()["items"]
        tested_out = await first.post(f"/contacts/{contacts[3]['contact_id']}/tests", headers=OPERATOR, json={
            "kind": "exit", "tested_on": today.isoformat(), "result": "negative"})
        assert tested_out.status_code == 200, tested_out.text
        assert (tested_out.json()["status"], tested_out.json()["left_on"]) == ("released", today.isoformat())
        status = (await first.get(f"/facilities/{facility_id}/status", headers=OPERATOR)).json()
        assert (status["status"], status["active_isolations"], status["active_quarantines"],
                status["active_room_closures"]) == ("room_closed", 1, 3, 1)

    # Eleven days later, a new instance: the room reopened on day 1, the three quarantines ended day 10, isolation
    # day 10.
    async with running_service(create_app(clock=FakeClock(start + timedelta(days=11)))) as second:
        async def all_over():
            status = (await second.get(f"/facilities/{facility_id}/status", headers=OPERATOR)).json()
            return status if status["status"] == "open" else None
        status = await eventually(all_over)
        assert (status["active_isolations"], status["active_quarantines"], status["active_room_closures"]) == (0, 0, 0)
        case = (await second.get(f"/cases/{case_id}", headers=OPERATOR)).json()
        assert (case["status"], case["closed_on"]) == ("closed", case["isolation"]["ends_on"])
        listed = (await second.get(f"/cases/{case_id}/contacts", headers=OPERATOR)).json()
        assert [(c["status"], c["left_on"]) for c in listed["items"]] == [
            ("released", (today + timedelta(days=10)).isoformat())] * 3 + [("released", today.isoformat())]
        assert (listed["quarantining"], listed["released"]) == (0, 4)
        await asyncio.sleep(2.5)  # two more sweeps: nothing may fire again

        def ours(messages):
            return [decode(m.value).envelope.type for m in messages if m.key == str(facility_id).encode()]
        # Read while the instance runs: its relay publishes what the first one left in the outbox too.
        messages = await read_topic(platform.bootstrap, "iomki.incidents", until=lambda ms: {
            "iomki.CaseDetected.v1", "iomki.CaseClosed.v1", "iomki.FacilityReopened.v1"} <= set(ours(ms)))
    types = ours(messages)
    assert types.count("iomki.CaseClosed.v1") == 1 and types.count("iomki.FacilityReopened.v1") == 1

    connection = await asyncpg.connect(platform.admin_url)
    try:
        timers = await connection.fetch(
            "SELECT kind, subject_id, fired_at, cancelled_at FROM incidents.timers WHERE facility_id = $1",
            facility_id)
    finally:
        await connection.close()
    fired = sorted(t["kind"] for t in timers if t["fired_at"] is not None)
    assert fired == ["isolation_end"] + ["quarantine_end"] * 3 + ["room_closure_end"]
    # The contact tested out: its timer was cancelled, never fired.
    [cancelled] = [t for t in timers if t["fired_at"] is None]
    assert (cancelled["kind"], str(cancelled["subject_id"])) == ("quarantine_end", contacts[3]["contact_id"])
    assert cancelled["cancelled_at"] is not None


async def test_a_timer_that_keeps_failing_backs_off_and_the_timers_behind_it_fire(platform):
    # A plant has one case; a timer due before all of the case's timers points at a case that does not exist, as a
    # timer broken by a bug would: firing it fails every time.
    facility_id, broken_id = uuid.uuid4(), uuid.uuid4()
    start = datetime.now(UTC)
    today = start.astimezone(timezone(timedelta(hours=7))).date()
    clock = FakeClock(start)
    app = create_app(clock=clock)
    connection = await asyncpg.connect(platform.admin_url)
    try:
        async def broken_timer() -> asyncpg.Record:
            return await connection.fetchrow(
                "SELECT attempts, next_attempt_at, last_error, fired_at FROM incidents.timers WHERE timer_id = $1",
                broken_id)

        async with running_service(app) as service:
            async with app.state.runtime.database.transaction() as work:
                await work.incidents.learn_plant(facility_id=facility_id, permit_id=uuid.uuid4(), nib=NIB,
                                                 province_code="32", regency_code="32.75", workforce_total=300,
                                                 now=start)
            created = await service.post("/cases", headers=bearer("company", nib=NIB), json={
                "facility_id": str(facility_id), "case_ref": "TX-02", "confirmed_on": today.isoformat(),
                "symptomatic": False, "contacts": [exposed(today, 4)] * 4})
            assert created.status_code == 201, created.text
            await connection.execute(
                "INSERT INTO incidents.timers (timer_id, kind, facility_id, subject_id, due_at)"
                " VALUES ($1, 'isolation_end', $2, $3, $4)", broken_id, facility_id, uuid.uuid4(),
                start + timedelta(minutes=1))

            # Eleven days on, the sweep meets the broken timer first: it fails once, and the plant's own timers,
            # due after it, all fire.
            now = clock.advance(timedelta(days=11))

            async def all_over():
                status = (await service.get(f"/facilities/{facility_id}/status", headers=OPERATOR)).json()
                return status if status["status"] == "open" else None
            status = await eventually(all_over)
            assert (status["active_isolations"], status["active_quarantines"],
                    status["active_room_closures"]) == (0, 0, 0)

            await asyncio.sleep(2.5)  # two more sweeps: the broken timer waits for its next attempt, not retried
            first = await broken_timer()
            assert (first["attempts"], first["fired_at"]) == (1, None)
            assert first["next_attempt_at"] == now + timedelta(seconds=10)
            assert "no case" in first["last_error"]

            # Each further failure waits twice as long as the one before.
            clock.advance(timedelta(seconds=10))
            second = await eventually(lambda: _after_attempts(broken_timer, 2))
            assert second["next_attempt_at"] - clock.now() == timedelta(seconds=20)
            assert second["fired_at"] is None
    finally:
        await connection.close()


def exposed(today: date, days_ago: int) -> dict:
    """A close contact last exposed `days_ago` days before today: out of quarantine 14 days after it."""
    return {"last_exposure_on": (today - timedelta(days=days_ago)).isoformat()}


async def _after_attempts(read, attempts):
    row = await read()
    return row if row["attempts"] >= attempts else None
