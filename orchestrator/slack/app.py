"""Slack listeners (slack-bolt): acknowledge, dedupe, work out who and what, hand to the engine.

Bolt acknowledges first and runs listeners after, so Slack never waits on the agent. Every
delivery is claimed in the store by its event id and by `(channel, ts)`, in the transaction that
acts on it: a mention arrives both as `app_mention` and as `message`, Slack retries, and several
replicas may receive the same event.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator import metrics
from orchestrator.config.channels import Listen
from orchestrator.engine.facade import Engine, Inbound
from orchestrator.logs import escape
from persistence.store import DatabaseFailure
from renderers.common import (
    ACTION_APPROVE,
    ACTION_ESCALATE,
    ACTION_ESCALATE_ERROR,
    ACTION_REGENERATE,
    ACTION_REJECT,
    ACTION_RETRY,
    ACTION_THUMBS_DOWN,
    ACTION_THUMBS_UP,
    FEEDBACK_CALLBACK_ID,
)

log = logging.getLogger("orchestrator.slack")

# Bolt acknowledges before the listener runs, so Slack will not redeliver: a message the store
# could not take is answered with this, and the person sends it again.
_NOT_TAKEN = (
    "I could not take this message: my database is not available right now. "
    "Nothing was sent to the agent; please send it again in a minute."
)
_CLICK_NOT_TAKEN = (
    "Your click could not be recorded: my database is not available right now. "
    "Nothing was sent to the agent; please click again in a minute."
)

_ANY = re.compile(".*")

# Message subtypes that are someone writing; edits, joins, deletions and the like are not.
_WRITTEN = {None, "bot_message", "thread_broadcast", "file_share", "me_message"}


class _TokenSkippedFilter(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself, and warns that it skips it when given a client. We
    hand it the client built from that same token (with our retries and API URL), so the
    warning, at every start, says nothing an operator should act on."""

    _said = warning_client_prioritized_and_token_skipped()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self._said


_bolt_log = logging.getLogger("slack_bolt.AsyncApp")
_bolt_log.addFilter(_TokenSkippedFilter())


