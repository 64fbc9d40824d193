"""Human in the loop, end to end: forms, answers, exactly-once resume, expiry, recorded servers."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from orchestrator.agent.targets import AgentTarget
from orchestrator.sandbox.slack_emulator import render_text
from renderers.common import ACTION_APPROVE, ACTION_REJECT
from tests.harness import ALICE, BOB, Harness, actions_of, find_with_action, until


def select(value: str) -> dict[str, Any]:
    return {
        "type": "static_select",
        "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
    }


def text_input(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def answers(replicas: str | None = "5", comment: str = "ok, go") -> dict[str, Any]:
    replicas_state = (
        select(replicas) if replicas else {"type": "static_select", "selected_option": None}
    )
    return {
        "field:replicas": {"value": replicas_state},
        "field:comment": {"value": text_input(comment)},
    }


async def pause_for_approval(harness: Harness, scenario: str, **settings: Any) -> str:
    await harness.start(scenario, **settings)
    thread_ts = await harness.mention("please scale web")
    await harness.settle(thread_ts, ("awaiting_approval",))
    return thread_ts


def form_of(harness: Harness, thread_ts: str):
    return find_with_action(harness.thread_messages(thread_ts), ACTION_APPROVE)


async def approve(harness: Harness, thread_ts: str, *, user: str = ALICE, values=None) -> Any:
    form = form_of(harness, thread_ts)
    return await harness.click(
        form,
        ACTION_APPROVE,
        actions_of(form)[ACTION_APPROVE],
        user=user,
        values=values or answers(),
    )


async def test_form_shows_question_tool_fields_and_buttons(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-outcome")
    form = form_of(harness, thread_ts)
    text = render_text(form)
    assert "Approve scaling deployment web to 5 replicas?" in text
    assert "scale_deployment" in text and '"replicas": 5' in text
    assert "Replicas" in text and "3 | 5 | 8" in text
    assert set(actions_of(form)) == {ACTION_APPROVE, ACTION_REJECT}
    rows = await harness.interrupts(thread_ts)
    assert [(r.status, r.wire_form, r.form_ts) for r in rows] == [("pending", "outcome", form.ts)]


async def test_approve_resumes_once_and_records_who(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-outcome")
    row = await harness.row(thread_ts)
    await approve(harness, thread_ts, values=answers("8", "bigger"))
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)

    assert harness.agent.resumes == 1
    body = harness.agent.requests[-1].body
    interrupt = (await harness.interrupts(thread_ts))[0]
    assert body["resume"] == [
        {
            "interruptId": interrupt.interrupt_id,
            "status": "resolved",
            "payload": {"replicas": 8, "comment": "bigger"},  # typed as the schema says
        }
    ]
    # the resume carries the history, including the assistant's pending tool call
    calls = [m for m in body["messages"] if m["role"] == "assistant" and m.get("toolCalls")]
    assert calls and calls[0]["toolCalls"][0]["function"]["name"] == "scale_deployment"
    assert body["threadId"] == row.id

    form = next(m for m in harness.thread_messages(thread_ts) if m.ts == interrupt.form_ts)
    record = render_text(form)
    assert f"Approved by <@{ALICE}>" in record and "8" in record and "bigger" in record
    assert actions_of(form) == {}
    assert (interrupt.status, interrupt.answered_by) == ("approved", ALICE)
    assert "Decision received" in harness.thread_text(thread_ts)


async def test_a_rejection_the_schema_cannot_carry_goes_back_cancelled(harness: Harness) -> None:
    # the schema has no decision boolean and requires `replicas`: `cancelled` is the only no
    thread_ts = await pause_for_approval(harness, "interrupt-outcome")
    row = await harness.row(thread_ts)
    form = form_of(harness, thread_ts)
    await harness.click(form, ACTION_REJECT, actions_of(form)[ACTION_REJECT])
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    entry = harness.agent.requests[-1].body["resume"][0]
    assert entry["status"] == "cancelled" and "payload" not in entry
    interrupt = (await harness.interrupts(thread_ts))[0]
    assert interrupt.status == "rejected"
    shown = next(m for m in harness.thread_messages(thread_ts) if m.ts == interrupt.form_ts)
    assert "Rejected by" in render_text(shown) and actions_of(shown) == {}


async def test_missing_required_field_keeps_the_form_with_an_error(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-outcome")
    await approve(harness, thread_ts, values=answers(replicas=None))
    await harness.rt.engine.drain()
    await asyncio.sleep(0.2)
    assert harness.agent.resumes == 0
    form = form_of(harness, thread_ts)
    assert "is required" in render_text(form)
    assert (await harness.interrupts(thread_ts))[0].status == "pending"
    assert (await harness.row(thread_ts)).state == "awaiting_approval"


async def test_concurrent_clicks_resume_exactly_once(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-outcome")
    row = await harness.row(thread_ts)
    responses = await asyncio.gather(*(approve(harness, thread_ts) for _ in range(6)))
    assert all(r.status_code == 200 for r in responses)
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    await asyncio.sleep(0.2)
    assert harness.agent.resumes == 1
    notes = [c.params.get("text", "") for c in harness.slack.calls_to("response_url")]
    assert sum("already answered by" in n for n in notes) == 5


async def test_someone_else_cannot_approve(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-outcome")
    await approve(harness, thread_ts, user=BOB)

    def refused() -> bool:
        notes = [c.params.get("text", "") for c in harness.slack.calls_to("response_url")]
        return any(f"Only <@{ALICE}> can answer" in n for n in notes)

    await until(refused)  # the clicker is told once the click has been handled
    await harness.rt.engine.drain()
    assert harness.agent.resumes == 0
    history = await harness.history(thread_ts)
    assert (history[-1].trigger, history[-1].actor) == ("approval_refused", BOB)
    assert (await harness.interrupts(thread_ts))[0].status == "pending"


async def test_expiry_tells_the_backend_and_the_thread(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-outcome", ORCH_APPROVAL_TIMEOUT=0.5)
    row = await harness.settle(
        thread_ts, ("done",), min_version=(await harness.row(thread_ts)).version + 1
    )
    assert row.state == "done"
    assert harness.agent.resumes == 1
    assert harness.agent.requests[-1].body["resume"][0]["status"] == "cancelled"
    interrupt = (await harness.interrupts(thread_ts))[0]
    assert interrupt.status == "expired"
    shown = next(m for m in harness.thread_messages(thread_ts) if m.ts == interrupt.form_ts)
    assert "Expired" in render_text(shown) and actions_of(shown) == {}
    assert "approval_expired" in [h.trigger for h in await harness.history(thread_ts)]


async def test_reminder_before_expiry(harness: Harness) -> None:
    thread_ts = await pause_for_approval(
        harness, "interrupt-outcome", ORCH_APPROVAL_TIMEOUT=60, ORCH_APPROVAL_REMINDER=59.5
    )
    for _ in range(100):
        if "still waiting" in harness.thread_text(thread_ts):
            break
        await asyncio.sleep(0.05)
    assert f"<@{ALICE}>" in harness.thread_text(thread_ts)
    assert "still waiting for an answer" in harness.thread_text(thread_ts)


async def test_message_while_form_pending_is_not_forwarded(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-outcome")
    sent = len(harness.agent.requests)
    await harness.say("hello? anyone?", thread_ts)
    for _ in range(100):
        if "waiting for" in harness.thread_text(thread_ts):
            break
        await asyncio.sleep(0.05)
    assert "the approval above" in harness.thread_text(thread_ts)
    assert "/archives/" in harness.slack.calls_to("chat.postMessage")[-1].params["text"]
    assert len(harness.agent.requests) == sent


async def test_failed_resume_reopens_the_form_without_losing_the_answer(harness: Harness) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    target = {"url": harness.agent.url("interrupt-outcome")}
    await harness.start(agents=lambda _c: AgentTarget(name="ops", url=target["url"]))
    thread_ts = await harness.mention("please scale web")
    row = await harness.settle(thread_ts, ("awaiting_approval",))

    target["url"] = f"http://127.0.0.1:{closed}/agents/interrupt-outcome"  # backend goes down
    await approve(harness, thread_ts)
    row = await harness.settle(thread_ts, ("awaiting_approval",), min_version=row.version + 2)
    assert "could not be delivered" in harness.thread_text(thread_ts)
    assert (await harness.interrupts(thread_ts))[0].status == "pending"
    assert set(actions_of(form_of(harness, thread_ts))) == {ACTION_APPROVE, ACTION_REJECT}

    target["url"] = harness.agent.url("interrupt-outcome")  # back up: the same click works
    await approve(harness, thread_ts)
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    assert harness.agent.resumes == 1
    assert (await harness.interrupts(thread_ts))[0].status == "approved"


async def test_pending_tool_call_is_answered_with_a_tool_message(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-tool")
    row = await harness.row(thread_ts)
    interrupt = (await harness.interrupts(thread_ts))[0]
    assert interrupt.wire_form == "tool" and interrupt.tool_name == "confirm_action"
    await approve(harness, thread_ts, values={})
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    messages = harness.agent.requests[-1].body["messages"]
    assert messages[-1]["role"] == "tool"
    assert messages[-1]["toolCallId"] == interrupt.tool_call_id
    assert any(
        c["id"] == interrupt.tool_call_id
        for m in messages
        if m["role"] == "assistant"
        for c in m.get("toolCalls", [])
    )
    # the tool answer is now part of the stored conversation
    stored = await harness.rt.store.messages(row.id)
    assert any(m["role"] == "tool" and m["toolCallId"] == interrupt.tool_call_id for m in stored)


async def test_several_interrupts_resume_when_all_are_answered(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-multi")
    rows = await harness.interrupts(thread_ts)
    assert len(rows) == 2
    forms = [m for m in harness.thread_messages(thread_ts) if ACTION_APPROVE in actions_of(m)]
    assert len(forms) == 2
    row = await harness.row(thread_ts)
    await harness.click(
        forms[0], ACTION_APPROVE, actions_of(forms[0])[ACTION_APPROVE], values=answers()
    )
    await harness.rt.engine.drain()
    await asyncio.sleep(0.2)
    assert harness.agent.resumes == 0
    assert (await harness.row(thread_ts)).state == "awaiting_approval"
    await harness.click(forms[1], ACTION_REJECT, actions_of(forms[1])[ACTION_REJECT])
    await harness.settle(thread_ts, ("done",), min_version=row.version + 2)
    assert harness.agent.resumes == 1
    statuses = sorted(e["status"] for e in harness.agent.requests[-1].body["resume"])
    assert statuses == ["cancelled", "resolved"]


async def test_recorded_legacy_server_resume_matches_what_it_accepted(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "replay-langgraph-legacy-interrupt")
    form = form_of(harness, thread_ts)
    text = render_text(form)
    assert "Approve scaling deployment web to 5 replicas?" in text
    assert "3 | 5 | 8" in text
    row = await harness.row(thread_ts)
    await approve(harness, thread_ts, values=answers("5", "ok, go"))
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    body = harness.agent.requests[-1].body
    assert body["forwardedProps"]["command"] == {"resume": {"replicas": "5", "comment": "ok, go"}}
    assert "resume" not in body
    assert body["messages"]  # never an empty history on resume
    assert "Human decision recorded" in harness.thread_text(thread_ts)


async def test_recorded_structured_server_resume_matches_what_it_accepted(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "replay-langgraph-structured-interrupt")
    interrupt = (await harness.interrupts(thread_ts))[0]
    assert interrupt.interrupt_id == "b04e61c15900482fd81345b10402daed"
    assert interrupt.wire_form == "outcome"
    assert "3 | 5 | 8" in render_text(
        form_of(harness, thread_ts)
    )  # fields from metadata.langgraph.raw
    row = await harness.row(thread_ts)
    await approve(harness, thread_ts, values=answers("8", "bigger"))
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    body = harness.agent.requests[-1].body
    assert body["resume"] == [
        {
            "interruptId": "b04e61c15900482fd81345b10402daed",
            "status": "resolved",
            "payload": {"replicas": "8", "comment": "bigger"},
        }
    ]
    assert "command" not in body["forwardedProps"]
    assert body["messages"]
    assert "Human decision recorded" in harness.thread_text(thread_ts)


async def test_a_form_answered_while_another_waits_is_not_taken_for_a_lost_claim(
    harness: Harness,
) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-multi", ORCH_RUN_LEASE=0.3)
    forms = [m for m in harness.thread_messages(thread_ts) if ACTION_APPROVE in actions_of(m)]
    await harness.click(
        forms[0], ACTION_APPROVE, actions_of(forms[0])[ACTION_APPROVE], values=answers()
    )
    await harness.rt.engine.drain()
    await asyncio.sleep(1.0)  # several scheduler ticks, each past the lease age of the claim

    history = await harness.history(thread_ts)
    assert [h.actor for h in history if h.actor == "recovery"] == []
    assert (await harness.row(thread_ts)).state == "awaiting_approval"
    assert harness.agent.resumes == 0
