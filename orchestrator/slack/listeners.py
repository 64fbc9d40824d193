"""The Slack listeners: work out who and what, apply the channel's listen rules, hand to the
engine, and tell a clicker what happened.

Slack is answered once a listener returns, and a listener returns once what the delivery asks for
is stored (the run itself, and any notice, go on after), so a crash before the answer leaves
Slack to deliver it again and a crash after it leaves recovery a stored job. Every delivery is
claimed in the store by its event id and by `(channel, ts)`, in the transaction that acts on it:
a mention arrives both as `app_mention` and as `message`, Slack retries, and several replicas
may receive the same event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from orchestrator import metrics
from orchestrator.config.channels import Listen
from orchestrator.engine import Engine, Inbound
from orchestrator.logs import escape
from orchestrator.slack import inbound as parse
from persistence.store import DatabaseFailure
from renderers.common import ACTION_APPROVE, ACTION_THUMBS_UP, EDIT_ARGS_BLOCK_ID
from renderers.edit_args import read_edited_args
from renderers.feedback import REASONS_BLOCK_ID

log = logging.getLogger("orchestrator.slack")

# A message the store could not take is answered with this, and the person sends it again.
NOT_TAKEN = (
    "I could not take this message: my database is not available right now. "
    "Nothing was sent to the agent; please send it again in a minute."
)
CLICK_NOT_TAKEN = (
    "Your click could not be recorded: my database is not available right now. "
    "Nothing was sent to the agent; please click again in a minute."
)


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
        if not parse.is_written(event):
            return
        if parse.mentions(event, context.bot_user_id):
            return  # the app_mention delivery of the same message handles it
        await self._inbound(body, event, context, mentioned=False)

    async def _inbound(
        self, body: dict[str, Any], event: dict[str, Any], context: Any, *, mentioned: bool
    ) -> None:
        if parse.from_self(event, context.bot_id, context.bot_user_id):
            metrics.INBOUND.labels("message", "ignored_self").inc()
            return
        is_bot = parse.is_bot(event)
        channel, ts = event["channel"], event["ts"]
        team_id = body.get("team_id") or event.get("team") or context.team_id or ""
        thread_ts = event.get("thread_ts") or ts
        policy = self.engine.policy(channel)
        rule = policy.listen_bots if is_bot else policy.listen_humans
        inbound = Inbound(
            team_id=team_id,
            channel_id=channel,
            thread_ts=thread_ts,
            ts=ts,
            user=parse.sender(event),
            text=parse.without_mention(event.get("text", ""), context.bot_user_id),
            is_bot=is_bot,
            display_name=event.get("username"),
            claim_keys=parse.claim_keys(body, event),
        )
        try:  # whatever the database fails with (a pool timeout too), the sender is told
            if not await self._listening(rule, event, team_id, channel, thread_ts, mentioned):
                metrics.INBOUND.labels(
                    "message", "ignored_bot" if is_bot else "not_listening"
                ).inc()
                return
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
        await self.engine.notifier.say(channel, thread_ts, NOT_TAKEN)

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
        return await self.engine.known_thread(team, channel, thread)

    async def on_session_stopped(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """Slack's Stop on the thread's agent session (shown while it is `processing`)."""
        team_id = body.get("team_id") or event.get("team") or ""
        channel, thread_ts = event.get("channel") or "", event.get("thread_ts") or ""
        if not (channel and thread_ts and event.get("user")):
            metrics.INBOUND.labels("session_stop", "ignored").inc()
            return
        try:
            ours = await self.engine.stops.session_stopped(
                team_id=team_id, channel=channel, thread_ts=thread_ts, user=event["user"]
            )
        except DatabaseFailure as exc:
            self._click_not_taken(exc)
            return
        metrics.INBOUND.labels("session_stop", "accepted" if ours else "ignored").inc()

    async def on_stop(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        """The Stop button of a live answer (where Slack shows no Stop of its own)."""
        await ack()
        await self._answered(
            respond,
            self.engine.stops.click(
                thread_id=action.get("value", ""),
                user=body["user"]["id"],
                channel=parse.channel_of(body),
            ),
        )

    async def on_home_opened(self, event: dict[str, Any]) -> None:
        """Someone opened the app's Messages tab (their DM with the bot): pin the suggested
        prompts of the channel configuration (the DM's own, else the defaults)."""
        channel = event.get("channel") or ""
        if event.get("tab") != "messages" or not channel:
            metrics.INBOUND.labels("home", "ignored").inc()
            return
        prompts = self.engine.policy(channel).suggested_prompts
        if prompts:
            await self.engine.notifier.suggest_prompts(
                channel, [{"title": title, "message": message} for title, message in prompts]
            )
        metrics.INBOUND.labels("home", "accepted").inc()

    async def on_retry(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        try:
            note = await self.engine.retry(
                action.get("value", ""), body["user"]["id"], parse.channel_of(body)
            )
        except DatabaseFailure as exc:
            note = self._click_not_taken(exc)
        if note:
            await respond(text=note, response_type="ephemeral", replace_original=False)

    async def on_answer(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        try:
            note = await self.engine.answer(
                interrupt_key=action.get("value", ""),
                user=body["user"]["id"],
                approved=action["action_id"] == ACTION_APPROVE,
                state_values=parse.form_values(body),
                channel=parse.channel_of(body),
                message_ts=parse.message_ts(body),
                message=parse.message_of(body),
            )
        except DatabaseFailure as exc:
            note = self._click_not_taken(exc)
        await _tell(respond, note)

    async def on_edit_args(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        await self._answered(
            respond,
            self.engine.desk.open_edit(
                interrupt_key=action.get("value", ""),
                user=body["user"]["id"],
                channel=parse.channel_of(body),
                message_ts=parse.message_ts(body),
                trigger_id=body.get("trigger_id", ""),
            ),
        )

    async def on_edited_args(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The arguments modal was submitted: refused in the modal, or approved and sent."""
        key, user = view.get("private_metadata", ""), body["user"]["id"]
        text = read_edited_args((view.get("state") or {}).get("values") or {})
        try:
            error = await self.engine.desk.check_edit(interrupt_key=key, user=user, text=text)
        except DatabaseFailure as exc:
            error = self._click_not_taken(exc)
        if error:
            await ack(response_action="errors", errors={EDIT_ARGS_BLOCK_ID: error[:3000]})
            return
        await ack()
        try:
            note = await self.engine.desk.send(key, user)
        except DatabaseFailure as exc:  # the form stays open: its Approve can be clicked again
            note = self._click_not_taken(exc)
        if note:
            log.info("edited arguments not sent", extra={"interrupt": key, "note": note})

    async def _answered(self, respond: Any, click: Awaitable[str | None]) -> None:
        """Tell the clicker what became of their click (nothing when it simply worked), or to
        click again when the database could not take it."""
        try:
            note = await click
        except DatabaseFailure as exc:
            note = self._click_not_taken(exc)
        await _tell(respond, note)

    def _click_not_taken(self, exc: Exception) -> str:
        metrics.INBOUND.labels("action", "store_failed").inc()
        log.error(
            "click not taken: the database failed",
            extra={"error": escape(str(getattr(exc, "orig", exc)))},
        )
        return CLICK_NOT_TAKEN

    async def on_rating(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        try:
            note = await self.engine.answers.rate(
                run_id=action.get("value", ""),
                user=body["user"]["id"],
                rating="up" if action["action_id"] == ACTION_THUMBS_UP else "down",
                channel=parse.channel_of(body),
                trigger_id=body.get("trigger_id"),
            )
        except DatabaseFailure as exc:
            note = self._click_not_taken(exc)
        await _tell(respond, note)

    async def on_feedback_details(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        try:
            errors = await self.engine.answers.details(
                run_id=view.get("private_metadata", ""),
                user=body["user"]["id"],
                state_values=parse.clean((view.get("state") or {}).get("values") or {}),
            )
        except DatabaseFailure as exc:  # said on the modal, which stays open to submit again
            errors = {REASONS_BLOCK_ID: self._click_not_taken(exc)}
        if errors:
            await ack(response_action="errors", errors=errors)
        else:
            await ack()

    async def on_regenerate(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        await self._answered(
            respond,
            self.engine.answers.regenerate(
                run_id=action.get("value", ""),
                user=body["user"]["id"],
                channel=parse.channel_of(body),
            ),
        )

    async def on_escalate(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        await self._answered(
            respond,
            self.engine.answers.escalate(
                run_id=action.get("value", ""),
                user=body["user"]["id"],
                channel=parse.channel_of(body),
            ),
        )

    async def on_escalate_error(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        await self._answered(
            respond,
            self.engine.answers.escalate_failure(
                thread_id=action.get("value", ""),
                user=body["user"]["id"],
                channel=parse.channel_of(body),
            ),
        )


async def _tell(respond: Any, note: str | None) -> None:
    """An ephemeral note to the person who clicked."""
    if note:
        await respond(text=note, response_type="ephemeral", replace_original=False)
