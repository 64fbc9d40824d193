"""Every Slack Web API call outside a live answer: notices in a thread (and ephemerals), redraws of
forms and answers, modals, permalinks, user groups, the thread's earlier messages, cursor
clean-up and the Messages tab's suggested prompts (agent sessions: `orchestrator.slack.sessions`).

Live answers go through the publishers; everything else goes through here, so a Slack failure
is caught, logged and reported the same way everywhere. No method raises `SlackApiError`.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator.slack.api_errors import slack_error
from orchestrator.slack.thread_context import (
    BotIdentity,
    bot_identity,
    earlier_messages,
    thread_messages,
)
from renderers.common import finished_blocks, is_live
from renderers.view import SlackMessage

log = logging.getLogger("orchestrator.slack")


class Notifier:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._me: BotIdentity | None = None

    async def say(self, channel: str, thread_ts: str, text: str, *, about: str = "") -> bool:
        """A plain message in the thread. False (logged) when Slack refused it."""
        try:
            await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
        except SlackApiError as exc:
            log.warning(
                "notice not delivered",
                extra={"conversation": about, "channel": channel, "error": slack_error(exc)},
            )
            return False
        return True

    async def whisper(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None, about: str = ""
    ) -> bool:
        """A message only `user` sees (an ephemeral), in the thread. False (logged) if refused."""
        try:
            await self.client.chat_postEphemeral(
                channel=channel, user=user, text=text, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            log.warning(
                "ephemeral not delivered",
                extra={"conversation": about, "channel": channel, "error": slack_error(exc)},
            )
            return False
        return True

    async def suggest_prompts(
        self, channel: str, prompts: list[dict[str, str]], title: str | None = None
    ) -> bool:
        """Pin suggested prompts in the app's Messages tab with `channel` (the DM). No
        `thread_ts`: with the agent messaging experience, Slack ignores a call that has one."""
        try:
            await self.client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, prompts=prompts, title=title
            )
        except SlackApiError as exc:
            log.warning(
                "suggested prompts not set", extra={"channel": channel, "error": slack_error(exc)}
            )
            return False
        return True

    async def redraw(
        self, channel: str, ts: str, message: SlackMessage, *, what: str, about: str = ""
    ) -> bool:
        """Edit a message the bot posted (a form, an answer) to show `message`."""
        try:
            await self.client.chat_update(
                channel=channel, ts=ts, text=message.text, blocks=message.blocks
            )
        except SlackApiError as exc:
            log.warning(
                f"{what} not updated", extra={"conversation": about, "error": slack_error(exc)}
            )
            return False
        return True

    async def open_modal(self, trigger_id: str, view: dict[str, Any], *, about: str = "") -> bool:
        try:
            await self.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            log.warning("modal not opened", extra={"run": about, "error": slack_error(exc)})
            return False
        return True

    async def permalink(self, channel: str, ts: str | None) -> str | None:
        if not ts:
            return None
        try:
            response = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError:
            return None
        return response.get("permalink")

    async def group_members(self, group: str) -> set[str]:
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            log.warning(
                "user group not readable", extra={"group": group, "error": slack_error(exc)}
            )
            return set()
        return set(response.get("users") or [])

    async def identity(self) -> BotIdentity:
        if self._me is None or self._me.user_id is None:
            self._me = await bot_identity(self.client)
        return self._me

    async def earlier_messages(
        self, channel: str, thread_ts: str, before_ts: str, limit: int
    ) -> list[dict[str, Any]]:
        """The thread's messages before `before_ts`, as AG-UI messages ([] if unreadable)."""
        return await earlier_messages(
            self.client,
            channel=channel,
            thread_ts=thread_ts,
            before_ts=before_ts,
            me=await self.identity(),
            limit=limit,
        )

    async def clear_cursors(
        self, channel: str, thread_ts: str, owned: set[str], *, strict: bool = False
    ) -> None:
        """Messages of a run that died keep their text but lose the writing cursor and the
        "Thinking…" line; a message that showed nothing else is deleted.

        `owned` are the run's stored message ts; continuations it posted after they were
        stored are the bot's own messages after them that are still drawn live. With no `owned`
        (the run died before storing any), every live message of the bot in the thread. With
        `strict`, the `owned` messages only (another run may be live in the thread).
        """
        first = min((float(ts) for ts in owned), default=0.0)
        try:
            found = await thread_messages(self.client, channel, thread_ts)
            me = await self.identity()
        except SlackApiError as exc:
            log.warning(
                "live messages not read", extra={"channel": channel, "error": slack_error(exc)}
            )
            return
        for message in found:
            ts = message.get("ts") or "0"
            ours = ts in owned or (not strict and me.wrote(message) and float(ts) > first)
            if not ours or not is_live(message.get("blocks") or []):
                continue
            blocks = finished_blocks(message["blocks"])
            if not blocks:
                await self.delete(channel, ts)
                continue
            await self.redraw(
                channel, ts, SlackMessage(message.get("text") or "", blocks), what="live message"
            )

    async def delete(self, channel: str, ts: str) -> bool:
        try:
            await self.client.chat_delete(channel=channel, ts=ts)
        except SlackApiError as exc:
            log.warning(
                "message not deleted", extra={"channel": channel, "error": slack_error(exc)}
            )
            return False
        return True

    async def posted_forms(
        self, channel: str, thread_ts: str, event_type: str
    ) -> dict[str, str] | None:
        """The forms of the thread that Slack shows, by the interrupt their metadata names
        (None when the thread cannot be read: then nothing is known)."""
        try:
            found = await thread_messages(self.client, channel, thread_ts, with_metadata=True)
        except SlackApiError as exc:
            log.warning(
                "forms not looked up", extra={"channel": channel, "error": slack_error(exc)}
            )
            return None
        forms: dict[str, str] = {}
        for message in found:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == event_type and isinstance(payload, dict):
                key = payload.get("interrupt")
                if isinstance(key, str) and key not in forms:
                    forms[key] = message.get("ts") or ""
        return forms
