"""The demo's closing summary: read from the services' APIs (never from the script's own counters), rendered
as tables, and checked against what the scenario's plans say must be true."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from shared.regions import local_zone
from tooling.demo.scenario import (
    CLUSTER_CASES, CLUSTER_REGENCY, COUNTED_CONTACTS, ESTATE_REGENCY, LINE_LIST_EXPOSED_DAYS_AGO, PPKM_REGENCY,
    PROVINCE_NAMES, REGIONS, Expected, Plant, Role,
)

_ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}
STATES = ("SUBMITTED", "ISSUED", "FROZEN", "REVOKED", "REJECTED")


@dataclass(frozen=True)
class Check:
    name: str
    expected: Any
    observed: Any
    ok: bool


@dataclass
class FieldStory:
    """What the field-supervision act left to follow: the estate's tenants, the complaint, the office's request."""

    tenants: int = 0
    reference: str | None = None  # the complaint's, as the complainant holds it
    request_id: str | None = None


@dataclass
class HealthStory:
    """What the health office and the traced case left to follow: the cluster's cases (the first confirmed, the
    second's onset corrected), and the single case whose first listed contact an exit test released."""

    cluster_case_ids: list[str] = field(default_factory=list)
    corrected_onset: str | None = None  # the symptom onset the office found
    traced_case_id: str | None = None
    released_contact_id: str | None = None
    exit_tested_on: str | None = None


@dataclass
class Summary:
    permits: list[dict]
    compliance: dict[str, dict]  # by province code, and "ALL"
    incidents: list[dict]
    alerts: list[dict]
    escalations: dict[str, list[dict]]  # by alert id, for acknowledged alerts
    deliveries: dict[str, list[dict]]  # by alert id, for acknowledged alerts
    cluster_permit: dict
    webhooks_received: int
    estate_compliance: dict  # as the estate reads it: its tenants'
    estate_incidents: list[dict]  # as the estate reads them: its tenants'
    complaint: dict  # as the complainant reads it, by its reference
    sanction_request: dict
    verified_cases: list[dict]  # the cluster's cases the health office confirmed and corrected, read back
    traced_case: dict  # the single case, entered with its line list
    line_list: dict  # its contacts (GET /cases/{id}/contacts)
    tracing: dict  # contacts traced per case in the cluster's regency
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def permits_by_state(self) -> Counter[str]:
        return Counter(p["status"] for p in self.permits)

    def permits_by_province(self) -> dict[str, Counter[str]]:
        table: dict[str, Counter[str]] = defaultdict(Counter)
        for permit in self.permits:
            table[permit["province_code"]][permit["status"]] += 1
        return table


