"""Human-in-the-loop, pure: what a form shows, a person's answer as the payload its server
reads (validated against the interrupt's `responseSchema` first), and the resume request.

The records come from a run in `orchestrator.core.interrupt_records`; what differs between
servers is in `orchestrator.core.dialects`. A record's `decision` says what became of it:
`approved` or `rejected` by a person, `cancelled` when nobody decided (it expired). Its `answer`
is the payload that goes back; `None` for a rejection the schema cannot carry, which goes back
as `cancelled` on the AG-UI 1.0 wire.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.core.answers import (
    AnswerShape,
    errors_of,
    parse_object,
    payload_for,
    shape_of,
    typed_values,
    visible_schema,
)
from orchestrator.core.conversation import tool_result_message
from orchestrator.core.dialects import DECISION_KEYS
from persistence.models import Interrupt
from renderers.common import ACTION_APPROVE, ACTION_REJECT
from renderers.forms import fields_from_list, fields_from_schema, read_form_values
from renderers.view import FormField, InterruptView

APPROVED = ("approved", "resolved")  # `resolved`: records written before decisions were named


@dataclass(slots=True)
class Answer:
    """A person's decision as it goes back, or why it cannot (the form shows `errors`)."""

    decision: str  # approved | rejected
    payload: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)


# --- what the form shows ----------------------------------------------------------------


def shape(row: Interrupt) -> AnswerShape:
    return shape_of(row.response_schema, row.tool_args)


def form_fields(row: Interrupt) -> list[FormField]:
    """The fields a person fills in: not the decision (the buttons) nor the arguments (the
    "Edit arguments" modal)."""
    visible = visible_schema(shape(row))
    if visible is not None:
        return fields_from_schema(visible)
    if row.fields:
        return fields_from_list(row.fields)
    return []


def view_of(row: Interrupt, error: str | None = None) -> InterruptView:
    answer_shape = shape(row)
    payload = dict(row.answer or {})
    edited = payload.pop(answer_shape.edit_key, None) if answer_shape.edit_key else None
    hidden = answer_shape.hidden | set(DECISION_KEYS)  # the status line says the decision
    shown = {k: v for k, v in payload.items() if k not in hidden}
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
        answer=shown,
        edited_args=edited if isinstance(edited, dict) else None,
        editable=answer_shape.edit_key is not None,
        expires_at=moment(row.expires_at),
        error=error,
    )


def clock(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M UTC") if at else None


def moment(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC") if at else None


def arguments_text(row: Interrupt) -> str:
    """The tool's arguments as the modal prefills them: indented JSON."""
    return json.dumps(parse_object(row.tool_args or "") or {}, indent=2, ensure_ascii=False)


# --- a person's answer ------------------------------------------------------------------


def answer_of(row: Interrupt, *, approved: bool, state_values: dict[str, Any]) -> Answer:
    """Approve or Reject with the form's values, typed as the schema says and validated.

    A rejection needs no field filled in; a rejection the schema cannot carry (no decision
    boolean, other fields required) goes back as `cancelled` where the wire has it."""
    fields = form_fields(row)
    if not approved:
        fields = [dataclasses.replace(f, required=False) for f in fields]
    values, errors = read_form_values(state_values, fields)
    answer_shape = shape(row)
    labels = {f.name: f.label for f in fields}
    typed, type_errors = typed_values(values, answer_shape.schema, labels)
    errors += type_errors
    decision = "approved" if approved else "rejected"
    if errors:
        return Answer(decision, None, errors)
    payload = payload_for(answer_shape, approved=approved, values=typed)
    problems = errors_of(payload, answer_shape.schema)
    if problems and not approved:
        return Answer(decision, None)
    return Answer(decision, payload, problems)


def edited_answer(row: Interrupt, text: str) -> Answer:
    """Approve with the arguments edited in the modal, sent where the server reads them."""
    edited = parse_object(text)
    if edited is None:
        return Answer("approved", None, ["The arguments must be a JSON object."])
    answer_shape = shape(row)
    payload = payload_for(answer_shape, approved=True, values={}, edited_args=edited)
    return Answer("approved", payload, errors_of(payload, answer_shape.schema))


# --- the resume request -----------------------------------------------------------------


@dataclass(slots=True)
class Resume:
    """How to tell the backend the answers, in the form each interrupt came in."""

    entries: list[dict[str, Any]] = field(default_factory=list)  # RunAgentInput.resume
    command: Any = None  # forwardedProps.command.resume
    tool_messages: list[dict[str, Any]] = field(default_factory=list)  # appended to history
    interrupt_keys: list[str] = field(default_factory=list)
    resent: bool = False  # sent again by the recovery: the agent may have taken it before

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
        payload = _payload(row)
        if row.wire_form == "outcome":
            entry: dict[str, Any] = {"interruptId": row.interrupt_id, "status": "cancelled"}
            if row.decision != "cancelled" and payload is not None:
                entry.update(status="resolved", payload=payload)
            resume.entries.append(entry)
            continue
        payload = payload if payload is not None else _declined(row)
        if row.wire_form == "legacy":
            resume.command = payload
        else:
            message = tool_result_message(row.interrupt_id, json.dumps(payload))
            resume.tool_messages.append(message)
    return resume


def _payload(row: Interrupt) -> dict[str, Any] | None:
    if row.decision == "cancelled":
        return None
    if row.decision == "resolved" and not row.answer:  # a record from before payloads were kept
        return {"approved": True}
    return row.answer


def _declined(row: Interrupt) -> dict[str, Any]:
    """A no in the server's shape, for wires that have no `cancelled`."""
    return payload_for(shape(row), approved=False, values={})


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
