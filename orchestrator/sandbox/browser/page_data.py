"""What the page draws, as JSON: a channel's messages with their reply counts, a thread, the
ephemerals only the current person sees, and the modals opened for them."""

from __future__ import annotations

from typing import Any

from orchestrator.sandbox.browser.activity import SlackCallLog
from orchestrator.sandbox.browser.people import BOT_COLOUR, BOT_NAME, Person
from orchestrator.sandbox.slack_emulator import SlackEmulator, StoredMessage


class PageData:
    def __init__(self, slack: SlackEmulator, people: list[Person], calls: SlackCallLog) -> None:
        self.slack = slack
        self.people = {person.id: person for person in people}
        self.calls = calls
        self.closed_views: set[str] = set()

    def names(self) -> dict[str, str]:
        """Who each id is, for mentions: the people and the bot."""
        names = {person.id: person.name for person in self.people.values()}
        names[self.slack.bot_user_id] = BOT_NAME
        return names

    def channel(self, channel: str, user: str) -> list[dict[str, Any]]:
        """Top-level messages, each with its replies summed up, and the person's ephemerals."""
        shown = [self._with_replies(m) for m in self.slack.channel_messages(channel)]
        shown += [
            self.message(m, ephemeral=True)
            for m in self.slack.ephemerals(channel, user)
            if not m.thread_ts
        ]
        return sorted(shown, key=lambda item: float(item["ts"]))

    def thread(self, channel: str, thread_ts: str, user: str) -> list[dict[str, Any]]:
        shown = [self.message(m) for m in self.slack.thread(channel, thread_ts)]
        shown += [
            self.message(m, ephemeral=True)
            for m in self.slack.ephemerals(channel, user)
            if m.thread_ts == thread_ts
        ]
        return sorted(shown, key=lambda item: float(item["ts"]))

    def thread_status(self, channel: str, thread_ts: str) -> str:
        """The assistant status under the thread ("is thinking…"): the latest one set, if any
        (Slack also drops it when the bot's reply arrives; the service clears it itself)."""
        for status in reversed(self.slack.statuses()):
            if status.get("channel_id") == channel and status.get("thread_ts") == thread_ts:
                return str(status.get("status") or "")
        return ""

    def modals(self, user: str) -> list[dict[str, Any]]:
        """Modals the service opened for `user` that are still open."""
        owners = self.calls.modal_owners
        return [
            {
                "id": view["id"],
                "hash": view.get("hash", ""),
                "title": view.get("title"),
                "submit": view.get("submit"),
                "close": view.get("close"),
                "callback_id": view.get("callback_id", ""),
                "blocks": view.get("blocks") or [],
            }
            for view in self.slack.views_opened()
            if owners.get(view["id"]) == user and view["id"] not in self.closed_views
        ]

    def _with_replies(self, message: StoredMessage) -> dict[str, Any]:
        shown = self.message(message)
        replies = [m for m in self.slack.thread(message.channel, message.ts) if m.ts != message.ts]
        if replies:
            senders = list(dict.fromkeys(reply.user or reply.bot_id or "" for reply in replies))
            shown["replies"] = {
                "count": len(replies),
                "last_at": replies[-1].posted_at,
                "who": [self._sender(user, None) for user in senders[:4]],
            }
        return shown

    def message(self, message: StoredMessage, *, ephemeral: bool = False) -> dict[str, Any]:
        return {
            "ts": message.ts,
            "channel": message.channel,
            "thread_ts": message.thread_ts,
            "user": message.user,
            "sender": self._sender(message.user, message.bot_id),
            "text": message.text,
            "blocks": message.blocks,
            "edited": message.edits > 0,
            "streaming": message.streaming,
            "reactions": message.reactions,
            "ephemeral": ephemeral,
            "at": message.posted_at,
        }

    def _sender(self, user: str | None, bot_id: str | None) -> dict[str, Any]:
        if user == self.slack.bot_user_id:
            return {"id": user, "name": BOT_NAME, "colour": BOT_COLOUR, "is_bot": True}
        person = self.people.get(user or "")
        if person is not None:
            return person.json()
        return {"id": user or bot_id, "name": user or bot_id, "colour": "#616061", "is_bot": False}
