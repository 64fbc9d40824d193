"""Answers shaped as each server reads them, end to end with the scripted agent: the decision
boolean answered by the buttons, Reject as a decision, the "Edit arguments" modal, a pending
confirmation tool call, and a resume the server refuses. (The interop suite, tests/interop,
runs the same against the real servers.)"""

from __future__ import annotations

import json
from typing import Any

from ag_ui.core import (
    Interrupt,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallStartEvent,
)

from orchestrator.sandbox.slack_emulator import render_text
from renderers.common import (
    ACTION_APPROVE,
    ACTION_EDIT_ARGS,
    ACTION_REJECT,
    EDIT_ARGS_BLOCK_ID,
    EDIT_ARGS_CALLBACK_ID,
    FIELD_ACTION_ID,
    field_block_id,
)
from tests.harness import ALICE, SECRET, Harness, actions_of, find_with_action, until

ARGS = {"pod": "web-7", "namespace": "prod"}
APPROVAL_SCHEMA = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean"},
        "editedArgs": {"type": "object"},
        "reason": {"type": "string"},
    },
    "required": ["approved"],
}


def call(call_id: str, name: str, args: dict[str, Any]) -> list[Any]:
    return [
        ToolCallStartEvent(tool_call_id=call_id, tool_call_name=name, parent_message_id="m1"),
        ToolCallArgsEvent(tool_call_id=call_id, delta=json.dumps(args)),
        ToolCallEndEvent(tool_call_id=call_id),
    ]


def pausing(finished: RunFinishedEvent, *calls: list[Any]) -> list[Any]:
    return [
        RunStartedEvent(thread_id="t", run_id="r"),
        TextMessageStartEvent(message_id="m1", role="assistant"),
        TextMessageContentEvent(message_id="m1", delta="I will restart web-7."),
        TextMessageEndEvent(message_id="m1"),
        *[event for events in calls for event in events],
        finished,
    ]


def approval_run() -> list[Any]:
    interrupt = Interrupt(
        id="int-c1",
        reason="tool_call",
        message="Approve restart_pod?",
        tool_call_id="c1",
        response_schema=APPROVAL_SCHEMA,
    )
    outcome = RunFinishedInterruptOutcome(interrupts=[interrupt])
    finished = RunFinishedEvent(thread_id="t", run_id="r", outcome=outcome)
    return pausing(finished, call("c1", "restart_pod", ARGS))


async def paused(harness: Harness, items: list[Any], **settings: Any) -> tuple[str, int]:
    url = harness.agent.serve("approval-shaped", items, resumable=True)
    await harness.start(AGENT_URL=url, **settings)
    thread_ts = await harness.mention("please restart web-7")
    row = await harness.settle(thread_ts, ("awaiting_approval",))
    return thread_ts, row.version


def form(harness: Harness, thread_ts: str):
    return find_with_action(harness.thread_messages(thread_ts), ACTION_APPROVE)


async def click(harness: Harness, thread_ts: str, action: str, values=None) -> None:
    shown = form(harness, thread_ts)
    await harness.click(shown, action, actions_of(shown)[action], values=values or {})


def last_resume(harness: Harness) -> dict[str, Any]:
    (entry,) = harness.agent.requests[-1].body["resume"]
    return entry


async def test_the_buttons_answer_the_decision_and_approve_alone_is_enough(
    harness: Harness,
) -> None:
    thread_ts, version = await paused(harness, approval_run())
    shown = form(harness, thread_ts)
    inputs = {b["block_id"] for b in shown.blocks if b["type"] == "input"}
    assert inputs == {field_block_id("reason")}  # not `approved`, not `editedArgs`
    assert set(actions_of(shown)) == {ACTION_APPROVE, ACTION_EDIT_ARGS, ACTION_REJECT}
    assert "restart_pod" in render_text(shown)

    await click(harness, thread_ts, ACTION_APPROVE)
    await harness.settle(thread_ts, ("done",), min_version=version + 1)
    entry = last_resume(harness)
    assert entry == {"interruptId": "int-c1", "status": "resolved", "payload": {"approved": True}}


