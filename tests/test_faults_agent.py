"""Faults of the agent backend, end to end: what the thread shows, the stored state, the log line.

Each fault is served for real: a closed port, a name under `.invalid` (never resolves), the
scripted agent's error answers, stalls, drops and odd streams. The harness settles within 10
seconds, so each message is in the thread within 10 seconds of the failure being knowable.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest

from renderers.common import ACTION_RETRY
from tests.harness import Harness, actions_of

KNOWABLE_WITHIN = 10  # seconds from the failure to the message in the thread


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Fault:
    scenario: str  # the scripted agent's scenario, or a full URL
    shown: tuple[str, ...]  # what the user reads in the thread
    kind: str | None  # error_kind persisted (and logged); None when the run succeeds
    retry: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    agent: dict[str, Any] = field(default_factory=dict)  # ScriptedAgent attributes


FAULTS: dict[str, Fault] = {
    "refused": Fault("refused", ("The agent could not be reached",), "agent_unreachable"),
    "dns": Fault(
        "http://orchestrator-agent.invalid/agents/helper",
        ("The agent could not be reached",),
        "agent_unreachable",
    ),
    "404": Fault(
        "no-such-agent",
        ("not known to the backend (HTTP 404)", "An admin should check"),
        "agent_not_found",
        retry=False,
    ),
    "401": Fault(
        "401",
        ("refused our credentials", "should check the credentials of the agent"),
        "agent_auth_failed",
        False,
    ),
    "403": Fault(
        "403", ("refused our credentials", "may not run this agent"), "agent_auth_failed", False
    ),
    "500": Fault("500", ("The agent returned an error", "HTTP 500"), "agent_http_error"),
    "503-long-retry-after": Fault(
        "503", ("HTTP 503", "asked to be retried in 7 seconds"), "agent_http_error"
    ),
    "first-event-timeout": Fault(
        "slow-start",
        ("took too long",),
        "agent_timeout",
        settings={"ORCH_AGENT_FIRST_EVENT_TIMEOUT": 0.5},
        agent={"slow_start_seconds": 5},
    ),
    "stall": Fault(
        "stall",
        ("Thinking very hard", "Answer interrupted", "went silent for 0.5 seconds"),
        "agent_timeout",
        settings={"ORCH_AGENT_IDLE_TIMEOUT": 0.5},
        agent={"stall_seconds": 30},
    ),
    "drop": Fault("drop", ("This answer will be cut", "Answer interrupted"), "stream_lost"),
    "drop-abrupt": Fault("drop-abrupt", ("This answer will be cut", "cut off"), "stream_lost"),
    "malformed-json": Fault("malformed", ("could not read", "not valid JSON"), "malformed_event"),
    "run-error": Fault(
        "run-error", ("The model provider is overloaded (overloaded)",), "run_error"
    ),
}

HANDLED: dict[str, Fault] = {
    "unknown-event-type": Fault("unknown-type", ("Hello from test-agent!",), None),
    "out-of-order": Fault("out-of-order", ("Content before its start.", "Then the rest."), None),
    "503-short-retry-after": Fault("503-once", ("Hello from test-agent!",), None),
}


def _agent_url(harness: Harness, fault: Fault) -> str:
    if fault.scenario == "refused":
        return f"http://127.0.0.1:{_closed_port()}/agents/helper"
    if "://" in fault.scenario:
        return fault.scenario
    return harness.agent.url(fault.scenario)


async def _run(harness: Harness, fault: Fault, state: str) -> tuple[Any, str]:
    for name, value in fault.agent.items():
        setattr(harness.agent, name, value)
    await harness.start(AGENT_URL=_agent_url(harness, fault), **fault.settings)
    thread_ts = await harness.mention("hello")
    row = await harness.settle(thread_ts, (state,), wait=KNOWABLE_WITHIN)
    return row, thread_ts


@pytest.mark.parametrize("name", list(FAULTS))
async def test_agent_fault_ends_errored_with_a_message_and_a_log_line(
    harness: Harness, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    fault = FAULTS[name]
    with caplog.at_level(logging.INFO, logger="orchestrator"):
        row, thread_ts = await _run(harness, fault, "errored")

    text = harness.thread_text(thread_ts)
    for expected in fault.shown:
        assert expected in text
    assert "Thinking…" not in text  # the placeholder was replaced
    buttons = [actions_of(m) for m in harness.thread_messages(thread_ts)]
    assert any(ACTION_RETRY in b for b in buttons) is fault.retry

    assert (row.state, row.error_kind) == ("errored", fault.kind)
    assert row.error_text
    history = await harness.history(thread_ts)
    assert history[-1].to_state == "errored"
    assert history[-1].detail.get("error", "run_error") in (fault.kind, "run_error")

    failed = [r for r in caplog.records if r.getMessage() == "run failed"]
    assert len(failed) == 1
    record = failed[0].__dict__
    assert record["conversation"] == row.id
    assert record["kind"] == fault.kind
    assert record["agent"] and record["detail"]
    assert failed[0].levelno == logging.WARNING


@pytest.mark.parametrize("name", list(HANDLED))
async def test_agent_oddity_is_handled_and_the_answer_arrives(
    harness: Harness, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    fault = HANDLED[name]
    with caplog.at_level(logging.INFO, logger="orchestrator"):
        row, thread_ts = await _run(harness, fault, "done")

    text = harness.thread_text(thread_ts)
    for expected in fault.shown:
        assert expected in text
    assert row.error_kind is None
    assert not [r for r in caplog.records if r.getMessage() == "run failed"]
    stored = await harness.rt.store.messages(row.id)
    assert stored[-1]["role"] == "assistant"
    assert all(expected in stored[-1]["content"] for expected in fault.shown)


async def test_unknown_event_type_is_logged_with_its_name(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    from orchestrator.agent.agui import events

    events._warned_types.discard("FUTURE_THING")
    with caplog.at_level(logging.WARNING, logger="orchestrator.agent"):
        await _run(harness, HANDLED["unknown-event-type"], "done")
    skipped = [r for r in caplog.records if r.__dict__.get("event_type") == "FUTURE_THING"]
    assert len(skipped) == 1


async def test_short_retry_after_is_waited_out_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="orchestrator.agent"):
        row, _ = await _run(harness, HANDLED["503-short-retry-after"], "done")

    bodies = [r.body for r in harness.agent.requests_for("503-once")]
    assert len(bodies) == 2
    assert bodies[0] == bodies[1]  # the same run, sent again unchanged
    busy = [r for r in caplog.records if r.__dict__.get("retry_after") == 1]
    assert len(busy) == 1
    assert [h.trigger for h in await harness.rt.store.history(row.id)] == [
        "user_message",
        "run_started",
        "run_finished",
    ]


async def test_a_busy_agent_that_stays_busy_is_asked_once_more_only(harness: Harness) -> None:
    # Retry-After within ORCH_AGENT_RETRY_AFTER_MAX, but the second answer is a 503 again.
    harness.agent.busy_retry_after = 1
    await harness.start("503-once", ORCH_AGENT_RETRY_AFTER_MAX=0.5)
    thread_ts = await harness.mention("hello")
    row = await harness.settle(thread_ts, ("errored",), wait=KNOWABLE_WITHIN)
    assert len(harness.agent.requests_for("503-once")) == 1  # 1 s is more than 0.5 s: no wait
    assert row.error_kind == "agent_http_error"
    assert "asked to be retried in 1 seconds" in harness.thread_text(thread_ts)


async def test_enormous_delta_is_shown_in_full_within_slack_limits(harness: Harness) -> None:
    await harness.start("huge-delta")
    thread_ts = await harness.mention("a lot please")
    row = await harness.settle(thread_ts, ("done",), wait=KNOWABLE_WITHIN)

    assert len(harness.thread_messages(thread_ts)) >= 2
    assert [c for c in harness.slack.calls if not c.response.get("ok")] == []
    stored = (await harness.rt.store.messages(row.id))[-1]["content"]
    assert len(stored) == 50_000
    shown = harness.thread_text(thread_ts)
    assert shown.count("All work and no play") >= 1000
