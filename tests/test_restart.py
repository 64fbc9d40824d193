"""The real service in a subprocess, killed with SIGKILL and started again on the same database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.ids import conversation_id
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator, render_text
from persistence.models import Thread
from persistence.store import Store
from renderers.common import ACTION_APPROVE, ACTION_RETRY
from tests.harness import ALICE, CHANNEL, SECRET, actions_of, find_with_action
from tests.service_process import ServiceProcess
from tests.test_e2e_approvals import answers


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}")
    yield opened
    await opened.close()


async def wait_for(
    store: Store, thread_id: str, states: tuple[str, ...], *, after: int = 0
) -> Thread:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = await store.get_thread(thread_id)
        if row is not None and row.state in states and row.version > after:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"thread never reached {states}: {row and row.state}")


async def wait_for_form(store: Store, thread_id: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(r.form_ts for r in await store.interrupts_of(thread_id)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the form was never posted")


async def start_answering(
    service: ServiceProcess, slack: SlackEmulator, store: Store
) -> tuple[dict[str, str], str, Thread]:
    """Start the service and mention it: the mention, its thread id and the streaming row."""
    await service.start()
    event = slack.post_user_message(CHANNEL, ALICE, "tell me everything", mention=True)
    await slack.deliver_event(service.events_url, SECRET, event)
    thread_id = conversation_id(slack.team_id, CHANNEL, event["ts"])
    return event, thread_id, await wait_for(store, thread_id, ("streaming",))


async def until_true(condition: Callable[[], bool], wait: float) -> None:
    """Wait for `condition`, at most `wait` seconds (the test goes on either way)."""
    deadline = time.monotonic() + wait
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def approval_click(
    slack: SlackEmulator, thread_ts: str, replicas: str, comment: str
) -> dict[str, Any]:
    """The payload of Alice clicking Approve on the thread's form with these answers."""
    form = find_with_action(slack.thread(CHANNEL, thread_ts), ACTION_APPROVE)
    return slack.block_actions_payload(
        user=ALICE,
        channel=CHANNEL,
        message_ts=form.ts,
        action_id=ACTION_APPROVE,
        value=actions_of(form)[ACTION_APPROVE],
        thread_ts=thread_ts,
        state_values=answers(replicas, comment),
    )


async def approve_on(
    service: ServiceProcess, slack: SlackEmulator, thread_ts: str, replicas: str, comment: str
) -> None:
    """Alice clicks Approve on the thread's form, delivered to the service's HTTP endpoint."""
    payload = approval_click(slack, thread_ts, replicas, comment)
    await slack.deliver_action(service.events_url, SECRET, payload)


