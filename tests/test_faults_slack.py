"""Faults of the Slack Web API, end to end: 429s, 5xx and refusals on the methods the bot calls.

The bot calls chat.postMessage, chat.update, chat.getPermalink and usergroups.users.list. Its
ephemeral notes go through the click's response_url, and it never reads conversations.replies,
so chat.postEphemeral and conversations.replies are not on its path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.sandbox.slack_emulator import RecordedCall
from renderers.common import ACTION_APPROVE
from tests.harness import ALICE, Harness, actions_of, find_with_action
from tests.test_e2e_approvals import answers, approve, pause_for_approval

ANSWER = "Hello from test-agent!"


async def wait_for(condition: Callable[[], bool], wait: float = 10) -> None:
    deadline = time.monotonic() + wait
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def statuses(harness: Harness, method: str) -> list[int]:
    return [call.status for call in harness.slack.calls_to(method)]


@pytest.mark.parametrize("method", ["chat.postMessage", "chat.update"])
async def test_429_on_posting_and_editing_is_waited_out(harness: Harness, method: str) -> None:
    await harness.start("answer", ORCH_UPDATE_INTERVAL=30)
    harness.slack.rate_limit(method, retry_after=1, times=1)
    thread_ts = await harness.mention("hello")
    row = await harness.settle(thread_ts, ("done",))

    assert statuses(harness, method)[:2] == [429, 200]
    assert ANSWER in harness.thread_text(thread_ts)
    assert len(harness.thread_messages(thread_ts)) == 1  # the retried post was not doubled
    assert row.error_kind is None


async def test_429_on_permalink_still_points_to_the_form(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-outcome")
    harness.slack.rate_limit("chat.getPermalink", retry_after=1, times=1)
    before = len(harness.thread_messages(thread_ts))
    await harness.say("is it done yet?", thread_ts)
    await wait_for(lambda: len(harness.thread_messages(thread_ts)) > before)

    assert statuses(harness, "chat.getPermalink") == [429, 200]
    reply = harness.thread_messages(thread_ts)[-1]
    assert "http" in reply.text and "the approval above" in reply.text
    assert (await harness.row(thread_ts)).state == "awaiting_approval"


async def test_429_on_user_groups_still_lets_the_approver_answer(
    harness: Harness, tmp_path: Path
) -> None:
    config = tmp_path / "channels.yaml"
    config.write_text("defaults:\n  approvers: [S0ONCALL]\n")
    harness.slack.usergroups["S0ONCALL"] = [ALICE]
    thread_ts = await pause_for_approval(harness, "interrupt-outcome", ORCH_CONFIG=str(config))
    harness.slack.rate_limit("usergroups.users.list", retry_after=1, times=1)
    await approve(harness, thread_ts)
    row = await harness.settle(thread_ts, ("done",))

    assert statuses(harness, "usergroups.users.list") == [429, 200]
    assert harness.agent.resumes == 1
    assert "Decision received" in harness.thread_text(thread_ts)
    assert row.state == "done"


@pytest.mark.parametrize("method", ["chat.postMessage", "chat.update"])
async def test_a_passing_5xx_is_retried(harness: Harness, method: str) -> None:
    await harness.start("answer", ORCH_UPDATE_INTERVAL=30)
    harness.slack.http_error(method, 503, times=1)
    thread_ts = await harness.mention("hello")
    await harness.settle(thread_ts, ("done",))

    assert statuses(harness, method)[:2] == [503, 200]
    assert ANSWER in harness.thread_text(thread_ts)
    assert len(harness.thread_messages(thread_ts)) == 1


async def test_lasting_5xx_on_the_final_edit_is_recorded(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.start("answer", ORCH_UPDATE_INTERVAL=30)
    harness.slack.http_error("chat.update", 500, times=10)
    with caplog.at_level(logging.ERROR, logger="orchestrator.engine"):
        thread_ts = await harness.mention("hello")
        await harness.settle(thread_ts, ("done",))
    row = await harness.row(thread_ts)  # as stored once the run is over

    assert (row.error_kind, row.error_text) == (
        "slack_delivery",
        "The answer could not be posted in Slack (internal_error)",
    )
    lost = [r for r in caplog.records if r.getMessage() == "final answer not delivered"]
    assert [r.__dict__["error"] for r in lost] == ["internal_error"]
    assert lost[0].__dict__["conversation"] == row.id
    # the answer is kept for the next run and for the operator
    stored = await harness.rt.store.messages(row.id)
    assert ANSWER in stored[-1]["content"]


@pytest.mark.parametrize("error", ["invalid_blocks", "msg_too_long"])
async def test_refused_final_edit_falls_back_to_plain_text(
    harness: Harness, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    await harness.start("answer", ORCH_UPDATE_INTERVAL=30)

    def refuse_the_next_edit(call: RecordedCall) -> None:
        # The first text is edited in at once; with this interval the next edit is the final one.
        if call.method == "chat.update" and not harness.slack.calls_to("chat.update")[:-1]:
            harness.slack.fail("chat.update", error, times=1)

    harness.slack.call_watchers.append(refuse_the_next_edit)
    with caplog.at_level(logging.WARNING, logger="orchestrator.publisher"):
        thread_ts = await harness.mention("hello")
        row = await harness.settle(thread_ts, ("done",))

    [message] = harness.thread_messages(thread_ts)
    assert message.blocks == []  # the refused blocks are gone, the words are not
    assert ANSWER in message.text and "Nothing here calls a real model." in message.text
    assert row.error_kind is None
    updates = harness.slack.calls_to("chat.update")
    assert [c.response.get("error") for c in updates] == [None, error, None]
    assert [r.__dict__["error"] for r in caplog.records] == [error]


async def test_refused_first_post_falls_back_then_the_answer_is_rendered(harness: Harness) -> None:
    await harness.start("answer", ORCH_UPDATE_INTERVAL=30)
    harness.slack.fail("chat.postMessage", "invalid_blocks", times=1)
    thread_ts = await harness.mention("hello")
    await harness.settle(thread_ts, ("done",))

    [message] = harness.thread_messages(thread_ts)
    assert message.blocks  # the final edit carried blocks again
    assert ANSWER in harness.thread_text(thread_ts)


async def test_plain_text_fallback_of_an_enormous_answer_stays_within_limits(
    harness: Harness,
) -> None:
    await harness.start("huge-delta", ORCH_UPDATE_INTERVAL=30)
    harness.slack.fail("chat.update", "msg_too_long", times=1)
    thread_ts = await harness.mention("a lot")
    await harness.settle(thread_ts, ("done",))

    first = harness.thread_messages(thread_ts)[0]
    assert first.blocks == [] and len(first.text) <= 4000
    assert first.text.endswith("… (shortened)")
    assert harness.slack.calls_to("chat.update")[-1].response["ok"]


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel"])
async def test_unwritable_channel_ends_in_a_state_that_says_why(
    harness: Harness, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    await harness.start("answer")
    harness.slack.fail("chat.postMessage", error, times=10)
    with caplog.at_level(logging.ERROR, logger="orchestrator.engine"):
        thread_ts = await harness.mention("hello")
        await harness.settle(thread_ts, ("done",))
    row = await harness.row(thread_ts)  # as stored once the run is over

    assert harness.thread_messages(thread_ts) == []
    assert row.error_kind == "slack_delivery" and error in (row.error_text or "")
    logged = {r.getMessage(): r.__dict__.get("error") for r in caplog.records}
    assert logged == {"cannot post in the thread": error, "final answer not delivered": error}
    # the run itself completed and its answer is stored: a later message continues from it
    assert (await harness.rt.store.messages(row.id))[-1]["role"] == "assistant"


async def test_refused_form_refresh_does_not_block_the_resume(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-outcome")
    harness.slack.fail("chat.update", "invalid_blocks", times=1)  # the form turning "approved"
    form = find_with_action(harness.thread_messages(thread_ts), ACTION_APPROVE)
    await harness.click(form, ACTION_APPROVE, actions_of(form)[ACTION_APPROVE], values=answers())
    row = await harness.settle(thread_ts, ("done",))

    assert harness.agent.resumes == 1
    assert "Decision received" in harness.thread_text(thread_ts)
    assert row.state == "done"
