"""The final answer: the text, then a compact line of the tools and steps that led to it."""

from __future__ import annotations

from orchestrator.view import SlackMessage, ThreadView
from renderers.common import context, final_answer_groups
from renderers.limits import pack_messages

DONE = "Done."


def render(view: ThreadView) -> list[SlackMessage]:
    groups = final_answer_groups(view) or [[context(f"✅ _{DONE}_")]]
    return pack_messages(groups, DONE)
