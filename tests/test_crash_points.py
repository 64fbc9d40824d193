"""The real service killed with SIGKILL at named steps (`ORCH_TEST_KILL_AT`), then started again
on the same database: whatever Slack was told was taken is finished, once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from orchestrator.core.ids import conversation_id
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator, render_text
from persistence.models import Thread
from persistence.store import Store
from renderers.common import ACTION_APPROVE, ACTION_RETRY, THINKING
from tests.crash_points import Killable, text_of
from tests.harness import ALICE, CHANNEL, SECRET, actions_of, find_with_action
from tests.test_restart import approve_on, wait_for, wait_for_form


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}")
    yield opened
    await opened.close()


CURSOR = "▌"


def left_live(slack: SlackEmulator, thread_ts: str) -> list[str]:
    """The bot's messages still showing "Thinking…", a cursor or "resuming…"."""
    shown = [render_text(m) for m in slack.thread(CHANNEL, thread_ts) if m.bot_id]
    return [t for t in shown if THINKING in t or CURSOR in t or "resuming" in t]


async def wait_closed(
    store: Store, thread_id: str, states: tuple[str, ...], after: int = 0
) -> Thread:
    """The thread in one of `states`, its live messages closed (the end stored and shown)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = await store.get_thread(thread_id)
        if row is not None and row.state in states and row.version > after and not row.live_ts:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"thread never settled in {states}")


async def mention(service: Killable, slack: SlackEmulator, text: str) -> tuple[str, str]:
    event = slack.post_user_message(CHANNEL, ALICE, text, mention=True)
    try:
        response = await slack.deliver_event(service.events_url, SECRET, event)
        assert response.status_code == 200
    except httpx.TransportError:  # killed at its step before it answered: Slack retries
        response = await slack.deliver_event(service.events_url, SECRET, event, retry_num=1)
    return event["ts"], conversation_id(slack.team_id, CHANNEL, event["ts"])


async def killed_at_click(
    service: Killable, slack: SlackEmulator, store: Store, comment: str
) -> tuple[str, str]:
    """A form is posted and approved; the service dies at its step (maybe before it answers
    the click). The thread's ts and id."""
    thread_ts, thread_id = await pending_form(service, slack, store)
    with contextlib.suppress(httpx.TransportError):
        await approve_on(service, slack, thread_ts, "8", comment)
    await service.died()
    return thread_ts, thread_id


