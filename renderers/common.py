"""Pieces every state's renderer shares: answer sections, activity lines, notes, errors, buttons.

The action ids and block ids here are what the Slack app routes on; keep them stable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from renderers.limits import (
    MAX_BLOCK_ID,
    MAX_BUTTON_TEXT,
    MAX_BUTTON_VALUE,
    MAX_CONTEXT_ELEMENTS,
    MAX_SECTION_TEXT,
    split_text,
    truncate,
    truncate_escaped,
)
from renderers.markdown import FENCE, defuse_fences, escape, escape_code, to_mrkdwn
from renderers.view import ErrorView, StepView, ThreadView, ToolCallView

Block = dict[str, Any]

ACTION_RETRY = "retry_run"  # value: the conversation id
ACTION_APPROVE = "approval_submit"  # value: the interrupt id
ACTION_REJECT = "approval_reject"  # value: the interrupt id
ACTION_EDIT_ARGS = "approval_edit_args"  # value: the interrupt id; opens the arguments modal
ACTION_THUMBS_UP = "feedback_up"  # value: the run id of the answer
ACTION_THUMBS_DOWN = "feedback_down"  # value: the run id of the answer
ACTION_REGENERATE = "regenerate_answer"  # value: the run id of the answer
ACTION_ESCALATE = "escalate_thread"  # value: the run id of the answer
ACTION_ESCALATE_ERROR = "escalate_failed_run"  # value: the conversation id
ACTION_STOP = "stop_run"  # value: the conversation id
FEEDBACK_CALLBACK_ID = "feedback_details"  # the 👎 modal; private_metadata: the run id
EDIT_ARGS_CALLBACK_ID = "approval_edited_args"  # the arguments modal; private_metadata: the id
EDIT_ARGS_BLOCK_ID = "arguments"  # its one input: the arguments as JSON
FIELD_ACTION_ID = "value"  # every form input's action id; its block id says which field

CURSOR = "▌"
_CURSOR_TAIL = (" " + CURSOR, "\n" + CURSOR)
THINKING = "Thinking…"
WAITING = "Waiting in line…"  # more runs than the process streams at once (it waits its turn)
MAX_TOOL_ITEMS = MAX_CONTEXT_ELEMENTS - 1  # one element stays free for the plan steps

_TOOL_MARKS = {"running": "⚙️", "done": "✅", "failed": "❌"}


def field_block_id(name: str) -> str:
    return f"field:{name}"[:MAX_BLOCK_ID]


def approval_block_id(interrupt_id: str) -> str:
    return f"approval:{interrupt_id}"[:MAX_BLOCK_ID]


# --- text --------------------------------------------------------------------------------------


def section(mrkdwn: str) -> Block:
    """A mrkdwn section; the text is cut to Slack's limit (callers split long text first)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": _section_text(mrkdwn)}}


def _section_text(mrkdwn: str) -> str:
    return truncate_escaped(mrkdwn, MAX_SECTION_TEXT) if mrkdwn.strip() else "…"


def context(*texts: str) -> Block:
    """A context line of mrkdwn elements (at most Slack's 10; empty ones dropped)."""
    elements = [{"type": "mrkdwn", "text": _section_text(t)} for t in texts if t.strip()]
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS] or [_ellipsis()]}


def _ellipsis() -> dict[str, str]:
    return {"type": "mrkdwn", "text": "…"}


def answer_blocks(markdown: str, *, cursor: bool = False) -> list[Block]:
    """The agent's answer as sections, split to fit; `cursor` marks text still streaming."""
    limit = MAX_SECTION_TEXT - len(CURSOR) - 1
    chunks = split_text(to_mrkdwn(markdown).strip(), limit)
    if cursor and chunks:
        chunks[-1] = _with_cursor(chunks[-1])
    return [section(chunk) for chunk in chunks]


def _with_cursor(chunk: str) -> str:
    return chunk + ("\n" if chunk.endswith(FENCE) else " ") + CURSOR


def code_section(intro: str, code: str) -> Block:
    """`intro` (mrkdwn) then `code` in a code block, the code cut with a marker to fit."""
    opening = f"{intro}\n{FENCE}\n" if intro else f"{FENCE}\n"
    closing = f"\n{FENCE}"
    room = MAX_SECTION_TEXT - len(opening) - len(closing)
    body = defuse_fences(escape_code(code)) or " "
    return section(opening + truncate_escaped(body, room, "\n… (truncated)") + closing)


def mention(user: str) -> str:
    """`<@U123>` for a Slack user id; anything else is shown as escaped text."""
    if user.startswith("<@") and user.endswith(">"):
        return user
    if user[:1] in ("U", "W") and user.isalnum() and user.isupper():
        return f"<@{user}>"
    return escape(user)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def final_answer_groups(view: ThreadView) -> list[list[Block]]:
    """A finished (or paused) answer: its sections, then the summary line; one group each."""
    groups: list[list[Block]] = [[block] for block in answer_blocks(view.text)]
    summary = summary_context(view)
    if summary:
        groups.append([summary])
    return groups


# --- activity (tool calls and plan steps) ------------------------------------------------------


