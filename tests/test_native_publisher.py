"""Native streaming and the thread status, driven directly against the Slack emulator over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Callable

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator.sandbox.slack_emulator import SlackEmulator, StoredMessage, render_text
from orchestrator.slack.native_publisher import NativePublisher
from orchestrator.slack.publisher import Publisher
from orchestrator.slack.stream_content import rest_messages
from orchestrator.slack.streaming_mode import StreamingMode
from orchestrator.slack.thread_status import TypingStatus
from renderers import done, errored
from renderers.common import section
from renderers.view import ErrorView, SlackMessage, StepView, ThreadView, ToolCallView
from tests.harness import ALICE, CHANNEL

FAST = 0.02  # the publishers' interval in these tests


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=slack.token, base_url=slack.api_url)


def ask(slack: SlackEmulator) -> str:
    return slack.post_user_message(CHANNEL, ALICE, "explain", mention=True)["ts"]


def new_view() -> ThreadView:
    return ThreadView(conversation_id="c-1", state="streaming", requester=ALICE)


def native(
    client: AsyncWebClient, thread_ts: str, view: ThreadView, **options: float
) -> NativePublisher:
    return NativePublisher(
        client,
        CHANNEL,
        thread_ts,
        view,
        recipient_user_id=ALICE,
        recipient_team_id="T0SANDBOX",
        interval=options.pop("interval", FAST),
        **options,  # type: ignore[arg-type]
    )


def answer_of(length: int) -> str:
    """Plain prose (nothing Markdown would rewrite) in paragraphs, `length` characters long."""
    words, size, count = [], 0, 0
    while size < length:
        count += 1
        word = f"word{count}" + ("\n\n" if count % 40 == 0 else " ")
        words.append(word)
        size += len(word)
    return "".join(words)[:length]


async def feed(publisher: NativePublisher | Publisher, view: ThreadView, text: str) -> None:
    """The engine's part: append deltas to the view and tell the publisher."""
    for start in range(0, len(text), 250):
        view.append_text(text[start : start + 250])
        publisher.changed(lambda: [])
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], wait: float = 5.0) -> None:
    deadline = time.monotonic() + wait
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def replies(slack: SlackEmulator, thread_ts: str) -> list[StoredMessage]:
    return slack.thread(CHANNEL, thread_ts)[1:]


def shown_text(message: StoredMessage) -> str:
    """The answer text a message shows: a stream's markdown, or a normal message's sections."""
    streamed = [b["text"] for b in message.blocks if b["type"] == "markdown"]
    if streamed:
        return "".join(streamed)
    return "".join(b["text"]["text"] for b in message.blocks if b["type"] == "section")


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def finish(view: ThreadView) -> list[SlackMessage]:
    view.state = "done"
    return done.render(view)


# -- bad input --------------------------------------------------------------------------------


async def test_bad_limits_and_modes_are_refused(client: AsyncWebClient) -> None:
    view = new_view()
    with pytest.raises(ValueError, match="max_chars"):
        NativePublisher(client, CHANNEL, "1.0", view, max_chars=0)
    with pytest.raises(ValueError, match="max_chars"):
        NativePublisher(client, CHANNEL, "1.0", view, max_chars=12_001)
    with pytest.raises(ValueError, match="max_age"):
        NativePublisher(client, CHANNEL, "1.0", view, max_age=0)
    with pytest.raises(ValueError, match="auto, native or update"):
        StreamingMode("sometimes", client)  # type: ignore[arg-type]


# -- streaming --------------------------------------------------------------------------------


