"""Agent sessions on the Slack side: `AgentSessions` against the emulator over real HTTP, and the
emulator's sessions, Stop and suggested prompts as Slack documents them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator.answering import answering
from orchestrator.sandbox.slack_emulator import SlackEmulator
from orchestrator.slack.sessions import AgentSessions

CHANNEL = "C0GENERAL"
THREAD = "1700000000.000100"


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(channels=[CHANNEL])
    await emulator.start()
    yield emulator
    await emulator.stop()


def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=slack.token, base_url=slack.api_url)


def refusals(slack: SlackEmulator) -> list[str]:
    return [c.response.get("error", "") for c in slack.calls_to("agents.sessions.setStatus")]


# -- AgentSessions ------------------------------------------------------------------------------


async def test_the_latest_status_wins_and_the_title_goes_with_the_first_call(
    slack: SlackEmulator,
) -> None:
    sessions = AgentSessions(client(slack), "auto", interval=0.05)
    sessions.follow(
        CHANNEL, THREAD, "processing", title="  Why is\nthe build red?  ", initiator="U1"
    )
    sessions.follow(CHANNEL, THREAD, "suspended")  # before anything went out: replaces it
    await sessions.close()
    sessions.follow(CHANNEL, THREAD, "processing")
    sessions.follow(CHANNEL, THREAD, "active")
    await sessions.close()

    session = slack.session(CHANNEL, THREAD)
    assert session is not None
    assert session.statuses == ["suspended", "active"]
    assert (session.title, session.initiator) == ("Why is the build red?", "U1")
    first, second = slack.calls_to("agents.sessions.setStatus")
    assert first.params["title"] == "Why is the build red?" and "title" not in second.params


async def test_a_status_held_by_the_throttle_goes_out_when_the_process_stops(
    slack: SlackEmulator,
) -> None:
    # the interval is the update interval, which may be long: the last status of a thread must
    # not wait for it (nor be dropped at the end of the close's few seconds)
    sessions = AgentSessions(client(slack), "auto", interval=30.0)
    sessions.follow(CHANNEL, THREAD, "processing", title="Deploy?", initiator="U1")
    await sessions.close()  # the first call goes out at once
    sessions.follow(CHANNEL, THREAD, "active")  # within the interval: held back
    await sessions.close()

    session = slack.session(CHANNEL, THREAD)
    assert session is not None and session.statuses == ["processing", "active"]


async def test_a_status_goes_out_once_the_slack_requests_waiting_are_answered(
    slack: SlackEmulator,
) -> None:
    sessions = AgentSessions(client(slack), "auto", interval=0.05)
    with answering():  # a burst of deliveries is being acknowledged
        sessions.follow(CHANNEL, THREAD, "processing", title="Deploy?", initiator="U1")
        await asyncio.sleep(0.2)
        assert slack.calls_to("agents.sessions.setStatus") == []
    await asyncio.wait_for(_statuses(slack, 1), 2.0)
    await sessions.close()
    session = slack.session(CHANNEL, THREAD)
    assert session is not None and session.statuses == ["processing"]


async def _statuses(slack: SlackEmulator, count: int) -> None:
    while len(slack.calls_to("agents.sessions.setStatus")) < count:
        await asyncio.sleep(0.01)


async def test_auto_stops_asking_when_the_workspace_has_no_sessions(
    slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    slack.agent_sessions = False
    sessions = AgentSessions(client(slack), "auto", interval=0.05)
    assert sessions.available and sessions.closing_status("active") == "active"
    sessions.follow(CHANNEL, THREAD, "processing", title="hello")
    await sessions.close()
    sessions.follow(CHANNEL, "1700000000.000200", "processing")
    await sessions.close()

    assert refusals(slack) == ["missing_scope"]
    (call,) = slack.calls_to("agents.sessions.setStatus")
    assert call.response["needed"] == "assistant:write"
    assert sessions.unsupported == "missing_scope" and not sessions.available
    assert sessions.closing_status("active") is None
    assert "agent sessions are not available here" in caplog.text


async def test_on_keeps_asking_and_logs_each_refusal(
    slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    slack.agent_sessions = False
    sessions = AgentSessions(client(slack), "on", interval=0.05)
    for thread in ("1700000000.000100", "1700000000.000200"):
        sessions.follow(CHANNEL, thread, "processing")
        await sessions.close()
    assert refusals(slack) == ["missing_scope", "missing_scope"]
    assert sessions.available
    assert caplog.text.count("session status not set") == 2


async def test_off_never_asks(slack: SlackEmulator) -> None:
    sessions = AgentSessions(client(slack), "off")
    sessions.follow(CHANNEL, THREAD, "processing")
    await sessions.close()
    assert not slack.calls_to("agents.sessions.setStatus") and not sessions.available


async def test_a_refused_call_is_logged_and_nothing_else_happens(
    slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = AgentSessions(client(slack), "auto", interval=0.05)
    sessions.follow("C0NOWHERE", THREAD, "processing")
    await sessions.close()
    assert refusals(slack) == ["channel_not_found"]
    assert sessions.available  # not a missing feature: later threads still get sessions
    assert "session status not set" in caplog.text


async def test_an_app_not_subscribed_to_stop_is_told_once(
    slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    slack.session_stop_subscribed = False
    sessions = AgentSessions(client(slack), "auto", interval=0.05)
    with caplog.at_level(logging.WARNING):
        sessions.follow(CHANNEL, THREAD, "processing")
        await sessions.close()
        sessions.follow(CHANNEL, THREAD, "active")
        await sessions.close()
    assert slack.session_statuses(CHANNEL, THREAD) == ["processing", "active"]
    assert caplog.text.count("not subscribed to agent_session_stopped") == 1


# -- the emulator, as Slack documents it -----------------------------------------------------


async def test_the_emulator_checks_set_status_like_slack(slack: SlackEmulator) -> None:
    web = client(slack)
    for params, error in [
        ({"status": "thinking"}, "invalid_arguments"),
        ({"status": "active", "title": "x" * 201}, "invalid_arguments"),
        ({"status": "active", "thread_ts": None}, "invalid_arguments"),
        ({"status": "active", "channel_id": "C0NOWHERE"}, "channel_not_found"),
    ]:
        args = {"channel_id": CHANNEL, "thread_ts": THREAD, **params}
        with pytest.raises(SlackApiError) as refused:
            await web.agents_sessions_setStatus(**args)
        assert refused.value.response["error"] == error
    answered = await web.agents_sessions_setStatus(
        channel_id=CHANNEL, thread_ts=THREAD, status="processing", title="First"
    )
    assert (answered["status"], answered["title"]) == ("processing", "First")
    again = await web.agents_sessions_setStatus(
        channel_id=CHANNEL, thread_ts=THREAD, status="active", title="Ignored"
    )
    assert again["title"] == "First"  # a title counts only when the session is created


async def test_slacks_stop_stops_the_streams_but_not_the_session(slack: SlackEmulator) -> None:
    web = client(slack)
    parent = slack.post_user_message(CHANNEL, "U1", "hello")["ts"]
    with pytest.raises(ValueError):  # no session yet: Slack shows no Stop
        slack.stop_session_by_user(CHANNEL, parent, "U1")
    await web.agents_sessions_setStatus(channel_id=CHANNEL, thread_ts=parent, status="processing")
    stream = await web.chat_startStream(channel=CHANNEL, thread_ts=parent)
    event = slack.stop_session_by_user(CHANNEL, parent, "U1")
    assert event["type"] == "agent_session_stopped"
    assert (event["thread_ts"], event["user"], event["streaming_message_ts"]) == (
        parent,
        "U1",
        [stream["ts"]],
    )
    assert slack.session_statuses(CHANNEL, parent) == ["processing"]  # the app must change it
    with pytest.raises(SlackApiError) as refused:
        await web.chat_appendStream(channel=CHANNEL, ts=stream["ts"], markdown_text="more")
    assert refused.value.response["error"] == "stopped_by_user"


async def test_stop_stream_sets_the_session_status_it_carries(slack: SlackEmulator) -> None:
    web = client(slack)
    parent = slack.post_user_message(CHANNEL, "U1", "hello")["ts"]
    first = await web.chat_startStream(channel=CHANNEL, thread_ts=parent)
    with pytest.raises(SlackApiError) as refused:
        await web.chat_stopStream(channel=CHANNEL, ts=first["ts"], session_status="done")
    assert refused.value.response["error"] == "invalid_arguments"
    await web.chat_stopStream(channel=CHANNEL, ts=first["ts"], session_status="active")
    assert slack.session_statuses(CHANNEL, parent) == ["active"]

    slack.agent_sessions = False  # not an agent app: Slack ignores it
    second = await web.chat_startStream(channel=CHANNEL, thread_ts=parent)
    await web.chat_stopStream(channel=CHANNEL, ts=second["ts"], session_status="suspended")
    assert slack.session_statuses(CHANNEL, parent) == ["active"]


async def test_suggested_prompts_as_slack_takes_them(slack: SlackEmulator) -> None:
    web = client(slack)
    dm = slack.open_messages_tab("U0ALICE")["channel"]
    prompts = [{"title": f"P{n}", "message": f"prompt {n}"} for n in range(5)]
    with pytest.raises(SlackApiError) as refused:
        await web.assistant_threads_setSuggestedPrompts(channel_id=dm, prompts=prompts)
    assert refused.value.response["error"] == "invalid_arguments"  # at most four
    await web.assistant_threads_setSuggestedPrompts(
        channel_id=dm, prompts=prompts[:1], thread_ts="1.0"
    )
    assert slack.suggested_prompts(dm) is None  # a thread_ts: dropped without an error
    await web.assistant_threads_setSuggestedPrompts(channel_id=dm, prompts=prompts[:4], title="Try")
    assert slack.suggested_prompts(dm) == {"title": "Try", "prompts": prompts[:4]}
    slack.agent_sessions = False
    with pytest.raises(SlackApiError) as refused:
        await web.assistant_threads_setSuggestedPrompts(channel_id=dm, prompts=prompts[:1])
    assert refused.value.response["error"] == "missing_scope"
