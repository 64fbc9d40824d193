"""A finished answer's buttons, end to end: 👍 / 👎 with details, Regenerate, Get help."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from orchestrator.sandbox.loopback import LoopbackServer
from orchestrator.sandbox.slack_emulator import StoredMessage, render_text
from orchestrator.service.runtime import Runtime
from renderers.common import (
    ACTION_ESCALATE,
    ACTION_ESCALATE_ERROR,
    ACTION_REGENERATE,
    ACTION_RETRY,
    ACTION_THUMBS_DOWN,
    ACTION_THUMBS_UP,
    FEEDBACK_CALLBACK_ID,
)
from tests.harness import ALICE, BOB, CHANNEL, SECRET, Harness, actions_of
from tests.test_cli_threads import cli

ESCALATION = "defaults:\n  escalate_to: [U0LEAD, S0ONCALL]\n"


class Receiver:
    """The feedback endpoint: a tiny ASGI app on 127.0.0.1 that keeps what it is sent."""

    def __init__(self, port: int = 0) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        app = Starlette(routes=[Route("/feedback", self._take, methods=["POST"])])
        self.server = LoopbackServer(app, port=port)
        self.url = ""

    async def _take(self, request: Request) -> JSONResponse:
        self.posts.append(await request.json())
        return JSONResponse({"ok": self.status < 400}, status_code=self.status)

    async def start(self) -> str:
        self.url = f"{await self.server.start()}/feedback"
        return self.url


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.server.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def answered(harness: Harness, scenario: str = "answer", **settings: Any) -> str:
    await harness.start(scenario, **settings)
    thread_ts = await harness.mention("What can you do?")
    await harness.settle(thread_ts, ("done",))
    return thread_ts


def answer_message(harness: Harness, thread_ts: str, index: int = -1) -> StoredMessage:
    answers = [m for m in harness.thread_messages(thread_ts) if ACTION_THUMBS_UP in actions_of(m)]
    assert answers, "no answer with feedback buttons"
    return answers[index]


async def click(
    harness: Harness, message: StoredMessage, action_id: str, *, user: str = ALICE
) -> httpx.Response:
    return await harness.click(message, action_id, actions_of(message)[action_id], user=user)


async def submit_details(
    harness: Harness,
    run_id: str,
    *,
    reasons: list[str] = (),
    comment: str | None = None,
    user: str = ALICE,
) -> httpx.Response:
    values = {
        "reasons": {
            "value": {
                "type": "checkboxes",
                "selected_options": [
                    {"text": {"type": "plain_text", "text": r}, "value": r} for r in reasons
                ],
            }
        },
        "comment": {"value": {"type": "plain_text_input", "value": comment}},
    }
    payload = harness.slack.view_submission_payload(
        user=user,
        callback_id=FEEDBACK_CALLBACK_ID,
        private_metadata=run_id,
        state_values=values,
    )
    return await harness.slack.deliver_action(harness.events_url, SECRET, payload)


def notes(harness: Harness) -> list[str]:
    """The ephemeral replies people got to their clicks."""
    return [c.params.get("text", "") for c in harness.slack.calls_to("response_url")]


async def until(check, wait: float = 10) -> None:
    """Wait for a condition (clicks are handled after Slack gets its acknowledgement)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def noted(harness: Harness, text: str, count: int = 1) -> bool:
    return sum(text in n for n in notes(harness)) >= count


async def shows(harness: Harness, thread_ts: str, text: str) -> bool:
    return text in render_text(answer_message(harness, thread_ts))


async def pinged(harness: Harness, thread_ts: str) -> bool:
    return any("asked for help" in m.text for m in harness.thread_messages(thread_ts))


async def forwarded(harness: Harness, thread_id: str, state: str, attempts: int = 0) -> bool:
    rows = await harness.rt.store.feedback_of(thread_id)
    return bool(rows) and rows[0].forward_state == state and rows[0].forward_attempts >= attempts


# --- feedback ----------------------------------------------------------------------------


