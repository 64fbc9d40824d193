"""Reading Slack deliveries, pure: who wrote, where, whether to act, and the dedupe keys."""

from __future__ import annotations

import re
from typing import Any

# Message subtypes that are someone writing; edits, joins, deletions and the like are not.
WRITTEN = {None, "bot_message", "thread_broadcast", "file_share", "me_message"}


def is_written(event: dict[str, Any]) -> bool:
    return event.get("subtype") in WRITTEN


def is_bot(event: dict[str, Any]) -> bool:
    return bool(event.get("bot_id")) or event.get("subtype") == "bot_message"


def from_self(event: dict[str, Any], bot_id: str | None, bot_user_id: str | None) -> bool:
    """A message this bot posted (Slack delivers those too)."""
    sender_bot, user = event.get("bot_id"), event.get("user")
    return bool((sender_bot and sender_bot == bot_id) or (user and user == bot_user_id))


def mentions(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """A channel message that mentions the bot: its `app_mention` delivery handles it."""
    return f"<@{bot_user_id}>" in event.get("text", "") and event.get("channel_type") != "im"


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(value: Any) -> Any:
    """Text as written, except lone UTF-16 surrogates (JSON may carry them; no encoding can
    store or send them), which become U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [clean(item) for item in value]
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items()}
    return value


def without_mention(text: str, bot_user_id: str | None) -> str:
    """Drop the bot's own leading @-mention; everything else is passed through unchanged (but
    for lone surrogates, see `clean`)."""
    text = clean(text)
    if not bot_user_id:
        return text
    return re.sub(rf"^\s*<@{re.escape(bot_user_id)}(\|[^>]*)?>\s*", "", text, count=1)


def claim_keys(body: dict[str, Any], event: dict[str, Any]) -> tuple[str, ...]:
    """A delivery is the same message by its `(channel, ts)` and by its event id: a mention
    arrives as `app_mention` and as `message`, Slack retries, replicas share deliveries."""
    keys = [f"msg:{event['channel']}:{event['ts']}"]
    if body.get("event_id"):
        keys.append(f"event:{body['event_id']}")
    return tuple(keys)


def sender(event: dict[str, Any]) -> str:
    return event.get("user") or event.get("bot_id") or "unknown"


def channel_of(body: dict[str, Any]) -> str:
    """The channel of an interaction payload (a click, a form)."""
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id", ""
    )


def form_values(body: dict[str, Any]) -> dict[str, Any]:
    """The inputs of the message a click came from (`state.values`)."""
    return clean((body.get("state") or {}).get("values") or {})


def message_ts(body: dict[str, Any]) -> str:
    """The ts of the message a click came from."""
    return (body.get("container") or {}).get("message_ts", "")


def message_of(body: dict[str, Any]) -> dict[str, Any]:
    """The message a click came from, as Slack shows it (its blocks carry the buttons)."""
    message = body.get("message")
    return message if isinstance(message, dict) else {}