async def test_reject_is_a_decision_with_its_reason(harness: Harness) -> None:
    thread_ts, version = await paused(harness, approval_run())
    reason = {field_block_id("reason"): {FIELD_ACTION_ID: {"value": "freeze"}}}
    await click(harness, thread_ts, ACTION_REJECT, reason)
    await harness.settle(thread_ts, ("done",), min_version=version + 1)
    assert last_resume(harness) == {
        "interruptId": "int-c1",
        "status": "resolved",
        "payload": {"approved": False, "reason": "freeze"},
    }
    (row,) = await harness.interrupts(thread_ts)
    assert (row.status, row.decision) == ("rejected", "rejected")
    record = render_text(next(m for m in harness.thread_messages(thread_ts) if m.ts == row.form_ts))
    assert "Rejected by" in record and "freeze" in record


async def submit(harness: Harness, text: str) -> Any:
    view = harness.slack.views_opened()[-1]
    payload = harness.slack.view_submission_payload(
        user=ALICE,
        callback_id=EDIT_ARGS_CALLBACK_ID,
        private_metadata=view["private_metadata"],
        state_values={EDIT_ARGS_BLOCK_ID: {FIELD_ACTION_ID: {"value": text}}},
    )
    return await harness.slack.deliver_action(harness.events_url, SECRET, payload)


async def test_edited_arguments_are_checked_in_the_modal_then_sent_as_edited_args(
    harness: Harness,
) -> None:
    thread_ts, version = await paused(harness, approval_run())
    await click(harness, thread_ts, ACTION_EDIT_ARGS)
    await until(lambda: bool(harness.slack.views_opened()))
    view = harness.slack.views_opened()[-1]
    (field,) = [b for b in view["blocks"] if b["type"] == "input"]
    assert json.loads(field["element"]["initial_value"]) == ARGS

    refused = await submit(harness, "{pod: web-7")
    assert refused.json()["response_action"] == "errors"
    assert "JSON object" in refused.json()["errors"][EDIT_ARGS_BLOCK_ID]
    assert harness.agent.resumes == 0

    edited = {"pod": "web-7", "namespace": "staging"}
    accepted = await submit(harness, json.dumps(edited))
    assert accepted.status_code == 200 and "errors" not in (accepted.text or "")
    await harness.settle(thread_ts, ("done",), min_version=version + 1)
    assert last_resume(harness)["payload"] == {"approved": True, "editedArgs": edited}
    (row,) = await harness.interrupts(thread_ts)
    record = render_text(next(m for m in harness.thread_messages(thread_ts) if m.ts == row.form_ts))
    assert "Approved by" in record and "Edited arguments" in record and "staging" in record


async def test_a_refused_resume_opens_the_form_again_with_the_servers_message(
    harness: Harness,
) -> None:
    harness.agent.refuse_resumes = 1
    thread_ts, version = await paused(harness, approval_run())
    await click(harness, thread_ts, ACTION_APPROVE)
    row = await harness.settle(thread_ts, ("awaiting_approval",), min_version=version + 2)
    shown = render_text(form(harness, thread_ts))
    assert "The agent refused this answer: The answer does not fit this request." in shown
    (interrupt,) = await harness.interrupts(thread_ts)
    assert interrupt.status == "pending"

    await click(harness, thread_ts, ACTION_APPROVE)  # the same form, answered again
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    assert harness.agent.resumes == 2
    assert "Decision received" in harness.thread_text(thread_ts)


async def test_a_pending_confirmation_call_is_a_form_answered_in_its_servers_shape(
    harness: Harness,
) -> None:
    confirmation = {
        "originalFunctionCall": {"id": "c1", "name": "restart_pod", "args": ARGS},
        "toolConfirmation": {"hint": "Please approve or reject.", "confirmed": False},
    }
    items = pausing(
        RunFinishedEvent(thread_id="t", run_id="r"),
        call("c1", "restart_pod", ARGS),
        call("adk-1", "adk_request_confirmation", confirmation),
    )
    thread_ts, version = await paused(harness, items)
    shown = form(harness, thread_ts)
    assert "restart_pod" in render_text(shown) and '"namespace": "prod"' in render_text(shown)
    assert not [b for b in shown.blocks if b["type"] == "input"]  # `confirmed` is the buttons'
    (row,) = await harness.interrupts(thread_ts)
    assert (row.wire_form, row.interrupt_id, row.tool_name) == ("tool", "adk-1", "restart_pod")

    await click(harness, thread_ts, ACTION_REJECT)
    await harness.settle(thread_ts, ("done",), min_version=version + 1)
    last = harness.agent.requests[-1].body["messages"][-1]
    assert (last["role"], last["toolCallId"]) == ("tool", "adk-1")
    assert json.loads(last["content"]) == {"confirmed": False}