async def test_thumbs_up_is_stored_thanked_and_counted_without_names(harness: Harness) -> None:
    thread_ts = await answered(harness)
    row = await harness.row(thread_ts)
    message = answer_message(harness, thread_ts)
    # no escalation targets configured: no Get help button
    assert set(actions_of(message)) == {ACTION_THUMBS_UP, ACTION_THUMBS_DOWN, ACTION_REGENERATE}
    assert actions_of(message)[ACTION_THUMBS_UP] == row.run_id  # buttons carry only an id

    response = await click(harness, message, ACTION_THUMBS_UP, user=BOB)
    assert response.status_code == 200
    await until(lambda: noted(harness, "Thanks for the feedback"))
    (stored,) = await harness.rt.store.feedback_of(row.id)
    assert (stored.run_id, stored.user, stored.rating) == (row.run_id, BOB, "up")
    assert stored.forward_state is None  # no ORCH_FEEDBACK_URL: nothing to send

    shown = render_text(answer_message(harness, thread_ts))
    assert "Feedback recorded: 👍 1 · 👎 0" in shown
    assert BOB not in shown and "Hello from test-agent!" in shown

    await click(harness, answer_message(harness, thread_ts), ACTION_THUMBS_UP, user=BOB)
    await until(lambda: noted(harness, "Thanks for the feedback", 2))
    assert len(await harness.rt.store.feedback_of(row.id)) == 1  # one rating per person


async def test_thumbs_down_opens_modal_and_details_are_stored_and_forwarded(
    harness: Harness, receiver: Receiver
) -> None:
    thread_ts = await answered(harness, ORCH_FEEDBACK_URL=receiver.url)
    row = await harness.row(thread_ts)
    message = answer_message(harness, thread_ts)
    payload = harness.slack.block_actions_payload(
        user=ALICE,
        channel=CHANNEL,
        message_ts=message.ts,
        action_id=ACTION_THUMBS_DOWN,
        value=row.run_id,
    )
    await harness.slack.deliver_action(harness.events_url, SECRET, payload)
    await until(lambda: shows(harness, thread_ts, "👎 1"))

    (opened,) = harness.slack.calls_to("views.open")
    assert opened.params["trigger_id"] == payload["trigger_id"]
    view = opened.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == FEEDBACK_CALLBACK_ID and view["private_metadata"] == row.run_id
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    labels = [o["text"]["text"] for o in blocks["reasons"]["element"]["options"]]
    assert labels == ["Wrong answer", "Needs more detail", "Too long", "Other"]
    assert blocks["comment"]["element"]["multiline"] and blocks["comment"]["optional"]
    # the 👎 itself is kept even if the modal is never submitted
    assert [f.rating for f in await harness.rt.store.feedback_of(row.id)] == ["down"]

    response = await submit_details(
        harness, row.run_id, reasons=["wrong", "too_long"], comment="It said 3, it is 5."
    )
    assert response.status_code == 200 and not response.text  # the modal closes
    await harness.rt.engine.drain()
    (stored,) = await harness.rt.store.feedback_of(row.id)
    assert (stored.rating, stored.reasons, stored.comment) == (
        "down",
        ["wrong", "too_long"],
        "It said 3, it is 5.",
    )
    assert stored.forward_state == "sent" and stored.forwarded_at
    last = receiver.posts[-1]
    keys = ("id", "thread", "run", "user", "rating", "reasons", "comment")
    assert {k: last[k] for k in keys} == {
        "id": stored.id,
        "thread": row.id,
        "run": row.run_id,
        "user": ALICE,
        "rating": "down",
        "reasons": ["wrong", "too_long"],
        "comment": "It said 3, it is 5.",
    }
    assert (last["channel"], last["thread_ts"]) == (CHANNEL, thread_ts)
    assert "👎 1" in render_text(answer_message(harness, thread_ts))


@pytest.mark.parametrize(
    ("reasons", "comment", "run", "error"),
    [
        ([], None, None, "Pick a reason or write a comment"),
        (["bogus"], None, None, "Unknown reason 'bogus'"),
        (["wrong"], "x" * 3001, None, "under 3000 characters"),
        (["wrong"], None, "no-such-run", "no longer known"),
    ],
)
async def test_bad_feedback_details_get_an_error_and_lose_nothing(
    harness: Harness, reasons: list[str], comment: str | None, run: str | None, error: str
) -> None:
    thread_ts = await answered(harness)
    row = await harness.row(thread_ts)
    await click(harness, answer_message(harness, thread_ts), ACTION_THUMBS_DOWN)
    await until(lambda: shows(harness, thread_ts, "👎 1"))

    response = await submit_details(harness, run or row.run_id, reasons=reasons, comment=comment)
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert any(error in text for text in body["errors"].values())
    (stored,) = await harness.rt.store.feedback_of(row.id)
    assert (stored.rating, stored.reasons, stored.comment) == ("down", [], None)


