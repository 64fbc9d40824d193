"""The answer so far, then one approval form per pending interrupt (or a record once answered).

A form keeps its inputs and buttons in one message: Slack reports only the inputs of the message
whose button was clicked.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import date
from typing import Any

from renderers.common import (
    ACTION_APPROVE,
    ACTION_EDIT_ARGS,
    ACTION_REJECT,
    FIELD_ACTION_ID,
    Block,
    approval_block_id,
    button,
    code_section,
    context,
    field_block_id,
    final_answer_groups,
    mention,
    section,
)
from renderers.forms import option_text, option_value
from renderers.limits import (
    MAX_INPUT_HINT,
    MAX_INPUT_LABEL,
    MAX_INPUT_VALUE,
    MAX_OPTION_TEXT,
    MAX_OPTIONS,
    pack_messages,
    truncate,
)
from renderers.markdown import escape, to_mrkdwn
from renderers.view import FormField, InterruptView, SlackMessage, ThreadView

APPROVAL_NEEDED = "Approval needed"
EDIT_ARGUMENTS = "Edit arguments"
MAX_SHOWN_VALUE = 500  # per submitted value in an answered record

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def render(view: ThreadView) -> list[SlackMessage]:
    groups = final_answer_groups(view)
    groups.extend(interrupt_blocks(interrupt) for interrupt in view.interrupts)
    if not groups:
        groups.append([context(f"✋ _{APPROVAL_NEEDED}_")])
    return pack_messages(groups, APPROVAL_NEEDED)


def interrupt_blocks(interrupt: InterruptView) -> list[Block]:
    if interrupt.status == "pending":
        return form_blocks(interrupt)
    return record_blocks(interrupt)


# --- the pending form --------------------------------------------------------------------------


def form_blocks(interrupt: InterruptView) -> list[Block]:
    blocks = [section(_question(interrupt, f"✋ *{APPROVAL_NEEDED}*"))]
    if interrupt.tool_name:
        blocks.append(_tool_section(interrupt.tool_name, interrupt.tool_args))
    blocks.extend(input_block(form_field) for form_field in _unique_fields(interrupt.fields))
    if interrupt.error:
        blocks.append(section(f":warning: *{escape(interrupt.error)}*"))
    elements = [button(interrupt.approve_label, ACTION_APPROVE, interrupt.id, style="primary")]
    if interrupt.editable:
        elements.append(button(EDIT_ARGUMENTS, ACTION_EDIT_ARGS, interrupt.id))
    elements.append(button(interrupt.reject_label, ACTION_REJECT, interrupt.id, style="danger"))
    blocks.append(
        {"type": "actions", "block_id": approval_block_id(interrupt.id), "elements": elements}
    )
    if interrupt.expires_at:
        blocks.append(context(f"⏳ Expires {escape(interrupt.expires_at)}"))
    return blocks


def _question(interrupt: InterruptView, heading: str) -> str:
    message = to_mrkdwn(interrupt.message).strip()
    return f"{heading}\n{message}" if message else heading


def _tool_section(tool_name: str, tool_args: str | None) -> Block:
    intro = f"Wants to run {_code_name(tool_name)}"
    if not tool_args or not tool_args.strip():
        return section(intro)
    return code_section(intro + ":", pretty_json(tool_args))


def _code_name(name: str) -> str:
    return "`" + escape(truncate(name, 200)).replace("`", "'") + "`"


def pretty_json(text: str) -> str:
    """Indented JSON when `text` parses as JSON, else `text` as it came."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _unique_fields(fields: list[FormField]) -> list[FormField]:
    # Block ids come from field names and must be unique within a message: first one wins.
    by_name: dict[str, FormField] = {}
    for form_field in fields:
        by_name.setdefault(form_field.name, form_field)
    return list(by_name.values())


# --- inputs ------------------------------------------------------------------------------------


def input_block(form_field: FormField) -> Block:
    label = form_field.label.strip() or form_field.name or "Value"
    block: Block = {
        "type": "input",
        "block_id": field_block_id(form_field.name),
        "label": _plain(truncate(label, MAX_INPUT_LABEL)),
        "element": _ELEMENTS[form_field.kind](form_field),
        "optional": not form_field.required,
        "dispatch_action": False,
    }
    if form_field.description.strip():
        block["hint"] = _plain(truncate(form_field.description, MAX_INPUT_HINT))
    return block


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def _json_input(form_field: FormField) -> Block:
    element: Block = {"type": "plain_text_input", "action_id": FIELD_ACTION_ID, "multiline": True}
    if form_field.default is not None:
        text = json.dumps(form_field.default, indent=2, ensure_ascii=False)
        element["initial_value"] = text[:MAX_INPUT_VALUE]
    return element


