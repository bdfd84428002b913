"""Keyset cursors: what a list hands out reads back to the same position, and nothing else reads at all."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.web.cursors import cursor, moment_and_id, position
from shared.web.http import Problem

pytestmark = pytest.mark.unit


def test_a_time_and_an_id_read_back_whole_in_any_zone():
    identifier = uuid.uuid4()
    for moment in (datetime(2026, 12, 7, 3, 4, 5, 678901, tzinfo=UTC),
                   datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=9)))):
        assert position(cursor(moment.isoformat(), identifier), moment_and_id) == (moment, identifier)


def test_no_cursor_is_the_lists_start():
    assert position(None, moment_and_id) is None


@pytest.mark.parametrize("forged", [
    "",  # no parts at all
    "not-a-cursor!",  # not base64
    cursor("2026-12-07T03:04:05+00:00"),  # a part missing
    cursor("2026-12-07T03:04:05", uuid.uuid4()),  # a time without its zone
    cursor("2026-12-07T03:04:05+00:00", "not-an-id"),
    cursor("2026-12-07T03:04:05+00:00", uuid.uuid4(), "extra"),
    "//79",  # bytes that are not UTF-8
])
def test_anything_a_list_did_not_give_is_refused_naming_the_field(forged: str):
    with pytest.raises(Problem) as refused:
        position(forged, moment_and_id, field="after")
    assert refused.value.status == 422
    assert refused.value.extensions["errors"] == [{"field": "after", "message": "not a cursor this list gave"}]