async def test_forwarding_endpoint_down_keeps_feedback_logs_and_retries_later(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}/feedback"
    thread_ts = await answered(harness, ORCH_FEEDBACK_URL=url)
    row = await harness.row(thread_ts)
    with caplog.at_level(logging.WARNING, logger="orchestrator.feedback"):
        await click(harness, answer_message(harness, thread_ts), ACTION_THUMBS_UP)
        await until(lambda: forwarded(harness, row.id, "pending", attempts=1))
    (stored,) = await harness.rt.store.feedback_of(row.id)
    assert stored.rating == "up"  # stored whatever the endpoint does
    assert (stored.forward_state, stored.forward_attempts) == ("pending", 1)
    assert "ConnectError" in stored.forward_error and stored.forward_due > time.time() + 20
    (record,) = [r for r in caplog.records if r.getMessage() == "feedback not forwarded"]
    assert record.__dict__["feedback"] == stored.id and record.__dict__["attempt"] == 1

    receiver = Receiver(port)  # the endpoint comes back; the scheduler's next due send works
    await receiver.start()
    try:
        await harness.rt.scheduler.tick(now=time.time() + 60)
    finally:
        await receiver.server.stop()
    (stored,) = await harness.rt.store.feedback_of(row.id)
    assert stored.forward_state == "sent" and stored.forward_error is None
    assert [(p["id"], p["rating"]) for p in receiver.posts] == [(stored.id, "up")]


async def test_a_refusing_endpoint_is_not_retried(harness: Harness, receiver: Receiver) -> None:
    receiver.status = 400
    thread_ts = await answered(harness, ORCH_FEEDBACK_URL=receiver.url)
    row = await harness.row(thread_ts)
    await click(harness, answer_message(harness, thread_ts), ACTION_THUMBS_UP)
    await until(lambda: forwarded(harness, row.id, "failed"))
    (stored,) = await harness.rt.store.feedback_of(row.id)
    assert (stored.forward_state, stored.forward_error) == ("failed", "HTTP 400")
    await harness.rt.scheduler.tick(now=time.time() + 86_400)
    assert len(receiver.posts) == 1


async def test_feedback_and_escalation_are_shown_by_threads_show(harness: Harness) -> None:
    thread_ts = await answered(harness, SLACK_INTEGRATION_BOT_CONFIG=ESCALATION)
    row = await harness.row(thread_ts)
    await click(harness, answer_message(harness, thread_ts), ACTION_THUMBS_UP, user=BOB)
    await click(harness, answer_message(harness, thread_ts), ACTION_THUMBS_DOWN)
    await until(lambda: shows(harness, thread_ts, "👍 1 · 👎 1"))
    await submit_details(harness, row.run_id, reasons=["more_detail"], comment="which steps?")
    await click(harness, answer_message(harness, thread_ts), ACTION_ESCALATE, user=BOB)
    await until(lambda: pinged(harness, thread_ts))

    data = json.loads(cli(harness, "show", row.id, "--json").stdout)
    feedback = {f["user"]: f for f in data["feedback"]}
    assert feedback[BOB]["rating"] == "up" and feedback[BOB]["run"] == row.run_id
    assert feedback[ALICE]["reasons"] == ["more_detail"]
    assert feedback[ALICE]["comment"] == "which steps?"
    assert data["escalation"]["by"] == BOB
    assert data["escalation"]["targets"] == ["U0LEAD", "S0ONCALL"]
    text = cli(harness, "show", row.id[:8]).stdout
    assert "feedback" in text and f"up by {BOB}" in text
    assert "more_detail" in text and "which steps?" in text
    assert f"escalated by {BOB}" in text


# --- regenerate --------------------------------------------------------------------------


