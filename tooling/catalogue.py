"""The event catalogue for agencies, generated from the contract: `docs/events.md`, `docs/events.html`, and the
AsyncAPI document of the public topics, `docs/asyncapi.json` (built by faststream from the same models).

    python -m tooling.catalogue          # or: make docs

Everything comes from `shared.contract`: the topic registry (public topics only: never `iomki.internal.*` nor
the dead-letter topic), each event model's JSON schema (fields, types, required, descriptions), and the
module's own compatibility rules. Examples are real events: built from the schema, validated by the model and
wrapped by `Envelope.wrap`, so a catalogue example is always something the platform could publish. Output is
deterministic (fixed ids and times), which lets a test assert the committed files are current.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared import contract
from shared.contract import TOPICS, BaseEvent, Envelope, Topic, events_on

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLE_NAMESPACE = uuid.UUID("5f0c1b8e-3b0a-4f5e-9d3c-1a2b3c4d5e6f")
EXAMPLE_FACILITY = uuid.uuid5(EXAMPLE_NAMESPACE, "facility")
EXAMPLE_TIME = datetime(2021, 7, 12, 2, 30, tzinfo=UTC)

# A new public topic needs its summary here (catalogue() fails with its name until it has one).
TOPIC_SUMMARIES = {
    "iomki.permits": "The life of each plant's operating permit: application, decision, freezes, revocation.",
    "iomki.reports": "Periodic reporting: reminders, submissions (counts only), missed deadlines, warnings and "
                     "the sanctions they lead to.",
    "iomki.incidents": "COVID-19 cases at plants (pseudonymous), isolations, contact quarantines, clusters, "
                       "closures and reopenings.",
    "iomki.alerts": "Alerts to the regional task forces (gugus tugas): raised, delivered, escalated, "
                    "acknowledged.",
    "iomki.ppkm": "PPKM levels (community activity restrictions) per regency and date, as the agency that sets "
                  "them publishes them. iomki reads them to set each plant's on-site staffing cap.",
    "iomki.supervision": "Field supervision: complaints from the public about a plant, inspections and their "
                         "findings against the health protocol, and regional offices' requests to the ministry to "
                         "freeze or revoke a permit. Codes and counts only: no complainant, inspector or words.",
}

# Who writes a topic and what keys it, where that is not a service of ours keyed by the plant.
TOPIC_KEYS = {"iomki.ppkm": "province_code"}
TOPIC_PUBLISHERS = {"iomki.ppkm": "the agency that sets PPKM levels (source `/iomki/ppkm`)"}


def _key(topic: Topic) -> str:
    return TOPIC_KEYS.get(topic.name, "facility_id")


def _publisher(topic: Topic) -> str:
    return TOPIC_PUBLISHERS.get(topic.name, f"the {topic.owner} service")

# Fields every event (or every event of a topic) carries; the models leave them undescribed.
COMMON_FIELDS = {
    "facility_id": "The plant. Also the message key and the envelope's `subject`: events about one plant are "
                   "ordered within their topic.",
    "province_code": "Kemendagri province code of the plant, e.g. `32` (Jawa Barat).",
    "regency_code": "Kemendagri regency/city code of the plant, e.g. `32.16` (Kabupaten Bekasi).",
    "permit_id": "The permit this event is about.",
    "nib": "The company's business identification number (Nomor Induk Berusaha).",
    "company_name": "The company's registered name.",
    "facility_name": "The plant's name.",
    "kbli": "KBLI 2020 business classification codes of the plant's activities.",
    "sector_class": "The plant's sector class in force (critical, essential or non-essential), which sets the on-site "
                    "workforce limits: the KBLI table's reading of its principal KBLI code (the PPKM instructions' "
                    "critical and essential sectors), or the company's claim an operator accepted.",
    "workforce_total": "Total workforce of the plant.",
    "permit_number": "The permit's public number, as printed on the permit and in the registry.",
    "issued_at": "When the permit was issued.",
    "reason": "Why, as the deciding officer or rule recorded it.",
    "reapply_after": "The first day the company may apply again.",
    "period_id": "The reporting period.",
    "deadline": "The period's reporting deadline.",
    "report_id": "The submitted report.",
    "warning_id": "The warning.",
    "case_id": "The case (pseudonymous; no personal data travels).",
    "cluster_id": "The cluster of cases.",
    "closure_id": "The closure order.",
    "alert_id": "The alert; later events about the same alert repeat it.",
    "level": "Task-force level: regency, province or national.",
}

ENVELOPE_ATTRIBUTES = {
    "specversion": "CloudEvents version, always `1.0`.",
    "id": "Unique id of this event. Deliveries are at-least-once: deduplicate on it.",
    "source": "The publishing service, `/iomki/<service>`.",
    "type": "`iomki.<Name>.v<major>`: which event, and which major version of its data.",
    "time": "When it happened (RFC 3339, with offset).",
    "subject": "The plant's `facility_id` (a PPKM level's `province_code`), equal to the Kafka message key.",
    "datacontenttype": "Always `application/json`.",
    "data": "The event's fields, listed per event below.",
    "correlationid": "Id of the request that started the chain of events (extension attribute).",
    "causationid": "Id of the event that directly caused this one (extension attribute).",
}

# Plausible values for string fields, so examples read like real events rather than placeholders.
SAMPLE_STRINGS = {
    "province_code": "32", "regency_code": "32.16", "nib": "8120000123456",
    "company_name": "PT Baja Nusantara", "facility_name": "Pabrik Cibitung", "kbli": "24101",
    "permit_number": "IOMKI-2021-000123", "reason": "Three weekly reports missed in a row",
    "estate_permit_number": "IOMKI-2021-000042", "estate_name": "PT Kawasan Industri Nusantara",
    "estate_nib": "8120000654321", "reference": "INSP-2021-000007", "office_region": "32.16",
    "rule": "ThreeWarningsInARow", "alert_key": "cluster:32.16",
    "event_type": "iomki.ClusterDeclared.v1", "acknowledged_by_role": "task_force",
    "verified_by_role": "health_office", "closed_by_role": "health_office",
    # The platform's opaque reference of a case: its id, never the company's own reference.
    "case_ref": str(uuid.uuid5(EXAMPLE_NAMESPACE, "CaseDetected.case_id")),
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True)
class EventDoc:
    type_name: str
    name: str
    description: str
    fields: list[Field]
    example: str


@dataclass(frozen=True)
class TopicDoc:
    topic: Topic
    summary: str
    events: list[EventDoc]


def public_topics() -> list[Topic]:
    return [topic for topic in TOPICS if topic.public]


def catalogue() -> list[TopicDoc]:
    return [TopicDoc(topic, TOPIC_SUMMARIES[topic.name], [_event_doc(cls) for cls in events_on(topic)])
            for topic in public_topics()]


def compatibility_rules() -> str:
    """The contract's own paragraph on compatibility, so the rules are stated once."""
    paragraphs = (contract.__doc__ or "").strip().split("\n\n")
    rules = next(p for p in paragraphs if p.startswith("Compatibility:"))
    text = " ".join(rules.removeprefix("Compatibility:").split())
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------------------------- schema


