"""What an A2A task paused as `input-required` asks, as AG-UI 1.0 interrupts: pure, no I/O.

Three shapes are recognised, in this order:
1. the hitl/v1 extension (`https://kagent.dev/extensions/hitl/v1`): the status message's
   metadata holds `{type: "tool_approval_request", tools: [{id, call_id, name, args}]}` or
   `{type: "ask_user_request", id, questions: [{question, choices, multiple}]}`;
2. Kagent's released runtime (Google ADK): DataParts `adk_request_confirmation` whose
   `args.originalFunctionCall` is the tool call waiting for approval (Kagent's built-in
   `ask_user` tool pauses the same way, with its questions as the call's arguments);
3. anything else: a free-text question, the status message's text.

Each interrupt's id says how to answer it (see `Pending`), so answering needs no other state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote

from a2a.types import Message
from ag_ui.core import Interrupt

from orchestrator.agent.a2a.parts import (
    CONFIRMATION_CALL,
    FUNCTION_CALL,
    function_part,
    metadata_of,
    text_of,
)

HITL_EXTENSION = "https://kagent.dev/extensions/hitl/v1"
ASK_USER_TOOL = "ask_user"

# adk: a Kagent (ADK) tool confirmation, answered with `decision_type`;
# adk_ask: Kagent's ask_user tool, answered with `decision_type` + `ask_user_answers`;
# tool / ask: hitl/v1 `tool_approval_request` / `ask_user_request`;
# text: any other input-required, answered with text.
Kind = Literal["adk", "adk_ask", "tool", "ask", "text"]
_KINDS: frozenset[str] = frozenset({"adk", "adk_ask", "tool", "ask", "text"})
_PREFIX = "a2a"


@dataclass(frozen=True, slots=True)
class Pending:
    """One question of a paused task: what to answer (`key`) on which task, in which shape."""

    kind: Kind
    key: str  # the approval id, original tool call id, or question id the answer names
    task_id: str
    questions: int = 0  # how many questions an ask_user form holds

    @property
    def interrupt_id(self) -> str:
        parts = (self.kind, self.key, self.task_id, str(self.questions))
        return ":".join([_PREFIX, *(quote(p, safe="") for p in parts)])

    @classmethod
    def parse(cls, interrupt_id: str) -> Pending | None:
        """The pending question an interrupt id names; None for ids this adapter never made."""
        fields = interrupt_id.split(":")
        if len(fields) != 5 or fields[0] != _PREFIX or fields[1] not in _KINDS:
            return None
        kind, key, task_id, count = (unquote(f) for f in fields[1:])
        if not task_id or not count.isdigit():
            return None
        return cls(kind=kind, key=key, task_id=task_id, questions=int(count))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ToolCallShown:
    """A tool call a form names, so it is shown (with its arguments) even if never streamed."""

    id: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Asked:
    interrupts: list[Interrupt]
    tool_calls: list[ToolCallShown]


def asked(message: Message | None, task_id: str) -> Asked:
    """The interrupts an `input-required` status message asks for (always at least one)."""
    if message is not None:
        request = metadata_of(message).get(HITL_EXTENSION)
        if isinstance(request, dict) and request.get("type") in (
            "tool_approval_request",
            "ask_user_request",
        ):
            return _from_hitl(request, message, task_id)
        confirmations = _confirmations(message)
        if confirmations:
            return _from_confirmations(confirmations, task_id)
    text = text_of(message.parts).strip() if message is not None else ""
    return Asked([_free_text(text, task_id)], [])


# --- hitl/v1 --------------------------------------------------------------------------------


def _from_hitl(request: dict[str, Any], message: Message, task_id: str) -> Asked:
    hint = str(request.get("hint") or text_of(message.parts).strip())
    if request["type"] == "ask_user_request":
        questions = _questions(request.get("questions"))
        key = str(request.get("id") or "")
        return Asked([_questions_interrupt(questions, "ask", key, task_id, hint)], [])
    nested = request.get("nested")
    tools = (nested or {}).get("tools") if isinstance(nested, dict) else request.get("tools")
    interrupts, shown = [], []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict) or not tool.get("id"):
            continue
        name = str(tool.get("name") or "tool")
        args = tool.get("args") if isinstance(tool.get("args"), dict) else {}
        call_id = str(tool.get("call_id") or tool["id"])
        pending = Pending("tool", str(tool["id"]), task_id)
        interrupts.append(_approval(pending, call_id, name, hint))
        shown.append(ToolCallShown(call_id, name, args))
    if not interrupts:
        return Asked([_free_text(hint, task_id)], [])
    return Asked(interrupts, shown)


# --- Kagent (Google ADK) confirmations ------------------------------------------------------


def _confirmations(message: Message) -> list[dict[str, Any]]:
    """The `adk_request_confirmation` calls of a message, newest last."""
    found = []
    for part in message.parts:
        call = function_part(part)
        if call is None or call.kind != FUNCTION_CALL or call.name != CONFIRMATION_CALL:
            continue
        original = call.args.get("originalFunctionCall")
        confirmation = call.args.get("toolConfirmation")
        found.append(
            {
                "id": call.id,
                "original": original if isinstance(original, dict) else {},
                "hint": (confirmation or {}).get("hint")
                if isinstance(confirmation, dict)
                else None,
            }
        )
    return found


def _from_confirmations(confirmations: list[dict[str, Any]], task_id: str) -> Asked:
    interrupts, shown = [], []
    for confirmation in confirmations:
        original = confirmation["original"]
        name = str(original.get("name") or "tool")
        args = original.get("args") if isinstance(original.get("args"), dict) else {}
        call_id = str(original.get("id") or confirmation["id"])
        hint = str(confirmation["hint"] or "")
        if name == ASK_USER_TOOL:
            questions = _questions(args.get("questions"))
            key = str(confirmation["id"])
            interrupts.append(_questions_interrupt(questions, "adk_ask", key, task_id, hint))
            continue
        pending = Pending("adk", call_id, task_id)
        interrupts.append(_approval(pending, call_id, name, hint))
        shown.append(ToolCallShown(call_id, name, args))
    return Asked(interrupts, shown)


# --- interrupts -------------------------------------------------------------------------------


def _approval(pending: Pending, call_id: str, name: str, hint: str) -> Interrupt:
    return Interrupt(
        id=pending.interrupt_id,
        reason="tool_approval",
        message=hint or f"The agent wants to run `{name}`.",
        tool_call_id=call_id,
    )


def _questions(raw: Any) -> list[dict[str, Any]]:
    questions = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and str(item.get("question") or "").strip():
            choices = item.get("choices")
            questions.append(
                {
                    "question": str(item["question"]),
                    "choices": [str(c) for c in choices] if isinstance(choices, list) else [],
                    "multiple": item.get("multiple") is True,
                }
            )
    return questions


def question_field(index: int) -> str:
    """The form field that answers question `index` (0-based)."""
    return f"answer_{index + 1}"


def _questions_interrupt(
    questions: list[dict[str, Any]], kind: Kind, key: str, task_id: str, hint: str
) -> Interrupt:
    properties: dict[str, Any] = {}
    for index, question in enumerate(questions):
        prop: dict[str, Any] = {"title": question["question"]}
        if question["choices"] and question["multiple"]:
            prop |= {"type": "array", "items": {"type": "string", "enum": question["choices"]}}
        elif question["choices"]:
            prop |= {"type": "string", "enum": question["choices"]}
        else:
            prop |= {"type": "string"}
        properties[question_field(index)] = prop
    schema = {"type": "object", "properties": properties, "required": list(properties)}
    pending = Pending(kind, key, task_id, len(questions))
    first = questions[0]["question"] if questions else ""
    return Interrupt(
        id=pending.interrupt_id,
        reason="ask_user",
        message=hint or first or "The agent has questions for you.",
        response_schema=schema,
    )


def _free_text(text: str, task_id: str) -> Interrupt:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "title": "Your answer", "maxLength": 3000}},
        "required": ["answer"],
    }
    return Interrupt(
        id=Pending("text", "input", task_id).interrupt_id,
        reason="input_required",
        message=text or "The agent needs more information to go on.",
        response_schema=schema,
    )
