"""Slack's agent sessions and Stop, end to end: signed events and clicks -> real app -> engine ->
the Slack emulator (sessions, streams, the Messages tab) and the scripted agent (which records a
run whose connection its client closed).

The session of a thread follows the machine's states (`machines/thread.yaml`: streaming ->
processing, awaiting_approval -> suspended, done and errored -> active). Stop, from Slack's
session or from the live answer's button, cancels the agent's run and leaves the thread
answerable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml
from ag_ui.core import RunAgentInput

from orchestrator.agent.agui.client import AgentClient
from orchestrator.agent.contract import AguiClient
from orchestrator.agent.targets import AgentTarget
from orchestrator.sandbox.loopback import LoopbackServer
from orchestrator.sandbox.slack_emulator import StoredMessage
from orchestrator.service.runtime import Runtime
from renderers.common import ACTION_APPROVE, ACTION_STOP, ACTION_THUMBS_UP
from tests.harness import ALICE, BOB, CHANNEL, SECRET, Harness, actions_of, until
from tests.test_e2e_approvals import answers as form_values
from tests.test_e2e_streaming import prose, squeezed

NATIVE = {"ORCH_SLACK_STREAMING": "native"}
SLOW = 0.02  # seconds between the scripted agent's words: an answer of several seconds


def statuses(harness: Harness, thread_ts: str) -> list[str]:
    return harness.slack.session_statuses(CHANNEL, thread_ts)


async def session_shows(harness: Harness, thread_ts: str, status: str) -> None:
    """Wait until Slack shows the thread's session as `status` (calls are throttled)."""
    await until(lambda: statuses(harness, thread_ts)[-1:] == [status])


def config_file(tmp_path: Path, **defaults: Any) -> str:
    path = tmp_path / "channels.yaml"
    path.write_text(yaml.safe_dump({"defaults": defaults}))
    return str(path)


def with_stop(harness: Harness, thread_ts: str) -> StoredMessage:
    found = [m for m in harness.thread_messages(thread_ts) if ACTION_STOP in actions_of(m)]
    assert found, "the live answer has no Stop button"
    return found[-1]


async def press_stop(harness: Harness, thread_ts: str, user: str) -> Any:
    button = with_stop(harness, thread_ts)
    return await harness.click(button, ACTION_STOP, actions_of(button)[ACTION_STOP], user=user)


async def slow_answer(harness: Harness, text: str = "tell me everything", **settings: Any) -> str:
    """Mention the bot for a long, slow answer; return the thread once some of it shows."""
    harness.agent.token_delay = SLOW
    harness.agent.answer_text = prose(3000)
    await harness.start("answer", **settings)
    thread_ts = await harness.mention(text)
    await until(lambda: "word3 " in harness.thread_text(thread_ts))
    return thread_ts


async def agent_saw_the_connection_close(harness: Harness) -> None:
    await until(lambda: bool(harness.agent.closed_by_client()))


# -- the session follows the thread ----------------------------------------------------------


async def test_the_session_follows_the_thread_through_a_form_done_and_an_error(
    harness: Harness,
) -> None:
    await harness.start("auto")
    thread_ts = await harness.mention("Why is the build red?\nIt was green yesterday.")
    first = await harness.settle(thread_ts, ("done",))
    await session_shows(harness, thread_ts, "active")
    assert statuses(harness, thread_ts) == ["processing", "active"]
    session = harness.slack.session(CHANNEL, thread_ts)
    assert session is not None
    assert (session.title, session.initiator) == ("Why is the build red?", ALICE)

    await harness.say("please scale web", thread_ts)
    waiting = await harness.settle(thread_ts, ("awaiting_approval",), min_version=first.version + 1)
    await session_shows(harness, thread_ts, "suspended")
    form = next(m for m in harness.thread_messages(thread_ts) if ACTION_APPROVE in actions_of(m))
    await harness.click(
        form, ACTION_APPROVE, actions_of(form)[ACTION_APPROVE], values=form_values("8", "ok")
    )
    resumed = await harness.settle(thread_ts, ("done",), min_version=waiting.version + 1)
    await session_shows(harness, thread_ts, "active")

    await harness.say("fail please", thread_ts)
    await harness.settle(thread_ts, ("errored",), min_version=resumed.version + 1)
    await session_shows(harness, thread_ts, "active")
    full = [
        *("processing", "active"),  # the first answer
        *("processing", "suspended", "processing", "active"),  # the form, then the resume
        *("processing", "active"),  # the failed run: answerable again
    ]
    # Calls are throttled per thread, the latest status winning: a status that a later one
    # replaced within the interval (a run that reaches its form, or fails, at once) is skipped.
    shown = statuses(harness, thread_ts)
    assert shown[:2] == ["processing", "active"] and "suspended" in shown
    left = iter(full)
    assert all(status in left for status in shown), shown  # `full` in order, some skipped
    calls = harness.slack.calls_to("agents.sessions.setStatus")
    assert [bool(c.params.get("title")) for c in calls] == [True] + [False] * (len(calls) - 1)


