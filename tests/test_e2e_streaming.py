"""The streaming modes end to end: signed mention -> real app -> engine -> publisher -> emulator.

`ORCH_SLACK_STREAMING` picks native streaming (chat.startStream/appendStream/stopStream with the
thread status), throttled chat.update, or `auto`; every answer must arrive whole either way.
"""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from orchestrator.sandbox.slack_emulator import RecordedCall, StoredMessage, render_text
from renderers.common import (
    ACTION_APPROVE,
    ACTION_REGENERATE,
    ACTION_RETRY,
    ACTION_THUMBS_DOWN,
    ACTION_THUMBS_UP,
)
from tests.harness import ALICE, BOB, CHANNEL, Harness, actions_of, find_with_action, until
from tests.test_e2e_approvals import answers as form_values

NATIVE = {"ORCH_SLACK_STREAMING": "native"}


def prose(length: int) -> str:
    """Plain words in paragraphs (nothing Markdown would rewrite), `length` characters long."""
    words, size, count = [], 0, 0
    while size < length:
        count += 1
        word = f"word{count}" + ("\n\n" if count % 40 == 0 else " ")
        words.append(word)
        size += len(word)
    return "".join(words)[:length].rstrip() + "."


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def answer_text(message: StoredMessage) -> str:
    """The answer a message shows: a stream's markdown, or a posted message's sections."""
    streamed = [b["text"] for b in message.blocks if b["type"] == "markdown"]
    if streamed:
        return "".join(streamed)
    return "".join(b["text"]["text"] for b in message.blocks if b["type"] == "section")


def shown_answer(harness: Harness, thread_ts: str) -> str:
    return squeezed("".join(answer_text(m) for m in harness.thread_messages(thread_ts)))


def streamed_ts(harness: Harness) -> list[str]:
    return [c.response["ts"] for c in harness.slack.calls_to("chat.startStream")]


def carries_text(call: RecordedCall) -> bool:
    chunks = call.params.get("chunks") or []
    return any(c.get("type") == "markdown_text" and c.get("text") for c in chunks)


def errors(harness: Harness) -> list[str]:
    """Slack's error of every refused Web API call, in order."""
    return [c.response["error"] for c in harness.slack.calls if c.response.get("error")]


def status_cleared(harness: Harness) -> bool:
    statuses = harness.slack.statuses()
    return bool(statuses) and statuses[-1]["status"] == ""


def notes(harness: Harness) -> list[str]:
    """The ephemeral replies people got to their clicks."""
    return [c.params.get("text", "") for c in harness.slack.calls_to("response_url")]


async def click(harness: Harness, message: StoredMessage, action_id: str, user: str = ALICE):
    return await harness.click(message, action_id, actions_of(message)[action_id], user=user)


# -- a long answer arrives whole ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["native", "update"])
async def test_a_long_answer_arrives_whole_in_every_mode(harness: Harness, mode: str) -> None:
    harness.agent.answer_text = prose(13_000)
    await harness.start("answer", ORCH_SLACK_STREAMING=mode)
    thread_ts = await harness.mention("tell me everything")
    row = await harness.settle(thread_ts, ("done",))

    messages = harness.thread_messages(thread_ts)
    assert shown_answer(harness, thread_ts) == squeezed(harness.agent.answer_text)
    assert not any(m.streaming for m in messages)
    assert row.message_ts == [m.ts for m in messages]
    assert ACTION_THUMBS_UP in actions_of(messages[-1])
    if mode == "native":
        # rolled over before Slack's limits, every message a stream, the Markdown as sent
        assert streamed_ts(harness) == row.message_ts and len(messages) >= 5
        assert "".join(answer_text(m) for m in messages) == harness.agent.answer_text
        assert all(len(answer_text(m)) <= 3000 for m in messages)
        assert not harness.slack.calls_to("chat.update")
    else:
        assert not harness.slack.calls_to("chat.startStream") and len(messages) >= 2
        assert "(continued)" in render_text(messages[1])
        assert not harness.slack.statuses()  # the live message shows the progress itself