def _text_input(form_field: FormField) -> Block:
    element: Block = {
        "type": "plain_text_input",
        "action_id": FIELD_ACTION_ID,
        "multiline": form_field.kind == "textarea",
    }
    default = form_field.default
    if isinstance(default, str | int | float) and not isinstance(default, bool) and str(default):
        element["initial_value"] = str(default)[:MAX_INPUT_VALUE]
    return element


def _options(form_field: FormField) -> list[tuple[str, Block]]:
    """(option, Slack option object) pairs: no empties, no duplicates, at most Slack's 100."""
    pairs: dict[str, Block] = {}
    for index, option in enumerate(form_field.options):
        if option.strip() and option not in pairs:
            text = _plain(truncate(option, MAX_OPTION_TEXT))
            pairs[option] = {"text": text, "value": option_value(index, option)}
    return list(pairs.items())[:MAX_OPTIONS]


def _defaults(default: Any) -> list[str]:
    values = default if isinstance(default, list) else [default]
    return [option_text(value) for value in values if value is not None]


def _select(form_field: FormField) -> Block:
    options = _options(form_field)
    if not options:
        return _text_input(form_field)
    multi = form_field.kind == "multiselect"
    element: Block = {
        "type": "multi_static_select" if multi else "static_select",
        "action_id": FIELD_ACTION_ID,
        "placeholder": _plain("Choose…"),
        "options": [slack_option for _, slack_option in options],
    }
    wanted = _defaults(form_field.default)
    initial = [slack_option for option, slack_option in options if option in wanted]
    if initial and multi:
        element["initial_options"] = initial
    elif initial:
        element["initial_option"] = initial[0]
    return element


def _yes_no(form_field: FormField) -> Block:
    yes = {"text": _plain("Yes"), "value": "true"}
    no = {"text": _plain("No"), "value": "false"}
    element: Block = {"type": "radio_buttons", "action_id": FIELD_ACTION_ID, "options": [yes, no]}
    default = option_text(form_field.default).lower() if form_field.default is not None else ""
    if default in ("true", "false"):
        element["initial_option"] = yes if default == "true" else no
    return element


def _number(form_field: FormField) -> Block:
    element: Block = {
        "type": "number_input",
        "action_id": FIELD_ACTION_ID,
        "is_decimal_allowed": not form_field.integer,
    }
    initial = _number_text(form_field.default, form_field.integer)
    if initial:
        element["initial_value"] = initial
    return element


def _number_text(value: Any, integer: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if integer and not float(value).is_integer():
        return None
    text = str(int(value)) if integer else str(value)
    return None if "e" in text.lower() else text


def _date(form_field: FormField) -> Block:
    element: Block = {"type": "datepicker", "action_id": FIELD_ACTION_ID}
    if isinstance(form_field.default, str) and _is_date(form_field.default):
        element["initial_date"] = form_field.default
    return element


def _is_date(text: str) -> bool:
    if not _DATE_RE.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


_ELEMENTS: dict[str, Callable[[FormField], Block]] = {
    "text": _text_input,
    "textarea": _text_input,
    "select": _select,
    "multiselect": _select,
    "boolean": _yes_no,
    "number": _number,
    "date": _date,
    "json": _json_input,
}


# --- the answered record -----------------------------------------------------------------------


def record_blocks(interrupt: InterruptView) -> list[Block]:
    """What was asked and what became of it; no inputs and no buttons."""
    blocks = [section(_question(interrupt, status_line(interrupt)))]
    values = _answer_lines(interrupt)
    if values:
        blocks.append(section("\n".join(values)))
    return blocks


def status_line(interrupt: InterruptView) -> str:
    by = f" by {mention(interrupt.answered_by)}" if interrupt.answered_by else ""
    at = f" at {escape(interrupt.answered_at)}" if interrupt.answered_at else ""
    lines = {
        "approved": f"✅ Approved{by}{at}",
        "rejected": f"❌ Rejected{by}{at}",
        "claimed": f"⏳ Answered{by}{at}, resuming…",
        "sending": f"⏳ Answered{by}{at}, resuming…",
        "expired": "⌛ Expired",
        "cancelled": "🚫 Cancelled",
    }
    return lines.get(interrupt.status, escape(interrupt.status))


def _answer_lines(interrupt: InterruptView) -> list[str]:
    labels = {form_field.name: form_field.label for form_field in interrupt.fields}
    answer = interrupt.answer or {}
    lines = [
        f"• *{escape(labels.get(name) or name)}:* {_shown_value(value)}"
        for name, value in answer.items()
    ]
    if interrupt.edited_args is not None:
        lines.append(f"• *Edited arguments:* {_shown_value(interrupt.edited_args)}")
    return lines


def _shown_value(value: Any) -> str:
    if isinstance(value, bool):
        text = "Yes" if value else "No"
    elif isinstance(value, list):
        text = ", ".join(option_text(item) for item in value)
    elif isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = option_text(value)
    return escape(truncate(text, MAX_SHOWN_VALUE))