async def test_a_native_stream_closes_with_the_session_status(harness: Harness) -> None:
    await harness.start("interrupt-outcome", **NATIVE)
    thread_ts = await harness.mention("please scale web")
    await harness.settle(thread_ts, ("awaiting_approval",))
    await session_shows(harness, thread_ts, "suspended")
    (stop,) = harness.slack.calls_to("chat.stopStream")
    assert stop.params["session_status"] == "suspended" and stop.response["ok"]


# -- Stop ---------------------------------------------------------------------------------------


async def test_slacks_stop_cancels_the_run_and_the_thread_takes_the_next_message(
    harness: Harness,
) -> None:
    thread_ts = await slow_answer(harness, **NATIVE)
    await session_shows(harness, thread_ts, "processing")
    event = harness.slack.stop_session_by_user(CHANNEL, thread_ts, ALICE)
    assert event["streaming_message_ts"], "Slack stopped the live stream"
    await harness.slack.deliver_event(harness.events_url, SECRET, event)
    stopped = await harness.settle(thread_ts, ("done",))

    await agent_saw_the_connection_close(harness)
    shown = harness.thread_text(thread_ts)
    assert "Stopped by <@U0ALICE>" in shown
    assert "word3 " in shown and harness.agent.answer_text[-40:] not in shown  # partial, kept
    assert not any(m.streaming for m in harness.thread_messages(thread_ts))
    await session_shows(harness, thread_ts, "active")
    history = await harness.history(thread_ts)
    assert [(h.trigger, h.actor) for h in history if "stop" in h.trigger] == [
        ("stop_requested", ALICE),
        ("stop", ALICE),
    ]

    harness.agent.token_delay = 0
    harness.agent.answer_text = "A short answer this time."
    await harness.say("shorter, please", thread_ts)
    await harness.settle(thread_ts, ("done",), min_version=stopped.version + 1)
    assert "A short answer this time." in harness.thread_text(thread_ts)
    assert len(harness.agent.requests) == 2


async def test_the_stop_button_where_there_are_no_sessions_runs_the_queue_next(
    harness: Harness,
) -> None:
    harness.slack.agent_sessions = False
    thread_ts = await slow_answer(harness)
    await harness.say("and one more thing", thread_ts)  # queued behind the run
    await until(lambda: "pick this up right after" in harness.thread_text(thread_ts))
    response = await press_stop(harness, thread_ts, ALICE)
    assert response.status_code == 200

    await agent_saw_the_connection_close(harness)
    harness.agent.token_delay = 0  # the queued message's answer comes at once
    await until(lambda: len(harness.agent.requests) == 2)  # the queued message ran next
    await until(lambda: "Stopped by <@U0ALICE>" in harness.thread_text(thread_ts))
    await harness.settle(thread_ts, ("done",))
    messages = harness.thread_messages(thread_ts)
    assert ACTION_THUMBS_UP in actions_of(messages[-1])  # the queued message's whole answer
    assert squeezed(harness.agent.answer_text) in squeezed(harness.thread_text(thread_ts))
    assert not [m for m in messages if ACTION_STOP in actions_of(m)]  # no Stop left behind
    # Slack refused sessions once: they were not asked for again
    (refused,) = harness.slack.calls_to("agents.sessions.setStatus")
    assert refused.response["error"] == "missing_scope"
    assert harness.rt.engine.sessions.unsupported == "missing_scope"


