"""How the service talks to Slack while an answer streams, end to end (signed mention -> real app
-> engine -> publisher -> emulator):

- every Web API call goes over one kept HTTP session: a long answer's many edits come on one
  TCP connection (or a few), not one connection (against Slack, one TLS handshake) per edit;
- the answer's first text is shown as soon as it arrives, not one throttle interval later;
- reading the stream never waits on the database: with the database locked by someone else,
  the text still reaches Slack, and the run's writes land in order once the lock is gone.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from ag_ui.core import (
    RunFinishedEvent,
    RunStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
)

from orchestrator.sandbox.agent_scenarios import Gate, Pause
from tests.harness import Harness, until
from tests.test_e2e_streaming import prose, shown_answer, squeezed

FIRST = "The first words "
REST = "and then all the rest of the answer."
EDITS = {"chat.update", "chat.appendStream"}


def answer(*middle: Any) -> list[Any]:
    """A scripted run: the first words, `middle` (a pause or a gate), then the rest. The first
    words come a moment after the message's start, as a model's first token does."""
    return [
        RunStartedEvent(thread_id="t", run_id="r"),
        TextMessageStartEvent(message_id="m1", role="assistant"),
        Pause(0.2),
        TextMessageContentEvent(message_id="m1", delta=FIRST),
        *middle,
        TextMessageContentEvent(message_id="m1", delta=REST),
        TextMessageEndEvent(message_id="m1"),
        RunFinishedEvent(thread_id="t", run_id="r"),
    ]


def rest_sent(harness: Harness) -> bool:
    """Whether the agent has sent the rest of the answer yet."""
    return any(
        e.kind == "event" and isinstance(e.data, dict) and e.data.get("delta") == REST
        for e in harness.agent.exchanges
    )


@pytest.mark.parametrize("mode", ["native", "update"])
async def test_a_long_answer_edits_over_one_connection(harness: Harness, mode: str) -> None:
    harness.agent.token_delay = 0.003
    harness.agent.answer_text = prose(2500)
    await harness.start("answer", ORCH_SLACK_STREAMING=mode, ORCH_UPDATE_INTERVAL=0.02)
    thread_ts = await harness.mention("tell me a lot")
    await harness.settle(thread_ts, ("done",))

    assert shown_answer(harness, thread_ts) == squeezed(harness.agent.answer_text)
    edits = [c for c in harness.slack.calls if c.method in EDITS]
    assert len(edits) >= 15, "the answer was meant to take many edits"
    made = [c for c in harness.slack.calls if c.peer]  # the Web API calls the service made
    # one kept connection; a second or third only when calls overlap (status, session, edit)
    assert len(harness.slack.connections(made)) <= 3
    assert len(harness.slack.connections(edits)) <= 2


@pytest.mark.parametrize("mode", ["native", "update"])
async def test_the_first_text_is_shown_before_the_agent_goes_on(
    harness: Harness, mode: str
) -> None:
    # The throttle's interval is longer than the agent's pause: only a first text sent at once
    # can be in Slack while the agent still holds the rest back.
    harness.agent.record_exchanges = True
    url = harness.agent.serve("first-words", answer(Pause(3)))
    await harness.start(
        AGENT_URL=url, ORCH_SLACK_STREAMING=mode, ORCH_UPDATE_INTERVAL=6, ORCH_SLACK_SESSIONS="off"
    )
    thread_ts = await harness.mention("say something")

    seen: list[tuple[str, bool]] = []

    def first_words_shown() -> bool:
        shown = harness.thread_text(thread_ts)
        if FIRST.strip() in shown:
            seen.append((shown, rest_sent(harness)))
            return True
        return False

    await until(first_words_shown, wait=6)
    shown, rest_was_sent = seen[0]
    assert not rest_was_sent, "the first words must be in Slack while the agent pauses"
    assert REST not in shown

    await harness.settle(thread_ts, ("done",), wait=20)
    assert shown_answer(harness, thread_ts) == squeezed(FIRST + REST)


def lock_database(path: str) -> sqlite3.Connection | None:
    """Someone else's write transaction on the service's database (None while one of the
    service's own writes holds the lock: try again)."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        other.close()
        return None
    return other


async def test_the_text_reaches_slack_while_the_database_is_locked(harness: Harness) -> None:
    locked, go_on = asyncio.Event(), asyncio.Event()
    url = harness.agent.serve("locked-db", [Gate(locked), *answer(Gate(go_on))])
    await harness.start(AGENT_URL=url, ORCH_SLACK_SESSIONS="off")
    thread_ts = await harness.mention("while the database is busy")

    # The run is stored and its request sent; then the database is locked before any event.
    await until(lambda: bool(harness.agent.requests_for("locked-db")))
    other = None
    while other is None:
        other = lock_database(str(harness.db_path))
        await asyncio.sleep(0.01)
    try:
        locked.set()
        await until(lambda: FIRST.strip() in harness.thread_text(thread_ts))
        history = [t.trigger for t in await harness.history(thread_ts)]
        assert "run_started" not in history, "the run's first write waits for the lock"
    finally:
        other.rollback()
        other.close()
    go_on.set()

    await harness.settle(thread_ts, ("done",))
    assert shown_answer(harness, thread_ts) == squeezed(FIRST + REST)
    triggers = [t.trigger for t in await harness.history(thread_ts)]
    assert triggers[-2:] == ["run_started", "run_finished"], triggers