async def test_the_long_scenario_streams_its_markdown_unchanged(harness: Harness) -> None:
    await harness.start("long", **NATIVE)
    thread_ts = await harness.mention("the long one")
    await harness.settle(thread_ts, ("done",))
    body = "".join(answer_text(m) for m in harness.thread_messages(thread_ts))
    assert body.startswith("## Section 1\n") and body.count("```python") == 30
    assert len(body) > 12_000 and "## Section 30" in body


# -- Slack ends a stream early --------------------------------------------------------------


async def test_a_stream_expiring_mid_answer_falls_back_without_losing_text(
    harness: Harness,
) -> None:
    harness.slack.stream_ttl = 0.3  # long before the publisher would roll the message over
    harness.agent.token_delay = 0.01
    harness.agent.answer_text = prose(1500)
    await harness.start("answer", **NATIVE)
    thread_ts = await harness.mention("take your time")
    row = await harness.settle(thread_ts, ("done",))

    messages = harness.thread_messages(thread_ts)
    assert shown_answer(harness, thread_ts) == squeezed(harness.agent.answer_text)
    assert harness.slack.calls_to("chat.update"), "the rest went out with chat.update"
    assert "message_not_in_streaming_state" in errors(harness)
    first = messages[0]
    assert first.ts == streamed_ts(harness)[0]
    assert harness.agent.answer_text.startswith(answer_text(first))  # confirmed text kept
    assert not any(m.streaming for m in messages)
    assert row.message_ts == [m.ts for m in messages]

    # a rating redraws the fallback messages only: the streamed text stays as it was
    await click(harness, messages[-1], ACTION_THUMBS_UP)
    await until(lambda: "👍 1" in render_text(harness.thread_messages(thread_ts)[-1]))
    assert answer_text(harness.thread_messages(thread_ts)[0]) == answer_text(first)
    assert shown_answer(harness, thread_ts) == squeezed(harness.agent.answer_text)


async def test_a_stream_expiring_before_any_text_leaves_no_empty_message(
    harness: Harness,
) -> None:
    harness.slack.stream_ttl = 0.3
    harness.agent.slow_start_seconds = 0.6  # the first event comes after Slack ended the stream
    await harness.start("slow-start", **NATIVE)
    thread_ts = await harness.mention("slowly")
    row = await harness.settle(thread_ts, ("done",))

    messages = harness.thread_messages(thread_ts)
    assert all(render_text(m).strip() for m in messages), "an empty message was left"
    assert "Hello from test-agent!" in harness.thread_text(thread_ts)
    assert row.message_ts == [m.ts for m in messages]
    assert not any(m.streaming for m in messages)


async def test_stop_pressed_mid_answer_still_shows_the_whole_answer(harness: Harness) -> None:
    harness.agent.token_delay = 0.01
    harness.agent.answer_text = prose(1000)
    await harness.start("answer", **NATIVE)
    thread_ts = await harness.mention("go on")
    await until(lambda: any(answer_text(m) for m in harness.thread_messages(thread_ts)))
    stream = harness.thread_messages(thread_ts)[0]
    harness.slack.stop_stream_by_user(CHANNEL, stream.ts)
    stopped_at = len(harness.slack.calls)
    await harness.settle(thread_ts, ("done",))

    later = harness.slack.calls[stopped_at:]
    refused = [c for c in later if c.method.endswith("Stream")]
    assert all(c.response.get("error") == "stopped_by_user" for c in refused)
    assert len(refused) <= 1  # nothing more is streamed once the user stopped it
    assert shown_answer(harness, thread_ts) == squeezed(harness.agent.answer_text)
    assert ACTION_THUMBS_UP in actions_of(harness.thread_messages(thread_ts)[-1])


def test_an_unknown_streaming_mode_is_refused_with_the_choices(harness: Harness) -> None:
    with pytest.raises(ValidationError) as refused:
        harness.settings(ORCH_SLACK_STREAMING="sometimes")
    message = str(refused.value)
    assert "ORCH_SLACK_STREAMING" in message and "'auto', 'native' or 'update'" in message


# -- the thread status -------------------------------------------------------------------------


