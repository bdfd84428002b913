"""The operator CLI against the services running as processes, on the real database and broker.

Each command runs through typer's CliRunner in a worker thread (commands start their own event loop), with the
environment an operator would set: the services' URLs, the platform's broker and its development secret.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from PIL import Image
from aiokafka import AIOKafkaProducer
from click.testing import Result

from shared import regions
from shared.contract import CONTENT_TYPE, Envelope, PermitApplied, SectorClass
from shared.settings import SERVICES
from tests.support.processes import RunningServices, cli_invoker, running_platform
from tests.support.kafka import read_topic
from tests.support.platform import bearer
from tests.support.waiting import eventually, until

pytestmark = pytest.mark.e2e

NIB = "8120000246810"
APPLICATION = {
    "company": {"nib": NIB, "npwp": "01.234.567.8-901.000", "name": "PT Tekstil Majalaya"},
    "facility": {"name": "Pabrik Majalaya 1", "address": "Jl. Raya Majalaya No. 21, Majalaya",
                 "province_code": "32", "regency_code": "32.04"},
    "kbli": ["13111"], "sector_class": "essential",
    "workforce": {"total": 220, "on_site_per_shift": [110, 110]},
    "health_protocol_commitment": True,
    "contact": {"email": "k3@tekstil.example", "phone": "+62225950000"},
}
MALFORMED = b'{"this is": "not a CloudEvent"}'


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services() -> AsyncIterator[RunningServices]:
    async with running_platform("cli") as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cli(services: RunningServices) -> Callable[..., Any]:
    return cli_invoker(services)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def permit_id(services: RunningServices) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        applied = await http.post(f"{services.url('permits')}/permits", json=APPLICATION,
                                  headers=bearer("company", nib=NIB))
    assert applied.status_code == 201, applied.text
    return applied.json()["permit_id"]


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stdout}\n{result.stderr}\n{result.exception!r}"
    return json.loads(result.stdout)


async def test_an_operator_finds_issues_and_freezes_a_permit(cli, permit_id):
    listed = ok_json(await cli("permits", "list", "--status", "submitted", "--nib", NIB, "--json"))
    assert [p["permit_id"] for p in listed["items"]] == [permit_id]

    issued = ok_json(await cli("permits", "issue", permit_id, "--reason", "documents complete", "--json"))
    assert issued["status"] == "ISSUED" and issued["permit_number"].startswith("IOMKI-")

    frozen = ok_json(await cli("permits", "freeze", permit_id, "-g", "inspection_finding", "--finding",
                               "BAP-32.16/2026/004", "-r", "protocol breach found on inspection", "--json"))
    assert frozen["status"] == "FROZEN" and frozen["freeze_count"] == 1

    shown = ok_json(await cli("permits", "show", permit_id, "--json"))
    assert shown["company_name"] == "PT Tekstil Majalaya"
    assert [(t["action"], t["actor"]) for t in shown["history"]][-2:] == [("issue", "cli-operator"),
                                                                         ("freeze", "cli-operator")]
    human = await cli("permits", "show", permit_id)
    assert human.exit_code == 0 and "PT Tekstil Majalaya" in human.stdout and "protocol breach" in human.stdout


async def test_a_refused_request_is_rendered_as_its_problem_with_exit_code_1(cli, permit_id):
    again = await cli("permits", "issue", permit_id)  # issued and frozen already
    assert again.exit_code == 1
    assert "Illegal transition" in again.stderr and "(409)" in again.stderr and "current_status" in again.stderr

    invalid = await cli("permits", "list", "--province", "3", "--json")
    assert invalid.exit_code == 1
    problem = json.loads(invalid.stdout)
    assert problem["status"] == 422 and problem["errors"][0]["field"].endswith("province")

    missing = await cli("alerts", "ack", str(uuid.uuid4()))
    assert missing.exit_code == 1 and "Alert not found." in missing.stderr

    company_token = bearer("company", nib=NIB)["Authorization"].split()[1]
    company = await cli("permits", "freeze", permit_id, "-g", "company_request", "-r", "x", "--token", company_token)
    assert company.exit_code == 1 and "(403)" in company.stderr


async def test_a_qr_token_is_verified_offline_with_the_published_key(cli, services, permit_id, tmp_path):
    async with httpx.AsyncClient(base_url=services.url("permits"), timeout=10) as http:
        number = (await http.get(f"/permits/{permit_id}", headers=bearer("operator"))).json()["permit_number"]
        token = (await http.get(f"/registry/{number}")).json()["token"]
        pem = (await http.get("/registry/keys")).json()["keys"][0]["pem"]

    online = ok_json(await cli("verify", token, "--json"))
    assert online["valid_signature"] and online["claims"]["permit_number"] == number
    assert online["live"]["operating_allowed"] is False  # frozen by the first test

    key = tmp_path / "registry.pem"
    key.write_text(pem)
    offline = ok_json(await cli("verify", token, "--public-key", str(key), "--json"))
    assert offline["claims"]["company_name"] == "PT Tekstil Majalaya" and "live" not in offline

    head, payload, signature = token.split(".")
    forged = ".".join([head, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), signature])
    refused = await cli("verify", forged, "--public-key", str(key))
    assert refused.exit_code == 1 and "INVALID" in refused.stderr


async def test_events_tail_prints_decoded_cloudevents(cli, permit_id):
    result = await cli("events", "tail", "--topic", "iomki.permits", "--type", "PermitIssued", "--from-beginning",
                       "--limit", "1", "--timeout", "30", "--json")
    events = [json.loads(line) for line in ok_text(result).splitlines()]
    assert len(events) == 1
    assert events[0]["type"] == "iomki.PermitIssued.v1" and events[0]["data"]["permit_id"] == permit_id

    pretty = await cli("events", "tail", "-t", "iomki.permits", "--from-beginning", "--limit", "3", "--timeout", "30")
    assert "iomki.PermitIssued.v1" in ok_text(pretty) and "iomki.PermitFrozen.v1" in pretty.stdout


async def test_a_dead_letter_is_listed_and_replayed_to_its_topic(cli, services):
    """Garbage is dead-lettered and stays there; a valid event whose handler had failed goes back to its own topic,
    carrying who replayed it."""
    bootstrap = services.platform.bootstrap
    facility_id = uuid.uuid4()
    valid = Envelope.wrap(PermitApplied(
        facility_id=facility_id, province_code="32", regency_code="32.04", permit_id=uuid.uuid4(), nib=NIB,
        company_name="PT Tekstil Majalaya", facility_name="Pabrik Majalaya 9", kbli=["13111"],
        sector_class=SectorClass.ESSENTIAL, workforce_total=10), service="permits")
    letter_id = str(uuid.uuid4())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("iomki.permits", MALFORMED, key=b"broken-key")
        # What a consumer writes when a handler keeps failing on a valid event (shared/messaging/consumer.py).
        await producer.send_and_wait("iomki.dlq", valid.to_bytes(), key=valid.key, headers=[
            ("content-type", CONTENT_TYPE.encode()), ("iomki-dlq-id", letter_id.encode()),
            ("iomki-dlq-reason", b"handler-failed"), ("iomki-dlq-error", b"RuntimeError: database full"),
            ("iomki-dlq-topic", b"iomki.permits"), ("iomki-dlq-partition", b"0"), ("iomki-dlq-offset", b"0"),
            ("iomki-dlq-consumer-group", b"iomki-reports")])
    finally:
        await producer.stop()

    async with asyncio.timeout(30):
        while not (letters := [d for d in ok_json(await cli("dlq", "list", "--json"))
                               if d["value"] == MALFORMED.decode()]):
            await asyncio.sleep(0.5)
    garbage = letters[0]
    assert garbage["topic"] == "iomki.permits" and garbage["key"] == "broken-key"
    assert garbage["reason"] and garbage["error"] and garbage["consumer_group"].startswith("iomki-")
    assert garbage["offset"] is not None and garbage["partition"] is not None

    human = await cli("dlq", "list")
    assert garbage["id"] in ok_text(human) and letter_id in human.stdout
    assert (await cli("dlq", "replay")).exit_code == 1  # neither --id nor --all
    refused = await cli("dlq", "replay", "--id", garbage["id"], "--id", letter_id)
    assert refused.exit_code == 1 and "not a valid event for iomki.permits" in refused.output  # nothing sent

    replayed = ok_json(await cli("dlq", "replay", "--id", letter_id, "--actor", "operator-budi", "--json"))
    assert [(r["id"], r["topic"], r["by"]) for r in replayed] == [(letter_id, "iomki.permits", "operator-budi")]
    records = await read_topic(bootstrap, "iomki.permits", until=lambda ms: any(
        m.partition == replayed[0]["partition"] and m.offset == replayed[0]["offset"] for m in ms))
    copy = next(m for m in records if m.offset == replayed[0]["offset"] and m.partition == replayed[0]["partition"])
    assert (copy.key, copy.value) == (valid.key, valid.to_bytes())
    headers = dict(copy.headers)
    assert not [name for name in headers if name.startswith("iomki-dlq-")]
    assert headers["iomki-replayed-by"] == b"operator-budi" and headers["iomki-replayed-letter"] == letter_id.encode()

    everything = await cli("dlq", "replay", "--all", "--json")
    assert everything.exit_code == 0, everything.output
    assert letter_id in {r["id"] for r in json.loads(everything.stdout)}
    assert garbage["id"] not in {r["id"] for r in json.loads(everything.stdout)}
    assert f"skipped {garbage['id']}" in everything.stderr


async def test_status_reports_health_backlog_lag_and_the_dlq(cli):
    report = ok_json(await cli("status", "--json"))
    assert [(s["service"], s["healthy"], s["ready"]) for s in report["services"]] == [
        (service, True, True) for service in SERVICES]
    assert all(s["outbox_backlog"] is not None for s in report["services"])
    assert sum(s["dead_lettered_total"] for s in report["services"]) >= 1
    groups = {g["group"]: g for g in report["consumer_groups"]}
    assert "iomki.permits" in groups["iomki-reports"]["topics"]
    assert report["dlq_messages"] >= 1 and "lag_note" not in report


async def test_reports_and_alerts_read_through_the_cli(cli):
    compliance = ok_json(await cli("reports", "compliance", "--province", "32", "--json"))
    assert compliance["province"] == "32" and "periods_due" in compliance
    alerts = ok_json(await cli("alerts", "list", "--status", "open", "--json"))
    assert isinstance(alerts["alerts"], list)


def ok_text(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result.stdout


async def test_an_operator_schedules_lists_and_withdraws_a_regime_through_the_cli(cli):
    name = f"SE-{uuid.uuid4().int % 90 + 10}/{uuid.uuid4().int % 900 + 3000}"
    day = f"{uuid.uuid4().int % 900 + 3000}-01-04"
    scheduled = ok_json(await cli("regimes", "schedule", name, "--from", day, "--rule", "weekly:MON@12:00",
                                  "--ladder", "SE-5/2021", "--source", "SE Menperin (a test)", "--json"))
    assert (scheduled["name"], scheduled["effective_on"], scheduled["ladder"]) == (name, day, "SE-5/2021")
    assert scheduled["declaration"] is True  # unless stated, as under the latest circular
    listed = ok_json(await cli("regimes", "list", "--json"))
    assert {"SE-8/2020", "SE-3/2021", "SE-5/2021", name} <= {r["name"] for r in listed["regimes"]}
    assert listed["changes"][0]["name"] == name and listed["changes"][0]["action"] == "scheduled"
    assert name in ok_text(await cli("regimes", "list"))
    assert ok_json(await cli("regimes", "withdraw", name, "--json"))["withdrawn"] is True
    refused = await cli("regimes", "withdraw", "SE-8/2020")
    assert refused.exit_code == 1 and "Regime in effect" in refused.stderr + refused.stdout


async def test_an_operator_sets_a_ppkm_level_and_publishes_rules_and_a_plant_is_told_what_it_may_run(
        cli, services, tmp_path):
    """Through the CLI: a level for Kabupaten Bandung from today, read back; a rule set published from a TOML file
    for a later day, refused for today; the allowance of a plant issued there, in Bahasa Indonesia then English."""
    application = APPLICATION | {"company": APPLICATION["company"] | {"nib": "8120000246811"}}
    async with httpx.AsyncClient(timeout=10) as http:
        applied = await http.post(f"{services.url('permits')}/permits", json=application,
                                  headers=bearer("company", nib="8120000246811"))
    assert applied.status_code == 201, applied.text
    ok_json(await cli("permits", "issue", applied.json()["permit_id"], "--reason", "documents complete", "--json"))
    facility_id = applied.json()["facility_id"]

    today = datetime.now(ZoneInfo("Asia/Jakarta")).date()
    recorded = ok_json(await cli("ppkm", "set-level", "-p", "32", "-r", "32.04", "-l", "4", "--from",
                                 today.isoformat(), "-i", "Inmendagri 22/2021", "--reason", "cases rising", "--json"))
    assert (recorded["region_code"], recorded["level"], recorded["actor"]) == ("32.04", "4", "cli-operator")
    refused = await cli("ppkm", "set-level", "-p", "32", "-r", "33.74", "-l", "4", "--from", today.isoformat(),
                        "-i", "Inmendagri 22/2021", "--reason", "a mistake")
    assert refused.exit_code == 1 and "regency_code" in refused.stderr
    listed = ok_json(await cli("ppkm", "levels", "-p", "32", "--json"))
    assert {c["region_code"]: c["level"] for c in listed["current"]}["32.04"] == "4"
    assert listed["history"][0]["reason"] == "cases rising"
    assert "Inmendagri 22/2021" in ok_text(await cli("ppkm", "levels", "-r", "32.04"))

    # The shipped file's September set, renamed and moved to a later day, as an operator would copy it.
    shipped = (Path(__file__).parents[2] / "services" / "reports" / "ppkm_rules.toml").read_text()
    september = shipped[shipped.index('[[rule_set]]\nname = "PPKM September 2021"'):]
    toml_file = tmp_path / "rules.toml"
    toml_file.write_text(september.replace('"PPKM September 2021"', '"Inmendagri 1/2030"')
                         .replace("starts_on = 2021-09-07", "starts_on = 2030-01-06"))
    published = ok_json(await cli("ppkm", "publish-rules", str(toml_file), "--json"))
    assert (published["name"], published["starts_on"], published["published_by"]) == (
        "Inmendagri 1/2030", "2030-01-06", "cli-operator")
    json_file = tmp_path / "rules.json"
    json_file.write_text(json.dumps(tomllib.loads(september)["rule_set"][0] | {
        "name": "Inmendagri 2/2030", "starts_on": today.isoformat()}))
    too_late = await cli("ppkm", "publish-rules", str(json_file))
    assert too_late.exit_code == 1 and "starts_on" in too_late.stderr
    sets = ok_json(await cli("ppkm", "rule-sets", "--json"))
    assert sets["in_force"]["Asia/Jakarta"] == "PPKM September 2021"
    assert "Inmendagri 1/2030" in ok_text(await cli("ppkm", "rule-sets"))

    async def told() -> Result | None:
        result = await cli("plants", "allowance", facility_id, "--json")
        return result if result.exit_code == 0 else None

    allowance = json.loads((await eventually(told, timeout=30)).stdout)
    assert (allowance["level"], allowance["rule_set"]) == ("4", "PPKM September 2021")
    assert allowance["summary_id"].startswith("PPKM Level 4 di Kabupaten Bandung (Inmendagri 22/2021)")
    before = ok_json(await cli("plants", "allowance", facility_id, "--on", "2021-07-01", "--json"))
    assert (before["level"], before["rule"]) == (None, "NoRestriction")
    assert "PPKM Level 4 di Kabupaten Bandung" in ok_text(await cli("plants", "allowance", facility_id))


async def test_a_frozen_company_asks_and_objects_and_an_operator_works_through_the_worklists(cli, services):
    """The casework through the CLI: the company (its own token) asks to be reactivated, the operator finds the
    request in the worklists and approves it; frozen again, the company objects and the operator upholds."""
    company = bearer("company", nib=NIB)["Authorization"].split()[1]
    async with httpx.AsyncClient(timeout=10) as http:
        body = APPLICATION | {"facility": APPLICATION["facility"] | {"address": "Jl. Raya Majalaya No. 99"}}
        applied = await http.post(f"{services.url('permits')}/permits", json=body, headers=bearer("company", nib=NIB))
    assert applied.status_code == 201, applied.text
    permit_id = applied.json()["permit_id"]

    waiting = ok_json(await cli("worklists", "--kind", "application", "--limit", "200", "--json"))
    [applications] = waiting["worklists"]
    assert applications["kind"] == "application" and applications["sla_working_days"] == 3
    assert permit_id in [item["item_id"] for item in applications["items"]]
    ok_json(await cli("permits", "issue", permit_id, "--json"))
    ok_json(await cli("permits", "freeze", permit_id, "-g", "company_request", "-r", "perusahaan berhenti sementara",
                      "--json"))

    asked = ok_json(await cli("reactivations", "request", permit_id, "-c", "Produksi siap dimulai kembali dengan "
                              "protokol kesehatan yang diperbarui.", "--token", company, "--json"))
    assert asked["status"] == "pending"
    queued = ok_json(await cli("worklists", "--kind", "reactivation_request", "--region", "32.04", "--json"))
    assert asked["request_id"] in [item["item_id"] for item in queued["worklists"][0]["items"]]
    human = await cli("worklists", "--kind", "reactivation_request")
    assert human.exit_code == 0 and "reactivation_request" in human.stdout and "working days" in human.stdout
    approved = ok_json(await cli("reactivations", "decide", asked["request_id"], "approve", "-r", "syarat terpenuhi",
                                 "--json"))
    assert approved["status"] == "approved" and approved["permit"]["status"] == "ISSUED"
    shown = ok_json(await cli("reactivations", "show", permit_id, "--token", company, "--json"))
    assert [r["status"] for r in shown["requests"]] == ["approved"]

    ok_json(await cli("permits", "revoke", permit_id, "-g", "inspection_finding", "--finding", "BAP-32.04/2026/9",
                      "-r", "protokol kesehatan tidak dijalankan", "--json"))
    filed = ok_json(await cli("objections", "file", permit_id, "-s", "Temuan itu sudah kami perbaiki pada hari yang "
                              "sama.", "--token", company, "--json"))
    upheld = ok_json(await cli("objections", "decide", filed["objection_id"], "upheld", "-r", "temuan terbukti",
                               "--json"))
    assert upheld["permit"]["status"] == "REVOKED"
    objections = ok_json(await cli("objections", "show", permit_id, "--json"))
    assert [(o["status"], o["decision"]["outcome"]) for o in objections["objections"]] == [("decided", "upheld")]
    human = await cli("objections", "show", permit_id)
    assert human.exit_code == 0 and "upheld" in human.stdout


async def test_an_operator_reads_the_sector_table_and_decides_a_companys_class_claim(cli, services):
    """A weaving mill claims to be critical; the table reads weaving essential and export-oriented. The operator
    reads the table, finds the claim among those pending and accepts it; the company sees its own claims only."""
    async with httpx.AsyncClient(timeout=10) as http:
        body = APPLICATION | {"facility": APPLICATION["facility"] | {"address": "Jl. Raya Majalaya No. 77"},
                              "sector_class": "critical"}
        applied = await http.post(f"{services.url('permits')}/permits", json=body, headers=bearer("company", nib=NIB))
    assert applied.status_code == 201, applied.text
    permit_id = applied.json()["permit_id"]

    shown = ok_json(await cli("sectors", "table", "--json"))
    assert shown["version"] == "2021.1" and shown["row_count"] == len(shown["rows"]) and "22/2021" in shown["source"]
    human = await cli("sectors", "table")
    assert human.exit_code == 0 and "Industri tekstil" in human.stdout and "2021.1" in human.stdout

    pending = ok_json(await cli("sectors", "reviews", "--permit", permit_id, "--json"))
    [review] = pending["items"]
    assert (review["claimed"]["class"], review["derived"]["class"], review["status"]) == (
        "critical", "essential", "pending")
    company = bearer("company", nib="8120000999999")["Authorization"].split()[1]
    assert ok_json(await cli("sectors", "reviews", "--token", company, "--json"))["items"] == []
    human = await cli("sectors", "reviews")
    assert human.exit_code == 0 and review["review_id"] in human.stdout

    accepted = ok_json(await cli("sectors", "decide", review["review_id"], "accept", "-r",
                                 "produk utama kain kasa medis", "--json"))
    assert (accepted["status"], accepted["permit"]["sector_class"], accepted["permit"]["class_basis"]) == (
        "accepted", "critical", "operator")
    again = await cli("sectors", "decide", review["review_id"], "reject", "-r", "salah")
    assert again.exit_code == 1 and "Review already decided" in again.stderr and "(409)" in again.stderr
    decided = ok_json(await cli("sectors", "reviews", "--status", "accepted", "--permit", permit_id, "--json"))
    assert [r["decision"]["reason"] for r in decided["items"]] == ["produk utama kain kasa medis"]
    listed = ok_json(await cli("worklists", "--kind", "class_review", "--json"))
    assert review["review_id"] not in [i["item_id"] for i in listed["worklists"][0]["items"]]


async def test_a_complaint_leads_a_regional_office_to_an_inspection_and_a_freeze_the_ministry_approves(
        cli, services, tmp_path):
    """Field supervision through the CLI: a neighbour files a complaint about an issued plant without a token and
    follows it; the regency's office finds the plant in its worklist, inspects it (a photo, masks violated) and asks
    for a freeze; an operator finds the request in the worklists and approves; the permit is frozen."""
    regency, nib = "32.17", "8120000246813"
    body = APPLICATION | {"company": APPLICATION["company"] | {"nib": nib, "name": "PT Garmen Padalarang"},
                          "facility": APPLICATION["facility"] | {"address": "Jl. Raya Padalarang No. 5",
                                                                 "regency_code": regency}}
    async with httpx.AsyncClient(timeout=10) as http:
        applied = await http.post(f"{services.url('permits')}/permits", json=body, headers=bearer("company", nib=nib))
    assert applied.status_code == 201, applied.text
    permit_id = applied.json()["permit_id"]
    number = ok_json(await cli("permits", "issue", permit_id, "--json"))["permit_number"]
    office = bearer("regional_office", region=regency)["Authorization"].split()[1]

    async def ranked() -> dict[str, Any]:
        return ok_json(await cli("worklist", "--regency", regency, "--limit", "200", "--token", office, "--json"))

    def row(page: dict[str, Any]) -> dict[str, Any] | None:
        return next((r for r in page["items"] if r["permit_id"] == permit_id), None)

    await until(ranked, row, "the issued plant in the office's worklist")
    filed = ok_json(await cli("complaints", "file", "--permit-number", number, "--category", "protocol", "--text",
                              "Pekerja berdesakan di gerbang setiap pagi tanpa masker.", "--json"))
    assert filed["reference"].startswith("ADU-") and filed["status"] == "received"
    followed = ok_json(await cli("complaints", "follow", filed["reference"], "--json"))
    assert (followed["reference"], followed["status"]) == (filed["reference"], "received")
    assert filed["reference"] in ok_text(await cli("complaints", "follow", filed["reference"]))
    worklist = await until(ranked, lambda page: (row(page) or {}).get("open_complaints"), "the complaint ranked")
    assert row(worklist)["parts"]["complaints"] == 1
    human = ok_text(await cli("worklist", "--regency", regency, "--token", office))
    assert number in human and "PT Garmen Padalarang" in human and "complaints=1" in human

    complaints = ok_json(await cli("complaints", "list", "--token", office, "--json"))
    [complaint] = [c for c in complaints["items"] if c["permit_id"] == permit_id]
    today = datetime.now(regions.local_zone(regency)).date().isoformat()
    planned = ok_json(await cli("inspections", "plan", permit_id, "--on", today, "--member",
                                "Disperindag Kab. Bandung Barat:regional_office", "--member",
                                "Satgas COVID-19 Kab. Bandung Barat:task_force", "--purpose",
                                "menindaklanjuti pengaduan masyarakat", "--complaint", complaint["complaint_id"],
                                "--token", office, "--json"))
    inspection_id = planned["inspection_id"]
    photo = tmp_path / "gerbang.png"
    Image.new("RGB", (32, 24), "gray").save(photo)
    uploaded = ok_json(await cli("inspections", "photo", inspection_id, str(photo), "--token", office, "--json"))
    assert (uploaded["content_type"], uploaded["width"], uploaded["height"]) == ("image/png", 32, 24)
    recorded = await cli("inspections", "record", inspection_id, "--on", today, "--finding", "masks=violated",
                         "--finding", "handwash_stations=met", "--notes", "Antrean pagi tanpa masker.",
                         "--token", office)
    assert f"{planned['reference']}): recorded, 1 violated" in ok_text(recorded)
    shown = ok_json(await cli("inspections", "show", inspection_id, "--token", office, "--json"))
    assert shown["findings"]["masks"] == "violated" and shown["photo_ids"] == [uploaded["photo_id"]]
    assert shown["complaint_ids"] == [complaint["complaint_id"]]

    asked = ok_json(await cli("sanction-requests", "request", permit_id, "--action", "freeze", "-g",
                              "inspection_finding", "--inspection", inspection_id, "-r",
                              "protokol kesehatan dilanggar di gerbang pabrik", "--token", office, "--json"))
    assert asked["status"] == "pending" and asked["office_region"] == regency

    async def queued() -> dict[str, Any]:
        return ok_json(await cli("worklists", "--kind", "sanction_request", "--limit", "200", "--json"))

    await until(queued, lambda lists: asked["request_id"] in [i["item_id"] for i in lists["worklists"][0]["items"]],
                "the office's request in the operator's worklist")
    pending = ok_json(await cli("sanction-requests", "list", "--status", "pending", "--regency", regency, "--json"))
    [listed] = pending["items"]
    assert (listed["request_id"], listed["ground"]["evidence"]["finding"]) == (asked["request_id"],
                                                                               planned["reference"])
    decided = ok_text(await cli("sanction-requests", "decide", asked["request_id"], "approve", "-r",
                                "temuan pemeriksaan terbukti"))
    assert decided.strip() == f"{asked['request_id']}: approved, permit FROZEN"
    request = ok_json(await cli("sanction-requests", "show", asked["request_id"], "--json"))
    assert request["decision"]["reason"] == "temuan pemeriksaan terbukti"
    assert ok_json(await cli("permits", "show", permit_id, "--json"))["status"] == "FROZEN"
    refused = await cli("sanction-requests", "decide", asked["request_id"], "decline", "-r", "salah")
    assert refused.exit_code == 1 and "(409)" in refused.stderr
