"""Slack requests are answered first: the runs and status calls that deliveries start wait until
no Slack request in the process is waiting for its answer (at most a bound), so a burst of
mentions is acknowledged within Slack's 3 s instead of taking turns with the runs it starts."""

from __future__ import annotations

import asyncio
import time

import httpx

from orchestrator import answering
from orchestrator.engine.tasks import Tasks
from tests.harness import Harness


async def test_with_no_request_waiting_nothing_waits() -> None:
    assert answering.waiting() == 0
    started = time.monotonic()
    await answering.settled(5.0)
    assert time.monotonic() - started < 0.1


async def test_the_wait_ends_when_the_last_request_is_answered() -> None:
    first, second = answering.answering(), answering.answering()
    first.__enter__()
    second.__enter__()
    assert answering.waiting() == 2
    waiter = asyncio.ensure_future(answering.settled(5.0))
    await asyncio.sleep(0.05)
    first.__exit__(None, None, None)
    await asyncio.sleep(0.05)
    assert not waiter.done()  # one is still waiting
    second.__exit__(None, None, None)
    await asyncio.wait_for(waiter, 1.0)
    assert answering.waiting() == 0


async def test_the_wait_is_bounded() -> None:
    with answering.answering():
        started = time.monotonic()
        await answering.settled(0.2)
        assert 0.15 < time.monotonic() - started < 1.0
        assert answering.waiting() == 1
    assert answering.waiting() == 0


async def test_a_scope_left_by_an_error_is_no_longer_counted() -> None:
    try:
        with answering.answering():
            raise RuntimeError("the handler failed")
    except RuntimeError:
        pass
    assert answering.waiting() == 0


async def test_background_work_starts_once_the_requests_are_answered() -> None:
    tasks, began = Tasks(), asyncio.Event()

    async def run() -> None:
        began.set()

    with answering.answering():
        tasks.spawn(run())
        await asyncio.sleep(0.1)
        assert not began.is_set() and tasks.busy
    await asyncio.wait_for(began.wait(), 1.0)
    await tasks.drain()


async def test_background_work_cancelled_before_it_began_is_closed() -> None:
    tasks, began = Tasks(), []

    async def run() -> None:
        began.append(True)

    with answering.answering():
        tasks.spawn(run())
        await asyncio.sleep(0.01)
        await tasks.cancel()  # no "coroutine was never awaited": it is closed
    assert began == [] and not tasks.busy


async def test_a_run_starts_once_the_other_requests_in_the_process_are_answered(
    harness: Harness,
) -> None:
    """Another Slack request still being handled here: the mention is acknowledged and stored
    at once, and its run reaches the agent only once that request is answered."""
    await harness.start("answer")
    with answering.answering():  # another delivery, not answered yet
        thread_ts = await harness.mention("hello there")  # acknowledged (200)
        row = await harness.row(thread_ts)
        assert row is not None and row.state == "streaming"
        await asyncio.sleep(0.3)
        assert harness.agent.requests == []
        assert waiting_in_metrics(await harness_metrics(harness)) == 1.0
    assert waiting_in_metrics(await harness_metrics(harness)) == 0.0
    assert (await harness.settle(thread_ts)).state == "done"
    assert [r.body["messages"][-1]["content"] for r in harness.agent.requests] == ["hello there"]
    assert "Hello from test-agent!" in harness.thread_text(thread_ts)


async def harness_metrics(harness: Harness) -> str:
    url = harness.events_url.removesuffix("/slack/events") + "/metrics"
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    return response.text


def waiting_in_metrics(text: str) -> float:
    [line] = [
        line
        for line in text.splitlines()
        if line.startswith("orchestrator_slack_requests_waiting ")
    ]
    return float(line.split()[1])
