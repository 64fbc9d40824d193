"""The "Edit arguments" modal: the tool's arguments as JSON, to change and approve with."""

from __future__ import annotations

from typing import Any

from renderers.common import EDIT_ARGS_BLOCK_ID, EDIT_ARGS_CALLBACK_ID, FIELD_ACTION_ID, Block
from renderers.limits import MAX_INPUT_VALUE, truncate
from renderers.markdown import escape

TITLE = "Edit arguments"


def edit_args_modal(interrupt_key: str, tool_name: str | None, arguments: str) -> Block:
    """The modal `views.open` shows, prefilled with `arguments` (JSON text)."""
    what = f"`{escape(truncate(tool_name, 200))}`" if tool_name else "the tool"
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": FIELD_ACTION_ID,
        "multiline": True,
        "initial_value": arguments[:MAX_INPUT_VALUE],
    }
    return {
        "type": "modal",
        "callback_id": EDIT_ARGS_CALLBACK_ID,
        "private_metadata": interrupt_key,
        "title": {"type": "plain_text", "text": TITLE},
        "submit": {"type": "plain_text", "text": "Approve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"Approve running {what} with these arguments (JSON):",
                },
            },
            {
                "type": "input",
                "block_id": EDIT_ARGS_BLOCK_ID,
                "label": {"type": "plain_text", "text": "Arguments"},
                "element": element,
            },
        ],
    }


def read_edited_args(state_values: dict[str, Any]) -> str:
    """The text typed in the submitted modal."""
    typed = (state_values.get(EDIT_ARGS_BLOCK_ID) or {}).get(FIELD_ACTION_ID) or {}
    value = typed.get("value")
    return value if isinstance(value, str) else ""
