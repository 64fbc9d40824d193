"""A thread's stored live messages: a message leaves the list only once it is closed, so
recovery finds every message a crash could leave "Thinking…" or with a cursor."""

from __future__ import annotations

import asyncio
import time

from orchestrator.sandbox.agent_server import ScriptedAgent
from persistence.models import Thread
from renderers.common import ACTION_REGENERATE, CURSOR
from tests.harness import CHANNEL, Harness
from tests.test_crash_points import left_live
from tests.test_e2e_approvals import answers, approve, pause_for_approval


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
    # the first run's final answer (its feedback buttons) is answered late by Slack: the queued
    # run starts while it is still drawn, whatever else the machine is doing
    harness.slack.slow("chat.update", 1.0, containing=ACTION_REGENERATE)
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


async def test_a_run_closes_the_live_messages_a_dead_run_before_it_left(
    harness: Harness, agent: ScriptedAgent
) -> None:
    """A process died after storing its run's end (a form) and before closing its live answer,
    which still shows the cursor; the form is answered before recovery got to that answer
    (it waits out the lease). The resumed run lists the old answer with its own and closes it
    with its own at its end."""
    thread_ts = await pause_for_approval(harness, "interrupt-outcome")
    client = harness.rt.engine.notifier.client
    left = await client.chat_postMessage(
        channel=CHANNEL,
        thread_ts=thread_ts,
        text="I looked",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": f"I looked {CURSOR}"}}],
    )
    row = await harness.row(thread_ts)
    assert row is not None
    await harness.rt.store.update_thread(row.id, live_ts=[left["ts"]])
    assert left_live(harness.slack, thread_ts)
    await approve(harness, thread_ts, values=answers("8", "go"))
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    deadline = time.monotonic() + 10
    while left_live(harness.slack, thread_ts) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert left_live(harness.slack, thread_ts) == []
    assert "I looked" in harness.thread_text(thread_ts)  # its text stays, the cursor goes
    assert agent.resumes == 1
