"""What a user sees: a plain-text picture of a message as Slack's client draws it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.sandbox.slack_emulator.records import StoredMessage


def render_text(message: StoredMessage) -> str:
    """A plain-text picture of a message: its blocks as Slack would draw them, or its text."""
    if not message.blocks:
        return message.text
    lines = [_render_block(block) for block in message.blocks]
    return "\n".join(line for line in lines if line)


def _render_block(block: dict[str, Any]) -> str:
    renderer = _BLOCK_RENDERERS.get(block.get("type", ""))
    return renderer(block) if renderer is not None else ""


def _render_section(block: dict[str, Any]) -> str:
    parts = [_text_of(block.get("text"))]
    parts.extend(_text_of(field) for field in block.get("fields") or [])
    accessory = block.get("accessory")
    if isinstance(accessory, dict):
        parts.append(_render_element(accessory))
    return "\n".join(part for part in parts if part)


def _render_context(block: dict[str, Any]) -> str:
    texts = [_text_of(element) for element in block.get("elements") or []]
    return " · ".join(text for text in texts if text)


def _render_actions(block: dict[str, Any]) -> str:
    rendered = [_render_element(element) for element in block.get("elements") or []]
    return "  ".join(text for text in rendered if text)


def _render_input(block: dict[str, Any]) -> str:
    element = block.get("element")
    if not isinstance(element, dict):
        return ""
    return _render_element(element, label=_text_of(block.get("label")))


def _render_element(element: dict[str, Any], label: str = "") -> str:
    kind = element.get("type")
    if kind == "button":
        return f"[{_text_of(element.get('text'))}]"
    if kind == "overflow":
        return "[...]"
    if kind == "image":
        return ""
    label = label or _text_of(element.get("placeholder")) or "Select"
    options = _option_texts(element)
    if options:
        return f"{label}: ____ ({' | '.join(options)})"
    return f"{label}: ____"


def _option_texts(element: dict[str, Any]) -> list[str]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return [_text_of(option.get("text")) for option in options if isinstance(option, dict)]


def _render_rich_text(block: dict[str, Any]) -> str:
    return "\n".join(_rich_text(element) for element in block.get("elements") or [])


def _rich_text(element: dict[str, Any]) -> str:
    kind = element.get("type")
    if kind == "text":
        return str(element.get("text", ""))
    if kind == "link":
        return str(element.get("text") or element.get("url", ""))
    if kind == "user":
        return f"<@{element.get('user_id')}>"
    if kind == "channel":
        return f"<#{element.get('channel_id')}>"
    if kind == "emoji":
        return f":{element.get('name')}:"
    children = element.get("elements") or []
    if kind == "rich_text_list":
        return "\n".join(f"• {_rich_text(child)}" for child in children)
    return "".join(_rich_text(child) for child in children)


def _render_table(block: dict[str, Any]) -> str:
    rows = block.get("rows") or []
    return "\n".join(" | ".join(_table_cell(cell) for cell in row) for row in rows)


def _table_cell(cell: Any) -> str:
    if not isinstance(cell, dict):
        return str(cell)
    if cell.get("type") == "raw_text":
        return str(cell.get("text", ""))
    return _rich_text(cell)


_TASK_MARKS = {"pending": "○", "in_progress": "◐", "complete": "●", "error": "✖"}


def _render_task_card(card: dict[str, Any]) -> str:
    return f"{_TASK_MARKS.get(card.get('status', ''), '?')} {card.get('title', '')}"


def _render_plan(block: dict[str, Any]) -> str:
    lines = [str(block.get("title") or "")]
    lines.extend(_render_task_card(card) for card in block.get("tasks") or [])
    return "\n".join(line for line in lines if line)


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict) and obj.get("type") != "image":
        return str(obj.get("text", ""))
    return ""


_BLOCK_RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "header": lambda block: _text_of(block.get("text")),
    "section": _render_section,
    "markdown": lambda block: str(block.get("text", "")),
    "context": _render_context,
    "actions": _render_actions,
    "input": _render_input,
    "divider": lambda block: "---",
    "rich_text": _render_rich_text,
    "table": _render_table,
    "plan": _render_plan,
    "task_card": _render_task_card,
}
