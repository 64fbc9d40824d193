"""SQLite write turns: the writes a Slack request waits on go first, the others wait in order
without a deadline, and a turn given up (cancelled, timed out) passes on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from persistence.store import DatabaseFailure, PoolLimits, Store
from persistence.write_turns import WriteTurns, not_urgent, urgent


async def _hold(turns: WriteTurns, name: str, order: list[str], gate: asyncio.Event) -> None:
    async with turns.turn():
        order.append(name)
        await gate.wait()


async def test_urgent_writes_go_before_the_writes_waiting_in_order() -> None:
    turns = WriteTurns(urgent_timeout=5)
    order: list[str] = []
    gate = asyncio.Event()
    first = asyncio.create_task(_hold(turns, "holder", order, gate))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(_hold(turns, f"run{n}", order, gate)) for n in range(3)]
    await asyncio.sleep(0)
    with urgent():
        ack = asyncio.create_task(_hold(turns, "ack", order, gate))
    await asyncio.sleep(0)
    assert turns.waiting == 4
    gate.set()
    await asyncio.gather(first, *waiting, ack)
    assert order == ["holder", "ack", "run0", "run1", "run2"]
    assert turns.waiting == 0


async def test_an_urgent_write_that_gets_no_turn_in_time_is_a_database_failure() -> None:
    turns = WriteTurns(urgent_timeout=0.05)
    gate = asyncio.Event()
    holder = asyncio.create_task(_hold(turns, "holder", [], gate))
    await asyncio.sleep(0)
    with urgent(), pytest.raises(DatabaseFailure, match="ORCH_DATABASE_POOL_TIMEOUT"):
        async with turns.turn():
            pass
    later = asyncio.create_task(_hold(turns, "later", [], gate))  # in order: no deadline
    await asyncio.sleep(0.1)
    assert not later.done()
    gate.set()
    await asyncio.gather(holder, later)
    assert turns.waiting == 0


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    turns = WriteTurns(urgent_timeout=5)
    order: list[str] = []
    gate = asyncio.Event()
    holder = asyncio.create_task(_hold(turns, "holder", order, gate))
    await asyncio.sleep(0)
    gone = asyncio.create_task(_hold(turns, "gone", order, gate))
    after = asyncio.create_task(_hold(turns, "after", order, gate))
    await asyncio.sleep(0)
    gone.cancel()
    gate.set()
    await asyncio.gather(holder, after)
    assert order == ["holder", "after"]
    async with turns.turn():  # free again
        order.append("free")
    assert order[-1] == "free"


async def test_work_a_request_starts_in_the_background_is_not_urgent() -> None:
    turns = WriteTurns(urgent_timeout=5)
    order: list[str] = []
    gate = asyncio.Event()
    holder = asyncio.create_task(_hold(turns, "holder", order, gate))
    await asyncio.sleep(0)
    queued = asyncio.create_task(_hold(turns, "queued", order, gate))
    await asyncio.sleep(0)
    with urgent():
        run = asyncio.create_task(_hold(turns, "run", order, gate), context=not_urgent())
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(holder, queued, run)
    assert order == ["holder", "queued", "run"]


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
