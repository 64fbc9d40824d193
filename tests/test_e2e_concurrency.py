"""Many runs at once, end to end: more streams open at the same time than httpx's default pool
of 100 connections all answer, and runs past `ORCH_MAX_CONCURRENT_RUNS` wait in line (their
message says so) and are answered once a slot frees."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from ag_ui.core import (
    RunFinishedEvent,
    RunStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
)

from orchestrator.agent.errors import AgentTimeout
from orchestrator.sandbox import slack_delivery
from orchestrator.sandbox.agent_server import Gate
from orchestrator.sandbox.slack_emulator import API_APP_ID, VERIFICATION_TOKEN
from renderers.common import THINKING, WAITING
from tests.harness import ALICE, CHANNEL, SECRET, Harness, until

ANSWER = "Answered after the wait."
STREAMS = 120  # past httpx's default of 100 connections
WAIT = 120  # seconds; the test takes ~10 s on an idle 2-core machine


def held_answer(release: asyncio.Event) -> list[Any]:
    """A run that starts, then holds its stream open until `release` is set, then answers."""
    return [
        RunStartedEvent(thread_id="t", run_id="r"),
        Gate(release),
        TextMessageStartEvent(message_id="m1", role="assistant"),
        TextMessageContentEvent(message_id="m1", delta=ANSWER),
        TextMessageEndEvent(message_id="m1"),
        RunFinishedEvent(thread_id="t", run_id="r"),
    ]


async def mentions(harness: Harness, count: int) -> list[str]:
    """`count` mentions, each in a new thread, delivered one after the other over one HTTP
    client (a new client per delivery, as `deliver_event` makes, builds a TLS context each
    time). Their runs stay open: the agent holds them."""
    threads = []
    slack = harness.slack
    async with httpx.AsyncClient(timeout=slack_delivery.DELIVERY_TIMEOUT) as http:
        for n in range(count):
            event = slack.post_user_message(CHANNEL, ALICE, f"question {n}", mention=True)
            envelope = slack_delivery.event_envelope(
                event,
                team_id=slack.team_id,
                api_app_id=API_APP_ID,
                bot_user_id=slack.bot_user_id,
                event_id=slack_delivery.new_event_id(),
                verification_token=VERIFICATION_TOKEN,
            )
            body, content_type = slack_delivery.json_body(envelope)
            headers = slack_delivery.signed_headers(SECRET, body, content_type)
            response = await http.post(harness.events_url, content=body.encode(), headers=headers)
            assert response.status_code == 200, response.text
            threads.append(event["ts"])
    return threads


async def test_more_streams_at_once_than_httpx_default_pool_are_all_answered(
    harness: Harness,
) -> None:
    release = asyncio.Event()
    url = harness.agent.serve("held", held_answer(release))
    # Timeouts longer than the deliveries take on a busy machine; a stream waiting for a
    # pooled connection would fail as agent_timeout once the first one passed.
    # (The scheduler's housekeeping every second, not every 0.1 s: its writes would compete
    # with the deliveries' on a busy machine.)
    await harness.start(
        AGENT_URL=url,
        ORCH_AGENT_FIRST_EVENT_TIMEOUT=WAIT,
        ORCH_AGENT_IDLE_TIMEOUT=WAIT,
        ORCH_SCHEDULER_INTERVAL=1,
    )
    threads = await mentions(harness, STREAMS)
    # The agent holds every stream open until all of them are: none waits for a connection.
    await until(lambda: len(harness.agent.requests_for("held")) == STREAMS, wait=WAIT)
    release.set()
    for thread_ts in threads:
        row = await harness.settle(thread_ts, wait=WAIT)
        assert row.state == "done", row.error_kind
    for thread_ts in threads:
        text = harness.thread_text(thread_ts)
        assert ANSWER in text
        assert AgentTimeout.title not in text


async def test_runs_past_the_limit_wait_in_line_and_say_so(harness: Harness) -> None:
    release = asyncio.Event()
    url = harness.agent.serve("held", held_answer(release))
    await harness.start(AGENT_URL=url, ORCH_MAX_CONCURRENT_RUNS=2)
    first = await harness.mention("first question")
    second = await harness.mention("second question")
    await until(lambda: len(harness.agent.requests_for("held")) == 2)
    third = await harness.mention("third question")
    await until(lambda: WAITING in harness.thread_text(third))
    assert len(harness.agent.requests_for("held")) == 2  # it has not connected to the agent
    assert WAITING not in harness.thread_text(first)

    release.set()
    for thread_ts in (first, second, third):
        row = await harness.settle(thread_ts)
        assert row.state == "done", row.error_kind
        text = harness.thread_text(thread_ts)
        assert ANSWER in text
        assert WAITING not in text and THINKING not in text
    assert len(harness.agent.requests_for("held")) == 3