async def test_form_not_yet_posted_at_kill_is_posted_after_restart(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    service = ServiceProcess(slack, agent, tmp_path / "orchestrator.db", "interrupt-outcome")
    try:
        await service.start()
        event = slack.post_user_message(CHANNEL, ALICE, "please scale web", mention=True)
        await slack.deliver_event(service.events_url, SECRET, event)
        thread_id = conversation_id(slack.team_id, CHANNEL, event["ts"])
        await wait_for(store, thread_id, ("awaiting_approval",))
        service.kill()
        # simulate the kill landing after the state was stored, before the form was posted
        for row in await store.interrupts_of(thread_id):
            await store.set_interrupt(row.id, form_ts=None)
        await service.start()
        await wait_for_form(store, thread_id)
    finally:
        service.stop()
    rows = await store.interrupts_of(thread_id)
    forms = [m for m in slack.thread(CHANNEL, event["ts"]) if ACTION_APPROVE in actions_of(m)]
    assert rows[0].form_ts == forms[-1].ts and rows[0].status == "pending"


async def test_pending_approval_survives_sigkill(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    service = ServiceProcess(slack, agent, tmp_path / "orchestrator.db", "interrupt-outcome")
    try:
        thread_id, thread_ts = await start_with_pending_form(service, slack, store)
        waiting = await wait_for(store, thread_id, ("awaiting_approval",))
        service.kill()

        await service.start()  # a new process on the same database file
        form = find_with_action(slack.thread(CHANNEL, thread_ts), ACTION_APPROVE)
        await approve_on(service, slack, thread_ts, "8", "after the restart")
        done = await wait_for(store, thread_id, ("done",), after=waiting.version)
    finally:
        service.stop()
    assert done.state == "done"
    assert agent.resumes == 1
    assert agent.requests[-1].body["resume"][0]["payload"] == {
        "replicas": 8,
        "comment": "after the restart",
    }
    record = render_text(next(m for m in slack.thread(CHANNEL, thread_ts) if m.ts == form.ts))
    assert f"Approved by <@{ALICE}>" in record


async def test_stream_killed_midway_ends_visibly_after_restart(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    agent.token_delay = 0.3  # a slow answer, so the kill lands mid-stream
    service = ServiceProcess(slack, agent, tmp_path / "orchestrator.db", "answer")
    try:
        event, thread_id, streaming = await start_answering(service, slack, store)
        await until_true(lambda: bool(slack.calls_to("chat.update")), wait=10)
        service.kill()

        await service.start()
        errored = await wait_for(store, thread_id, ("errored",), after=streaming.version)
    finally:
        service.stop()
    history = await store.history(thread_id)
    assert (history[-1].trigger, history[-1].detail) == ("stream_lost", {"reason": "restart"})
    assert errored.error_kind == "restart"
    messages = [m for m in slack.thread(CHANNEL, event["ts"]) if m.bot_id]
    shown = "\n".join(render_text(m) for m in messages)
    assert shown.startswith("Hello")  # the partial answer is still there
    assert "Interrupted by a restart" in shown
    assert ACTION_RETRY in actions_of(messages[-1])


# --- a stop (SIGTERM) ---------------------------------------------------------------------------


async def start_a_slow_answer(
    slack: SlackEmulator,
    agent: ScriptedAgent,
    store: Store,
    tmp_path: Path,
    grace: str,
    token_delay: float = 0.05,  # an answer of about two seconds
) -> tuple[ServiceProcess, dict[str, str], str]:
    agent.token_delay = token_delay
    service = ServiceProcess(
        slack, agent, tmp_path / "orchestrator.db", "answer", ORCH_SHUTDOWN_GRACE=grace
    )
    event, thread_id, _streaming = await start_answering(service, slack, store)
    return service, event, thread_id


async def stop_a_slow_answer(
    slack: SlackEmulator,
    agent: ScriptedAgent,
    store: Store,
    tmp_path: Path,
    grace: str,
    token_delay: float = 0.05,
    signals: int = 1,
) -> tuple[int, dict[str, str], Thread]:
    """SIGTERM (`signals` times) mid-answer: the exit code, the mention, the stored thread."""
    service, event, thread_id = await start_a_slow_answer(
        slack, agent, store, tmp_path, grace, token_delay
    )
    try:
        code = await service.terminate(signals=signals)
    finally:
        service.stop()
    row = await store.get_thread(thread_id)
    assert row is not None
    return code, event, row


async def test_a_stop_lets_the_running_answer_finish(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    code, event, row = await stop_a_slow_answer(slack, agent, store, tmp_path, "20")
    assert code == 0
    assert row.state == "done"
    shown = "\n".join(render_text(m) for m in slack.thread(CHANNEL, event["ts"]) if m.bot_id)
    assert "Nothing here calls a real model." in shown  # the whole answer
    assert "Interrupted" not in shown and "▌" not in shown
    assert len(agent.requests) == 1


async def test_a_stop_past_its_grace_ends_the_answer_visibly_at_once(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    code, event, row = await stop_a_slow_answer(slack, agent, store, tmp_path, "0.2")
    assert code == 0
    assert (row.state, row.error_kind) == ("errored", "restart")  # with no process started again
    messages = [m for m in slack.thread(CHANNEL, event["ts"]) if m.bot_id]
    shown = "\n".join(render_text(m) for m in messages)
    assert shown.startswith("Hello") and "Interrupted by a restart" in shown
    assert "▌" not in shown
    assert ACTION_RETRY in actions_of(messages[-1])


async def test_a_second_stop_signal_cuts_the_answer_without_waiting(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    code, event, row = await stop_a_slow_answer(
        slack,
        agent,
        store,
        tmp_path,
        "60",
        token_delay=0.3,
        signals=2,  # fifteen seconds long
    )
    assert code == 0
    assert (row.state, row.error_kind) == ("errored", "restart")
    assert "Interrupted by a restart" in "\n".join(
        render_text(m) for m in slack.thread(CHANNEL, event["ts"]) if m.bot_id
    )


async def test_a_kill_after_a_continuation_message_leaves_no_cursor_behind(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    agent.token_delay = 0.002  # a long answer, streamed over several seconds
    service = ServiceProcess(slack, agent, tmp_path / "orchestrator.db", "long")
    try:
        event, thread_id, streaming = await start_answering(service, slack, store)
        await until_true(  # until the answer has gone on in a second message
            lambda: len([m for m in slack.thread(CHANNEL, event["ts"]) if m.bot_id]) >= 2,
            wait=20,
        )
        service.kill()
        await service.start()
        await wait_for(store, thread_id, ("errored",), after=streaming.version)
        await until_true(  # the notice is posted right after the transition is stored
            lambda: len([m for m in slack.thread(CHANNEL, event["ts"]) if m.bot_id]) >= 3,
            wait=20,
        )
    finally:
        service.stop()
    messages = [m for m in slack.thread(CHANNEL, event["ts"]) if m.bot_id]
    assert len(messages) >= 3  # the live message, its continuation, the notice
    assert not [render_text(m) for m in messages if "▌" in render_text(m)]


# --- kill points around an approval ------------------------------------------------------------


async def start_with_pending_form(
    service: ServiceProcess, slack: SlackEmulator, store: Store
) -> tuple[str, str]:
    await service.start()
    event = slack.post_user_message(CHANNEL, ALICE, "please scale web", mention=True)
    await slack.deliver_event(service.events_url, SECRET, event)
    thread_id = conversation_id(slack.team_id, CHANNEL, event["ts"])
    await wait_for(store, thread_id, ("awaiting_approval",))
    await wait_for_form(store, thread_id)
    return thread_id, event["ts"]


async def claim_as_if_clicked(store: Store, thread_id: str) -> None:
    """What a click leaves in the store the moment its claim commits."""
    (row,) = await store.interrupts_of(thread_id)
    await store.set_interrupt(
        row.id,
        status="claimed",
        answered_by=ALICE,
        answered_at=time.time() - 60,
        answer={"replicas": "6", "comment": "claimed, then killed"},
        decision="resolved",
    )


async def test_kill_between_claim_and_resume_sends_the_answer_once_after_restart(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    db = tmp_path / "orchestrator.db"
    service = ServiceProcess(slack, agent, db, "interrupt-outcome", ORCH_RUN_LEASE="1")
    try:
        thread_id, thread_ts = await start_with_pending_form(service, slack, store)
        service.kill()
        await claim_as_if_clicked(store, thread_id)  # the kill landed right after the claim
        await service.start()
        done = await wait_for(store, thread_id, ("done",))
    finally:
        service.stop()
    assert done.state == "done" and agent.resumes == 1
    assert agent.requests[-1].body["resume"][0]["payload"] == {
        "replicas": "6",
        "comment": "claimed, then killed",
    }
    (row,) = await store.interrupts_of(thread_id)
    assert (row.status, row.answered_by) == ("approved", ALICE)
    messages = slack.thread(CHANNEL, thread_ts)
    assert not any(ACTION_APPROVE in actions_of(m) for m in messages)  # the form became a record
    assert f"Approved by <@{ALICE}>" in "\n".join(render_text(m) for m in messages)


async def test_kill_after_the_transition_before_the_request_resends_once(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    service = ServiceProcess(slack, agent, tmp_path / "orchestrator.db", "interrupt-outcome")
    try:
        thread_id, _ = await start_with_pending_form(service, slack, store)
        service.kill()
        await claim_as_if_clicked(store, thread_id)
        thread = await store.get_thread(thread_id)
        assert thread is not None
        await store.transition(  # the approval moved the thread; the request never left
            thread, to_state="streaming", trigger="approval_submitted", actor=ALICE
        )
        await service.start()
        done = await wait_for(store, thread_id, ("done",), after=thread.version)
    finally:
        service.stop()
    assert done.state == "done" and agent.resumes == 1
    triggers = [h.trigger for h in await store.history(thread_id)]
    assert triggers[-4:] == ["resume_failed", "approval_submitted", "run_started", "run_finished"]


async def test_kill_right_after_an_agui_resume_resends_it_and_the_agent_acts_once(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    """An AG-UI 1.0 resume may have reached the agent: it is sent again, and the agent, which
    refuses a second resume of an interrupt id, acts on it once. Its reply went with the killed
    process: the thread says so, with Retry."""
    service = ServiceProcess(slack, agent, tmp_path / "orchestrator.db", "interrupt-outcome")
    try:
        thread_id, thread_ts = await start_with_pending_form(service, slack, store)
        agent.resume_delay = 30  # the agent holds the resume: the kill lands before any event
        await approve_on(service, slack, thread_ts, "8", "sent, then killed")
        deadline = time.monotonic() + 10
        while agent.resumes == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        service.kill()
        agent.resume_delay = 0
        await service.start()
        errored = await wait_for(store, thread_id, ("errored",))
    finally:
        service.stop()
    assert (agent.resumes, agent.duplicate_resumes) == (1, 1)  # acted on once
    (row,) = await store.interrupts_of(thread_id)
    assert (row.status, row.answer) == (
        "approved",
        {"replicas": 8, "comment": "sent, then killed"},
    )
    assert errored.error_kind == "restart"
    messages = [m for m in slack.thread(CHANNEL, thread_ts) if m.bot_id]
    assert not any(ACTION_APPROVE in actions_of(m) for m in messages)  # no form to click again
    assert "the agent has the answer, but its reply was lost" in render_text(messages[-1])
    assert ACTION_RETRY in actions_of(messages[-1])


# --- queued messages, leases ---------------------------------------------------------------------


async def test_queued_message_survives_a_kill_and_runs_after_restart(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    agent.token_delay = 0.3
    service = ServiceProcess(slack, agent, tmp_path / "orchestrator.db", "answer")
    try:
        await service.start()
        event = slack.post_user_message(CHANNEL, ALICE, "first question", mention=True)
        await slack.deliver_event(service.events_url, SECRET, event)
        thread_id = conversation_id(slack.team_id, CHANNEL, event["ts"])
        await wait_for(store, thread_id, ("streaming",))
        follow_up = slack.post_user_message(CHANNEL, ALICE, "second question", event["ts"])
        await slack.deliver_event(service.events_url, SECRET, follow_up)
        deadline = time.monotonic() + 10
        while not await store.queued(thread_id) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await store.queued(thread_id)
        while not agent.requests and time.monotonic() < deadline:  # killed mid-stream
            await asyncio.sleep(0.05)
        service.kill()
        agent.token_delay = 0
        await service.start()
        deadline = time.monotonic() + 20
        while len(agent.requests) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        done = await wait_for(store, thread_id, ("done",))
    finally:
        service.stop()
    assert done.state == "done" and await store.queued(thread_id) == []
    assert len(agent.requests) == 2  # the queued message was answered once, not lost
    assert agent.requests[1].body["messages"][-1]["content"] == "second question"
    triggers = [h.trigger for h in await store.history(thread_id)]
    assert "stream_lost" in triggers
    shown = "\n".join(render_text(m) for m in slack.thread(CHANNEL, event["ts"]) if m.bot_id)
    assert "▌" not in shown  # the killed run's live message lost its writing cursor


async def test_a_second_process_leaves_a_live_run_of_another_alone(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    agent.token_delay = 0.1
    db = tmp_path / "orchestrator.db"
    first = ServiceProcess(slack, agent, db, "answer")
    second = ServiceProcess(slack, agent, db, "answer")
    try:
        await first.start()
        event = slack.post_user_message(CHANNEL, ALICE, "a long answer please", mention=True)
        await slack.deliver_event(first.events_url, SECRET, event)
        thread_id = conversation_id(slack.team_id, CHANNEL, event["ts"])
        await wait_for(store, thread_id, ("streaming",))
        await second.start()  # its start-up reconciliation must not end the first one's run
        done = await wait_for(store, thread_id, ("done", "errored"))
    finally:
        first.stop()
        second.stop()
    assert done.state == "done"
    assert "stream_lost" not in [h.trigger for h in await store.history(thread_id)]


# --- Slack's agent sessions across a kill ---------------------------------------------------------


async def test_the_session_is_set_right_after_a_kill_mid_stream(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    agent.token_delay = 0.3  # a slow answer, so the kill lands mid-stream
    service = ServiceProcess(slack, agent, tmp_path / "orchestrator.db", "answer")
    try:
        event, thread_id, streaming = await start_answering(service, slack, store)
        await until_true(lambda: slack.session_statuses(CHANNEL, event["ts"]) != [], wait=10)
        assert slack.session_statuses(CHANNEL, event["ts"]) == ["processing"]
        await until_true(lambda: bool(agent.requests), wait=10)  # the agent has the run
        service.kill()  # Slack would show the session working for good

        await service.start()
        await wait_for(store, thread_id, ("errored",), after=streaming.version)
        await until_true(lambda: slack.session_statuses(CHANNEL, event["ts"])[-1] == "active", 10)
    finally:
        service.stop()
    assert slack.session_statuses(CHANNEL, event["ts"]) == ["processing", "active"]


async def test_a_pending_forms_session_is_said_again_after_a_kill_and_goes_on(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    service = ServiceProcess(slack, agent, tmp_path / "orchestrator.db", "interrupt-outcome")
    try:
        thread_id, thread_ts = await start_with_pending_form(service, slack, store)
        waiting = await wait_for(store, thread_id, ("awaiting_approval",))
        await until_true(
            lambda: slack.session_statuses(CHANNEL, thread_ts)[-1:] == ["suspended"], 10
        )
        service.kill()

        await service.start()  # the dead process may not have told Slack: the new one says it
        await until_true(
            lambda: slack.session_statuses(CHANNEL, thread_ts).count("suspended") == 2, 10
        )
        await approve_on(service, slack, thread_ts, "8", "after the restart")
        await wait_for(store, thread_id, ("done",), after=waiting.version)
        await until_true(lambda: slack.session_statuses(CHANNEL, thread_ts)[-1] == "active", 10)
    finally:
        service.stop()
    assert slack.session_statuses(CHANNEL, thread_ts) == [
        *("processing", "suspended"),  # before the kill
        "suspended",  # the restart
        *("processing", "active"),  # approved, resumed, done
    ]
