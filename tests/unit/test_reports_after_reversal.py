"""A sanction reversed on objection, as the reports domain takes it: the plant reports as its permit now stands, and
the ladder neither counts what the reversed sanction rested on nor stays stopped by it."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.reports import domain
from services.reports.domain import SanctionKind, SanctionLadder, Schedule, SettledPeriod

pytestmark = pytest.mark.unit

T0 = datetime(2021, 9, 1, tzinfo=UTC)
LADDER = SanctionLadder()  # SE 3/2021's


def schedule(**changes) -> Schedule:
    return replace(Schedule(uuid.uuid4(), uuid.uuid4(), "8120000123456", "32", "32.16", domain.zone_of("32"), T0),
                   **changes)


def warned(*seqs: int) -> list[SettledPeriod]:
    return [SettledPeriod(uuid.uuid4(), seq, T0 + timedelta(days=3 * seq), uuid.uuid4()) for seq in seqs]


def test_an_overturned_freeze_unfreezes_the_schedule_and_no_longer_counts():
    frozen = schedule(frozen=True, freeze_count=1, ladder_reset_seq=3)
    resumed = domain.after_reversal(frozen, frozen=False, freeze_count=0, through_seq=5)
    assert (resumed.frozen, resumed.freeze_count, resumed.ended) == (False, 0, False)
    assert resumed.ladder_reset_seq == 3  # the freeze already consumed its evidence
    # A later freeze is the plant's first again, not its second (SecondFreeze).
    assert LADDER.after_frozen(replace(resumed, frozen=True, freeze_count=1), warned(4, 5, 6)) is None


def test_a_reversed_revocation_resumes_the_ended_schedule_without_its_evidence():
    revoked = schedule(frozen=True, freeze_count=1, ended_at=T0 + timedelta(days=20), revoke_recommended=True,
                       ladder_reset_seq=3)
    resumed = domain.after_reversal(revoked, frozen=False, freeze_count=1, through_seq=7)
    assert (resumed.ended, resumed.frozen, resumed.revoke_recommended) == (False, False, False)
    assert resumed.ladder_reset_seq == 7
    # The warnings before the revocation do not freeze the plant again; three new ones in a row do.
    assert LADDER.after_missed(resumed, warned(5, 6, 7)) is None
    again = LADDER.after_missed(resumed, warned(8, 9, 10))
    assert again is not None and again.action is SanctionKind.FREEZE


def test_a_revocation_reduced_to_a_freeze_leaves_the_plant_frozen_and_the_ladder_free_to_revoke():
    revoked = schedule(frozen=True, freeze_count=1, ended_at=T0 + timedelta(days=20), revoke_recommended=True)
    resumed = domain.after_reversal(revoked, frozen=True, freeze_count=1, through_seq=7)
    assert (resumed.ended, resumed.frozen, resumed.freeze_count, resumed.revoke_recommended) == (
        False, True, 1, False)
    # SE 3/2021: a frozen plant that misses its next report is revoked; the reversed one no longer stops that.
    missed = LADDER.after_missed(resumed, warned(8))
    assert missed is not None and (missed.action, missed.rule) == (SanctionKind.REVOKE, "MissedWhileFrozen")


def test_a_reversal_of_a_schedule_not_ended_keeps_its_ladder_position():
    frozen = schedule(frozen=True, freeze_count=2, ladder_reset_seq=4, revoke_recommended=True)
    resumed = domain.after_reversal(frozen, frozen=False, freeze_count=1, through_seq=9)
    assert (resumed.ladder_reset_seq, resumed.ended_at, resumed.revoke_recommended) == (4, None, False)
