"""The operators' worklists: each kind held to its working days on the ministry's calendar, overdue first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.permits.calendar import IndonesianHolidays
from services.permits.domain import (
    DEFAULT_SERVICE_LEVELS, MINISTRY_ZONE, ServiceLevels, WorkingDays, WorkItem, WorkKind,
)

pytestmark = pytest.mark.unit

LEVELS = ServiceLevels(DEFAULT_SERVICE_LEVELS, WorkingDays(IndonesianHolidays()))


def jakarta(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=MINISTRY_ZONE)  # type: ignore[misc]


def an_item(kind: WorkKind, received_at: datetime) -> WorkItem:
    return WorkItem(kind, uuid.uuid4(), uuid.uuid4(), None, "PT Baja", "32", "32.16", received_at)


@pytest.mark.parametrize(("kind", "received_at", "due_at"), [
    # Monday 5 July 2021: three working days later is Thursday the 8th, due at its end.
    (WorkKind.APPLICATION, jakarta(2021, 7, 5, 9), jakarta(2021, 7, 9)),
    # Received on a Friday evening: Monday, Tuesday, Wednesday.
    (WorkKind.APPLICATION, jakarta(2021, 7, 9, 22), jakarta(2021, 7, 15)),
    # Idul Adha, Tuesday 20 July 2021, is no working day.
    (WorkKind.REACTIVATION_REQUEST, jakarta(2021, 7, 19, 8), jakarta(2021, 7, 24)),
    # Ten working days for an objection (UU 30/2014 Pasal 77(4)), across Lebaran 2021 (collective leave on the
    # 12th, Idul Fitri on the 13th and 14th) and Waisak (the 26th): the last is Friday the 28th.
    (WorkKind.OBJECTION, jakarta(2021, 5, 10, 8), jakarta(2021, 5, 29)),
    # A moment just before midnight in Jakarta is that day's; the service's clock is UTC.
    (WorkKind.APPLICATION, datetime(2021, 7, 5, 16, 59, tzinfo=UTC), jakarta(2021, 7, 9)),
    (WorkKind.APPLICATION, datetime(2021, 7, 5, 17, 0, tzinfo=UTC), jakarta(2021, 7, 10)),
])
def test_each_kind_is_due_at_the_end_of_its_last_working_day_in_jakarta(kind, received_at, due_at):
    assert LEVELS.due(kind, received_at) == due_at


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(list(WorkKind)),
       received=st.datetimes(min_value=datetime(2021, 1, 1), max_value=datetime(2022, 12, 31)),
       waited=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)))
def test_what_came_in_before_the_boundary_is_overdue_and_nothing_after_it(kind, received, waited):
    received_at = received.replace(tzinfo=UTC)
    now = received_at + waited
    overdue = LEVELS.due(kind, received_at) <= now
    assert overdue == (received_at < LEVELS.overdue_before(kind, now))


def test_overdue_items_come_first_most_overdue_first_then_by_how_soon_they_fall_due():
    now = jakarta(2021, 7, 16, 10)
    old_application = an_item(WorkKind.APPLICATION, jakarta(2021, 7, 5, 9))  # due the 9th: overdue
    older_objection = an_item(WorkKind.OBJECTION, jakarta(2021, 6, 21, 9))  # due 6 July: more overdue
    fresh_objection = an_item(WorkKind.OBJECTION, jakarta(2021, 7, 12, 9))  # due the 27th (Idul Adha skipped)
    fresh_application = an_item(WorkKind.APPLICATION, jakarta(2021, 7, 15, 9))  # due the 21st
    queued = LEVELS.queue([fresh_objection, fresh_application, old_application, older_objection], now)
    assert [q.item for q in queued] == [older_objection, old_application, fresh_application, fresh_objection]
    assert [q.overdue for q in queued] == [True, True, False, False]
    assert queued[1].age == now - old_application.received_at