async def test_regenerate_sends_the_same_input_once_and_keeps_the_old_answer(
    harness: Harness,
) -> None:
    thread_ts = await answered(harness, "echo")
    first = await harness.row(thread_ts)
    old = answer_message(harness, thread_ts)

    responses = await asyncio.gather(
        click(harness, old, ACTION_REGENERATE), click(harness, old, ACTION_REGENERATE, user=BOB)
    )
    assert all(r.status_code == 200 for r in responses)
    await until(lambda: noted(harness, "already regenerated"))
    row = await harness.settle(thread_ts, ("done",), min_version=first.version + 3)

    bodies = [r.body for r in harness.agent.requests]
    assert len(bodies) == 2  # the double click ran once
    assert bodies[1]["messages"] == bodies[0]["messages"]  # the same input, nothing more
    assert bodies[1]["threadId"] == bodies[0]["threadId"] and bodies[1]["runId"] != first.run_id
    assert row.run_id != first.run_id

    answers = [m for m in harness.thread_messages(thread_ts) if ACTION_THUMBS_UP in actions_of(m)]
    assert len(answers) == 2
    marked = render_text(answers[0])
    assert "last_user_message" in marked  # the old answer stays
    assert "Regenerated by <@" in marked and ACTION_REGENERATE not in actions_of(answers[0])
    assert ACTION_REGENERATE in actions_of(answers[1])
    assert sum("already regenerated" in n for n in notes(harness)) == 1

    history = await harness.history(thread_ts)
    regenerations = [h for h in history if h.trigger == "regenerate"]
    assert len(regenerations) == 1 and regenerations[0].detail == {"run": first.run_id}
    assert (regenerations[0].from_state, regenerations[0].to_state) == ("done", "streaming")
    # the stored conversation holds the question and only the new answer
    assert [m["role"] for m in await harness.rt.store.messages(row.id)] == ["user", "assistant"]


async def test_only_the_latest_answer_can_be_regenerated(harness: Harness) -> None:
    thread_ts = await answered(harness, "echo")
    first = await harness.row(thread_ts)
    await harness.say("a follow-up", thread_ts)
    await harness.settle(thread_ts, ("done",), min_version=first.version + 1)
    await click(harness, answer_message(harness, thread_ts, 0), ACTION_REGENERATE)
    await until(lambda: noted(harness, "Only the latest answer"))
    assert len(harness.agent.requests) == 2


async def test_a_button_clicked_in_another_channel_is_refused(harness: Harness) -> None:
    thread_ts = await answered(harness)
    row = await harness.row(thread_ts)
    other = harness.slack.post_user_message("C0OTHER", ALICE, "elsewhere")
    message = next(m for m in harness.slack.thread("C0OTHER", other["ts"]))
    payload = harness.slack.block_actions_payload(
        user=ALICE,
        channel="C0OTHER",
        message_ts=message.ts,
        action_id=ACTION_REGENERATE,
        value=row.run_id,
    )
    await harness.slack.deliver_action(harness.events_url, SECRET, payload)
    await until(lambda: noted(harness, "does not belong to this conversation"))
    assert len(harness.agent.requests) == 1


# --- escalation --------------------------------------------------------------------------


async def test_get_help_pings_the_configured_people_once(harness: Harness) -> None:
    thread_ts = await answered(harness, SLACK_INTEGRATION_BOT_CONFIG=ESCALATION)
    message = answer_message(harness, thread_ts)
    assert ACTION_ESCALATE in actions_of(message)

    await click(harness, message, ACTION_ESCALATE, user=BOB)
    await until(lambda: pinged(harness, thread_ts))
    await click(harness, message, ACTION_ESCALATE, user=ALICE)
    await until(lambda: noted(harness, "already asked for help"))

    pings = [m for m in harness.thread_messages(thread_ts) if "asked for help" in m.text]
    assert len(pings) == 1
    assert "<@U0LEAD>" in pings[0].text and "<!subteam^S0ONCALL>" in pings[0].text
    assert f"<@{BOB}> asked for help" in pings[0].text
    (note,) = [n for n in notes(harness) if "already asked for help" in n]
    assert note.startswith(f"<@{BOB}> already asked for help here at ") and " UTC" in note

    row = await harness.row(thread_ts)
    escalation = await harness.rt.store.get_escalation(row.id)
    assert (escalation.user, escalation.targets) == (BOB, ["U0LEAD", "S0ONCALL"])
    history = await harness.history(thread_ts)
    assert [(h.trigger, h.actor) for h in history if h.trigger == "escalated"] == [
        ("escalated", BOB)
    ]


