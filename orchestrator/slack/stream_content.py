"""What a natively streamed answer carries, computed from the view: pure, no I/O.

- `cut_text` picks how much of the pending text fits in a message.
- `TaskState` and `task_updates` turn tool calls into Slack `task_update` chunks and the plan
  steps into the `plan_update` title (the running step), sending each change once per message.
- `split_final` takes a renderer's final messages apart: the answer text (already streamed),
  the blocks that finish the streamed message (summary, notes, error, Retry), and the extra
  messages (approval forms) that are posted after it.
- `rest_messages` renders the text Slack has not confirmed, for the `chat.update` fallback.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.messages.chunk import Chunk, PlanUpdateChunk, TaskUpdateChunk

from renderers.common import THINKING, activity_context, answer_blocks, thinking_context
from renderers.limits import continued_block, pack_messages, text_from, truncate
from renderers.view import SlackMessage, ThreadView

TASK_TITLE_MAX = 250  # Slack cuts task titles near 256 characters
_TASK_STATUS = {"running": "in_progress", "done": "complete", "failed": "error"}

Block = dict[str, Any]


def cut_text(pending: str, room: int) -> str:
    """The longest start of `pending` that fits in `room`, ending at a paragraph, line or word
    break when one lies in the second half of the room."""
    if len(pending) <= room:
        return pending
    if room <= 0:
        return ""
    for separator in ("\n\n", "\n", " "):
        at = pending.rfind(separator, room // 2, room)
        if at >= 0:
            return pending[: at + len(separator)]
    return pending[:room]


@dataclass(slots=True)
class TaskState:
    """What one streamed message already shows of the tasks and the plan title."""

    tasks: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (title, status)
    plan_title: str = ""


def task_updates(
    view: ThreadView, shown: TaskState, elsewhere: set[str]
) -> tuple[list[Chunk], TaskState]:
    """The chunks that bring a message's tasks up to date, and the state once they are applied.

    `elsewhere` holds the ids of tasks earlier messages showed: a task finished there is not
    repeated in a later message; a task still running is, so its end shows where people look.
    """
    chunks: list[Chunk] = []
    after = TaskState(dict(shown.tasks), shown.plan_title)
    title = _plan_title(view)
    if title and title != shown.plan_title:
        chunks.append(PlanUpdateChunk(title=title))
        after.plan_title = title
    for call in view.tool_calls.values():
        state = (truncate(call.name or "tool", TASK_TITLE_MAX), _TASK_STATUS[call.status])
        if shown.tasks.get(call.id) == state:
            continue
        if call.id not in shown.tasks and call.id in elsewhere and state[1] != "in_progress":
            continue
        chunks.append(TaskUpdateChunk(id=call.id, title=state[0], status=state[1]))
        after.tasks[call.id] = state
    return chunks, after


def _plan_title(view: ThreadView) -> str:
    running = [step for step in view.steps if step.status == "running"]
    current = running[-1] if running else (view.steps[-1] if view.steps else None)
    return truncate(current.name, TASK_TITLE_MAX) if current and current.name.strip() else ""


@dataclass(slots=True)
class FinalParts:
    closing_blocks: list[Block]  # shown under the streamed answer when the stream stops
    extra: list[SlackMessage]  # posted as normal messages after the answer, in order


def split_final(messages: Sequence[SlackMessage], text: str) -> FinalParts:
    """Take a renderer's final messages apart (see the module docstring).

    The answer region runs from the first message to the last one holding answer text (just
    the first when there is no text); its other blocks close the stream, and every message after
    it is an extra message. Engines append forms after the answer, so forms are always extra.
    """
    answer = {_key(block) for block in answer_blocks(text)} if text.strip() else set()
    answer.add(_key(continued_block()))
    holds_text = [i for i, m in enumerate(messages) if any(_key(b) in answer for b in m.blocks)]
    end = (holds_text[-1] if holds_text else 0) + 1
    closing = [
        block for message in messages[:end] for block in message.blocks if _key(block) not in answer
    ]
    return FinalParts(closing, list(messages[end:]))


def _key(block: Block) -> str:
    return json.dumps(block, sort_keys=True)


def rest_messages(view: ThreadView, start: int, closing: Sequence[Block] | None) -> list[Any]:
    """The answer from character `start` on, as `chat.update` messages.

    Live (`closing` is None) it shows the activity line and a cursor; final, the text and then
    the closing blocks. A final rest with nothing in it is no message at all.
    """
    rest = text_from(view.text, start)
    if closing is None:
        activity = activity_context(view)
        groups: list[list[Block]] = [[activity]] if activity else []
        if rest.strip():
            groups.extend([block] for block in answer_blocks(rest, cursor=True))
        elif start == 0:
            groups.append([thinking_context(view.queued, waiting=view.waiting)])
        return pack_messages(groups, THINKING) if groups else []
    groups = [[block] for block in answer_blocks(rest)] if rest.strip() else []
    if closing:
        groups.append(list(closing))
    return pack_messages(groups, rest.strip()[:200] or "…") if groups else []