def _event_doc(cls: type[BaseEvent]) -> EventDoc:
    schema = cls.model_json_schema()
    defs = schema.get("$defs", {})
    fields = list(_fields(schema, defs, prefix=""))
    return EventDoc(cls.type_name(), cls.__name__, " ".join((cls.__dict__.get("__doc__") or "").split()),
                    fields, _example(cls, schema, defs))


def _fields(schema: dict[str, Any], defs: dict[str, Any], *, prefix: str):
    required = set(schema.get("required", []))
    for name, node in schema["properties"].items():
        path = f"{prefix}{name}"
        description = node.get("description") or (COMMON_FIELDS.get(name, "") if not prefix else "")
        if name not in required and "default" in node:
            description = f"{description} Optional; default `{json.dumps(node['default'])}`.".strip()
        yield Field(path, _type(node, defs), name in required, description)
        target = _resolve(node, defs)
        if target.get("type") == "object" and "properties" in target:
            yield from _fields(target, defs, prefix=f"{path}.")


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _type(node: dict[str, Any], defs: dict[str, Any]) -> str:
    if "anyOf" in node:
        return " or ".join(_type(option, defs) for option in node["anyOf"])
    node = _resolve(node, defs)
    if "enum" in node:
        return "one of " + ", ".join(f"`{value}`" for value in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    kind = node.get("type")
    if kind == "array":
        return f"array of {_type(node['items'], defs)}" + _bounds(node, "maxItems", "items")
    if kind == "object":
        return "object"
    if kind == "string" and "format" in node:
        return {"uuid": "string (UUID)", "date-time": "string (RFC 3339 date-time)",
                "date": "string (date, YYYY-MM-DD)"}.get(node["format"], f"string ({node['format']})")
    if kind == "string" and "pattern" in node:
        return f"string matching `{node['pattern']}`"
    if kind == "string":
        return "string" + _bounds(node, "maxLength", "characters")
    if kind == "integer" and "maximum" in node:
        return f"integer, {node.get('minimum', '…')} to {node['maximum']}"
    return str(kind)


def _bounds(node: dict[str, Any], key: str, unit: str) -> str:
    """The limit the contract sets, stated for the agencies as their consumers will meet it."""
    return f", at most {node[key]} {unit}" if key in node else ""


def _sample(name: str, node: dict[str, Any], defs: dict[str, Any], owner: str) -> Any:
    if "anyOf" in node:
        return _sample(name, next(o for o in node["anyOf"] if o.get("type") != "null"), defs, owner)
    node = _resolve(node, defs)
    if "enum" in node:
        return node["enum"][0]
    kind, fmt = node.get("type", ""), node.get("format")
    if kind == "object":
        return {key: _sample(key, sub, defs, owner) for key, sub in node["properties"].items()}
    if kind == "array":
        return [_sample(name, node["items"], defs, owner)]
    if fmt == "uuid":
        return str(EXAMPLE_FACILITY if name == "facility_id" else uuid.uuid5(EXAMPLE_NAMESPACE, f"{owner}.{name}"))
    if fmt == "date-time":
        return EXAMPLE_TIME.isoformat()
    if fmt == "date":
        return EXAMPLE_TIME.date().isoformat()
    return {"integer": 1, "number": 1.0, "boolean": False}.get(kind, SAMPLE_STRINGS.get(name, name))


def _example(cls: type[BaseEvent], schema: dict[str, Any], defs: dict[str, Any]) -> str:
    data = {name: _sample(name, node, defs, cls.__name__) for name, node in schema["properties"].items()}
    event = cls.model_validate(data)  # the example must be a valid event of the contract
    envelope = Envelope.wrap(event, service=cls.topic.owner, event_id=uuid.uuid5(EXAMPLE_NAMESPACE, cls.__name__),
                             correlation_id=str(uuid.uuid5(EXAMPLE_NAMESPACE, "request")), time=EXAMPLE_TIME)
    return json.dumps(envelope.model_dump(mode="json"), indent=2, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------- markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    topics = catalogue()
    out = [
        "# iomki event catalogue",
        "",
        "<!-- Generated by `python -m tooling.catalogue` (make docs) from shared/contract.py. Do not edit. -->",
        "",
        "The public events of iomki, for the agencies that subscribe to its topics (industry and health offices, "
        "police and Satpol PP, ministries). `examples/agency_subscriber.py` is a complete subscriber; "
        "[`asyncapi.json`](asyncapi.json) is the same contract as an AsyncAPI 3 document, for tooling.",
        "",
        "## On the wire",
        "",
        "- Every message is a [CloudEvents 1.0](https://cloudevents.io) event in **structured mode**: the value "
        "is the whole event as JSON, with header `content-type: application/cloudevents+json`.",
        "- The **message key is the plant's `facility_id`** (also the envelope's `subject`), so all events about "
        "one plant are in one partition, in order; PPKM levels are keyed by their province. There is no order "
        "between plants or between topics.",
        "- Delivery is **at least once**: an event may arrive twice; deduplicate on its `id`.",
        "- Read with your own consumer group; your principal may read only the topics below.",
        "",
        "| attribute | type | meaning |",
        "|---|---|---|",
    ]
    envelope_schema = Envelope.model_json_schema()
    for name, node in envelope_schema["properties"].items():
        out.append(f"| `{name}` | {_md_cell(_type(node, envelope_schema.get('$defs', {})))} | "
                   f"{_md_cell(ENVELOPE_ATTRIBUTES[name])} |")
    out += ["", "## Compatibility", "", compatibility_rules(), "",
            "Each event's `type` carries its major version: a subscriber that checks `type` never misreads a "
            "changed event.", "", "## Topics", "",
            "| topic | partitions | key | published by | events |", "|---|---|---|---|---|"]
    for doc in topics:
        out.append(f"| [`{doc.topic.name}`](#{_anchor(doc.topic.name)}) | {doc.topic.partitions} | "
                   f"`{_key(doc.topic)}` | {_publisher(doc.topic)} | {len(doc.events)} |")
    for doc in topics:
        out += ["", f"## {doc.topic.name}", "", doc.summary, "",
                f"Key: `{_key(doc.topic)}`. Partitions: {doc.topic.partitions}. Published by "
                f"{_publisher(doc.topic)}.", "",
                *[f"- [`{event.type_name}`](#{_anchor(event.type_name)})" for event in doc.events]]
        for event in doc.events:
            out += ["", f"### {event.type_name}", ""]
            if event.description:
                out += [event.description, ""]
            out += ["| field | type | required | description |", "|---|---|---|---|"]
            out += [f"| `{f.name}` | {_md_cell(f.type)} | {'yes' if f.required else 'no'} | "
                    f"{_md_cell(f.description)} |" for f in event.fields]
            out += ["", "```json", event.example, "```"]
    return "\n".join(out) + "\n"


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation but hyphens dropped, spaces to hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


# ---------------------------------------------------------------------------------------------- html


STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1c2430;background:#f6f7f9}
header{background:#12355b;color:#fff;padding:1.2rem 2rem}header h1{margin:0;font-size:1.5rem}
header p{margin:.3rem 0 0;opacity:.85}main{display:flex;gap:2rem;padding:1.5rem 2rem}
nav{flex:0 0 16rem;position:sticky;top:1rem;align-self:flex-start;font-size:.9rem}
nav ul{list-style:none;padding-left:.8rem;margin:.2rem 0}nav a{color:#12355b;text-decoration:none}
article{flex:1;min-width:0}section.topic{background:#fff;border:1px solid #dde2e8;border-radius:8px;
padding:1rem 1.4rem;margin-bottom:1.5rem}.event{border-top:1px solid #e6e9ee;padding-top:.6rem;margin-top:1rem}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0}
th,td{text-align:left;border-bottom:1px solid #e6e9ee;padding:.35rem .5rem;vertical-align:top}
th{background:#eef1f5}code{font:.85em ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef1f5;
padding:0 .2em;border-radius:3px}pre{background:#0f1c2b;color:#e3ecf5;padding:.8rem;border-radius:6px;
overflow:auto;font-size:.8rem}pre code{background:none;color:inherit}.req{color:#a33;font-weight:600}
details summary{cursor:pointer;color:#12355b}
"""


def _inline(text: str) -> str:
    """Escape text and turn the catalogue's `code` spans into <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


def render_html() -> str:
    topics = catalogue()
    envelope_schema = Envelope.model_json_schema()
    nav = "".join(
        f'<li><a href="#{_anchor(d.topic.name)}">{d.topic.name}</a><ul>'
        + "".join(f'<li><a href="#{_anchor(e.type_name)}">{e.name}</a></li>' for e in d.events)
        + "</ul></li>" for d in topics
    )
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>iomki event catalogue</title>",
        "<!-- Generated by `python -m tooling.catalogue` (make docs) from shared/contract.py. Do not edit. -->",
        f"<style>{STYLE}</style></head><body>",
        "<header><h1>iomki event catalogue</h1><p>Public events for subscribing agencies: topics, fields, keys, "
        "examples and compatibility rules.</p></header>",
        f'<main><nav><strong>Topics</strong><ul><li><a href="#on-the-wire">On the wire</a></li>'
        f'<li><a href="#compatibility">Compatibility</a></li>{nav}</ul></nav><article>',
        '<section class="topic"><h2 id="on-the-wire">On the wire</h2>',
        "<p>Every message is a CloudEvents 1.0 event in <strong>structured mode</strong> (header "
        "<code>content-type: application/cloudevents+json</code>). The <strong>message key is the plant's "
        "<code>facility_id</code></strong> (also <code>subject</code>): events about one plant are in order. "
        "Delivery is at least once: deduplicate on <code>id</code>. Read with your own consumer group.</p>",
        "<table><tr><th>attribute</th><th>type</th><th>meaning</th></tr>",
        *[f"<tr><td><code>{name}</code></td><td>{_inline(_type(node, envelope_schema.get('$defs', {})))}</td>"
          f"<td>{_inline(ENVELOPE_ATTRIBUTES[name])}</td></tr>"
          for name, node in envelope_schema["properties"].items()],
        "</table></section>",
        f'<section class="topic"><h2 id="compatibility">Compatibility</h2><p>{_inline(compatibility_rules())}</p>'
        "<p>Each event's <code>type</code> carries its major version.</p></section>",
    ]
    for doc in topics:
        parts.append(f'<section class="topic"><h2 id="{_anchor(doc.topic.name)}">{doc.topic.name}</h2>'
                     f"<p>{_inline(doc.summary)}</p><p>Key: <code>{_key(doc.topic)}</code> · partitions: "
                     f"{doc.topic.partitions} · published by {_inline(_publisher(doc.topic))}</p>")
        for event in doc.events:
            rows = "".join(
                f"<tr><td><code>{f.name}</code></td><td>{_inline(f.type)}</td>"
                f"<td>{'<span class=req>yes</span>' if f.required else 'no'}</td><td>{_inline(f.description)}</td></tr>"
                for f in event.fields
            )
            parts.append(
                f'<div class="event"><h3 id="{_anchor(event.type_name)}">{event.type_name}</h3>'
                + (f"<p>{_inline(event.description)}</p>" if event.description else "")
                + f"<table><tr><th>field</th><th>type</th><th>required</th><th>description</th></tr>{rows}</table>"
                + f"<details><summary>Example envelope</summary><pre><code>{html.escape(event.example)}</code>"
                "</pre></details></div>"
            )
        parts.append("</section>")
    parts.append("</article></main></body></html>")
    return "\n".join(parts) + "\n"


def render_asyncapi() -> str:
    """The public topics as one AsyncAPI 3 document, for agencies' code generators and tooling."""
    from faststream.kafka import KafkaBroker
    from faststream.specification import AsyncAPI

    from shared.messaging.bus import declare_publishers

    broker = KafkaBroker("kafka.iomki.example:9093")  # documentation only: never connected
    for topic in public_topics():
        declare_publishers(broker, topic)
    document = AsyncAPI(broker, title="iomki public events", version="1.0.0",
                        description="Events iomki publishes for agencies; see events.md.").to_specification()
    return json.dumps(document.to_jsonable(), indent=2, sort_keys=True) + "\n"


def write(directory: Path = DOCS) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("events.md", render_markdown()), ("events.html", render_html()),
                       ("asyncapi.json", render_asyncapi())):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    import structlog

    for path in write():
        structlog.get_logger(__name__).info("catalogue_written", path=str(path))


if __name__ == "__main__":
    main()
