"""The messages of a Slack thread written before the bot was first asked in it.

When someone mentions the bot in a thread that already has a discussion, the agent should see
that discussion. The earlier messages (`conversations.replies`) seed the AG-UI history: people as
`user` messages named by their Slack id, the bot's own messages as `assistant`, oldest first,
at most `limit` of them (the most recent ones).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator.core.conversation import assistant_message, user_message
from orchestrator.slack.api_errors import slack_error

log = logging.getLogger("orchestrator.context")

# Message subtypes that are someone writing; joins, topic changes and the like are not context.
_WRITTEN = {None, "bot_message", "thread_broadcast", "file_share", "me_message"}
_PAGE = 200


@dataclass(frozen=True, slots=True)
class BotIdentity:
    user_id: str | None
    bot_id: str | None

    def wrote(self, message: dict[str, Any]) -> bool:
        return bool(
            (self.bot_id and message.get("bot_id") == self.bot_id)
            or (self.user_id and message.get("user") == self.user_id)
        )


async def bot_identity(slack: AsyncWebClient) -> BotIdentity:
    try:
        response = await slack.auth_test()
    except SlackApiError as exc:
        log.warning("auth.test failed; the bot's own messages cannot be told apart: %s", exc)
        return BotIdentity(None, None)
    return BotIdentity(response.get("user_id"), response.get("bot_id"))


async def earlier_messages(
    slack: AsyncWebClient,
    *,
    channel: str,
    thread_ts: str,
    before_ts: str,
    me: BotIdentity,
    limit: int,
) -> list[dict[str, Any]]:
    """The thread's messages before `before_ts` as AG-UI messages; [] if Slack will not say."""
    if limit <= 0 or before_ts == thread_ts:
        return []
    try:
        found = await thread_messages(slack, channel, thread_ts)
    except SlackApiError as exc:
        log.warning(
            "thread context not read",
            extra={"channel": channel, "error": slack_error(exc)},
        )
        return []
    earlier = [m for m in found if _ts(m) < float(before_ts) and _written(m)]
    earlier.sort(key=_ts)
    return [_as_agui(m, me) for m in earlier[-limit:]]


async def thread_messages(
    slack: AsyncWebClient, channel: str, thread_ts: str, *, with_metadata: bool = False
) -> list[dict[str, Any]]:
    """Every message of the thread, root first (`conversations.replies`, all pages)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    extra = {"include_all_metadata": True} if with_metadata else {}
    while True:
        response = await slack.conversations_replies(
            channel=channel, ts=thread_ts, cursor=cursor, limit=_PAGE, **extra
        )
        found.extend(response.get("messages") or [])
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor or not response.get("has_more"):
            return found


def _ts(message: dict[str, Any]) -> float:
    return float(message.get("ts") or 0)


def _written(message: dict[str, Any]) -> bool:
    return message.get("subtype") in _WRITTEN and bool(message.get("text"))


def _as_agui(message: dict[str, Any], me: BotIdentity) -> dict[str, Any]:
    text = message.get("text") or ""
    if me.wrote(message):
        return assistant_message(text)
    author = message.get("user") or message.get("username") or message.get("bot_id") or "unknown"
    return user_message(text, name=author)
