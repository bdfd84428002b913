"""A report's checklist and the event contract name the same protocol items: what a company answers no to is
named in ReportSubmitted.protocol_lapses."""

from __future__ import annotations

import pytest

from services.reports.api import ProtocolChecklist
from shared.contract import REPORTED_PROTOCOL_ITEMS, ProtocolItem

pytestmark = pytest.mark.unit


def test_the_checklist_asks_exactly_the_reported_items():
    assert list(ProtocolChecklist.model_fields) == [item.value for item in REPORTED_PROTOCOL_ITEMS]


def test_the_items_answered_no_are_the_lapses_in_the_contracts_order():
    answers = {item.value: True for item in REPORTED_PROTOCOL_ITEMS}
    assert ProtocolChecklist(**answers).lapses() == ()
    checked = ProtocolChecklist(**answers | {"pedulilindungi_scan": False, "masks": False})
    assert checked.lapses() == (ProtocolItem.MASKS, ProtocolItem.PEDULILINDUNGI_SCAN)