class CancellingAgui(AguiClient):
    """An agent protocol with a cancel of its own, as A2A has `CancelTask`: AG-UI to the
    scripted agent, each cancel recorded as the agent would receive it."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        super().__init__(AgentClient(http))
        self.cancelled: list[tuple[str, str, str]] = []

    async def cancel(
        self, target: AgentTarget, run_input: RunAgentInput, task_id: str | None
    ) -> None:
        self.cancelled.append((target.name, run_input.thread_id, run_input.run_id))


async def test_a_protocol_with_a_cancel_of_its_own_is_told_to_cancel(harness: Harness) -> None:
    harness.slack.agent_sessions = False
    harness.agent.token_delay = SLOW
    harness.agent.answer_text = prose(3000)
    async with httpx.AsyncClient() as http:
        tasks = CancellingAgui(http)
        target = AgentTarget(name="tasks-agent", url=harness.agent.url("answer"), protocol="a2a")
        await harness.start(agents=lambda _channel: target, protocols={"a2a": tasks})
        thread_ts = await harness.mention("tell me everything")
        await until(lambda: "word3 " in harness.thread_text(thread_ts))
        await press_stop(harness, thread_ts, ALICE)
        await harness.settle(thread_ts, ("done",))
    (request,) = harness.agent.requests
    assert tasks.cancelled == [("tasks-agent", harness.thread_id(thread_ts), request.body["runId"])]
    await agent_saw_the_connection_close(harness)


async def test_a_stop_by_someone_else_follows_the_approvers_rule(
    harness: Harness, tmp_path: Path
) -> None:
    harness.slack.agent_sessions = False
    config = config_file(tmp_path, approvers=["requester", BOB])
    thread_ts = await slow_answer(harness, ORCH_CONFIG=config)
    carol = "U0CAROL"
    await press_stop(harness, thread_ts, carol)
    await until(lambda: bool(harness.slack.calls_to("response_url")))
    note = harness.slack.calls_to("response_url")[-1].params["text"]
    assert note == "Only <@U0ALICE>, <@U0BOB> can stop this answer; it goes on."
    assert (await harness.row(thread_ts)).state == "streaming"  # type: ignore[union-attr]

    await press_stop(harness, thread_ts, BOB)
    await harness.settle(thread_ts, ("done",))
    await agent_saw_the_connection_close(harness)
    assert "Stopped by <@U0BOB>" in harness.thread_text(thread_ts)
    history = [(h.trigger, h.actor) for h in await harness.history(thread_ts)]
    assert ("stop_refused", carol) in history and ("stop", BOB) in history


async def test_slacks_stop_by_someone_not_allowed_is_refused_in_private(
    harness: Harness,
) -> None:
    thread_ts = await slow_answer(harness, **NATIVE)
    await session_shows(harness, thread_ts, "processing")
    event = harness.slack.stop_session_by_user(CHANNEL, thread_ts, BOB)
    await harness.slack.deliver_event(harness.events_url, SECRET, event)
    await until(lambda: bool(harness.slack.ephemerals(CHANNEL, BOB)))
    (note,) = harness.slack.ephemerals(CHANNEL, BOB)
    assert note.text == "Only <@U0ALICE> can stop this answer; it goes on."
    harness.agent.token_delay = 0  # the rest of the answer comes at once
    row = await harness.settle(thread_ts, ("done",))
    assert harness.agent.closed_by_client() == [] and row.state == "done"
    assert "Stopped by" not in harness.thread_text(thread_ts)


async def test_a_stop_taken_by_another_replica_stops_the_run_once(harness: Harness) -> None:
    """Two processes on one database: the run streams in the first, both Stops reach the
    second; the first notices the stored stop on its tick."""
    harness.slack.agent_sessions = False
    thread_ts = await slow_answer(harness)
    other = Runtime(harness.settings("answer"))
    await other.start()
    server = LoopbackServer(other.asgi())
    other_url = f"{await server.start()}/slack/events"
    try:
        button = with_stop(harness, thread_ts)
        for _ in range(2):  # a double click
            payload = harness.slack.block_actions_payload(
                user=ALICE,
                channel=CHANNEL,
                message_ts=button.ts,
                action_id=ACTION_STOP,
                value=actions_of(button)[ACTION_STOP],
            )
            await harness.slack.deliver_action(other_url, SECRET, payload)
        await harness.settle(thread_ts, ("done",))
        await agent_saw_the_connection_close(harness)
    finally:
        await server.stop()
        await other.stop()
    triggers = [h.trigger for h in await harness.history(thread_ts)]
    assert triggers.count("stop_requested") == 2 and triggers.count("stop") == 1
    assert "Stopped by <@U0ALICE>" in harness.thread_text(thread_ts)


async def test_slacks_stop_after_the_answer_sets_the_session_right(harness: Harness) -> None:
    await harness.start("answer", **NATIVE)
    thread_ts = await harness.mention("hello")
    await harness.settle(thread_ts, ("done",))
    await session_shows(harness, thread_ts, "active")
    event = {
        "type": "agent_session_stopped",
        "channel": CHANNEL,
        "thread_ts": thread_ts,
        "user": ALICE,
        "streaming_message_ts": [],
        "event_ts": "1.0",
    }
    before = len(statuses(harness, thread_ts))
    await harness.slack.deliver_event(harness.events_url, SECRET, event)
    # Slack's spinner is answered with the thread's status again; it never goes back to
    # processing (a recovery pass may repeat the same status, which Slack takes as a no-op).
    await until(lambda: len(statuses(harness, thread_ts)) > before)
    assert statuses(harness, thread_ts)[0] == "processing"
    assert set(statuses(harness, thread_ts)[1:]) == {"active"}
    assert [h.trigger for h in await harness.history(thread_ts)][-1] == "run_finished"


# -- workspaces without sessions, and the setting ----------------------------------------------


async def test_off_never_asks_for_sessions_and_shows_the_stop_button(harness: Harness) -> None:
    thread_ts = await slow_answer(harness, ORCH_SLACK_SESSIONS="off")
    await press_stop(harness, thread_ts, ALICE)
    await harness.settle(thread_ts, ("done",))
    assert not harness.slack.calls_to("agents.sessions.setStatus")
    assert harness.slack.session(CHANNEL, thread_ts) is None


async def test_sessions_shown_by_slack_leave_no_stop_button_of_ours(harness: Harness) -> None:
    thread_ts = await slow_answer(harness)
    assert not [m for m in harness.thread_messages(thread_ts) if ACTION_STOP in actions_of(m)]
    harness.agent.token_delay = 0
    await harness.settle(thread_ts, ("done",))
    assert not [m for m in harness.thread_messages(thread_ts) if ACTION_STOP in actions_of(m)]


# -- the Messages tab ---------------------------------------------------------------------------


async def test_opening_the_messages_tab_pins_the_configured_prompts(
    harness: Harness, tmp_path: Path
) -> None:
    prompts = [
        {"title": "Build status", "message": "Why is the build red?"},
        {"title": "On call", "message": "Who is on call this week?"},
    ]
    await harness.start("answer", ORCH_CONFIG=config_file(tmp_path, suggested_prompts=prompts))
    home = {**harness.slack.open_messages_tab(ALICE), "tab": "home"}
    await harness.slack.deliver_event(harness.events_url, SECRET, home)
    event = harness.slack.open_messages_tab(ALICE)
    await harness.slack.deliver_event(harness.events_url, SECRET, event)

    await until(lambda: harness.slack.suggested_prompts(event["channel"]) is not None)
    assert harness.slack.suggested_prompts(event["channel"]) == {"title": None, "prompts": prompts}
    (call,) = harness.slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert "thread_ts" not in call.params  # Slack drops prompts sent with one to an agent app
