"""The sweep encodes its reminders and overdues itself: each row must be the one `Outbox.add` writes for
`Envelope.wrap` of the same event."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.reports.domain import Period, Schedule
from services.reports.handlers import SERVICE, _about, _sweep_event
from shared.contract import CONTENT_TYPE, EVENT_TYPES, Envelope, ReportDue, ReportOverdue

pytestmark = pytest.mark.unit

UTC = timezone.utc


@pytest.mark.parametrize("event_type", [ReportDue, ReportOverdue])
@pytest.mark.parametrize("deadline, now", [
    (datetime(2021, 8, 3, 16, 59, tzinfo=UTC), datetime(2021, 8, 3, 17, 0, 1, tzinfo=UTC)),
    # microseconds, and a deadline read back in another offset: both must serialise as pydantic does
    (datetime(2021, 8, 6, 23, 59, tzinfo=timezone(timedelta(hours=8))),
     datetime(2021, 8, 6, 16, 0, 0, 123456, tzinfo=UTC)),
])
def test_a_sweep_event_is_exactly_the_wrapped_event(event_type, deadline, now):
    schedule = Schedule(uuid.uuid4(), uuid.uuid4(), "8120000123456", "73", "73.71", "Asia/Makassar",
                        datetime(2021, 6, 1, tzinfo=UTC))
    period = Period(uuid.uuid4(), schedule.permit_id, 7, "twice-weekly:TUE,FRI@23:59", deadline - timedelta(days=3),
                    deadline)

    row = _sweep_event(event_type, schedule, period, now)

    wrapped = Envelope.wrap(event_type(**_about(schedule), period_id=period.period_id, deadline=deadline),
                            service=SERVICE, time=now, event_id=row.event_id)
    assert (row.event_type, row.topic, row.key, row.value) == (
        wrapped.type, EVENT_TYPES[wrapped.type].topic.name, wrapped.key, wrapped.to_bytes())
    assert json.loads(row.headers) == {"content-type": CONTENT_TYPE, "correlation_id": wrapped.correlationid}
