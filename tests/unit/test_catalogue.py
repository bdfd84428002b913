"""The agencies' event catalogue is generated from the contract, committed, and can never drift from it."""

from __future__ import annotations

import json

import re
from pathlib import Path

import pytest

from shared.contract import EVENT_TYPES, TOPICS, decode
from tooling.catalogue import render_asyncapi, render_html, render_markdown

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[2] / "docs"
PUBLIC = [cls for cls in EVENT_TYPES.values() if cls.topic.public]
PRIVATE = [cls for cls in EVENT_TYPES.values() if not cls.topic.public]


def test_committed_catalogue_is_current():
    assert (DOCS / "events.md").read_text(encoding="utf-8") == render_markdown(), "run `make docs`"
    assert (DOCS / "events.html").read_text(encoding="utf-8") == render_html(), "run `make docs`"
    assert (DOCS / "asyncapi.json").read_text(encoding="utf-8") == render_asyncapi(), "run `make docs`"


def test_the_asyncapi_document_has_every_public_event_and_no_internal_topic():
    document = json.loads(render_asyncapi())
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {topic.name for topic in TOPICS if topic.public}
    documented = " ".join(document["components"]["messages"])
    for cls in PUBLIC:
        assert cls.type_name() in documented
    for cls in PRIVATE:
        assert cls.type_name() not in documented


@pytest.mark.parametrize("render", [render_markdown, render_html])
def test_every_public_event_and_topic_is_documented_and_nothing_internal(render):
    text = render()
    for cls in PUBLIC:
        assert cls.type_name() in text
    for topic in TOPICS:
        assert (topic.name in text) == topic.public
    assert PRIVATE and all(cls.type_name() not in text and cls.__name__ not in text for cls in PRIVATE)
    assert "iomki.internal" not in text and "iomki.dlq" not in text


def test_every_field_is_listed_with_whether_it_is_required():
    text = render_markdown()
    for cls in PUBLIC:
        section = text.split(f"### {cls.type_name()}\n", 1)[1].split("\n### ", 1)[0]
        for name, field in cls.model_fields.items():
            expected = "yes" if field.is_required() else "no"
            assert re.search(rf"^\| `{name}` \| [^\n]+ \| {expected} \|", section, re.MULTILINE), (cls, name)


def test_every_example_is_a_valid_event_keyed_by_its_subject():
    examples = re.findall(r"```json\n(.*?)\n```", render_markdown(), re.DOTALL)
    assert len(examples) == len(PUBLIC)
    decoded = [decode(example.encode()) for example in examples]
    assert [d.envelope.type for d in decoded] == [cls.type_name() for t in TOPICS if t.public
                                                  for cls in PUBLIC if cls.topic is t]
    keys = {d.envelope.type: d.envelope.subject for d in decoded}
    assert keys.pop("iomki.PpkmLevelSet.v1") == "32"  # a PPKM level: its province
    assert all(keys[d.envelope.type] == str(d.event.facility_id) for d in decoded  # type: ignore[attr-defined]
               if d.envelope.type in keys)


def test_compatibility_rules_come_from_the_contract():
    assert "removing or changing a field is a new major version" in render_markdown()


def test_html_page_is_self_contained():
    page = render_html()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<link|<script|<img|@import|url\(|src=", page)