async def test_thread_status_is_set_before_the_first_text_and_cleared(harness: Harness) -> None:
    await harness.start("answer", **NATIVE)
    thread_ts = await harness.mention("hello")
    await harness.settle(thread_ts, ("done",))
    await until(lambda: status_cleared(harness))

    calls = harness.slack.calls
    first_text = next(
        i
        for i, c in enumerate(calls)
        if c.method in ("chat.startStream", "chat.appendStream") and carries_text(c)
    )
    statuses = [
        (i, c.params["status"])
        for i, c in enumerate(calls)
        if c.method == "assistant.threads.setStatus"
    ]
    assert statuses[0][0] < first_text and statuses[0][1] == "is thinking…"
    assert [s for i, s in statuses if i > first_text] in ([], [""])  # nothing set once it shows
    assert statuses[-1][1] == "" and len(statuses) == 2  # set once, then cleared
    assert {(s["channel_id"], s["thread_ts"]) for s in harness.slack.statuses()} == {
        (CHANNEL, thread_ts)
    }


async def test_thread_status_names_the_running_tool(harness: Harness) -> None:
    harness.agent.answer_text = "All set."
    harness.agent.token_delay = 0.15  # the text starts well after the tool calls
    await harness.start("tools", **NATIVE)
    thread_ts = await harness.mention("use tools")
    await harness.settle(thread_ts, ("done",))
    await until(lambda: status_cleared(harness))

    calls = harness.slack.calls
    first_text = next(
        i for i, c in enumerate(calls) if c.method.endswith("Stream") and carries_text(c)
    )
    before = [
        c.params["status"] for c in calls[:first_text] if c.method == "assistant.threads.setStatus"
    ]
    assert before[0] == "is thinking…"
    assert {"is running search_docs…", "is running read_runbook…"} & set(before), before
    after = [
        c.params["status"] for c in calls[first_text:] if c.method == "assistant.threads.setStatus"
    ]
    assert set(after) <= {""} and harness.slack.statuses()[-1]["status"] == ""
    # the tools show as tasks of the streamed message
    shown = render_text(harness.thread_messages(thread_ts)[0])
    assert "● search_docs" in shown and "● read_runbook" in shown


# -- auto -------------------------------------------------------------------------------------


async def test_auto_without_native_streaming_falls_back_for_good(harness: Harness) -> None:
    harness.slack.remove_method("chat.startStream")
    await harness.start("answer", ORCH_SLACK_STREAMING="auto")
    thread_ts = await harness.mention("first")
    first = await harness.settle(thread_ts, ("done",))
    assert "Hello from test-agent!" in harness.thread_text(thread_ts)
    assert len(harness.slack.calls_to("chat.startStream")) == 1

    await harness.say("second", thread_ts)
    await harness.settle(thread_ts, ("done",), min_version=first.version + 1)
    other = await harness.mention("a new thread")
    await harness.settle(other, ("done",))

    assert len(harness.slack.calls_to("chat.startStream")) == 1  # never asked again
    assert not harness.slack.calls_to("chat.appendStream")
    answers = [m for m in harness.thread_messages(thread_ts) if ACTION_THUMBS_UP in actions_of(m)]
    assert len(answers) == 2
    assert all("Hello from test-agent!" in render_text(m) for m in answers)
    assert "Hello from test-agent!" in harness.thread_text(other)
    assert harness.rt.engine.streaming.unsupported == "unknown_method"


# -- approvals, errors and answer buttons ---------------------------------------------------


async def test_an_approval_form_is_its_own_message_and_approve_works(harness: Harness) -> None:
    await harness.start("interrupt-outcome", **NATIVE)
    thread_ts = await harness.mention("please scale web")
    row = await harness.settle(thread_ts, ("awaiting_approval",))

    form = find_with_action(harness.thread_messages(thread_ts), ACTION_APPROVE)
    stream = harness.slack.thread(CHANNEL, thread_ts)[1]
    assert stream.ts == streamed_ts(harness)[0] and form.ts != stream.ts
    assert "needs approval" in answer_text(stream) and ACTION_APPROVE not in actions_of(stream)
    assert not form.streaming and not stream.streaming
    (interrupt,) = await harness.interrupts(thread_ts)
    assert interrupt.form_ts == form.ts and row.message_ts[-1] == form.ts

    await harness.click(
        form, ACTION_APPROVE, actions_of(form)[ACTION_APPROVE], values=form_values("8", "go")
    )
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    assert harness.agent.resumes == 1
    answered = next(m for m in harness.thread_messages(thread_ts) if m.ts == form.ts)
    assert "Approved by <@U0ALICE>" in render_text(answered)
    resumed = harness.thread_messages(thread_ts)[-1]
    assert resumed.ts == streamed_ts(harness)[-1] and len(streamed_ts(harness)) == 2
    assert 'Decision received: {"replicas": 8, "comment": "go"}' in answer_text(resumed)


