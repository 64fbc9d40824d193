"""A thread's stored live messages: a message leaves the list only once it is closed, so
recovery finds every message a crash could leave "Thinking…" or with a cursor."""

from __future__ import annotations

import asyncio
import time

from orchestrator.sandbox.agent_server import ScriptedAgent
from persistence.models import Thread
from tests.harness import Harness
from tests.test_crash_points import left_live


async def _until(harness: Harness, thread_ts: str, seen: str, check: object) -> Thread:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        row = await harness.row(thread_ts)
        if row is not None and check(row):  # type: ignore[operator]
            return row
        await asyncio.sleep(0.01)
    raise AssertionError(f"never saw {seen}")


async def test_a_queued_run_keeps_the_run_before_listed_until_that_one_is_closed(
    harness: Harness, agent: ScriptedAgent
) -> None:
    """The next queued message starts as soon as the run before stored its ending, while that
    run still draws its final answer: the new run's live messages are stored with the earlier
    run's, which a crash in between would otherwise leave live for ever."""
    agent.token_delay = 0.05
    await harness.start("echo")
    thread_ts = await harness.mention("first question")
    await harness.say("second question", thread_ts)  # queued behind the first run
    first = await _until(
        harness, thread_ts, "the first run live", lambda r: r.run_sent and r.live_ts
    )
    second = await _until(
        harness,
        thread_ts,
        "the second run live",
        lambda r: r.run_sent not in (None, first.run_sent),
    )
    assert set(first.live_ts or []) <= set(second.live_ts or [])
    assert len(second.live_ts or []) > len(first.live_ts or [])
    await _until(
        harness,
        thread_ts,
        "both closed",
        lambda r: r.state == "done" and not r.live_ts and len(agent.requests) == 2,
    )
    assert left_live(harness.slack, thread_ts) == []
