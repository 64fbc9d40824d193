"""The placeholder posted as soon as a run starts, before the agent has said anything."""

from __future__ import annotations

from renderers.common import THINKING, thinking_context
from renderers.limits import pack_messages
from renderers.view import SlackMessage, ThreadView


def render(view: ThreadView) -> list[SlackMessage]:
    return pack_messages([[thinking_context(view.queued)]], THINKING)