async def test_an_error_shows_in_the_stream_with_a_retry_that_works(harness: Harness) -> None:
    await harness.start("run-error", **NATIVE)
    thread_ts = await harness.mention("fail please")
    row = await harness.settle(thread_ts, ("errored",))

    (message,) = harness.thread_messages(thread_ts)
    assert message.ts == streamed_ts(harness)[0] and not message.streaming
    shown = render_text(message)
    assert shown.startswith("Let me look into that")
    assert "Answer interrupted" in shown and "The agent reported an error" in shown
    assert ACTION_RETRY in actions_of(message)
    assert row.error_kind == "run_error"

    await click(harness, message, ACTION_RETRY)
    await harness.settle(thread_ts, ("errored",), min_version=row.version + 1)
    assert len(harness.agent.requests) == 2
    assert len(streamed_ts(harness)) == 2


async def test_answer_buttons_are_on_the_final_stream_and_work(harness: Harness) -> None:
    await harness.start("answer", **NATIVE)
    thread_ts = await harness.mention("What can you do?")
    first = await harness.settle(thread_ts, ("done",))

    (message,) = harness.thread_messages(thread_ts)
    assert message.ts == streamed_ts(harness)[0]
    assert set(actions_of(message)) == {ACTION_THUMBS_UP, ACTION_THUMBS_DOWN, ACTION_REGENERATE}
    assert actions_of(message)[ACTION_THUMBS_UP] == first.run_id

    await click(harness, message, ACTION_THUMBS_UP, user=BOB)
    await until(lambda: any("Thanks for the feedback" in n for n in notes(harness)))
    await until(lambda: "👍 1" in render_text(harness.thread_messages(thread_ts)[0]))
    (shown,) = harness.thread_messages(thread_ts)
    assert "Hello from test-agent!" in render_text(shown)
    assert ACTION_REGENERATE in actions_of(shown)

    await click(harness, shown, ACTION_REGENERATE)
    await harness.settle(thread_ts, ("done",), min_version=first.version + 3)
    await until(lambda: "Regenerated by" in render_text(harness.thread_messages(thread_ts)[0]))
    old, new = harness.thread_messages(thread_ts)
    assert "Hello from test-agent!" in render_text(old)
    assert ACTION_REGENERATE not in actions_of(old)
    assert new.ts == streamed_ts(harness)[1] and ACTION_REGENERATE in actions_of(new)
    assert "Hello from test-agent!" in answer_text(new)


async def test_feedback_on_a_long_native_answer_keeps_the_text_as_it_was(
    harness: Harness,
) -> None:
    harness.agent.answer_text = prose(8000)
    await harness.start("answer", **NATIVE)
    thread_ts = await harness.mention("a long one")
    await harness.settle(thread_ts, ("done",))
    messages = harness.thread_messages(thread_ts)
    assert len(messages) >= 3
    before = [answer_text(m) for m in messages]

    await click(harness, messages[-1], ACTION_THUMBS_UP)
    await until(lambda: "👍 1" in render_text(harness.thread_messages(thread_ts)[-1]))
    after = harness.thread_messages(thread_ts)
    assert [m.ts for m in after] == [m.ts for m in messages]
    assert shown_answer(harness, thread_ts) == squeezed(harness.agent.answer_text)
    assert [squeezed(answer_text(m)) for m in after] == [squeezed(t) for t in before]
    assert [bool(actions_of(m)) for m in after] == [False] * (len(after) - 1) + [True]
