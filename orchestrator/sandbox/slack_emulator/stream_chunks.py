"""Native streams: the chunks a stream call may carry, and how a streamed message reads as they
arrive (task cards or a plan, markdown, blocks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.sandbox.slack_emulator.records import SlackApiFailure, StoredMessage
from orchestrator.sandbox.slack_emulator.validation import MARKDOWN_TEXT_MAX

STREAM_CHUNK_TYPES = frozenset({"markdown_text", "task_update", "plan_update", "blocks"})
TASK_STATUSES = frozenset({"pending", "in_progress", "complete", "error"})
TASK_DISPLAY_MODES = frozenset({"timeline", "plan"})


@dataclass
class Stream:
    started_at: float
    display_mode: str = "timeline"
    markdown: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id -> latest update
    plan_title: str = ""
    open: bool = True
    stopped_by_user: bool = False


def read_chunks(chunks: Any) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """Markdown text, blocks, and the task and plan updates carried by stream chunks."""
    if chunks is None:
        return "", [], []
    if not isinstance(chunks, list):
        raise SlackApiFailure("invalid_chunks")
    text, blocks, tasks = "", [], []
    for chunk in chunks:
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if kind not in STREAM_CHUNK_TYPES:
            raise SlackApiFailure("invalid_chunks")
        if kind == "markdown_text":
            piece = str(chunk.get("text", ""))
            if len(piece) > MARKDOWN_TEXT_MAX:
                raise SlackApiFailure("msg_too_long")
            text += piece
        elif kind == "blocks":
            blocks.extend(chunk.get("blocks") or [])
        else:
            tasks.append(_checked_task_chunk(chunk))
    return text, blocks, tasks


def _checked_task_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """A task update needs an id, a title and a known status; a plan update needs a title."""
    title = chunk.get("title")
    if not isinstance(title, str) or not title:
        raise SlackApiFailure("invalid_chunks")
    is_task = chunk["type"] == "task_update"
    if is_task and (not chunk.get("id") or chunk.get("status") not in TASK_STATUSES):
        raise SlackApiFailure("invalid_chunks")
    return chunk


def extend_stream(
    message: StoredMessage,
    stream: Stream,
    text: str,
    blocks: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
) -> None:
    """A streamed message reads as its tasks (a plan, or task cards), one markdown block, and
    any blocks it was given. A task update replaces the title and status of the task with its
    id; its details are appended."""
    stream.markdown += text
    stream.blocks.extend(blocks)
    for chunk in tasks:
        if chunk["type"] == "plan_update":
            stream.plan_title = chunk["title"]
            continue
        task = stream.tasks.setdefault(str(chunk["id"]), {"details": ""})
        task.update(title=chunk["title"], status=chunk["status"])
        task["details"] += str(chunk.get("details") or "")
        if chunk.get("output"):
            task["output"] = str(chunk["output"])
    message.text = stream.markdown
    markdown_block = [{"type": "markdown", "text": stream.markdown}] if stream.markdown else []
    message.blocks = _task_blocks(stream) + markdown_block + stream.blocks


def _task_blocks(stream: Stream) -> list[dict[str, Any]]:
    cards = [
        {"type": "task_card", "task_id": task_id, **task} for task_id, task in stream.tasks.items()
    ]
    if stream.display_mode == "plan" and (cards or stream.plan_title):
        return [{"type": "plan", "title": stream.plan_title, "tasks": cards}]
    return cards


def close_stream(message: StoredMessage, stream: Stream) -> None:
    stream.open = False
    message.streaming = False