def activity_context(view: ThreadView) -> Block | None:
    """One line of what the agent is doing: plan steps, then each tool call with its status."""
    items = _tool_items(view.tool_calls.values())
    steps = _steps_text(view.steps)
    texts = ([steps] if steps else []) + items
    return context(*texts) if texts else None


def summary_context(view: ThreadView) -> Block | None:
    """A compact line for a finished answer: which tools ran (how often) and the plan steps."""
    parts = [_tools_summary(view.tool_calls.values()), _steps_text(view.steps)]
    texts = [part for part in parts if part]
    return context(*texts) if texts else None


def _tool_items(calls: Iterable[ToolCallView]) -> list[str]:
    items = [_tool_text(call) for call in calls]
    if len(items) <= MAX_TOOL_ITEMS:
        return items
    hidden = len(items) - MAX_TOOL_ITEMS + 1
    return [f"+{hidden} earlier", *items[-(MAX_TOOL_ITEMS - 1) :]]


def _tool_text(call: ToolCallView) -> str:
    mark = _TOOL_MARKS.get(call.status, "⚙️")
    name = escape(truncate(call.name or "tool", 80))
    return f"{mark} {name}" if call.status == "done" else f"{mark} {name} — {call.status}"


def _tools_summary(calls: Iterable[ToolCallView]) -> str:
    calls = list(calls)
    if not calls:
        return ""
    counts = Counter(escape(truncate(call.name or "tool", 80)) for call in calls)
    used = ", ".join(name if n == 1 else f"{name} x{n}" for name, n in counts.items())
    failed = sum(call.status == "failed" for call in calls)
    note = f" ({failed} failed)" if failed else ""
    return truncate(f"🔧 {used}{note}", MAX_SECTION_TEXT)


def _steps_text(steps: Iterable[StepView]) -> str:
    marks = [f"{'☑' if s.status == 'done' else '☐'} {escape(s.name)}" for s in steps]
    return truncate(" · ".join(marks), MAX_SECTION_TEXT)


# --- notes, errors, buttons --------------------------------------------------------------------


def thinking_context(queued: int = 0, *, waiting: bool = False) -> Block:
    queue = f"📥 {plural(queued, 'message')} queued" if queued > 0 else ""
    if waiting:
        busy = "the bot is busy with many answers at once; this one starts as soon as one ends"
        return context(f"⏳ _{WAITING}_ {busy}", queue)
    return context(f"⏳ _{THINKING}_", queue)


def stop_button(conversation_id: str) -> Block:
    """The live answer's Stop button (where Slack shows no Stop of its own)."""
    return {
        "type": "actions",
        "block_id": "stop",
        "elements": [button("⏹ Stop", ACTION_STOP, conversation_id, style="danger")],
    }


def stopped_note(user: str) -> Block:
    return context(f"⏹ _Stopped by {mention(user)}_")


def interrupted_note(reason: str) -> Block:
    return section(f"⚠️ *Answer interrupted:* {escape(reason)}")


def error_blocks(error: ErrorView, conversation_id: str) -> list[Block]:
    """The error for people: title in bold, the detail, Retry when retrying can help, and Get
    help when the channel has people to ask."""
    title = escape(error.title or "Something went wrong").replace("*", "")
    detail = to_mrkdwn(error.detail).strip()
    blocks = [section(f"*{title}*\n{detail}" if detail else f"*{title}*")]
    elements = []
    if error.retryable:
        elements.append(button("Retry", ACTION_RETRY, conversation_id, style="primary"))
    if error.can_escalate:
        elements.append(button("🆘 Get help", ACTION_ESCALATE_ERROR, conversation_id))
    if elements:
        blocks.append({"type": "actions", "block_id": "retry", "elements": elements})
    return blocks


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    """A button; its label and value are cut to Slack's limits."""
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": truncate(text.strip() or "OK", MAX_BUTTON_TEXT)},
        "action_id": action_id,
        "value": value[:MAX_BUTTON_VALUE],
    }
    if style:
        element["style"] = style
    return element


def has_cursor(blocks: list[Block]) -> bool:
    return any(_text_of(block).endswith(_CURSOR_TAIL) for block in blocks)


def without_cursor(blocks: list[Block]) -> list[Block]:
    """The same blocks with the live answer's writing cursor taken off."""
    out: list[Block] = []
    for block in blocks:
        text = _text_of(block)
        if text.endswith(_CURSOR_TAIL):
            block = {**block, "text": {**block["text"], "text": text[: -len(CURSOR) - 1]}}
        out.append(block)
    return out


def _is_thinking(block: Block) -> bool:
    if block.get("type") != "context":
        return False
    elements = str(block.get("elements", ""))
    return THINKING in elements or WAITING in elements


def is_live(blocks: list[Block]) -> bool:
    """A message still drawn as a live answer: the writing cursor, "Thinking…" or "Waiting in
    line…"."""
    return has_cursor(blocks) or any(_is_thinking(block) for block in blocks)


def finished_blocks(blocks: list[Block]) -> list[Block]:
    """A live message as it stays once its run is gone: no cursor, no "Thinking…" (an empty
    list for a message that showed nothing else)."""
    return [block for block in without_cursor(blocks) if not _is_thinking(block)]


def _text_of(block: Block) -> str:
    text = block.get("text")
    return text.get("text", "") if isinstance(text, dict) else ""
