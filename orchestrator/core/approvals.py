"""Human-in-the-loop: interrupt records from a run, their views, and the resume request.

Three wire forms lead to the same persisted record (see README, "Approvals"):
`outcome`  AG-UI 1.0 `RUN_FINISHED.outcome.interrupts[]`, resumed with `RunAgentInput.resume[]`;
`legacy`   a CUSTOM `on_interrupt` event, resumed with `forwardedProps.command.resume`;
`tool`     a frontend tool call left pending, answered with a `tool` message.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ag_ui.core import CustomEvent, RunFinishedEvent

from orchestrator.core.conversation import RunRecorder, tool_result_message
from persistence.models import Interrupt, Thread
from renderers.common import ACTION_APPROVE, ACTION_REJECT
from renderers.forms import fields_from_list, fields_from_schema
from renderers.view import FormField, InterruptView

LEGACY_EVENT = "on_interrupt"


def is_legacy_interrupt(event: CustomEvent) -> bool:
    return event.name == LEGACY_EVENT


# --- records from a run -----------------------------------------------------------------


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
        return [_from_legacy(legacy, run_id, base, default_expiry, now)]
    pending = getattr(outcome, "pending_tool_call_ids", None) if outcome is not None else None
    return [
        _from_tool_call(call_id, recorder, base, default_expiry, now) for call_id in pending or []
    ]


def _from_outcome(
    item: Any, recorder: RunRecorder, base: dict[str, Any], expiry: float | None, now: float
) -> Interrupt:
    metadata = getattr(item, "metadata", None) or {}
    raw = (metadata.get("langgraph") or {}).get("raw") if isinstance(metadata, dict) else None
    raw = raw if isinstance(raw, dict) else {}
    # the tool call may not be in this run (or anywhere): the form then shows no tool
    seen = recorder.tool_call(item.tool_call_id) if item.tool_call_id else None
    name, args = seen or (None, None)
    return Interrupt(
        id=str(uuid.uuid4()),
        interrupt_id=item.id,
        wire_form="outcome",
        message=item.message or raw.get("message") or "The agent needs your approval to go on.",
        reason=item.reason,
        tool_call_id=item.tool_call_id,
        tool_name=name,
        tool_args=args,
        response_schema=item.response_schema,
        fields=None if item.response_schema else raw.get("fields"),
        labels=_labels(raw),
        status="pending",
        expires_at=_parse_time(item.expires_at) or expiry,
        created_at=now,
        **base,
    )


def _from_legacy(
    event: CustomEvent, run_id: str, base: dict[str, Any], expiry: float | None, now: float
) -> Interrupt:
    value = event.value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = {"message": value}
    if not isinstance(value, dict):
        value = {"message": str(value)}
    return Interrupt(
        id=str(uuid.uuid4()),
        interrupt_id=f"legacy:{run_id}",
        wire_form="legacy",
        message=str(value.get("message") or "The agent needs your approval to go on."),
        reason=value.get("reason"),
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
    name, args = recorder.tool_call(call_id) or (None, None)
    return Interrupt(
        id=str(uuid.uuid4()),
        interrupt_id=call_id,
        wire_form="tool",
        message=f"The agent wants to run `{name}`." if name else "The agent wants to run a tool.",
        tool_call_id=call_id,
        tool_name=name,
        tool_args=args,
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


# --- what the form shows ----------------------------------------------------------------


def form_fields(row: Interrupt) -> list[FormField]:
    if row.response_schema:
        return fields_from_schema(row.response_schema)
    if row.fields:
        return fields_from_list(row.fields)
    return []


def view_of(row: Interrupt, error: str | None = None) -> InterruptView:
    return InterruptView(
        id=row.id,
        message=row.message,
        fields=form_fields(row),
        tool_name=row.tool_name,
        tool_args=row.tool_args,
        approve_label=row.labels.get("approve", "Approve") if row.labels else "Approve",
        reject_label=row.labels.get("reject", "Reject") if row.labels else "Reject",
        status=row.status,  # type: ignore[arg-type]
        answered_by=row.answered_by,
        answered_at=clock(row.answered_at),
        answer=row.answer,
        expires_at=moment(row.expires_at),
        error=error,
    )


def clock(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M UTC") if at else None


def moment(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC") if at else None


# --- the resume request -----------------------------------------------------------------


@dataclass(slots=True)
class Resume:
    """How to tell the backend the answers, in the form each interrupt came in."""

    entries: list[dict[str, Any]] = field(default_factory=list)  # RunAgentInput.resume
    command: Any = None  # forwardedProps.command.resume
    tool_messages: list[dict[str, Any]] = field(default_factory=list)  # appended to history
    interrupt_keys: list[str] = field(default_factory=list)

    def apply(self, payload: dict[str, Any]) -> None:
        if self.entries:
            payload["resume"] = self.entries
        if self.command is not None:
            payload["forwardedProps"]["command"] = {"resume": self.command}
        if self.tool_messages:
            payload["messages"] = [*payload["messages"], *self.tool_messages]


def resume_for(rows: Sequence[Interrupt]) -> Resume:
    resume = Resume(interrupt_keys=[r.id for r in rows])
    for row in rows:
        approved = row.decision == "resolved"
        values = row.answer or {}
        if row.wire_form == "outcome":
            entry: dict[str, Any] = {"interruptId": row.interrupt_id, "status": row.decision}
            if approved:
                entry["payload"] = values or {"approved": True}
            resume.entries.append(entry)
        elif row.wire_form == "legacy":
            resume.command = values if approved and values else {"approved": approved}
        else:
            content = json.dumps({"approved": approved, **values})
            resume.tool_messages.append(tool_result_message(row.tool_call_id or "", content))
    return resume


def carries_form(message: dict[str, Any], interrupt_key: str) -> bool:
    """Whether a Slack message (as a click payload shows it) carries the Approve or Reject
    button of this interrupt."""
    for block in message.get("blocks") or []:
        if not isinstance(block, dict):
            continue
        for element in block.get("elements") or []:
            if (
                isinstance(element, dict)
                and element.get("action_id") in (ACTION_APPROVE, ACTION_REJECT)
                and element.get("value") == interrupt_key
            ):
                return True
    return False
