"""SQLite write turns: the writes a Slack request waits on go first, the others wait in order
without a deadline, and a turn given up (cancelled, timed out) passes on."""

from __future__ import annotations

import asyncio
import contextvars
from pathlib import Path

import pytest

from persistence.store import DatabaseFailure, PoolLimits, Store
from persistence.write_turns import WriteTurns, not_urgent, urgent


class Writers:
    """Writers on one `WriteTurns`: each takes its turn, notes its name in `order`, and keeps
    the turn until `release`."""

    def __init__(self, urgent_timeout: float = 5, slots: int = 1) -> None:
        self.turns = WriteTurns(urgent_timeout=urgent_timeout, slots=slots)
        self.order: list[str] = []
        self.gate = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, name: str, context: contextvars.Context | None = None) -> None:
        """A writer asks for its turn (in the current context unless `context` is given)."""
        self.tasks.append(asyncio.create_task(self._hold(name), context=context))
        await asyncio.sleep(0)

    async def _hold(self, name: str) -> None:
        async with self.turns.turn():
            self.order.append(name)
            await self.gate.wait()

    async def release(self) -> None:
        self.gate.set()
        await asyncio.gather(*self.tasks)


async def test_urgent_writes_go_before_the_writes_waiting_in_order() -> None:
    writers = Writers()
    for name in ("holder", "run0", "run1", "run2"):
        await writers.start(name)
    with urgent():
        await writers.start("ack")
    assert writers.turns.waiting == 4
    await writers.release()
    assert writers.order == ["holder", "ack", "run0", "run1", "run2"]
    assert writers.turns.waiting == 0


async def test_with_several_slots_that_many_write_at_once_and_urgent_ones_go_next() -> None:
    writers = Writers(slots=3)
    for name in ("a", "b", "c", "run0", "run1"):
        await writers.start(name)
    with urgent():
        await writers.start("ack")
    assert writers.order == ["a", "b", "c"] and writers.turns.waiting == 3
    await writers.release()
    assert writers.order == ["a", "b", "c", "ack", "run0", "run1"]
    assert writers.turns.waiting == 0
    async with writers.turns.turn(), writers.turns.turn(), writers.turns.turn():
        pass  # all three slots free again


async def test_an_urgent_write_that_gets_no_turn_in_time_is_a_database_failure() -> None:
    writers = Writers(urgent_timeout=0.05)
    await writers.start("holder")
    with urgent(), pytest.raises(DatabaseFailure, match="ORCH_DATABASE_POOL_TIMEOUT"):
        async with writers.turns.turn():
            pass
    await writers.start("later")  # in order: no deadline
    await asyncio.sleep(0.1)
    assert not writers.tasks[-1].done()
    await writers.release()
    assert writers.turns.waiting == 0


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    writers = Writers()
    for name in ("holder", "gone", "after"):
        await writers.start(name)
    gone = writers.tasks.pop(1)
    gone.cancel()
    await writers.release()
    assert writers.order == ["holder", "after"]
    async with writers.turns.turn():  # free again
        writers.order.append("free")
    assert writers.order[-1] == "free"


async def test_work_a_request_starts_in_the_background_is_not_urgent() -> None:
    writers = Writers()
    await writers.start("holder")
    await writers.start("queued")
    with urgent():
        await writers.start("run", context=not_urgent())
    await writers.release()
    assert writers.order == ["holder", "queued", "run"]


async def test_a_burst_of_run_writes_does_not_hold_up_the_write_an_ack_waits_for(
    tmp_path: Path,
) -> None:
    """Through the store on a SQLite file: 300 writes of runs queued first, then the claim of
    a delivery: the claim lands after at most the write in progress, and none of the 300 fails
    though the pool timeout is far shorter than their wait."""
    store = await Store.open(
        f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}", pool=PoolLimits(timeout=0.5)
    )
    try:
        landed: list[str] = []

        async def write(name: str) -> None:
            thread = store.new_thread(
                name, team_id="T", channel_id="C", thread_ts=name, state="idle"
            )
            await store.transition(thread, to_state="streaming", trigger="user_message")
            landed.append(name)

        runs = [asyncio.create_task(write(f"run-{n}")) for n in range(300)]
        await asyncio.sleep(0.01)
        with urgent():
            await write("delivery")
        await asyncio.gather(*runs)
        assert len(landed) == 301
        assert landed.index("delivery") < 100
    finally:
        await store.close()
