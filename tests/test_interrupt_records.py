"""Interrupt records from a finished run, pure: which pause wins, and what a form asks about."""

from __future__ import annotations

import json

from ag_ui.core import (
    AssistantMessage,
    CustomEvent,
    FunctionCall,
    Interrupt,
    MessagesSnapshotEvent,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    ToolCall,
    ToolCallArgsEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)

from orchestrator.core import approvals
from orchestrator.core.conversation import RunRecorder
from orchestrator.core.interrupt_records import interrupts_of_run
from persistence.models import Thread

THREAD = Thread(id="t1", requester="U0ALICE")
ARGS = {"pod": "web-7", "namespace": "prod"}
CONFIRMATION = {"originalFunctionCall": {"id": "c1", "name": "restart_pod", "args": ARGS}}


def recorded(*calls: tuple[str, str, dict]) -> RunRecorder:
    recorder = RunRecorder()
    for call_id, name, args in calls:
        recorder.observe(ToolCallStartEvent(tool_call_id=call_id, tool_call_name=name))
        recorder.observe(ToolCallArgsEvent(tool_call_id=call_id, delta=json.dumps(args)))
    return recorder


def records(recorder: RunRecorder, finished: RunFinishedEvent, legacy=None):
    return interrupts_of_run(
        thread=THREAD,
        run_id="r1",
        finished=finished,
        legacy=legacy,
        recorder=recorder,
        approval_timeout=None,
    )


def test_a_confirmation_call_left_pending_asks_about_the_call_it_names() -> None:
    recorder = recorded(
        ("c1", "restart_pod", ARGS), ("adk-1", "adk_request_confirmation", CONFIRMATION)
    )
    (row,) = records(recorder, RunFinishedEvent(thread_id="t", run_id="r"))
    assert (row.wire_form, row.interrupt_id, row.tool_name) == ("tool", "adk-1", "restart_pod")
    assert json.loads(row.tool_args or "") == ARGS
    assert approvals.form_fields(row) == []
    row.decision, row.answer = "approved", {"confirmed": True}
    (message,) = approvals.resume_for([row]).tool_messages
    assert (message["toolCallId"], json.loads(message["content"])) == ("adk-1", {"confirmed": True})


def test_a_confirmation_call_with_a_result_or_an_ordinary_pending_call_is_no_pause() -> None:
    recorder = recorded(("adk-1", "adk_request_confirmation", CONFIRMATION), ("c2", "search", {}))
    recorder.observe(ToolCallResultEvent(message_id="m", tool_call_id="adk-1", content="{}"))
    assert records(recorder, RunFinishedEvent(thread_id="t", run_id="r")) == []


def test_an_outcome_wins_over_calls_left_pending() -> None:
    recorder = recorded(("c1", "restart_pod", ARGS), ("cc", "adk_request_confirmation", {}))
    outcome = RunFinishedInterruptOutcome(
        interrupts=[Interrupt(id="i1", reason="tool_call", tool_call_id="c1")]
    )
    (row,) = records(recorder, RunFinishedEvent(thread_id="t", run_id="r", outcome=outcome))
    assert (row.wire_form, row.interrupt_id, row.tool_name) == ("outcome", "i1", "restart_pod")


def test_arguments_sent_only_in_the_snapshot_are_read_from_it() -> None:
    recorder = RunRecorder()
    recorder.observe(ToolCallStartEvent(tool_call_id="c1", tool_call_name="restart_pod"))
    call = ToolCall(id="c1", function=FunctionCall(name="restart_pod", arguments=json.dumps(ARGS)))
    recorder.observe(MessagesSnapshotEvent(messages=[AssistantMessage(id="a1", tool_calls=[call])]))
    legacy = CustomEvent(
        name="on_interrupt", value=json.dumps({"message": "ok?", "toolCallId": "c1"})
    )
    (row,) = records(recorder, RunFinishedEvent(thread_id="t", run_id="r"), legacy)
    assert (row.wire_form, row.tool_name, json.loads(row.tool_args or "")) == (
        "legacy",
        "restart_pod",
        ARGS,
    )
