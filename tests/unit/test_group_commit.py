"""Group commit: who shares a batch, who gets which answer, and what happens when a batch fails."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from shared.messaging.group_commit import GroupCommit


class Refusal(Exception):
    pass


class Recorder:
    """An `apply` that answers each item with its double, refuses negative ones, fails its whole batch on a
    poison item (as a database error would) or on 99 (as an unreachable database would), and can be held so that
    items pile up behind a batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def apply(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        await self.gate.wait()
        if 13 in items:
            raise RuntimeError("poison")
        if 99 in items:
            raise ConnectionRefusedError("the database is down")
        return [Refusal(item) if item < 0 else item * 2 for item in items]


async def settle() -> None:
    """Let every task that can run, run (workers start a step after the caller that created them)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def behind_a_busy_batch(recorder: Recorder, commit: GroupCommit, items: tuple[int, ...]
                              ) -> tuple[asyncio.Task, list[asyncio.Task]]:
    """Submit 100, hold its batch, and submit `items` meanwhile: they queue for the next batch. Then let go."""
    recorder.gate.clear()
    busy = asyncio.create_task(commit.submit(100))
    await settle()
    queued = [asyncio.create_task(commit.submit(item)) for item in items]
    await settle()
    recorder.gate.set()
    return busy, queued


def by_value(item: int) -> int:
    return item


def by_tens(item: int) -> int:
    return abs(item) // 10


async def test_an_idle_service_applies_a_lone_item_at_once():
    recorder = Recorder()
    commit = GroupCommit(recorder.apply, key=by_value)
    assert await commit.submit(21) == 42
    assert recorder.batches == [[21]]


async def test_items_arriving_while_a_batch_is_busy_share_the_next_one():
    recorder = Recorder()
    first, later = await behind_a_busy_batch(recorder, GroupCommit(recorder.apply, key=by_value, lanes=1), (2, 3, 4))
    assert await first == 200
    assert [await task for task in later] == [4, 6, 8]
    assert recorder.batches == [[100], [2, 3, 4]]


async def test_each_caller_gets_its_own_answer_or_refusal():
    recorder = Recorder()
    blocker, tasks = await behind_a_busy_batch(recorder, GroupCommit(recorder.apply, key=by_value, lanes=1),
                                               (5, -7, 9))
    await blocker
    assert await tasks[0] == 10 and await tasks[2] == 18
    with pytest.raises(Refusal):
        await tasks[1]
    assert recorder.batches[1] == [5, -7, 9]  # a refusal does not split the batch


async def test_a_failing_batch_is_redone_one_item_at_a_time_so_only_the_culprit_fails():
    recorder = Recorder()
    blocker, tasks = await behind_a_busy_batch(recorder, GroupCommit(recorder.apply, key=by_value, lanes=1),
                                               (1, 13, 3))
    await blocker
    assert await tasks[0] == 2 and await tasks[2] == 6
    with pytest.raises(RuntimeError, match="poison"):
        await tasks[1]
    assert recorder.batches[1:] == [[1, 13, 3], [1], [13], [3]]


async def test_an_unreachable_database_fails_every_item_at_once_without_retrying_each():
    recorder = Recorder()
    blocker, tasks = await behind_a_busy_batch(recorder, GroupCommit(recorder.apply, key=by_value, lanes=1),
                                               (1, 99, 3))
    await blocker
    for task in tasks:
        with pytest.raises(ConnectionRefusedError):
            await task
    assert recorder.batches[1:] == [[1, 99, 3]]


async def test_two_items_with_one_key_never_share_a_batch_and_keep_their_order():
    recorder = Recorder()
    blocker, tasks = await behind_a_busy_batch(recorder, GroupCommit(recorder.apply, key=by_tens, lanes=1),
                                               (11, 12, 21, 14))
    assert [await task for task in [blocker, *tasks]] == [200, 22, 24, 42, 28]
    assert recorder.batches == [[100], [11, 21], [12], [14]]


async def test_an_item_waits_while_another_lane_applies_its_key():
    recorder = Recorder()
    commit = GroupCommit(recorder.apply, key=by_tens, lanes=2)
    recorder.gate.clear()
    first = asyncio.create_task(commit.submit(11))
    await settle()  # lane one applies 11
    later = [asyncio.create_task(commit.submit(item)) for item in (12, 21)]
    await settle()
    assert recorder.batches == [[11], [21]]  # lane two takes 21 and leaves 12 to wait for 11
    recorder.gate.set()
    assert [await task for task in (first, *later)] == [22, 24, 42]
    assert recorder.batches[2:] == [[12]]


async def test_batches_are_bounded_and_lanes_run_side_by_side():
    recorder = Recorder()
    commit = GroupCommit(recorder.apply, key=by_value, max_batch=3, lanes=2)
    recorder.gate.clear()
    tasks = [asyncio.create_task(commit.submit(item)) for item in range(1, 9)]
    await settle()
    assert recorder.batches == [[1, 2, 3], [4, 5, 6]]  # two lanes busy at once, three items each
    recorder.gate.set()
    assert [await task for task in tasks] == [2 * item for item in range(1, 9)]
    assert recorder.batches[2:] == [[7, 8]]


async def test_a_caller_that_went_away_before_its_batch_is_skipped():
    recorder = Recorder()
    commit = GroupCommit(recorder.apply, key=by_value, lanes=1)
    recorder.gate.clear()
    blocker = asyncio.create_task(commit.submit(100))
    await settle()
    gone = asyncio.create_task(commit.submit(1))
    kept = asyncio.create_task(commit.submit(2))
    await settle()
    gone.cancel()
    recorder.gate.set()
    assert await blocker == 200 and await kept == 4
    assert recorder.batches == [[100], [2]]


async def test_work_submitted_after_the_workers_finished_still_runs():
    recorder = Recorder()
    commit = GroupCommit(recorder.apply, key=by_value)
    for round_ in range(3):
        assert await asyncio.gather(commit.submit(round_), commit.submit(round_ + 10)) == [2 * round_,
                                                                                            2 * round_ + 20]
        await settle()  # every worker has stopped: nothing was pending
    assert sorted(item for batch in recorder.batches for item in batch) == [0, 1, 2, 10, 11, 12]


async def test_a_batch_runs_in_a_context_of_its_own_not_the_first_callers():
    request_id = contextvars.ContextVar("request_id", default=None)
    seen = []

    async def apply(items: list[int]) -> list[int]:
        seen.append(request_id.get())
        return items

    async def caller(item: int) -> int:
        request_id.set(f"request-{item}")  # as the request logging sets it for each request
        return await commit.submit(item)

    commit = GroupCommit(apply, key=by_value)
    assert await asyncio.gather(caller(1), caller(2)) == [1, 2]
    assert seen and set(seen) == {None}


async def test_under_load_a_lane_lingers_so_that_items_on_their_way_join_the_next_batch():
    recorder = Recorder()
    commit = GroupCommit(recorder.apply, key=by_value, linger=0.05, busy_batch=3)
    busy, queued = await behind_a_busy_batch(recorder, commit, (2, 3, 4))
    await asyncio.gather(busy, *queued)  # a batch of three: the lane now lingers
    later = [asyncio.create_task(commit.submit(item)) for item in (5, 6)]
    await settle()
    assert recorder.batches == [[100], [2, 3, 4]]
    assert await asyncio.gather(*later) == [10, 12]
    assert recorder.batches == [[100], [2, 3, 4], [5, 6]]


async def test_after_a_small_batch_or_when_idle_the_next_item_is_applied_at_once():
    recorder = Recorder()
    commit = GroupCommit(recorder.apply, key=by_value, linger=60, busy_batch=3)
    assert await asyncio.wait_for(commit.submit(1), 1) == 2
    busy, queued = await behind_a_busy_batch(recorder, commit, (2,))
    await asyncio.gather(busy, *queued)
    assert await asyncio.wait_for(commit.submit(3), 1) == 6
    assert recorder.batches == [[1], [100], [2], [3]]


async def test_a_lane_does_not_linger_when_a_full_batch_is_already_waiting():
    recorder = Recorder()
    commit = GroupCommit(recorder.apply, key=by_value, max_batch=2, linger=60, busy_batch=2)
    busy, queued = await behind_a_busy_batch(recorder, commit, (2, 3, 4, 5))
    assert await asyncio.wait_for(asyncio.gather(busy, *queued), 1) == [200, 4, 6, 8, 10]
    assert recorder.batches == [[100], [2, 3], [4, 5]]
