"""The interrupt records a finished run asks for, pure.

Four ways a run pauses for a person lead to the same persisted record (README, "Approvals"):
`outcome`  AG-UI 1.0 `RUN_FINISHED.outcome.interrupts[]`, resumed with `RunAgentInput.resume[]`;
`legacy`   a CUSTOM `on_interrupt` event, resumed with `forwardedProps.command.resume`;
`tool`     a tool call left pending: the outcome's `pendingToolCallIds`, or a confirmation tool
           of the dialect table (`orchestrator.core.dialects`) that ended the run with no
           result; answered with a `tool` message.
The first that applies wins: servers that report an outcome often leave calls pending too.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from ag_ui.core import CustomEvent, RunFinishedEvent

from orchestrator.core.conversation import RunRecorder
from orchestrator.core.dialects import confirmation_of, subject_of
from persistence.models import Interrupt, Thread

LEGACY_EVENT = "on_interrupt"
ASKS = "The agent needs your approval to go on."


def is_legacy_interrupt(event: CustomEvent) -> bool:
    return event.name == LEGACY_EVENT


def interrupts_of_run(
    *,
    thread: Thread,
    run_id: str,
    finished: RunFinishedEvent,
    legacy: CustomEvent | None,
    recorder: RunRecorder,
    approval_timeout: float | None,
) -> list[Interrupt]:
    """The interrupt records a finished run asks for (empty when it simply finished)."""
    outcome = finished.outcome
    now = time.time()
    default_expiry = now + approval_timeout if approval_timeout else None
    base = {"thread_id": thread.id, "run_id": run_id, "requester": thread.requester}
    if outcome is not None and outcome.type == "interrupt":
        return [
            _from_outcome(item, recorder, base, default_expiry, now) for item in outcome.interrupts
        ]
    if legacy is not None:
        return [_from_legacy(legacy, run_id, recorder, base, default_expiry, now)]
    pending = getattr(outcome, "pending_tool_call_ids", None) if outcome is not None else None
    if not pending:
        pending = [c for c in recorder.unanswered_calls() if confirmation_of(_name(recorder, c))]
    return [
        _from_tool_call(call_id, recorder, base, default_expiry, now) for call_id in pending or []
    ]


def _name(recorder: RunRecorder, call_id: str) -> str | None:
    seen = recorder.tool_call(call_id)
    return seen[0] if seen else None


def _subject(recorder: RunRecorder, call_id: str | None) -> tuple[str | None, str | None, Any]:
    """(tool name, arguments, dialect schema) of the call a pause is about.

    A confirmation tool (ADK's `adk_request_confirmation`) asks about the call its arguments
    name; its answer has the shape the dialect table gives."""
    seen = recorder.tool_call(call_id) if call_id else None
    if seen is None:  # the call may not be in this run (or anywhere): the form shows no tool
        return None, None, None
    name, args = seen
    tool = confirmation_of(name)
    if tool is None:
        return name, args, None
    subject = subject_of(tool, args)
    return subject.name or name, subject.args, tool.response_schema


def _from_outcome(
    item: Any, recorder: RunRecorder, base: dict[str, Any], expiry: float | None, now: float
) -> Interrupt:
    metadata = getattr(item, "metadata", None) or {}
    raw = (metadata.get("langgraph") or {}).get("raw") if isinstance(metadata, dict) else None
    raw = raw if isinstance(raw, dict) else {}
    name, args, dialect_schema = _subject(recorder, item.tool_call_id)
    schema = item.response_schema or dialect_schema
    return Interrupt(
        id=str(uuid.uuid4()),
        interrupt_id=item.id,
        wire_form="outcome",
        message=item.message or raw.get("message") or ASKS,
        reason=item.reason,
        tool_call_id=item.tool_call_id,
        tool_name=name,
        tool_args=args,
        response_schema=schema,
        fields=None if schema else raw.get("fields"),
        labels=_labels(raw),
        status="pending",
        expires_at=_parse_time(item.expires_at) or expiry,
        created_at=now,
        **base,
    )


def _from_legacy(
    event: CustomEvent,
    run_id: str,
    recorder: RunRecorder,
    base: dict[str, Any],
    expiry: float | None,
    now: float,
) -> Interrupt:
    value = event.value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = {"message": value}
    if not isinstance(value, dict):
        value = {"message": str(value)}
    call_id = value.get("toolCallId") or value.get("tool_call_id")
    call_id = call_id if isinstance(call_id, str) else None
    name, args, _ = _subject(recorder, call_id)
    return Interrupt(
        id=str(uuid.uuid4()),
        interrupt_id=f"legacy:{run_id}",
        wire_form="legacy",
        message=str(value.get("message") or ASKS),
        reason=value.get("reason"),
        tool_call_id=call_id,
        tool_name=name,
        tool_args=args,
        fields=value.get("fields") if isinstance(value.get("fields"), list) else None,
        response_schema=value.get("responseSchema") or value.get("schema"),
        labels=_labels(value),
        status="pending",
        expires_at=expiry,
        created_at=now,
        **base,
    )


def _from_tool_call(
    call_id: str, recorder: RunRecorder, base: dict[str, Any], expiry: float | None, now: float
) -> Interrupt:
    name, args, dialect_schema = _subject(recorder, call_id)
    return Interrupt(
        id=str(uuid.uuid4()),
        interrupt_id=call_id,
        wire_form="tool",
        message=f"The agent wants to run `{name}`." if name else "The agent wants to run a tool.",
        tool_call_id=call_id,
        tool_name=name,
        tool_args=args,
        response_schema=dialect_schema,
        status="pending",
        expires_at=expiry,
        created_at=now,
        **base,
    )


def _labels(raw: dict[str, Any]) -> dict[str, str]:
    labels = {}
    for key in ("approve_label", "approveLabel", "reject_label", "rejectLabel"):
        if isinstance(raw.get(key), str):
            labels["approve" if key.startswith("approve") else "reject"] = raw[key]
    return labels


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
