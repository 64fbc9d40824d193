"""End to end: signed Slack deliveries -> real app -> engine -> scripted agent -> Slack emulator."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import pytest
from sqlalchemy import event, func, insert, select

from orchestrator.agent.targets import AgentTarget
from persistence.inbound import PRUNE_BATCH
from persistence.models import InboundEvent
from persistence.store import Store
from renderers.common import ACTION_RETRY
from tests.databases import fresh_database
from tests.harness import ALICE, CHANNEL, SECRET, Harness, actions_of, find_with_action, until


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_mention_streams_answer_and_persists(harness: Harness) -> None:
    await harness.start("answer")
    thread_ts = await harness.mention("What can you do?")
    row = await harness.settle(thread_ts, ("done",))

    messages = harness.thread_messages(thread_ts)
    assert len(messages) == 1
    final = harness.thread_text(thread_ts)
    assert "Hello from test-agent!" in final
    assert "▌" not in final and "Thinking" not in final
    # posted at once, then edited in place
    posts = harness.slack.calls_to("chat.postMessage")
    assert posts[0].params["thread_ts"] == thread_ts
    assert messages[0].edits >= 1

    assert row.state == "done" and row.requester == ALICE
    assert [(h.trigger, h.to_state) for h in await harness.history(thread_ts)] == [
        ("user_message", "streaming"),
        ("run_started", "streaming"),
        ("run_finished", "done"),
    ]
    # what the backend received
    body = harness.agent.requests[-1].body
    assert body["threadId"] == row.id
    assert body["messages"][-1]["role"] == "user"
    assert body["messages"][-1]["content"] == "What can you do?"
    assert body["tools"] == [] and body["context"] == []
    assert body["forwardedProps"]["source"] == "slack"
    assert body["forwardedProps"]["slack"] == {"channel": CHANNEL, "threadTs": thread_ts}


async def test_follow_up_continues_the_same_conversation(harness: Harness) -> None:
    await harness.start("echo")
    thread_ts = await harness.mention("first question")
    first = await harness.settle(thread_ts, ("done",))
    await harness.say("and a follow-up, no mention", thread_ts)
    await harness.settle(thread_ts, ("done",), min_version=first.version + 1)

    bodies = [r.body for r in harness.agent.requests]
    assert len(bodies) == 2
    assert bodies[0]["threadId"] == bodies[1]["threadId"] == first.id
    roles = [m["role"] for m in bodies[1]["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert bodies[1]["messages"][0]["content"] == "first question"
    assert bodies[1]["messages"][2]["content"] == "and a follow-up, no mention"


async def test_plain_channel_message_without_mention_is_ignored(harness: Harness) -> None:
    await harness.start("answer")
    event = await harness.say("just chatting, not to the bot")
    await harness.rt.engine.drain()
    assert harness.agent.requests == []
    assert await harness.row(event["ts"]) is None


async def test_direct_message_starts_a_run(harness: Harness) -> None:
    harness.slack.add_channel("D0ALICE")
    await harness.start("answer")
    event = harness.slack.post_user_message("D0ALICE", ALICE, "hi in a DM")
    event["channel_type"] = "im"
    await harness.slack.deliver_event(harness.events_url, SECRET, event)
    row = await harness.settle(event["ts"], ("done",), channel="D0ALICE")
    assert row.channel_id == "D0ALICE"
    assert "Hello from test-agent!" in harness.thread_text(event["ts"], "D0ALICE")


async def test_bad_signature_is_refused(harness: Harness) -> None:
    await harness.start("answer")
    event = harness.slack.post_user_message(CHANNEL, ALICE, "forged", mention=True)
    response = await harness.slack.deliver_event(harness.events_url, "wrong-secret", event)
    assert response.status_code == 401
    await harness.rt.engine.drain()
    assert harness.agent.requests == []
    assert harness.slack.calls_to("chat.postMessage") == []


async def test_retries_and_double_delivery_answer_once(harness: Harness) -> None:
    await harness.start("answer")
    event = harness.slack.post_user_message(CHANNEL, ALICE, "once please", mention=True)
    await harness.slack.deliver_event(harness.events_url, SECRET, event, event_id="Ev1")
    await harness.slack.deliver_event(
        harness.events_url, SECRET, event, event_id="Ev1", retry_num=1
    )
    as_message = {**event, "type": "message"}
    await harness.slack.deliver_event(harness.events_url, SECRET, as_message, event_id="Ev2")
    await harness.settle(event["ts"], ("done",))
    assert len(harness.agent.requests) == 1
    assert len(harness.thread_messages(event["ts"])) == 1


async def test_tools_and_steps_are_shown(harness: Harness) -> None:
    await harness.start("tools")
    thread_ts = await harness.mention("use tools")
    await harness.settle(thread_ts, ("done",))
    text = harness.thread_text(thread_ts)
    assert "search_docs" in text
    body = harness.agent.requests[-1].body
    assert body["messages"][-1]["content"] == "use tools"
    # the tool calls and results of that run are kept for the next one
    history = await harness.rt.store.messages(harness.thread_id(thread_ts))
    assert any(m.get("toolCalls") for m in history if m["role"] == "assistant")
    assert any(m["role"] == "tool" for m in history)


async def test_long_answer_is_split_within_slack_limits(harness: Harness) -> None:
    await harness.start("long")
    thread_ts = await harness.mention("a long one")
    await harness.settle(thread_ts, ("done",))
    messages = harness.thread_messages(thread_ts)
    assert len(messages) >= 2  # continuation messages
    refused = [c for c in harness.slack.calls if not c.response.get("ok")]
    assert refused == []
    answer = "".join(
        m["content"]
        for m in await harness.rt.store.messages(harness.thread_id(thread_ts))
        if m["role"] == "assistant"
    )
    shown = harness.thread_text(thread_ts)
    last_words = answer.split()[-5:]
    assert all(word.strip("*_`") in shown for word in last_words)


async def test_update_throttle_latest_wins(harness: Harness) -> None:
    # With an interval longer than the whole answer only the first post, the first text (edited
    # in at once) and the final edit happen.
    await harness.start("answer", ORCH_UPDATE_INTERVAL=30)
    thread_ts = await harness.mention("hello")
    await harness.settle(thread_ts, ("done",))
    assert len(harness.slack.calls_to("chat.postMessage")) == 1
    assert len(harness.slack.calls_to("chat.update")) == 2
    assert "Hello from test-agent!" in harness.thread_text(thread_ts)


async def test_slack_429_is_retried_and_the_answer_arrives(harness: Harness) -> None:
    await harness.start("answer")
    harness.slack.rate_limit("chat.update", retry_after=1, times=1)
    thread_ts = await harness.mention("hello")
    await harness.settle(thread_ts, ("done",))
    statuses = [c.status for c in harness.slack.calls_to("chat.update")]
    assert 429 in statuses and statuses[-1] == 200
    assert "Hello from test-agent!" in harness.thread_text(thread_ts)


@pytest.mark.parametrize(
    ("scenario", "expected", "retry"),
    [
        ("run-error", "The model provider is overloaded", True),
        ("500", "The agent returned an error", True),
        ("drop", "cut off", True),
        ("malformed", "could not read", True),
        ("no-such-agent", "not known to the backend (HTTP 404)", False),
        ("401", "credentials", False),
    ],
)
async def test_failures_end_errored_with_a_clear_message(
    harness: Harness, scenario: str, expected: str, retry: bool
) -> None:
    await harness.start(scenario)
    thread_ts = await harness.mention("hello")
    row = await harness.settle(thread_ts, ("errored",))
    text = harness.thread_text(thread_ts)
    assert expected in text
    buttons = [actions_of(m) for m in harness.thread_messages(thread_ts)]
    assert any(ACTION_RETRY in b for b in buttons) is retry
    assert row.error_kind
    history = await harness.history(thread_ts)
    assert history[-1].to_state == "errored"


async def test_dropped_stream_keeps_partial_answer_marked(harness: Harness) -> None:
    await harness.start("drop")
    thread_ts = await harness.mention("hello")
    await harness.settle(thread_ts, ("errored",))
    text = harness.thread_text(thread_ts)
    assert "Answer interrupted" in text
    assert text.index("This answer will be cut") < text.index("Answer interrupted")


async def test_slow_first_event_times_out(harness: Harness) -> None:
    harness.agent.slow_start_seconds = 3
    await harness.start("slow-start", ORCH_AGENT_FIRST_EVENT_TIMEOUT=0.5)
    thread_ts = await harness.mention("hello")
    await harness.settle(thread_ts, ("errored",))
    assert "took too long" in harness.thread_text(thread_ts)


async def test_backend_down_then_retry_button_reruns(harness: Harness) -> None:
    target = {"url": f"http://127.0.0.1:{_closed_port()}/agents/answer"}
    await harness.start(agents=lambda _channel: AgentTarget(name="main", url=target["url"]))
    thread_ts = await harness.mention("are you there?")
    errored = await harness.settle(thread_ts, ("errored",))
    assert "could not be reached" in harness.thread_text(thread_ts)

    target["url"] = harness.agent.url("answer")  # the backend is back
    message = find_with_action(harness.thread_messages(thread_ts), ACTION_RETRY)
    await harness.click(message, ACTION_RETRY, actions_of(message)[ACTION_RETRY])
    row = await harness.settle(thread_ts, ("done",), min_version=errored.version + 1)
    assert row.state == "done"
    assert "Hello from test-agent!" in harness.thread_text(thread_ts)
    # the same input ran again: the user's message, once
    body = harness.agent.requests[-1].body
    assert [m["content"] for m in body["messages"] if m["role"] == "user"] == ["are you there?"]
    assert [h.trigger for h in await harness.history(thread_ts)][-3:] == [
        "retry",
        "run_started",
        "run_finished",
    ]
    # a second click on the old button does nothing but tell the clicker
    await harness.click(message, ACTION_RETRY, actions_of(message)[ACTION_RETRY])
    await harness.rt.engine.drain()
    assert len(harness.agent.requests) == 1


async def test_unknown_channel_is_logged_clearly(harness: Harness, caplog) -> None:
    harness.slack.add_channel("C0GONE")
    await harness.start("answer")
    event = harness.slack.post_user_message("C0GONE", ALICE, "hello", mention=True)
    harness.slack.fail("chat.postMessage", "channel_not_found", times=10)
    with caplog.at_level(logging.ERROR, logger="orchestrator.engine"):
        await harness.slack.deliver_event(harness.events_url, SECRET, event)
        row = await harness.settle(event["ts"], ("done", "errored"), channel="C0GONE")
    assert row is not None
    assert any("channel_not_found" in str(r.__dict__.get("error")) for r in caplog.records)


def notices(harness: Harness, thread_ts: str) -> tuple[int, int]:
    """How many messages the thread was told are queued, and told to send again."""
    shown = harness.thread_text(thread_ts)
    return shown.count("I'll pick this up right after"), shown.count("already waiting")


async def test_messages_sent_during_a_run_wait_their_turn_and_the_wait_is_bounded(
    harness: Harness,
) -> None:
    harness.agent.token_delay = 0.05  # the first answer streams for a few seconds
    await harness.start("answer")
    thread_ts = await harness.mention("first")
    await until(lambda: bool(harness.thread_messages(thread_ts)))
    for n in range(1, 8):
        told = sum(notices(harness, thread_ts))
        await harness.say(f"follow-up {n}", thread_ts)
        await until(lambda told=told: sum(notices(harness, thread_ts)) == told + 1)
    await until(lambda: len(harness.agent.requests) == 6, wait=60)
    await harness.settle(thread_ts, ("done",), wait=30)

    asked = [r.body["messages"][-1]["content"] for r in harness.agent.requests]
    assert asked == ["first", *(f"follow-up {n}" for n in range(1, 6))]
    assert notices(harness, thread_ts) == (5, 2)
    assert await harness.rt.store.queued(harness.thread_id(thread_ts)) == []


async def test_a_burst_of_follow_ups_is_answered_in_the_order_it_was_written(
    harness: Harness,
) -> None:
    harness.agent.token_delay = 0.05
    await harness.start("answer")
    thread_ts = await harness.mention("first")
    await until(lambda: bool(harness.thread_messages(thread_ts)))
    burst = [
        harness.slack.post_user_message(CHANNEL, ALICE, f"follow-up {n}", thread_ts)
        for n in range(1, 5)
    ]
    await asyncio.gather(
        *(harness.slack.deliver_event(harness.events_url, SECRET, m) for m in burst)
    )
    await until(lambda: len(harness.agent.requests) == 5, wait=60)
    await harness.settle(thread_ts, ("done",), wait=30)

    asked = [r.body["messages"][-1]["content"] for r in harness.agent.requests]
    assert asked == ["first", *(f"follow-up {n}" for n in range(1, 5))]
    assert notices(harness, thread_ts) == (4, 0)


async def test_a_start_with_the_token_in_the_environment_logs_no_warning(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", harness.slack.token)  # as in production
    with caplog.at_level(logging.WARNING):
        await harness.start("answer")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_events_and_clicks_it_does_not_handle_are_acknowledged(harness: Harness) -> None:
    await harness.start("answer")
    reaction = {
        "type": "reaction_added",
        "user": ALICE,
        "reaction": "eyes",
        "item": {"type": "message", "channel": CHANNEL, "ts": "1.000001"},
        "event_ts": "1.000002",
    }
    response = await harness.slack.deliver_event(harness.events_url, SECRET, reaction)
    assert response.status_code == 200

    message = harness.slack.post_user_message(CHANNEL, ALICE, "a message with a link button")
    click = harness.slack.block_actions_payload(
        user=ALICE,
        channel=CHANNEL,
        message_ts=message["ts"],
        action_id="open_docs",
        value="https://example.com/docs",
    )
    response = await harness.slack.deliver_action(harness.events_url, SECRET, click)
    assert response.status_code == 200
    assert harness.agent.requests == []
    assert not harness.thread_messages(message["ts"])


async def test_a_long_running_process_keeps_no_lock_per_finished_thread(harness: Harness) -> None:
    await harness.start("answer")
    for text in ("one", "two", "three"):
        await harness.settle(await harness.mention(text), ("done",))
    await harness.rt.engine.drain()
    assert len(harness.rt.engine.firing._locks) == 0


async def test_delivery_claims_are_kept_a_day_then_pruned(harness: Harness) -> None:
    await harness.start("answer")
    thread_ts = await harness.mention("hello")
    await harness.settle(thread_ts, ("done",))
    store = harness.rt.store
    async with store.engine.connect() as conn:
        claims = await conn.scalar(select(func.count()).select_from(InboundEvent))
    assert claims == 2  # the message, and the event that carried it

    await harness.rt.scheduler.tick(now=time.time() + 3600)  # within the day: kept
    async with store.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(InboundEvent)) == 2
    await harness.rt.scheduler.tick(now=time.time() + 2 * 24 * 3600)
    async with store.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(InboundEvent)) == 0


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_pruning_a_busy_day_of_claims_takes_batches(tmp_path: Path, kind: str) -> None:
    async with fresh_database(kind, tmp_path) as url:
        await prune_in_batches(await Store.open(url))


async def prune_in_batches(store: Store) -> None:
    try:
        old = [{"key": f"old-{n}", "at": 1000.0 + n} for n in range(2 * PRUNE_BATCH + 500)]
        new = [{"key": f"new-{n}", "at": 9000.0} for n in range(10)]
        async with store.write_engine.begin() as conn:
            await conn.execute(insert(InboundEvent), [*old, *new])
        statements: list[str] = []

        def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            statements.append(statement)

        event.listen(store.write_engine.sync_engine, "before_cursor_execute", seen)
        assert await store.prune_inbound(older_than=5000.0) == len(old)
        event.remove(store.write_engine.sync_engine, "before_cursor_execute", seen)
        assert sum(s.startswith("DELETE") for s in statements) == 3  # a batch per transaction
        async with store.engine.connect() as conn:
            left = (await conn.execute(select(InboundEvent.key))).scalars().all()
        assert sorted(left) == sorted(row["key"] for row in new)
    finally:
        await store.close()
