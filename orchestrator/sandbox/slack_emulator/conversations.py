"""conversations.replies: a thread's messages, a page at a time."""

from __future__ import annotations

from typing import Any

from orchestrator.sandbox.slack_emulator.records import SlackApiFailure
from orchestrator.sandbox.slack_emulator.workspace import Workspace

REPLIES_LIMIT_MAX = 1000


class ConversationsMethods(Workspace):
    def _replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        anchor = self._messages.get((channel, str(params.get("ts"))))
        if anchor is None:
            raise SlackApiFailure("thread_not_found")
        messages = self.thread(channel, anchor.thread_ts or anchor.ts)
        offset = _cursor_offset(params.get("cursor"))
        limit = _replies_limit(params.get("limit"))
        page = messages[offset : offset + limit]
        has_more = offset + limit < len(messages)
        result: dict[str, Any] = {
            "messages": [self._message_json(message) for message in page],
            "has_more": has_more,
        }
        if has_more:
            result["response_metadata"] = {"next_cursor": _cursor(offset + limit)}
        return result


def _cursor(offset: int) -> str:
    return f"offset_{offset}"


def _cursor_offset(cursor: Any) -> int:
    if isinstance(cursor, str) and cursor.startswith("offset_") and cursor[7:].isdigit():
        return int(cursor[7:])
    return 0


def _replies_limit(limit: Any) -> int:
    try:
        value = int(limit)
    except (TypeError, ValueError):
        return REPLIES_LIMIT_MAX
    return max(1, min(value, REPLIES_LIMIT_MAX))