class Api:
    """Reads with an operator token; any failure is the demo's failure."""

    def __init__(self, http: Any, urls: dict[str, str], operator: dict[str, str]) -> None:
        self.http, self.urls, self.operator = http, urls, operator

    async def get(self, service: str, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        """As the operator, unless `headers` name another caller (`{}`: the public, without a token)."""
        response = await self.http.get(f"{self.urls[service]}{path}",
                                       headers=self.operator if headers is None else headers, params=params)
        response.raise_for_status()
        return response.json()


async def collect(api: Api, plants: list[Plant], permit_ids: dict[int, str], webhooks_received: int,
                  field_story: FieldStory, estate: dict[str, str], health_story: HealthStory) -> Summary:
    permits: list[dict] = []
    cursor = None
    while True:
        page = await api.get("permits", "/permits", limit=200, **({"cursor": cursor} if cursor else {}))
        permits += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    compliance = {code: await api.get("reports", "/compliance", province=code) for code, _, _, _ in REGIONS}
    compliance["ALL"] = await api.get("reports", "/compliance")
    incidents = (await api.get("incidents", "/incidents", limit=500))["items"]
    alerts = (await api.get("notifier", "/alerts", limit=1000))["alerts"]
    escalations, deliveries = {}, {}
    for alert in alerts:
        if alert["status"] == "acknowledged":
            escalations[alert["alert_id"]] = (await api.get("notifier", f"/alerts/{alert['alert_id']}"))["escalations"]
            deliveries[alert["alert_id"]] = (await api.get(
                "notifier", f"/alerts/{alert['alert_id']}/deliveries"))["deliveries"]
    cluster = next(p for p in plants if p.role is Role.CLUSTER)
    cluster_permit = await api.get("permits", f"/permits/{permit_ids[cluster.index]}")
    estate_compliance = await api.get("reports", "/compliance", headers=estate)
    estate_incidents = (await api.get("incidents", "/incidents", headers=estate, limit=500))["items"]
    complaint = await api.get("supervision", f"/public/complaints/{field_story.reference}", headers={})
    sanction_request = await api.get("permits", f"/sanction-requests/{field_story.request_id}")
    verified_cases = [await api.get("incidents", f"/cases/{case_id}") for case_id in health_story.cluster_case_ids[:2]]
    traced_case = await api.get("incidents", f"/cases/{health_story.traced_case_id}")
    line_list = await api.get("incidents", f"/cases/{health_story.traced_case_id}/contacts")
    tracing = await api.get("incidents", "/tracing", regency=CLUSTER_REGENCY)
    return Summary(permits, compliance, incidents, alerts, escalations, deliveries, cluster_permit, webhooks_received,
                   estate_compliance, estate_incidents, complaint, sanction_request, verified_cases, traced_case,
                   line_list, tracing)


FILED_LATE = 3  # the frozen plant's missed periods, filed for its reactivation
# All a complainant may read of their complaint: never the plant, the words or who handles it.
PUBLIC_COMPLAINT_FIELDS = {"reference", "status", "filed_at", "updated_at"}


def check(summary: Summary, plants: list[Plant], permit_ids: dict[int, str], facility_ids: dict[int, str],
          expect: Expected, field_story: FieldStory, health_story: HealthStory) -> list[Check]:
    """The scenario's expectations against what the services said."""
    by_role = {plant.role: plant for plant in plants}
    states = summary.permits_by_state()
    status_of = {p["permit_id"]: p["status"] for p in summary.permits}
    overall = summary.compliance["ALL"]
    cluster_facility = facility_ids[by_role[Role.CLUSTER].index]
    cluster_incident = next((i for i in summary.incidents if i["facility_id"] == cluster_facility), {})
    cluster_alert = next((a for a in summary.alerts if a["facility_id"] == cluster_facility
                          and a["event_type"] == "ClusterDeclared"), {})
    late = (overall["reported"] or 0) - (overall["on_time"] or 0)
    karawang: dict[str, Any] = next((r for r in summary.compliance[PPKM_REGENCY.split(".")[0]]["ppkm"]["regions"]
                                     if r["regency_code"] == PPKM_REGENCY), {})
    capacity_facility = facility_ids[by_role[Role.CAPACITY].index]
    # The first breach's alert, acknowledged; the second breach came after it and may have raised its own.
    capacity_alerts = sorted(a["status"] for a in summary.alerts if a["facility_id"] == capacity_facility
                             and a["event_type"] == "CapacityBreachDetected")
    delivered = sum(1 for ds in summary.deliveries.values() for d in ds if d["status"] == "delivered")
    tenants = sum(1 for plant in plants if plant.tenant)
    complained = permit_ids[by_role[Role.COMPLAINED].index]
    estate_rows = summary.estate_compliance.get("tenants") or []
    estate_closure = next((i for i in summary.estate_incidents if i["facility_id"] == cluster_facility), {})
    return [
        Check("permits in the registry", expect.plants, len(summary.permits), len(summary.permits) == expect.plants),
        Check("REVOKED permits (exactly the plant that missed while frozen)", 1, states["REVOKED"],
              states["REVOKED"] == 1 and status_of.get(permit_ids[by_role[Role.REVOKE].index]) == "REVOKED"),
        Check("FROZEN permits (only the complained plant, on its office's request: the ladder's was reactivated)", 1,
              states["FROZEN"], states["FROZEN"] == 1 and status_of.get(complained) == "FROZEN"),
        Check("the office's sanction request, decided by an operator", "approved", summary.sanction_request["status"],
              summary.sanction_request["status"] == "approved"
              and summary.sanction_request["decision"]["by"]["role"] == "operator"),
        Check("the complaint, as its reference shows it to the complainant", "inspected", summary.complaint["status"],
              summary.complaint["status"] == "inspected" and set(summary.complaint) <= PUBLIC_COMPLAINT_FIELDS),
        Check("reactivated on conditions (its missed reports filed late)", "ISSUED",
              status_of.get(permit_ids[by_role[Role.FREEZE].index]),
              status_of.get(permit_ids[by_role[Role.FREEZE].index]) == "ISSUED"),
        Check("ISSUED permits", expect.plants - 2, states["ISSUED"], states["ISSUED"] == expect.plants - 2),
        Check(f"the estate's confirmed tenants ({ESTATE_REGENCY})", tenants, field_story.tenants,
              field_story.tenants == tenants),
        Check("the estate reads its tenants' compliance, plant by plant", tenants, len(estate_rows),
              len(estate_rows) == tenants),
        Check("the estate sees the cluster's closure across its estate", "plant_closed",
              estate_closure.get("status"), estate_closure.get("status") == "plant_closed"),
        # The frozen plant's three missed periods, filed late for its reactivation, are reported (late), no longer
        # overdue; their warnings stay.
        Check("reports received", expect.reports + FILED_LATE, overall["reported"],
              overall["reported"] == expect.reports + FILED_LATE),
        Check("late reports (at least those planned late)", f"≥ {expect.late_at_least + FILED_LATE}", late,
              late >= expect.late_at_least + FILED_LATE),
        Check("overdue periods", expect.missed - FILED_LATE, overall["overdue"],
              overall["overdue"] == expect.missed - FILED_LATE),
        Check("warnings issued", expect.missed, overall["warnings"], overall["warnings"] == expect.missed),
        Check("periods excused (plant closed)", expect.excused, overall["excused_closed"],
              overall["excused_closed"] == expect.excused),
        Check("cluster plant closed (permits)", "closed", summary.cluster_permit["operating_status"],
              summary.cluster_permit["operating_status"] == "closed"),
        Check("cluster plant closed (incidents)", "plant_closed, 3 cases",
              f"{cluster_incident.get('status')}, {cluster_incident.get('cases_total')} cases",
              cluster_incident.get("status") == "plant_closed" and cluster_incident.get("cases_total") == 3),
        Check("cluster alert escalated to national, then acknowledged", "acknowledged at national",
              f"{cluster_alert.get('status')} at {cluster_alert.get('level')}",
              cluster_alert.get("status") == "acknowledged" and cluster_alert.get("level") == "national"),
        Check("webhook deliveries of acknowledged alerts", "> 0", delivered, delivered > 0),
        Check(f"PPKM level of {PPKM_REGENCY} (Karawang, moved from 3)", "4", karawang.get("level"),
              karawang.get("level") == "4"),
        Check("capacity breaches (the garment plant over its level-4 cap, twice)", expect.breaches,
              overall["capacity_breaches"], overall["capacity_breaches"] == expect.breaches),
        Check("capacity breach alerts, the first acknowledged by Karawang's task force", "acknowledged among them",
              ", ".join(capacity_alerts), "acknowledged" in capacity_alerts),
        *_health_checks(summary, health_story),
    ]


def _health_checks(summary: Summary, story: HealthStory) -> list[Check]:
    """The health office's verdicts, the traced case's line list and the regency's tracing, as incidents reads them
    back: each settled by the calls that made it, so what they read does not change while the summary is read."""
    confirmed, corrected = summary.verified_cases
    by_office = confirmed["verification"]
    onset = story.corrected_onset
    listed, contacts = summary.line_list, len(LINE_LIST_EXPOSED_DAYS_AGO)
    first = listed["items"][0] if listed["items"] else {}
    tracing = summary.tracing
    return [
        Check(f"a cluster case confirmed by the health office of {CLUSTER_REGENCY}", "confirmed by health_office",
              f"{by_office['status']} by {by_office['verified_by_role']}",
              by_office["status"] == "confirmed" and by_office["verified_by_role"] == "health_office"),
        Check("another's symptom onset corrected by it, its isolation counted from that day",
              f"corrected: onset and isolation from {onset}",
              f"{corrected['verification']['status']}: onset {corrected['symptom_onset_on']}, isolation from "
              f"{corrected['isolation']['starts_on']}",
              corrected["verification"]["status"] == "corrected"
              and corrected["symptom_onset_on"] == corrected["isolation"]["starts_on"] == onset),
        Check("the single case's line list: a negative exit test on day 5 releases its first contact",
              f"{contacts} listed: #1 released on {story.exit_tested_on}, {contacts - 1} in quarantine",
              f"{listed['total']} listed: #{first.get('number')} {first.get('status')} on {first.get('left_on')}, "
              f"{listed['quarantining']} in quarantine",
              (listed["total"], listed["released"], listed["quarantining"], listed["tested_positive"]) == (
                  contacts, 1, contacts - 1, 0) and first.get("contact_id") == story.released_contact_id
              and first.get("left_on") == story.exit_tested_on),
        Check(f"close contacts traced per case in {CLUSTER_REGENCY} (the cluster's, counted)",
              f"{CLUSTER_CASES} cases, {COUNTED_CONTACTS} per case: below the target",
              f"{tracing['cases']} cases, {tracing['contacts_per_case']} per case: "
              + ("meets" if tracing["meets_target"] else "below") + f" the target of {tracing['target']}",
              tracing["cases"] == CLUSTER_CASES and tracing["contacts_per_case"] == COUNTED_CONTACTS
              and not tracing["meets_target"] and tracing["plants_below_target"] == 1),
    ]


def render(summary: Summary, console: Console) -> None:
    console.rule("[bold]What the services report")
    by_province = summary.permits_by_province()
    grid = _table("Permits by state and province (permits: GET /permits)",
                  ["Province", "Zone", *STATES[1:4], "Total"])
    for code, name, _, _ in REGIONS:
        row = by_province.get(code, Counter())
        grid.add_row(f"{code} {name}", _ZONE_NAMES.get(local_zone(code).key, ""),
                     *(_n(row[s]) for s in STATES[1:4]), str(sum(row.values())))
    total = summary.permits_by_state()
    grid.add_row("[bold]All", "", *(f"[bold]{total[s]}" for s in STATES[1:4]), f"[bold]{len(summary.permits)}")
    console.print(grid)

    grid = _table("Compliance by province (reports: GET /compliance)",
                  ["Province", "Due", "Reported", "On time", "On-time rate", "Overdue", "Warnings", "Excused",
                   "Frozen", "Closed"])
    for code in [*PROVINCE_NAMES, "ALL"]:
        c = summary.compliance[code]
        label = f"{code} {PROVINCE_NAMES[code]}" if code != "ALL" else "[bold]All"
        grid.add_row(label, str(c["periods_due"]), str(c["reported"]), str(c["on_time"]), _rate(c["on_time_rate"]),
                     _n(c["overdue"]), _n(c["warnings"]), _n(c["excused_closed"]), _n(c["frozen_plants"]),
                     _n(c["closed_plants"]))
    console.print(grid)

    grid = _table("Incidents (incidents: GET /incidents)", ["Plant", "Regency", "Status", "Cases", "Isolating",
                                                            "Quarantined"])
    for item in summary.incidents:
        grid.add_row(item["facility_id"][:8], item["regency_code"], item["status"], str(item["cases_total"]),
                     str(item["active_isolations"]), str(item["active_quarantines"]))
    console.print(grid)

    grid = _table("The health office and contact tracing (incidents: GET /cases/{id}, /cases/{id}/contacts)",
                  ["Case", "Verification", "Symptom onset", "Isolation", "Contacts", "Released", "In quarantine"])
    listed = summary.line_list
    for case in [*summary.verified_cases, summary.traced_case]:
        tally = [str(listed["released"]), str(listed["quarantining"])] if case is summary.traced_case else ["", ""]
        grid.add_row(case["case_ref"], case["verification"]["status"], case["symptom_onset_on"] or "—",
                     f"{case['isolation']['starts_on']} – {case['isolation']['ends_on']}", str(case["close_contacts"]),
                     *tally)
    console.print(grid)
    tracing = summary.tracing
    console.print(f"Contacts traced per case in {tracing['regency_code']} (GET /tracing): "
                  f"{tracing['contacts_per_case']} over {tracing['cases']} cases, target {tracing['target']}")

    grid = _table("Alerts (notifier: GET /alerts)", ["Event", "Severity", "Alerts", "Events", "Open",
                                                     "Acknowledged", "Highest level"])
    grouped: dict[str, list[dict]] = defaultdict(list)
    for alert in summary.alerts:
        grouped[alert["event_type"]].append(alert)
    levels = ("regency", "province", "national")
    for event_type, alerts in sorted(grouped.items()):
        acked = sum(1 for a in alerts if a["status"] == "acknowledged")
        grid.add_row(event_type, alerts[0]["severity"], str(len(alerts)), str(sum(a["count"] for a in alerts)),
                     str(len(alerts) - acked), str(acked), max((a["level"] for a in alerts), key=levels.index))
    console.print(grid)

    grid = _table("Response times of acknowledged alerts (notifier: GET /alerts/{id}, /deliveries)",
                  ["Event", "Regency", "Escalations", "Acknowledged by", "At level", "Response", "Webhooks"])
    for alert in summary.alerts:
        if alert["status"] != "acknowledged":
            continue
        seconds = (_at(alert["acknowledged_at"]) - _at(alert["first_seen_at"])).total_seconds()
        hops = " → ".join([e["from_level"] for e in summary.escalations[alert["alert_id"]]][:1]
                          + [e["to_level"] for e in summary.escalations[alert["alert_id"]]]) or "—"
        deliveries = summary.deliveries[alert["alert_id"]]
        delivered = sum(1 for d in deliveries if d["status"] == "delivered")
        grid.add_row(alert["event_type"], alert["regency_code"], hops,
                     f"{alert['acknowledged_by']} ({alert['acknowledged_role']})", alert["level"],
                     f"{seconds:.1f} s", f"{delivered}/{len(deliveries)} delivered")
    console.print(grid)
    console.print(f"Webhook requests received by the demo's task-force endpoint: {summary.webhooks_received}")


def render_checks(checks: list[Check], console: Console) -> None:
    grid = _table("The scenario's expectations against the APIs", ["Check", "Expected", "Observed", ""])
    for c in checks:
        grid.add_row(c.name, str(c.expected), str(c.observed), "[green]✔[/green]" if c.ok else "[red]✘[/red]")
    console.print(grid)


def _table(title: str, columns: list[str]) -> Table:
    grid = Table(title=title, title_justify="left", header_style="bold")
    for position, column in enumerate(columns):
        grid.add_column(column, justify="left" if position == 0 else "right")
    return grid


def _n(value: int | None) -> str:
    return "·" if not value else str(value)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)
