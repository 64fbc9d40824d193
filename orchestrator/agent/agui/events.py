"""Reading an AG-UI event stream: one SSE `data:` payload as a typed `ag_ui.core` event, and
*_CHUNK events expanded into START/CONTENT/END (or ARGS) events.

The per-event path is kept lean on purpose: real servers send thousands of events per run, many
of them large RAW ones.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Final

from ag_ui.core import (
    BaseEvent,
    Event,
    EventType,
    ReasoningMessageChunkEvent,
    ReasoningMessageContentEvent,
    ReasoningMessageEndEvent,
    ReasoningMessageStartEvent,
    TextMessageChunkEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallChunkEvent,
    ToolCallEndEvent,
    ToolCallStartEvent,
)
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from orchestrator.agent.errors import MalformedEvent

logger = logging.getLogger("orchestrator.agent")

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

# Servers put the discriminator first; when they do, the prefix decides RAW without parsing.
_TYPE_FIRST: Final = '{"type":"'
_TYPE_FIRST_SPACED: Final = '{"type": "'
CHUNK_EVENTS: Final = frozenset(
    {TextMessageChunkEvent, ToolCallChunkEvent, ReasoningMessageChunkEvent}
)
_MAX_WARNED_TYPES: Final = 256  # bounds the memory a stream of invented types can take
_warned_types: set[str] = set()


def parse_event(data: str) -> BaseEvent | None:
    """One SSE `data:` payload as a typed event; None for RAW and unknown types."""
    if data.startswith(_TYPE_FIRST):
        if data.startswith('RAW"', len(_TYPE_FIRST)):
            return None
    elif data.startswith(_TYPE_FIRST_SPACED):
        if data.startswith('RAW"', len(_TYPE_FIRST_SPACED)):
            return None
    else:
        return _parse_any_order(data)
    try:
        return EVENT_ADAPTER.validate_json(data)
    except ValidationError as exc:
        return _skip_unknown_type(exc)


def _parse_any_order(data: str) -> BaseEvent | None:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        raise MalformedEvent("The agent sent an event that is not valid JSON.") from None
    if isinstance(obj, dict) and obj.get("type") == EventType.RAW.value:
        return None
    try:
        return EVENT_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        return _skip_unknown_type(exc)


def _skip_unknown_type(exc: ValidationError) -> None:
    """Returns None for an event of a type this protocol version does not know; else raises."""
    error = exc.errors(include_url=False, include_input=False)[0]
    if error["type"] == "union_tag_invalid" and not error["loc"]:
        _warn_unknown_type(str(error.get("ctx", {}).get("tag", "")))
        return None
    raise MalformedEvent(_schema_detail(error)) from None


def _schema_detail(error: ErrorDetails) -> str:
    if error["type"] == "json_invalid":
        return "The agent sent an event that is not valid JSON."
    if error["type"] == "union_tag_not_found":
        return "The agent sent an event without a type."
    where = ".".join(str(part) for part in error["loc"]) or "event"
    return (
        "The agent sent an event that does not match the AG-UI schema "
        f"({escape_text(where, 120)}: {escape_text(error['msg'], 200)})."
    )


def _warn_unknown_type(event_type: str) -> None:
    if event_type in _warned_types or len(_warned_types) >= _MAX_WARNED_TYPES:
        return
    _warned_types.add(event_type)
    name = escape_text(event_type, 80)
    logger.warning("Skipping AG-UI events of unknown type %s", name, extra={"event_type": name})


def escape_text(text: str, limit: int) -> str:
    """Control characters escaped and length capped: safe for a log line or a Slack message."""
    return text[:limit].encode("unicode_escape").decode("ascii")


# --- server-sent events ------------------------------------------------------------------------


class SSEReader:
    """The `data` of each server-sent event in a stream's decoded text, a read at a time.

    Written here rather than taken from httpx-sse's `aiter_sse`, which hands each line through
    an async generator and decodes it alone: that was about half the bare reader's cost per
    event (`bench/throughput.py`), more than all the engine's own work on the event. Here the
    usual event, one `data:` line and a blank line with `\n` line ends, is cut out of a whole
    read with one `split`. Anything else (comments, other fields, data over several lines) is
    read line by line by the SSE rules, and so is all that follows a `\r` line end. Only `data`
    matters to AG-UI: `event`, `id` and `retry` are ignored. What follows the last blank line
    waits for the next read (and is dropped at the end, as the SSE rules say).
    """

    def __init__(self) -> None:
        self._parts: list[str] = []  # the text since the last blank line
        self._cr = False  # line by line from here on (a `\r` line end was seen)
        self._held = ""  # a `\r` ending a read: its `\n` may start the next one
        self._line = ""  # the unfinished line (line by line)
        self._data: list[str] = []  # the data lines of the event being read (line by line)

    def feed(self, text: str) -> list[str]:
        if self._cr or "\r" in text:
            return self._by_line(text)
        parts = self._parts
        if "\n\n" not in text and not (text[:1] == "\n" and parts and parts[-1][-1:] == "\n"):
            if text:
                parts.append(text)  # a large event arriving in many reads is joined once
            return []
        if parts:
            parts.append(text)
            text = "".join(parts)
        blocks = text.split("\n\n")
        rest = blocks.pop()
        self._parts = [rest] if rest else []
        out: list[str] = []
        for block in blocks:
            if block.startswith("data:") and "\n" not in block:
                data = block[6:] if block.startswith(" ", 5) else block[5:]
                if data:
                    out.append(data)
            elif block:
                self._lines([*block.split("\n"), ""], out)
        return out

    def _by_line(self, text: str) -> list[str]:
        if not self._cr:
            self._cr = True
            text = "".join([*self._parts, text])
            self._parts = []
        text = self._held + text
        self._held = "\r" if text.endswith("\r") else ""
        lines = text[: len(text) - len(self._held)].replace("\r\n", "\n").replace("\r", "\n")
        split = lines.split("\n")
        split[0] = self._line + split[0]
        self._line = split.pop()
        out: list[str] = []
        self._lines(split, out)
        return out

    def _lines(self, lines: list[str], out: list[str]) -> None:
        """Whole lines by the SSE rules; the data of each event they end goes to `out`."""
        for line in lines:
            if not line:
                if self._data:
                    data = "\n".join(self._data)
                    self._data = []
                    if data:
                        out.append(data)
            elif line[0] != ":":
                name, _, value = line.partition(":")
                if name == "data":
                    self._data.append(value[1:] if value[:1] == " " else value)


# --- chunk expansion ---------------------------------------------------------------------------


class ChunkExpander:
    """Expands *_CHUNK events into START/CONTENT/END (or ARGS) events, as the AG-UI JS client does.

    A chunk with a new id opens a message or tool call; chunks with its id (or no id) continue it;
    a chunk with another id, or any other event, closes it first. Other events pass through.
    """

    def __init__(self) -> None:
        self._mode: type[BaseEvent] | None = None  # the chunk class whose message is open
        self._open_id: str | None = None
        self._expanders: dict[type[BaseEvent], Callable[[Any], list[BaseEvent]]] = {
            TextMessageChunkEvent: self._text,
            ToolCallChunkEvent: self._tool_call,
            ReasoningMessageChunkEvent: self._reasoning,
        }

    @property
    def idle(self) -> bool:
        """No chunked message is open: a non-chunk event passes through unchanged."""
        return self._mode is None

    def feed(self, event: BaseEvent) -> list[BaseEvent]:
        expand = self._expanders.get(type(event))
        if expand is not None:
            return expand(event)
        if self._mode is None:
            return [event]
        return [*self.close(), event]

    def close(self) -> list[BaseEvent]:
        """The END event of whatever chunks left open (none if nothing is open)."""
        mode, open_id = self._mode, self._open_id
        self._mode = self._open_id = None
        if mode is None or open_id is None:
            return []
        if mode is ToolCallChunkEvent:
            return [ToolCallEndEvent(tool_call_id=open_id)]
        if mode is ReasoningMessageChunkEvent:
            return [ReasoningMessageEndEvent(message_id=open_id)]
        return [TextMessageEndEvent(message_id=open_id)]

    def _text(self, chunk: TextMessageChunkEvent) -> list[BaseEvent]:
        out: list[BaseEvent] = []
        message_id = self._continued_id(TextMessageChunkEvent, chunk.message_id)
        if message_id is None:
            out = self.close()
            message_id = self._open(TextMessageChunkEvent, chunk.message_id)
            role = chunk.role or "assistant"
            out.append(TextMessageStartEvent(message_id=message_id, role=role, name=chunk.name))
        if chunk.delta:
            out.append(TextMessageContentEvent(message_id=message_id, delta=chunk.delta))
        return out

    def _tool_call(self, chunk: ToolCallChunkEvent) -> list[BaseEvent]:
        out: list[BaseEvent] = []
        call_id = self._continued_id(ToolCallChunkEvent, chunk.tool_call_id)
        if call_id is None:
            if chunk.tool_call_name is None:
                raise MalformedEvent("A TOOL_CALL_CHUNK opened a tool call without a name.")
            out = self.close()
            call_id = self._open(ToolCallChunkEvent, chunk.tool_call_id)
            out.append(
                ToolCallStartEvent(
                    tool_call_id=call_id,
                    tool_call_name=chunk.tool_call_name,
                    parent_message_id=chunk.parent_message_id,
                )
            )
        if chunk.delta:
            out.append(ToolCallArgsEvent(tool_call_id=call_id, delta=chunk.delta))
        return out

    def _reasoning(self, chunk: ReasoningMessageChunkEvent) -> list[BaseEvent]:
        out: list[BaseEvent] = []
        message_id = self._continued_id(ReasoningMessageChunkEvent, chunk.message_id)
        if message_id is None:
            out = self.close()
            message_id = self._open(ReasoningMessageChunkEvent, chunk.message_id)
            out.append(ReasoningMessageStartEvent(message_id=message_id, role="reasoning"))
        if chunk.delta:
            out.append(ReasoningMessageContentEvent(message_id=message_id, delta=chunk.delta))
        return out

    def _continued_id(self, mode: type[BaseEvent], chunk_id: str | None) -> str | None:
        """The open id this chunk continues, or None when it must open a new one."""
        if self._mode is mode and (chunk_id is None or chunk_id == self._open_id):
            return self._open_id
        return None

    def _open(self, mode: type[BaseEvent], chunk_id: str | None) -> str:
        if chunk_id is None:
            raise MalformedEvent(f"A {mode.__name__} opened a message without an id.")
        self._mode, self._open_id = mode, chunk_id
        return chunk_id