async def test_get_help_is_offered_on_a_failed_run_and_pings_once(harness: Harness) -> None:
    await harness.start("500", SLACK_INTEGRATION_BOT_CONFIG=ESCALATION)
    thread_ts = await harness.mention("deploy please")
    row = await harness.settle(thread_ts, ("errored",))
    error = next(m for m in harness.thread_messages(thread_ts) if ACTION_RETRY in actions_of(m))
    assert actions_of(error)[ACTION_ESCALATE_ERROR] == row.id

    await click(harness, error, ACTION_ESCALATE_ERROR, user=BOB)
    await until(lambda: pinged(harness, thread_ts))
    await click(harness, error, ACTION_ESCALATE_ERROR)
    await until(lambda: noted(harness, "already asked for help"))

    pings = [m for m in harness.thread_messages(thread_ts) if "asked for help" in m.text]
    assert len(pings) == 1 and f"<@{BOB}> asked for help" in pings[0].text
    escalation = await harness.rt.store.get_escalation(row.id)
    assert (escalation.user, escalation.run_id) == (BOB, row.run_id)

    other = harness.slack.post_user_message("C0OTHER", ALICE, "elsewhere")
    payload = harness.slack.block_actions_payload(
        user=ALICE,
        channel="C0OTHER",
        message_ts=other["ts"],
        action_id=ACTION_ESCALATE_ERROR,
        value=row.id,
    )
    await harness.slack.deliver_action(harness.events_url, SECRET, payload)
    await until(lambda: noted(harness, "does not belong to this conversation"))


async def test_a_failed_run_offers_no_help_where_nobody_is_set_up(harness: Harness) -> None:
    await harness.start("500")
    thread_ts = await harness.mention("deploy please")
    await harness.settle(thread_ts, ("errored",))
    error = next(m for m in harness.thread_messages(thread_ts) if ACTION_RETRY in actions_of(m))
    assert ACTION_ESCALATE_ERROR not in actions_of(error)


async def test_a_ping_slack_refused_can_be_sent_again(harness: Harness) -> None:
    thread_ts = await answered(harness, SLACK_INTEGRATION_BOT_CONFIG=ESCALATION)
    message = answer_message(harness, thread_ts)
    harness.slack.fail("chat.postMessage", "channel_not_found")
    await click(harness, message, ACTION_ESCALATE, user=BOB)
    await until(lambda: noted(harness, "could not be posted"))
    assert await harness.rt.store.get_escalation((await harness.row(thread_ts)).id) is None

    await click(harness, message, ACTION_ESCALATE, user=BOB)
    await until(lambda: pinged(harness, thread_ts))
    assert len([m for m in harness.thread_messages(thread_ts) if "asked for help" in m.text]) == 1


# --- restarts ----------------------------------------------------------------------------


async def test_old_buttons_work_after_a_restart(harness: Harness) -> None:
    thread_ts = await answered(harness, "echo", SLACK_INTEGRATION_BOT_CONFIG=ESCALATION)
    message = answer_message(harness, thread_ts)
    await click(harness, message, ACTION_ESCALATE, user=BOB)
    await until(lambda: pinged(harness, thread_ts))

    await harness.stop()
    await harness.start("echo", SLACK_INTEGRATION_BOT_CONFIG=ESCALATION)  # same DB file
    first = await harness.row(thread_ts)

    await click(harness, message, ACTION_THUMBS_UP)
    await click(harness, message, ACTION_ESCALATE)
    await until(lambda: noted(harness, "Thanks for the feedback"))
    await until(lambda: noted(harness, "already asked for help"))
    assert [(f.user, f.rating) for f in await harness.rt.store.feedback_of(first.id)] == [
        (ALICE, "up")
    ]
    assert "👍 1" in render_text(answer_message(harness, thread_ts))
    assert any(f"<@{BOB}> already asked for help" in n for n in notes(harness))
    assert len([m for m in harness.thread_messages(thread_ts) if "asked for help" in m.text]) == 1

    await click(harness, message, ACTION_REGENERATE)
    row = await harness.settle(thread_ts, ("done",), min_version=first.version + 3)
    assert row.run_id != first.run_id and len(harness.agent.requests) == 2
    assert "Regenerated by" in render_text(answer_message(harness, thread_ts, 0))


async def test_two_replicas_regenerating_at_once_run_it_once(harness: Harness) -> None:
    thread_ts = await answered(harness, "echo")
    first = await harness.row(thread_ts)
    other = Runtime(harness.settings("echo"))  # a second replica on the same database
    await other.start(recover=False)
    try:
        notes = await asyncio.gather(
            *(
                rt.engine.answers.regenerate(run_id=first.run_id, user=ALICE, channel=CHANNEL)
                for rt in (harness.rt, other)
            )
        )
        await other.engine.drain()
        await harness.settle(thread_ts, ("done",), min_version=first.version + 3)
    finally:
        await other.stop()
    assert notes.count(None) == 1, notes
    assert sum(n is not None and "already regenerated" in n for n in notes) == 1, notes
    assert len(harness.agent.requests) == 2
