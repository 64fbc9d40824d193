"""Reading A2A messages and parts (the `a2a-sdk` protobuf types) as plain Python: pure, no I/O.

A2A has no tool-call part of its own. Google ADK, and Kagent on top of it, send tool calls and
their results as DataParts whose metadata says `adk_type` (or `kagent_type`) `function_call` /
`function_response`, with `{name, args, id}` / `{name, response, id}` as data; streamed text
chunks carry `adk_partial` (or `kagent_adk_partial`) true in the message metadata.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from a2a.types import Message, Part, Role
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message as ProtoMessage

FUNCTION_CALL = "function_call"
FUNCTION_RESPONSE = "function_response"
CONFIRMATION_CALL = "adk_request_confirmation"


def plain(value: Any) -> Any:
    """Protobuf Struct values as JSON would have them: whole numbers back to ints."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def as_dict(message: ProtoMessage | None) -> dict[str, Any]:
    """A protobuf message (Struct, Message, Task …) as a plain dict; {} when absent."""
    if message is None:
        return {}
    converted = plain(MessageToDict(message))
    return converted if isinstance(converted, dict) else {}


def metadata_of(holder: Message | Part) -> dict[str, Any]:
    return as_dict(holder.metadata) if holder.HasField("metadata") else {}


def data_of(part: Part) -> Any:
    """The JSON value of a data part (None for other parts)."""
    if part.WhichOneof("content") != "data":
        return None
    return plain(MessageToDict(part.data))


def read_flag(metadata: dict[str, Any], key: str) -> Any:
    """A metadata value under its upstream ADK name (`adk_<key>`) or Kagent's (`kagent_<key>`)."""
    for prefix in ("adk_", "kagent_"):
        if f"{prefix}{key}" in metadata:
            return metadata[f"{prefix}{key}"]
    return None


def is_partial(message: Message) -> bool:
    """A streamed chunk of a longer text (ADK in streaming mode), not a complete text."""
    metadata = metadata_of(message)
    return read_flag(metadata, "partial") is True or read_flag(metadata, "adk_partial") is True


def is_from_user(message: Message) -> bool:
    return message.role == Role.ROLE_USER


def text_of(parts: Iterable[Part]) -> str:
    return "".join(p.text for p in parts if p.WhichOneof("content") == "text")


def links_of(parts: Iterable[Part]) -> list[str]:
    """File links (url parts) of a message or artifact."""
    return [p.url for p in parts if p.WhichOneof("content") == "url" and p.url]


@dataclass(frozen=True, slots=True)
class FunctionPart:
    """One ADK-shaped tool call or tool result."""

    kind: str  # FUNCTION_CALL or FUNCTION_RESPONSE
    id: str
    name: str
    args: dict[str, Any]  # the call's arguments
    response: Any  # the result
    long_running: bool


def function_part(part: Part) -> FunctionPart | None:
    """The tool call or result a data part carries, when it is one."""
    data = data_of(part)
    if not isinstance(data, dict):
        return None
    metadata = metadata_of(part)
    kind = read_flag(metadata, "type")
    if kind not in (FUNCTION_CALL, FUNCTION_RESPONSE):
        return None
    args = data.get("args")
    return FunctionPart(
        kind=kind,
        id=str(data.get("id") or ""),
        name=str(data.get("name") or ""),
        args=args if isinstance(args, dict) else {},
        response=data.get("response"),
        long_running=read_flag(metadata, "is_long_running") is True,
    )