def build_app(engine: Engine, client: AsyncWebClient, signing_secret: str | None) -> AsyncApp:
    """The bolt app. `signing_secret` is required in HTTP mode (requests are verified with it)."""
    app = AsyncApp(
        logger=_bolt_log,
        client=client,
        signing_secret=signing_secret,
        request_verification_enabled=signing_secret is not None,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    listeners = Listeners(engine)
    app.event("app_mention")(listeners.on_mention)
    app.event("message")(listeners.on_message)
    app.action(ACTION_RETRY)(listeners.on_retry)
    app.action(ACTION_APPROVE)(listeners.on_answer)
    app.action(ACTION_REJECT)(listeners.on_answer)
    app.action(ACTION_THUMBS_UP)(listeners.on_rating)
    app.action(ACTION_THUMBS_DOWN)(listeners.on_rating)
    app.action(ACTION_REGENERATE)(listeners.on_regenerate)
    app.action(ACTION_ESCALATE)(listeners.on_escalate)
    app.action(ACTION_ESCALATE_ERROR)(listeners.on_escalate_error)
    app.view(FEEDBACK_CALLBACK_ID)(listeners.on_feedback_details)
    # Last, so they only get what nothing above takes: acknowledged, since Slack retries what
    # is not, warns the clicker, and turns off an app's events when most of them fail.
    app.event(_ANY)(listeners.on_other_event)
    app.action(_ANY)(listeners.on_other_action)
    app.view(_ANY)(listeners.on_other_action)
    return app


class Listeners:
    """Each channel's listen rules (`mention`, `message`, `off`, for humans and for bots) decide
    which messages reach the engine; the bot's own messages never do."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def on_other_event(self, event: dict[str, Any]) -> None:
        metrics.INBOUND.labels("event", "ignored").inc()
        log.debug("event not handled", extra={"type": event.get("type")})

    async def on_other_action(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        metrics.INBOUND.labels("action", "ignored").inc()
        log.info("interaction not handled", extra={"type": body.get("type")})

    async def on_mention(self, body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        await self._inbound(body, event, context, mentioned=True)

    async def on_message(self, body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        if event.get("subtype") not in _WRITTEN:
            return
        if (
            f"<@{context.bot_user_id}>" in event.get("text", "")
            and event.get("channel_type") != "im"
        ):
            return  # the app_mention delivery of the same message handles it
        await self._inbound(body, event, context, mentioned=False)

    async def _inbound(
        self, body: dict[str, Any], event: dict[str, Any], context: Any, *, mentioned: bool
    ) -> None:
        if _from_self(event, context):
            metrics.INBOUND.labels("message", "ignored_self").inc()
            return
        is_bot = bool(event.get("bot_id")) or event.get("subtype") == "bot_message"
        channel, ts = event["channel"], event["ts"]
        team_id = body.get("team_id") or event.get("team") or context.team_id or ""
        thread_ts = event.get("thread_ts") or ts
        policy = self.engine.policy(channel)
        rule = policy.listen_bots if is_bot else policy.listen_humans
        if not await self._listening(rule, event, team_id, channel, thread_ts, mentioned):
            metrics.INBOUND.labels("message", "ignored_bot" if is_bot else "not_listening").inc()
            return
        keys = [f"msg:{channel}:{ts}"]
        if body.get("event_id"):
            keys.append(f"event:{body['event_id']}")
        inbound = Inbound(
            team_id=team_id,
            channel_id=channel,
            thread_ts=thread_ts,
            ts=ts,
            user=event.get("user") or event.get("bot_id") or "unknown",
            text=_without_mention(event.get("text", ""), context.bot_user_id),
            is_bot=is_bot,
            display_name=event.get("username"),
            claim_keys=tuple(keys),
        )
        try:
            taken = await self.engine.handle_message(inbound)
        except DatabaseFailure as exc:
            await self._not_taken(channel, thread_ts, ts, exc)
            return
        metrics.INBOUND.labels("message", "accepted" if taken else "duplicate").inc()

    async def _not_taken(self, channel: str, thread_ts: str, ts: str, exc: Exception) -> None:
        metrics.INBOUND.labels("message", "store_failed").inc()
        log.error(
            "message not taken: the database failed",
            extra={"channel": channel, "ts": ts, "error": escape(str(getattr(exc, "orig", exc)))},
        )
        try:
            await self.engine.slack.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=_NOT_TAKEN
            )
        except SlackApiError as slack_error:
            log.error("notice not delivered", extra={"channel": channel, "error": str(slack_error)})

    async def _listening(
        self,
        rule: Listen,
        event: dict[str, Any],
        team: str,
        channel: str,
        thread: str,
        mentioned: bool,
    ) -> bool:
        """`message`: everything. `mention`: mentions, direct messages, and follow-ups in
        threads the bot is part of. `off`: nothing."""
        if rule == "off":
            return False
        if rule == "message" or mentioned or event.get("channel_type") == "im":
            return True
        if "thread_ts" not in event:
            return False
        return (
            await self.engine.store.get_thread(self.engine.conversation_id(team, channel, thread))
            is not None
        )

    async def on_retry(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        try:
            note = await self.engine.retry(
                action.get("value", ""), body["user"]["id"], _channel_of(body)
            )
        except DatabaseFailure as exc:
            note = self._click_not_taken(exc)
        if note:
            await respond(text=note, response_type="ephemeral", replace_original=False)

    async def on_answer(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        decision = "resolved" if action["action_id"] == ACTION_APPROVE else "cancelled"
        try:
            note = await self.engine.answer(
                interrupt_key=action.get("value", ""),
                user=body["user"]["id"],
                decision=decision,
                state_values=(body.get("state") or {}).get("values") or {},
                channel=_channel_of(body),
                message_ts=(body.get("container") or {}).get("message_ts", ""),
            )
        except DatabaseFailure as exc:
            note = self._click_not_taken(exc)
        await _tell(respond, note)

    def _click_not_taken(self, exc: Exception) -> str:
        metrics.INBOUND.labels("action", "store_failed").inc()
        log.error(
            "click not taken: the database failed",
            extra={"error": escape(str(getattr(exc, "orig", exc)))},
        )
        return _CLICK_NOT_TAKEN

    async def on_rating(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        note = await self.engine.answers.rate(
            run_id=action.get("value", ""),
            user=body["user"]["id"],
            rating="up" if action["action_id"] == ACTION_THUMBS_UP else "down",
            channel=_channel_of(body),
            trigger_id=body.get("trigger_id"),
        )
        await _tell(respond, note)

    async def on_feedback_details(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        errors = await self.engine.answers.details(
            run_id=view.get("private_metadata", ""),
            user=body["user"]["id"],
            state_values=(view.get("state") or {}).get("values") or {},
        )
        if errors:
            await ack(response_action="errors", errors=errors)
        else:
            await ack()

    async def on_regenerate(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        note = await self.engine.answers.regenerate(
            run_id=action.get("value", ""), user=body["user"]["id"], channel=_channel_of(body)
        )
        await _tell(respond, note)

    async def on_escalate(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        note = await self.engine.answers.escalate(
            run_id=action.get("value", ""), user=body["user"]["id"], channel=_channel_of(body)
        )
        await _tell(respond, note)

    async def on_escalate_error(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        note = await self.engine.answers.escalate_failure(
            thread_id=action.get("value", ""), user=body["user"]["id"], channel=_channel_of(body)
        )
        await _tell(respond, note)


async def _tell(respond: Any, note: str | None) -> None:
    """An ephemeral note to the person who clicked."""
    if note:
        await respond(text=note, response_type="ephemeral", replace_original=False)


def _channel_of(body: dict[str, Any]) -> str:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id", ""
    )


def _from_self(event: dict[str, Any], context: Any) -> bool:
    """A message this bot posted (Slack delivers those too)."""
    bot_id, user = event.get("bot_id"), event.get("user")
    return bool((bot_id and bot_id == context.bot_id) or (user and user == context.bot_user_id))


def _without_mention(text: str, bot_user_id: str | None) -> str:
    """Drop the bot's own leading @-mention; everything else is passed through unchanged."""
    if not bot_user_id:
        return text
    return re.sub(rf"^\s*<@{re.escape(bot_user_id)}(\|[^>]*)?>\s*", "", text, count=1)
