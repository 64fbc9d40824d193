"""The A2A message that answers a paused task, from a run's AG-UI `resume` entries: pure.

The answer goes on the paused task (same `taskId` and `contextId`) in the shape its server
reads; any other shape is taken as a new turn, and the paused tool silently never runs:
- Kagent (ADK) confirmations: a DataPart `{"decision_type": "approve"|"reject"}` (with
  `rejection_reason`), or for several calls `{"decision_type": "batch", "decisions": {call id:
  decision}, "rejection_reasons": {…}}`; Kagent's ask_user: `decision_type` "approve" with
  `ask_user_answers: [{"answer": [...]}, …]`;
- hitl/v1: the message declares the extension and its metadata holds `tool_approval_response`
  (`approvals: [{id, approved, rejection_reason?}]`, one per asked id) or `ask_user_response`;
- free text: the answer as a text part.

An approval is a rejection when the entry is `cancelled`, or `resolved` with a payload whose
`approved` (or `accepted`, `confirmed`) is false.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from a2a.types import Message, Part, Role
from ag_ui.core import ResumeEntry
from google.protobuf.struct_pb2 import Struct, Value

from orchestrator.agent.a2a.questions import HITL_EXTENSION, Pending, question_field

_APPROVAL_KEYS = ("approved", "accepted", "confirmed")
_REASON_KEYS = ("rejection_reason", "reason", "comment", "feedback")
DECLINED = "I would rather not answer that."


class UnknownAnswer(ValueError):
    """The resume entries do not answer questions this adapter asked."""


@dataclass(frozen=True, slots=True)
class Decision:
    pending: Pending
    approved: bool
    reason: str | None
    values: dict[str, Any]


def decisions(resume: Sequence[ResumeEntry]) -> list[Decision]:
    """The resume entries as decisions on pending questions, all on one task."""
    found: list[Decision] = []
    for entry in resume:
        pending = Pending.parse(entry.interrupt_id)
        if pending is None:
            raise UnknownAnswer("The answer names a question the agent did not ask.")
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        approved = entry.status == "resolved" and not any(
            payload.get(key) is False for key in _APPROVAL_KEYS
        )
        reason = next((payload[k] for k in _REASON_KEYS if isinstance(payload.get(k), str)), None)
        found.append(Decision(pending, approved, reason or None, payload))
    if not found:
        raise UnknownAnswer("The answer is empty.")
    if len({d.pending.task_id for d in found}) > 1:
        raise UnknownAnswer("The answers belong to different tasks.")
    return found


def answer_message(resume: Sequence[ResumeEntry], context_id: str) -> Message:
    """The message that answers the paused task named by the resume entries."""
    found = decisions(resume)
    first = found[0].pending
    message = Message(
        message_id=str(uuid.uuid4()),
        role=Role.ROLE_USER,
        task_id=first.task_id,
        context_id=context_id,
    )
    kinds = {d.pending.kind for d in found}
    if kinds <= {"tool"}:
        _hitl(message, _tool_approval_response(found))
    elif kinds <= {"ask"}:
        _hitl(message, _ask_user_response(found[0]))
    elif kinds <= {"adk", "adk_ask"}:
        message.parts.append(_data_part(_adk_decision(found)))
    else:
        message.parts.append(Part(text=_text_answer(found[0])))
    return message


def _hitl(message: Message, payload: dict[str, Any]) -> None:
    message.extensions.append(HITL_EXTENSION)
    message.metadata.update({HITL_EXTENSION: payload})
    summary = "Answered" if payload["type"] == "ask_user_response" else _approval_summary(payload)
    message.parts.append(Part(text=summary))


def _approval_summary(payload: dict[str, Any]) -> str:
    said = {a["approved"] for a in payload["approvals"]}
    return "Approved" if said == {True} else "Rejected" if said == {False} else "Decided"


def _tool_approval_response(found: list[Decision]) -> dict[str, Any]:
    approvals = []
    for decision in found:
        approval: dict[str, Any] = {"id": decision.pending.key, "approved": decision.approved}
        if not decision.approved and decision.reason:
            approval["rejection_reason"] = decision.reason
        approvals.append(approval)
    return {"type": "tool_approval_response", "approvals": approvals}


def _answers(decision: Decision) -> list[dict[str, list[str]]]:
    answers = []
    for index in range(decision.pending.questions):
        value = decision.values.get(question_field(index))
        if isinstance(value, list):
            answers.append({"answer": [str(v) for v in value]})
        elif value is None or value == "":
            answers.append({"answer": []})
        else:
            answers.append({"answer": [str(value)]})
    return answers


def _ask_user_response(decision: Decision) -> dict[str, Any]:
    return {"type": "ask_user_response", "id": decision.pending.key, "answers": _answers(decision)}


def _adk_decision(found: list[Decision]) -> dict[str, Any]:
    asks = [d for d in found if d.pending.kind == "adk_ask"]
    if asks:
        decision = asks[0]
        if not decision.approved:
            return {"decision_type": "reject"}
        return {"decision_type": "approve", "ask_user_answers": _answers(decision)}
    if len(found) == 1:
        decision = found[0]
        if decision.approved:
            return {"decision_type": "approve"}
        data: dict[str, Any] = {"decision_type": "reject"}
        if decision.reason:
            data["rejection_reason"] = decision.reason
        return data
    batch: dict[str, Any] = {
        "decision_type": "batch",
        "decisions": {d.pending.key: "approve" if d.approved else "reject" for d in found},
    }
    reasons = {d.pending.key: d.reason for d in found if not d.approved and d.reason}
    if reasons:
        batch["rejection_reasons"] = reasons
    return batch


def _text_answer(decision: Decision) -> str:
    if not decision.approved:
        return DECLINED
    answer = decision.values.get("answer")
    return str(answer) if answer not in (None, "") else "Yes."


def _data_part(data: dict[str, Any]) -> Part:
    struct = Struct()
    struct.update(data)
    return Part(data=Value(struct_value=struct))
