"""The thread's AG-UI message history, built from what a run streamed.

The client owns the conversation: many AG-UI servers keep no history and reject a run (or a
resume) without it. Each run's assistant text, tool calls with their arguments and tool results
are recorded here and stored once at the end of the run; a MESSAGES_SNAPSHOT replaces them.
"""

from __future__ import annotations

import uuid
from typing import Any

from ag_ui.core import (
    BaseEvent,
    EventType,
    MessagesSnapshotEvent,
    TextMessageContentEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)


def user_message(text: str, *, name: str | None = None, message_id: str | None = None) -> dict:
    """A user message as AG-UI expects it. The text is passed through as the user wrote it."""
    message: dict[str, Any] = {
        "id": message_id or str(uuid.uuid4()),
        "role": "user",
        "content": text,
    }
    if name:
        message["name"] = name
    return message


def assistant_message(text: str, *, message_id: str | None = None) -> dict:
    return {"id": message_id or str(uuid.uuid4()), "role": "assistant", "content": text}


def tool_result_message(tool_call_id: str, content: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "role": "tool",
        "toolCallId": tool_call_id,
        "content": content,
    }


class RunRecorder:
    """Collects the messages one run adds to the conversation, in the order they appeared."""

    def __init__(self) -> None:
        self._messages: dict[str, dict[str, Any]] = {}
        self._text: dict[str, list[str]] = {}
        self._args: dict[str, list[str]] = {}
        self._calls: dict[str, dict[str, Any]] = {}
        self._results: set[str] = set()  # tool calls this run saw a result for
        self.snapshot: list[dict[str, Any]] | None = None

    def text(self, message_id: str, delta: str) -> None:
        """The hot path: one text delta (called for most events of a run)."""
        chunks = self._text.get(message_id)
        if chunks is None:
            self._assistant(message_id)
            chunks = self._text[message_id] = []
        chunks.append(delta)

    def observe(self, event: BaseEvent) -> None:
        kind = event.type
        if kind == EventType.TEXT_MESSAGE_CONTENT:
            assert isinstance(event, TextMessageContentEvent)
            self.text(event.message_id, event.delta)
        elif kind == EventType.TEXT_MESSAGE_START:
            assert isinstance(event, TextMessageStartEvent)
            self._assistant(event.message_id)
        elif kind == EventType.TOOL_CALL_START:
            assert isinstance(event, ToolCallStartEvent)
            self._tool_call(event)
        elif kind == EventType.TOOL_CALL_ARGS:
            assert isinstance(event, ToolCallArgsEvent)
            self._args.setdefault(event.tool_call_id, []).append(event.delta)
        elif kind == EventType.TOOL_CALL_RESULT:
            assert isinstance(event, ToolCallResultEvent)
            self._results.add(event.tool_call_id)
            self._messages[event.message_id or f"result-{event.tool_call_id}"] = {
                "id": event.message_id or str(uuid.uuid4()),
                "role": "tool",
                "toolCallId": event.tool_call_id,
                "content": event.content,
            }
        elif kind == EventType.MESSAGES_SNAPSHOT:
            assert isinstance(event, MessagesSnapshotEvent)
            self.snapshot = [
                m.model_dump(by_alias=True, exclude_none=True, mode="json") for m in event.messages
            ]

    def _assistant(self, message_id: str) -> dict[str, Any]:
        message = self._messages.get(message_id)
        if message is None:
            message = {"id": message_id, "role": "assistant"}
            self._messages[message_id] = message
        return message

    def _tool_call(self, event: ToolCallStartEvent) -> None:
        parent = self._assistant(event.parent_message_id or f"calls-{event.tool_call_id}")
        call = {
            "id": event.tool_call_id,
            "type": "function",
            "function": {"name": event.tool_call_name},
        }
        parent.setdefault("toolCalls", []).append(call)
        self._calls[event.tool_call_id] = call

    def tool_call(self, tool_call_id: str) -> tuple[str, str] | None:
        """(name, arguments JSON) of a tool call seen in this run. Arguments a server sent only
        in its messages snapshot (some send no TOOL_CALL_ARGS for a call made in one piece)
        are read from there."""
        call = self._calls.get(tool_call_id)
        args = "".join(self._args.get(tool_call_id, []))
        if call is not None and args:
            return call["function"]["name"], args
        for message in self.snapshot or []:
            for shown in message.get("toolCalls") or []:
                if shown.get("id") == tool_call_id:
                    function = shown.get("function") or {}
                    return str(function.get("name", "")), str(function.get("arguments") or "")
        return (call["function"]["name"], args) if call is not None else None

    def unanswered_calls(self) -> list[str]:
        """The tool calls of this run that got no result (in it or in its snapshot), in order."""
        answered = set(self._results)
        for message in self.snapshot or []:
            if message.get("role") == "tool":
                answered.add(message.get("toolCallId"))
        return [call_id for call_id in self._calls if call_id not in answered]

    def messages(self) -> list[dict[str, Any]]:
        """The messages this run added (text joined, arguments joined), in order."""
        out = []
        for key, message in self._messages.items():
            message = dict(message)
            if message["role"] == "assistant":
                text = "".join(self._text.get(key, []))
                if text:
                    message["content"] = text
                if "toolCalls" in message:
                    message["toolCalls"] = [self._with_args(c) for c in message["toolCalls"]]
                if "content" not in message and "toolCalls" not in message:
                    continue
            out.append(message)
        return out

    def _with_args(self, call: dict[str, Any]) -> dict[str, Any]:
        arguments = "".join(self._args.get(call["id"], [])) or "{}"
        return {**call, "function": {**call["function"], "arguments": arguments}}
