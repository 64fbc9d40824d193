"""What differs between AG-UI servers' approvals, in one table.

Checked against real servers from PyPI (tests/interop/README.md has the wire facts):
- pydantic-ai's `AGUIAdapter`: an outcome interrupt whose `responseSchema` is `{approved,
  editedArgs, reason}`; answered `resolved` with `{approved, editedArgs?, reason?}`.
- Microsoft Agent Framework: an outcome interrupt whose schema has `approved` and `accepted`,
  one property per argument, and `editedArgs`; edits go in `editedArgs` alone.
- LangGraph (`ag-ui-langgraph`): an outcome interrupt or the legacy `on_interrupt` event, with
  the schema the graph chose; answered with the payload it describes.
- Google ADK (`ag-ui-adk`): a pending `adk_request_confirmation` tool call (and, opted in, an
  outcome interrupt on it); answered with its result, a ToolConfirmation `{confirmed}`.

From this the form knows:
- `DECISION_KEYS`: a boolean property with one of these names is what Approve (true) and Reject
  (false) answer; it is never shown as a field.
- `EDITED_ARGS_KEYS`: an object property with one of these names replaces the tool's arguments.
  It is edited as JSON in the "Edit arguments" modal, and properties that mirror single
  arguments (as Agent Framework offers them too) are not shown: the server reads one or the
  other, and refuses both.
- `CONFIRMATION_TOOLS`: tool calls a server leaves pending to ask for a decision. The form asks
  about the call they name, and the answer is the tool's result in the shape given here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DECISION_KEYS = ("approved", "accepted", "confirmed")
EDITED_ARGS_KEYS = ("editedArgs",)
DEFAULT_DECISION_KEY = "approved"  # what a pause with no schema is answered with


@dataclass(frozen=True, slots=True)
class ConfirmationTool:
    """A tool call that asks a person to confirm another call (and is answered as its result)."""

    subject_key: str  # the argument naming the call asked about: {id, name, args}
    response_schema: dict[str, Any]  # the shape of the tool result the server reads


CONFIRMATION_TOOLS: dict[str, ConfirmationTool] = {
    # ADK's ToolConfirmation; `hint` and `payload` are optional and not asked for.
    "adk_request_confirmation": ConfirmationTool(
        subject_key="originalFunctionCall",
        response_schema={
            "type": "object",
            "properties": {"confirmed": {"type": "boolean"}},
            "required": ["confirmed"],
        },
    ),
}


@dataclass(frozen=True, slots=True)
class Subject:
    """The call a confirmation asks about."""

    name: str | None
    args: str | None  # JSON text, as tool arguments are kept


def confirmation_of(tool_name: str | None) -> ConfirmationTool | None:
    return CONFIRMATION_TOOLS.get(tool_name or "")


def subject_of(tool: ConfirmationTool, args_text: str | None) -> Subject:
    """The call named in a confirmation tool's arguments (nothing when they do not say)."""
    try:
        args = json.loads(args_text or "")
    except ValueError:
        return Subject(None, None)
    call = args.get(tool.subject_key) if isinstance(args, dict) else None
    if not isinstance(call, dict):
        return Subject(None, None)
    name = call.get("name")
    inner = call.get("args")
    return Subject(
        name if isinstance(name, str) else None,
        json.dumps(inner) if isinstance(inner, dict) else None,
    )