async def test_a_message_acknowledged_just_before_a_kill_is_answered(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    service = Killable(slack, agent, tmp_path / "orchestrator.db", "answer", "after_ack")
    try:
        await service.start()
        thread_ts, thread_id = await mention(service, slack, "are you there?")
        await service.died()
        assert await store.get_thread(thread_id) is not None  # taken before Slack was answered
        await service.restart()
        row = await wait_closed(store, thread_id, ("done", "errored"))
    finally:
        service.stop()
    shown = text_of(slack, CHANNEL, thread_ts)
    if row.state == "done":
        assert shown.count(agent.answer_text.split()[0]) >= 1
    else:  # the agent may have been called: a visible interruption with Retry
        assert "Interrupted by a restart" in shown
        assert ACTION_RETRY in actions_of([m for m in slack.thread(CHANNEL, thread_ts)][-1])
    assert left_live(slack, thread_ts) == []


async def test_a_queued_message_runs_when_the_run_before_it_ended_just_before_a_kill(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    agent.token_delay = 0.1
    db = tmp_path / "orchestrator.db"
    service = Killable(slack, agent, db, "echo", "before_next_queued")
    try:
        await service.start()
        thread_ts, thread_id = await mention(service, slack, "first question")
        await wait_for(store, thread_id, ("streaming",))
        follow_up = slack.post_user_message(CHANNEL, ALICE, "second question", thread_ts)
        assert (await slack.deliver_event(service.events_url, SECRET, follow_up)).status_code == 200
        assert len(await store.queued(thread_id)) == 1  # stored before Slack was answered
        await service.died()
        assert (await store.get_thread(thread_id)).state == "done"  # type: ignore[union-attr]
        agent.token_delay = 0
        await service.restart()
        deadline = time.monotonic() + 20
        while (len(agent.requests) < 2 or await store.queued(thread_id)) and (
            time.monotonic() < deadline
        ):
            await asyncio.sleep(0.05)
        done = await wait_closed(store, thread_id, ("done",))
    finally:
        service.stop()
    assert done.state == "done" and await store.queued(thread_id) == []
    asked = [r.body["messages"][-1]["content"] for r in agent.requests]
    assert asked == ["first question", "second question"]  # each once, in order
    assert left_live(slack, thread_ts) == []


async def test_a_run_whose_end_was_stored_but_not_shown_is_shown_after_a_kill(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    service = Killable(slack, agent, tmp_path / "orchestrator.db", "answer", "before_close")
    try:
        await service.start()
        thread_ts, thread_id = await mention(service, slack, "hello")
        await service.died()
        await service.restart()
        await wait_closed(store, thread_id, ("done",))
        deadline = time.monotonic() + 20
        while left_live(slack, thread_ts) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        service.stop()
    assert left_live(slack, thread_ts) == []
    assert "Nothing here calls a real model." in text_of(slack, CHANNEL, thread_ts)
    assert len(agent.requests) == 1


async def pending_form(service: Killable, slack: SlackEmulator, store: Store) -> tuple[str, str]:
    await service.start()
    thread_ts, thread_id = await mention(service, slack, "please scale web")
    await wait_for(store, thread_id, ("awaiting_approval",))
    await wait_for_form(store, thread_id)
    return thread_ts, thread_id


async def test_a_click_claimed_just_before_a_kill_reaches_the_agent_once(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    db = tmp_path / "orchestrator.db"
    service = Killable(slack, agent, db, "interrupt-outcome", "after_claim", ORCH_RUN_LEASE="1")
    try:
        thread_ts, thread_id = await killed_at_click(service, slack, store, "claimed")
        await service.restart()
        await wait_closed(store, thread_id, ("done",))
    finally:
        service.stop()
    assert agent.resumes == 1
    (row,) = await store.interrupts_of(thread_id)
    assert (row.status, row.answer) == ("approved", {"replicas": 8, "comment": "claimed"})
    assert f"Approved by <@{ALICE}>" in text_of(slack, CHANNEL, thread_ts)
    assert left_live(slack, thread_ts) == []


async def test_a_resume_killed_before_it_left_is_sent_once(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    db = tmp_path / "orchestrator.db"
    service = Killable(slack, agent, db, "interrupt-outcome", "before_resume")
    try:
        thread_ts, thread_id = await killed_at_click(service, slack, store, "before")
        await service.restart()
        await wait_closed(store, thread_id, ("done",))
    finally:
        service.stop()
    assert agent.resumes == 1
    assert f"Approved by <@{ALICE}>" in text_of(slack, CHANNEL, thread_ts)
    assert left_live(slack, thread_ts) == []


async def test_an_agui_resume_that_may_have_arrived_is_sent_again_and_acted_on_once(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    """AG-UI 1.0 servers reject a second resume of an interrupt id, so it is safe to re-send."""
    db = tmp_path / "orchestrator.db"
    service = Killable(slack, agent, db, "interrupt-outcome", "after_resume")
    try:
        thread_ts, thread_id = await killed_at_click(service, slack, store, "maybe sent")
        await service.restart()
        await wait_closed(store, thread_id, ("done", "errored"))
    finally:
        service.stop()
    assert agent.resumes == 1  # acted on once
    assert agent.duplicate_resumes == 1  # the second was refused by interrupt id
    (row,) = await store.interrupts_of(thread_id)
    assert row.status == "approved"  # the agent did get it
    assert f"Approved by <@{ALICE}>" in text_of(slack, CHANNEL, thread_ts)
    assert left_live(slack, thread_ts) == []


async def test_a_resume_recovery_killed_before_it_sent_again_is_sent_by_the_next_start(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    """Killed after the agent got the resume, then again after recovery moved the thread back
    to its form to send the answer again: the next start sends it (once acted on), and no
    answer stays `sending` behind a thread that waits on its form."""
    db = tmp_path / "orchestrator.db"
    service = Killable(slack, agent, db, "interrupt-outcome", "after_resume", ORCH_RUN_LEASE="1")
    try:
        thread_ts, thread_id = await killed_at_click(service, slack, store, "maybe sent")
        service.env["ORCH_TEST_KILL_AT"] = "before_resend"
        with contextlib.suppress(RuntimeError):  # its recovery may kill it before it is ready
            await service.start()
        if service.proc is not None:
            await service.died()
        (row,) = await store.interrupts_of(thread_id)
        assert row.status == "claimed"  # stored with the thread's move back to its form
        await service.restart()
        await wait_closed(store, thread_id, ("done", "errored"))
    finally:
        service.stop()
    assert agent.resumes == 1  # acted on once
    (row,) = await store.interrupts_of(thread_id)
    assert row.status == "approved"
    assert f"Approved by <@{ALICE}>" in text_of(slack, CHANNEL, thread_ts)
    assert left_live(slack, thread_ts) == []


async def test_a_form_whose_answer_the_agent_took_is_drawn_so_after_a_kill(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    """Killed once the agent's acceptance of the answer was stored, before the form was drawn
    again: after the restart the form says who approved it, not "resuming…"."""
    db = tmp_path / "orchestrator.db"
    service = Killable(slack, agent, db, "interrupt-outcome", "after_settle")
    try:
        thread_ts, thread_id = await killed_at_click(service, slack, store, "settled")
        (row,) = await store.interrupts_of(thread_id)
        assert row.status == "approved"
        assert "resuming" in text_of(slack, CHANNEL, thread_ts)
        await service.restart()
        await wait_closed(store, thread_id, ("done", "errored"))
        deadline = time.monotonic() + 10
        while left_live(slack, thread_ts) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        service.stop()
    assert agent.resumes == 1
    assert f"Approved by <@{ALICE}>" in text_of(slack, CHANNEL, thread_ts)
    assert left_live(slack, thread_ts) == []


async def test_a_legacy_resume_that_may_have_arrived_is_not_resent_and_the_form_works_again(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    db = tmp_path / "orchestrator.db"
    service = Killable(slack, agent, db, "interrupt-legacy", "after_resume")
    try:
        thread_ts, thread_id = await pending_form(service, slack, store)
        form = find_with_action(slack.thread(CHANNEL, thread_ts), ACTION_APPROVE)
        value = actions_of(form)[ACTION_APPROVE]
        payload = slack.block_actions_payload(
            user=ALICE, channel=CHANNEL, message_ts=form.ts, action_id=ACTION_APPROVE,
            value=value, thread_ts=thread_ts,
        )  # fmt: skip
        with contextlib.suppress(httpx.TransportError):
            await slack.deliver_action(service.events_url, SECRET, payload)
        await service.died()
        await service.restart()
        waiting = await wait_for(store, thread_id, ("awaiting_approval",), after=0)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            (row,) = await store.interrupts_of(thread_id)
            if row.status == "pending" and "may not have reached" in text_of(
                slack, CHANNEL, thread_ts
            ):
                break
            await asyncio.sleep(0.05)
        assert agent.resumes == 1
        assert "may not have reached" in text_of(slack, CHANNEL, thread_ts)  # told plainly
        form = find_with_action(slack.thread(CHANNEL, thread_ts), ACTION_APPROVE)  # works again
        payload = slack.block_actions_payload(
            user=ALICE, channel=CHANNEL, message_ts=form.ts, action_id=ACTION_APPROVE,
            value=actions_of(form)[ACTION_APPROVE], thread_ts=thread_ts,
        )  # fmt: skip
        await slack.deliver_action(service.events_url, SECRET, payload)
        await wait_closed(store, thread_id, ("done",), after=waiting.version)
    finally:
        service.stop()
    assert left_live(slack, thread_ts) == []


async def test_a_form_posted_just_before_a_kill_is_not_posted_twice(
    slack: SlackEmulator, agent: ScriptedAgent, store: Store, tmp_path: Path
) -> None:
    db = tmp_path / "orchestrator.db"
    service = Killable(slack, agent, db, "interrupt-outcome", "mid_publish")
    try:
        await service.start()
        thread_ts, thread_id = await mention(service, slack, "please scale web")
        await service.died()
        (row,) = await store.interrupts_of(thread_id)
        assert row.form_ts is None  # Slack shows it, the store has no ts yet
        await service.restart()
        await wait_for_form(store, thread_id)
        forms = [m for m in slack.thread(CHANNEL, thread_ts) if ACTION_APPROVE in actions_of(m)]
        assert len(forms) == 1
        (row,) = await store.interrupts_of(thread_id)
        assert row.form_ts == forms[0].ts
        await approve_on(service, slack, thread_ts, "8", "one form")
        await wait_closed(store, thread_id, ("done",))
    finally:
        service.stop()
    assert agent.resumes == 1
    assert left_live(slack, thread_ts) == []
