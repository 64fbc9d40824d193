"""Property: whatever AG-UI events a backend sends, the engine ends every thread in a valid state
of the machine with a consistent history, and nothing escapes as an error.

Hypothesis draws event sequences (valid, out of order, truncated, with unknown types and broken
JSON); the scripted agent serves each over real SSE to the real service, one thread per example.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ag_ui.core import (
    CustomEvent,
    Interrupt,
    MessagesSnapshotEvent,
    RawEvent,
    RunErrorEvent,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunFinishedSuccessOutcome,
    RunStartedEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
    UserMessage,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.agent.targets import AgentTarget
from orchestrator.sandbox.agent_server import Item, ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator
from tests.harness import CHANNEL, SETTLED, Harness

THREAD, RUN = "t", "r"
ids = st.sampled_from(["m1", "m2"])
calls = st.sampled_from(["c1", "c2"])
words = st.text(min_size=1, max_size=40)

events: st.SearchStrategy[Item] = st.one_of(
    st.just(RunStartedEvent(thread_id=THREAD, run_id=RUN)),
    st.builds(lambda i: TextMessageStartEvent(message_id=i, role="assistant"), ids),
    st.builds(lambda i, d: TextMessageContentEvent(message_id=i, delta=d), ids, words),
    st.builds(lambda i: TextMessageEndEvent(message_id=i), ids),
    st.builds(
        lambda c, n: ToolCallStartEvent(tool_call_id=c, tool_call_name=n, parent_message_id="m1"),
        calls,
        st.sampled_from(["search", "scale"]),
    ),
    st.builds(lambda c, d: ToolCallArgsEvent(tool_call_id=c, delta=d), calls, words),
    st.builds(lambda c: ToolCallEndEvent(tool_call_id=c), calls),
    st.builds(
        lambda c, d: ToolCallResultEvent(message_id=f"{c}-r", tool_call_id=c, content=d),
        calls,
        words,
    ),
    st.builds(lambda n: StepStartedEvent(step_name=n), st.sampled_from(["plan", "act"])),
    st.builds(lambda n: StepFinishedEvent(step_name=n), st.sampled_from(["plan", "act"])),
    st.builds(lambda m: CustomEvent(name="on_interrupt", value=json.dumps({"message": m})), words),
    st.builds(lambda d: MessagesSnapshotEvent(messages=[UserMessage(id="u", content=d)]), words),
    st.just(RawEvent(event={"anything": 1})),
    st.just('data: {"type":"SOMETHING_NEW","x":1}\n\n'),
    st.just("data: {not json\n\n"),
)
terminals: st.SearchStrategy[list[Item]] = st.one_of(
    st.just([]),  # the stream just ends
    st.just([RunFinishedEvent(thread_id=THREAD, run_id=RUN)]),
    st.builds(lambda m: [RunErrorEvent(message=m)], words),
    st.builds(
        lambda m, c: [
            RunFinishedEvent(
                thread_id=THREAD,
                run_id=RUN,
                outcome=RunFinishedInterruptOutcome(
                    interrupts=[
                        Interrupt(id="i1", reason="confirmation", message=m, tool_call_id=c)
                    ]
                ),
            )
        ],
        words,
        st.none() | calls,
    ),
    st.builds(
        lambda c: [
            RunFinishedEvent(
                thread_id=THREAD,
                run_id=RUN,
                outcome=RunFinishedSuccessOutcome(pending_tool_call_ids=[c]),
            )
        ],
        calls,
    ),
)
streams = st.builds(lambda body, end: body + end, st.lists(events, max_size=12), terminals)


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    harness: Harness
    target: dict[str, str]
    count: Iterator[int]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # One service for every example: each example is a new thread on it.
    loop = asyncio.new_event_loop()
    slack = SlackEmulator(channels=[CHANNEL])
    agent = ScriptedAgent(name="prop-agent")
    harness = Harness(slack, agent, Path(tmp_path_factory.mktemp("prop")) / "orchestrator.db")
    target = {"url": ""}
    loop.run_until_complete(slack.start())
    loop.run_until_complete(agent.start())
    loop.run_until_complete(
        harness.start(agents=lambda _channel: AgentTarget(name="prop", url=target["url"]))
    )
    yield World(loop, harness, target, itertools.count())
    loop.run_until_complete(harness.stop())
    loop.run_until_complete(agent.stop())
    loop.run_until_complete(slack.stop())
    loop.close()


async def _one_thread(world: World, stream: list[Item]) -> dict[str, Any]:
    harness = world.harness
    world.target["url"] = harness.agent.serve(f"prop-{next(world.count)}", stream)
    thread_ts = await harness.mention("go")
    row = await harness.settle(thread_ts, SETTLED, wait=10)
    row = await harness.row(thread_ts)  # as stored once the run is over
    assert row is not None
    return {"row": row, "history": await harness.history(thread_ts)}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=streams)
def test_any_event_sequence_ends_in_a_valid_state_with_consistent_history(
    world: World, caplog: pytest.LogCaptureFixture, stream: list[Item]
) -> None:
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        found = world.loop.run_until_complete(_one_thread(world, stream))
    row, history = found["row"], found["history"]
    machine = world.harness.rt.engine.machine.definition

    assert row.state in machine.states and row.state in SETTLED
    assert history and history[0].from_state == machine.initial
    for before, after in itertools.pairwise(history):
        assert after.from_state == before.to_state
    assert history[-1].to_state == row.state
    assert row.version == len(history)
    allowed = {
        (t.trigger, source, t.dest or source) for t in machine.transitions for source in t.source
    }
    for step in history:
        assert (step.trigger, step.from_state, step.to_state) in allowed
    if row.state == "errored":
        assert row.error_kind and row.error_text
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
