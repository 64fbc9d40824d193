"""A run that failed: the partial answer kept, a visible "interrupted" note, the error, Retry."""

from __future__ import annotations

from renderers.common import error_blocks, final_answer_groups, interrupted_note
from renderers.limits import pack_messages
from renderers.view import ErrorView, SlackMessage, ThreadView

UNKNOWN_ERROR = ErrorView(kind="unknown", title="Something went wrong", retryable=True)


def render(view: ThreadView) -> list[SlackMessage]:
    error = view.error or UNKNOWN_ERROR
    groups = final_answer_groups(view)
    if view.text.strip() or view.interrupted:
        groups.append([interrupted_note(view.interrupted or error.title)])
    # The error and its Retry button travel together.
    groups.append(error_blocks(error, view.conversation_id))
    return pack_messages(groups, f"⚠️ {error.title}")
