"""The A2A message that starts a new turn, from a run's AG-UI input: pure, no I/O.

A2A agents keep their own history per `contextId` (the Slack thread's conversation id), so a
turn sends only what people said since the agent last answered: the trailing user messages.
`forwardedProps` (the Slack source) travels as the message's metadata.
"""

from __future__ import annotations

import uuid
from typing import Any

from a2a.types import Message, Part, Role
from ag_ui.core import RunAgentInput, UserMessage
from google.protobuf.struct_pb2 import Struct


class NothingToSend(ValueError):
    """The run input holds no user message to send."""


def user_message(run_input: RunAgentInput) -> Message:
    said = _trailing_user_messages(run_input)
    if not said:
        raise NothingToSend("The run has no user message to send to the agent.")
    named = len(said) > 1
    parts = [Part(text=f"{m.name}: {text}" if named and m.name else text) for m, text in said]
    message = Message(
        message_id=str(uuid.uuid4()),
        role=Role.ROLE_USER,
        context_id=run_input.thread_id,
        parts=parts,
    )
    metadata = _jsonable(run_input.forwarded_props)
    if metadata:
        struct = Struct()
        struct.update(metadata)
        message.metadata.CopyFrom(struct)
    return message


def _trailing_user_messages(run_input: RunAgentInput) -> list[tuple[UserMessage, str]]:
    said: list[tuple[UserMessage, str]] = []
    for message in reversed(run_input.messages):
        if not isinstance(message, UserMessage):
            break
        text = _text(message)
        if text.strip():
            said.append((message, text))
    return list(reversed(said))


def _text(message: UserMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "\n".join(getattr(part, "text", "") or "" for part in message.content)


def _jsonable(props: Any) -> dict[str, Any]:
    if not isinstance(props, dict):
        return {}
    return {k: v for k, v in props.items() if isinstance(k, str) and v is not None}
