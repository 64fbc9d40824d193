"""The live answer while the agent streams: activity first, then the text so far with a cursor,
and a Stop button where Slack shows none."""

from __future__ import annotations

from renderers.common import (
    THINKING,
    WAITING,
    Block,
    activity_context,
    answer_blocks,
    stop_button,
    thinking_context,
)
from renderers.limits import pack_messages
from renderers.view import SlackMessage, ThreadView


def render(view: ThreadView) -> list[SlackMessage]:
    # Activity goes first so the live (first) message keeps showing it as text spills over.
    groups: list[list[Block]] = []
    activity = activity_context(view)
    if activity:
        groups.append([activity])
    text = view.text
    if text.strip():
        groups.extend([block] for block in answer_blocks(text, cursor=True))
    else:
        groups.append([thinking_context(view.queued, waiting=view.waiting)])
    if view.stoppable:
        groups.append([stop_button(view.conversation_id)])
    return pack_messages(groups, WAITING if view.waiting else THINKING)