async def test_long_answer_arrives_whole_across_rolled_over_messages(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    thread_ts = ask(slack)
    view = new_view()
    publisher = native(client, thread_ts, view)
    answer = answer_of(12_500)
    await publisher.open(finish(new_view()))
    await feed(publisher, view, answer)
    await publisher.close(finish(view))

    messages = replies(slack, thread_ts)
    assert "".join(message.text for message in messages) == answer
    assert len(messages) >= 5 and all(len(m.text) <= 3000 for m in messages)
    assert not any(message.streaming for message in messages)
    assert publisher.ts == [message.ts for message in messages]
    assert publisher.native and not slack.calls_to("chat.update")
    assert len(slack.calls_to("chat.stopStream")) == len(messages)


async def test_text_is_flushed_on_the_interval_and_only_the_suffix_is_appended(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    thread_ts = ask(slack)
    view = new_view()
    publisher = native(client, thread_ts, view, interval=0.1)
    await publisher.open([])
    stream = replies(slack, thread_ts)[0]
    for delta in ("The cluster ", "has three nodes", ", all ready."):
        view.append_text(delta)
        publisher.changed()
        # Nothing else happens: the interval alone brings the delta to Slack, mid-run.
        await until(lambda: stream.text == view.text)
        assert stream.streaming
        last = slack.calls_to("chat.appendStream")[-1].params["chunks"]
        assert last == [{"type": "markdown_text", "text": delta}]
    await publisher.close(finish(view))
    assert stream.text == "The cluster has three nodes, all ready." and not stream.streaming


async def test_at_most_one_append_per_interval_however_fast_the_deltas(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    thread_ts = ask(slack)
    view = new_view()
    publisher = native(client, thread_ts, view, interval=0.05)
    await publisher.open([])
    answer = answer_of(2500)
    for start in range(0, len(answer), 10):
        view.append_text(answer[start : start + 10])
        publisher.changed()
        await asyncio.sleep(0.001)
    live = [call.at for call in slack.calls_to("chat.appendStream")]  # the end flushes at once
    await publisher.close(finish(view))
    assert len(live) >= 2
    assert all(later - earlier >= 0.05 for earlier, later in itertools.pairwise(live))
    assert replies(slack, thread_ts)[0].text == answer


async def test_a_rate_limited_append_is_retried_on_the_next_interval(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    thread_ts = ask(slack)
    view = new_view()
    publisher = native(client, thread_ts, view)
    await publisher.open([])
    slack.rate_limit("chat.appendStream", times=2)
    view.append_text("Still streaming.")
    publisher.changed()
    stream = replies(slack, thread_ts)[0]
    await until(lambda: stream.text == "Still streaming.")
    await publisher.close(finish(view))
    statuses = [call.status for call in slack.calls_to("chat.appendStream")]
    assert statuses == [429, 429, 200] and publisher.native and stream.text == view.text


async def test_a_stream_past_its_age_rolls_over(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    thread_ts = ask(slack)
    view = new_view()
    publisher = native(client, thread_ts, view, max_age=0.15)
    await publisher.open([])
    for part in ("First part. ", "Second part. ", "Third part."):
        view.append_text(part)
        publisher.changed()
        await until(lambda: "".join(m.text for m in replies(slack, thread_ts)) == view.text)
        await asyncio.sleep(0.2)
    await publisher.close(finish(view))
    messages = replies(slack, thread_ts)
    assert "".join(m.text for m in messages) == "First part. Second part. Third part."
    assert len(messages) >= 2 and not any(m.streaming for m in messages)
    assert publisher.native


async def test_expired_stream_falls_back_without_losing_text(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    slack.stream_ttl = 0.3  # Slack ends the stream before the publisher would roll it over
    thread_ts = ask(slack)
    view = new_view()
    publisher = native(client, thread_ts, view, max_age=60)
    await publisher.open([])
    first, second = answer_of(900), " and then " + answer_of(2000)
    await feed(publisher, view, first)
    await until(lambda: replies(slack, thread_ts)[0].text == first)
    await asyncio.sleep(0.35)
    await feed(publisher, view, second)
    await publisher.close(finish(view))

    assert publisher.fallback_reason == "message_not_in_streaming_state"
    messages = replies(slack, thread_ts)
    assert messages[0].text == first
    assert squeezed("".join(shown_text(m) for m in messages)) == squeezed(first + second)
    assert publisher.ts == [m.ts for m in messages]
    assert not any(m.streaming for m in messages)


async def test_msg_too_long_falls_back_without_losing_text(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    slack.stream_max_chars = 1000  # smaller than the publisher's idea of a message
    thread_ts = ask(slack)
    view = new_view()
    publisher = native(client, thread_ts, view)
    answer = answer_of(4000)
    await publisher.open([])
    await feed(publisher, view, answer)
    await publisher.close(finish(view))

    assert publisher.fallback_reason == "msg_too_long"
    messages = replies(slack, thread_ts)
    assert len(messages[0].text) <= 1000
    assert squeezed("".join(shown_text(m) for m in messages)) == squeezed(answer)
    assert not any(m.streaming for m in messages)  # the refused stream was stopped too


async def test_stop_pressed_by_the_user(slack: SlackEmulator, client: AsyncWebClient) -> None:
    thread_ts = ask(slack)
    view = new_view()
    publisher = native(client, thread_ts, view)
    await publisher.open([])
    view.append_text("Before the stop. ")
    publisher.changed()
    stream = replies(slack, thread_ts)[0]
    await until(lambda: stream.text == "Before the stop. ")
    slack.stop_stream_by_user(CHANNEL, stream.ts)
    view.append_text("After it.")
    publisher.changed()
    await until(lambda: publisher.stopped_by_user)
    calls = len(slack.calls)
    view.append_text(" More.")
    publisher.changed()
    await asyncio.sleep(5 * FAST)
    assert len(slack.calls) == calls  # nothing is sent live once the user stopped

    await publisher.close(finish(view))
    shown = "".join(shown_text(m) for m in replies(slack, thread_ts))
    assert squeezed(shown) == squeezed("Before the stop. After it. More.")


async def test_tools_steps_final_blocks_and_forms(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    thread_ts = ask(slack)
    view = new_view()
    publisher = native(client, thread_ts, view)
    await publisher.open([])
    view.steps.append(StepView("Checking the cluster"))
    view.tool_calls["t1"] = ToolCallView(id="t1", name="kubectl_get")
    view.append_text("Looking. ")
    publisher.changed()
    stream = replies(slack, thread_ts)[0]
    await until(lambda: stream.text == "Looking. ")
    assert render_text(stream).splitlines()[:2] == ["Checking the cluster", "◐ kubectl_get"]

    view.tool_calls["t1"].status = "done"
    view.append_text("The API server is down.")
    view.state, view.error = "errored", ErrorView(kind="run_error", title="The agent failed")
    view.interrupted = "The agent failed"
    form = SlackMessage("Approval needed", [section("✋ *Approve the restart?*")])
    await publisher.close([*errored.render(view), form])

    messages = replies(slack, thread_ts)
    assert [m.ts for m in messages] == publisher.ts
    assert publisher.extra_ts == [messages[-1].ts] == publisher.ts[-1:]
    shown = render_text(messages[0])
    assert shown.startswith("Checking the cluster\n● kubectl_get\nLooking. The API server is down.")
    assert "Answer interrupted" in shown and shown.endswith("[Retry]")
    assert render_text(messages[-1]) == "✋ *Approve the restart?*"
    assert not messages[0].streaming


async def test_no_text_at_all_posts_the_final_messages(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    thread_ts = ask(slack)
    view = new_view()
    publisher = native(client, thread_ts, view)
    await publisher.open([])
    view.state, view.error = "errored", ErrorView(kind="unreachable", title="Agent unreachable")
    await publisher.close(errored.render(view))
    messages = replies(slack, thread_ts)
    assert len(messages) == 1 and publisher.ts == [messages[0].ts]
    assert render_text(messages[0]) == "*Agent unreachable*\n[Retry]"
    assert not messages[0].streaming


# -- the streaming mode -----------------------------------------------------------------------


async def test_auto_mode_falls_back_for_good_when_streaming_is_unknown(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    slack.remove_method("chat.startStream")
    mode = StreamingMode("auto", client, interval=FAST)
    thread_ts = ask(slack)
    view = new_view()
    first = mode.publisher(CHANNEL, thread_ts, view, requester=ALICE, team_id="T0SANDBOX")
    assert isinstance(first, NativePublisher)
    await first.open(finish(new_view()))
    await feed(first, view, "Here is the answer.")
    await first.close(finish(view))

    assert mode.unsupported == "unknown_method" and not mode.uses_native
    assert [render_text(m) for m in replies(slack, thread_ts)] == ["Here is the answer."]
    assert isinstance(mode.publisher(CHANNEL, thread_ts, new_view()), Publisher)
    assert len(slack.calls_to("chat.startStream")) == 1

    # `native` keeps trying each run (and still falls back per run); bots never stream.
    insisting = StreamingMode("native", client)
    assert isinstance(insisting.publisher(CHANNEL, thread_ts, new_view()), NativePublisher)
    bot = insisting.publisher(CHANNEL, thread_ts, new_view(), final_only=True)
    assert isinstance(bot, Publisher) and bot.final_only
    assert isinstance(StreamingMode("update", client).publisher(CHANNEL, "1", view), Publisher)


# -- the thread status ------------------------------------------------------------------------


async def test_status_shows_thinking_and_tools_until_text_then_clears(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    thread_ts = ask(slack)
    status = TypingStatus(client, CHANNEL, thread_ts, interval=0.1)
    await status.start()
    status.tool("search")
    status.step("Planning")
    status.tool("kubectl_get")  # within the interval: only the latest is sent
    await until(lambda: len(slack.statuses()) == 2)
    status.text_started()
    status.tool("late_tool")  # the answer is visible: no more statuses
    await until(lambda: len(slack.statuses()) == 3)
    await status.clear()
    assert [s["status"] for s in slack.statuses()] == [
        "is thinking…",
        "is running kubectl_get…",
        "",
    ]
    assert {(s["channel_id"], s["thread_ts"]) for s in slack.statuses()} == {(CHANNEL, thread_ts)}


async def test_status_cleared_at_the_end_and_failures_only_logged(
    slack: SlackEmulator, client: AsyncWebClient, caplog: pytest.LogCaptureFixture
) -> None:
    thread_ts = ask(slack)
    status = TypingStatus(client, CHANNEL, thread_ts, interval=0.05)
    await status.start()
    status.step("Reading the logs")
    await until(lambda: len(slack.statuses()) == 2)
    status.tool("search")
    await status.clear()  # the run ended without text; the clear supersedes the tool
    assert [s["status"] for s in slack.statuses()] == [
        "is thinking…",
        "is working on Reading the logs…",
        "",
    ]

    slack.fail("assistant.threads.setStatus", "missing_scope")
    broken = TypingStatus(client, CHANNEL, thread_ts, interval=0.05)
    await broken.start()
    broken.tool("search")
    await broken.clear()
    assert broken.calls == 1 and len(slack.statuses()) == 3
    assert "thread status not set" in caplog.text


async def test_a_long_wait_keeps_the_status_alive(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    thread_ts = ask(slack)
    status = TypingStatus(client, CHANNEL, thread_ts, interval=0.01, refresh=0.05)
    await status.start()
    status.tool("slow_tool")
    running = "is running slow_tool…"
    await until(lambda: [s["status"] for s in slack.statuses()][-2:] == [running, running])
    await status.clear()
    sent = [s["status"] for s in slack.statuses()]
    assert sent[:2] == ["is thinking…", "is running slow_tool…"] and sent[-1] == ""
    calls = len(slack.statuses())
    await asyncio.sleep(0.1)
    assert len(slack.statuses()) == calls  # cleared: no refresh after the end


def code_answer() -> str:
    """Prose, then a code block long enough to be cut by a rollover, then prose."""
    code = "\n".join(f"    total += step({n})  # keep going" for n in range(120))
    return answer_of(2000) + "\n\n```python\n" + code + "\n```\n\nThat is all." + "\n"


async def test_a_code_block_cut_by_a_rollover_is_closed_and_opened_again(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    thread_ts = ask(slack)
    view = new_view()
    publisher = native(client, thread_ts, view)
    answer = code_answer()
    await publisher.open([])
    await feed(publisher, view, answer)
    await publisher.close(finish(view))

    texts = [m.text for m in replies(slack, thread_ts)]
    assert len(texts) >= 2 and publisher.native
    assert all(text.count("```") % 2 == 0 for text in texts)  # each renders on its own
    reopened = [text for text in texts[1:] if text.startswith("```\n")]
    assert reopened and "total += step(" in reopened[0].split("\n")[1]
    assert "".join(texts).replace("\n``````\n", "") == answer


def test_the_rest_of_an_answer_cut_inside_a_code_block_opens_it_again() -> None:
    answer = code_answer()
    inside = answer.index("total += step(60)")
    view = new_view()
    view.append_text(answer)
    first = rest_messages(view, inside, [])[0].blocks[0]["text"]["text"]
    assert first.startswith("```") and "total += step(60)" in first
    assert rest_messages(view, 0, [])[0].blocks[0]["text"]["text"].startswith("word1")
