"""Messages for the agent, and Retry: what a person (or an allowed bot) asks in a thread."""

from __future__ import annotations

import logging
from collections.abc import Callable

from orchestrator.config.channels import ChannelPolicy
from orchestrator.config.settings import Settings
from orchestrator.core import bot_loops, sentences
from orchestrator.core.conversation import user_message
from orchestrator.core.machine import ThreadMachine
from orchestrator.engine.context import Context, Inbound, message_detail
from orchestrator.engine.firing import Firing
from orchestrator.slack.notifier import Notifier
from persistence.store import AlreadyClaimed, Store, claim_op

log = logging.getLogger("orchestrator.engine")


class Messages:
    def __init__(
        self,
        *,
        store: Store,
        machine: ThreadMachine,
        firing: Firing,
        notifier: Notifier,
        settings: Settings,
        policy: Callable[[str], ChannelPolicy],
        conversation_id: Callable[[str, str, str], str],
    ) -> None:
        self.store = store
        self.machine = machine
        self.firing = firing
        self.notifier = notifier
        self.settings = settings
        self.policy = policy
        self.conversation_id = conversation_id

    async def handle(self, inbound: Inbound) -> bool:
        """A person (or an allowed bot) wrote to the agent in a thread.

        The delivery is marked as taken in the transaction that acts on it (the thread's
        transition, or its place in the queue), and this returns once that is stored: only then
        is Slack answered, and what follows (the run, a notice) goes on after. A database failure
        leaves it untaken (a redelivery is answered). False for a delivery taken before.
        """
        thread_id = self.conversation_id(inbound.team_id, inbound.channel_id, inbound.thread_ts)
        # A message that starts a thread has no row yet, unless this is a redelivery: its insert
        # then finds the row (StaleThread), and the transition reads it and tries again. That
        # saves a read on the path Slack waits on, for most mentions.
        starts_thread = inbound.ts == inbound.thread_ts
        row = None if starts_thread else await self.store.get_thread(thread_id)
        created = row is None
        if row is None:  # stored with its first transition
            row = self.store.new_thread(
                thread_id,
                team_id=inbound.team_id,
                channel_id=inbound.channel_id,
                thread_ts=inbound.thread_ts,
                state=self.machine.definition.initial,
            )
        if inbound.is_bot and not await self._bot_may_run(thread_id, inbound):
            return True
        message = user_message(inbound.text, name=inbound.display_name or inbound.user)
        context = Context(actor=inbound.user, inbound=inbound, message=message)
        if created and inbound.ts != inbound.thread_ts:  # first asked in an existing discussion
            context.seed = await self.notifier.earlier_messages(
                inbound.channel_id,
                inbound.thread_ts,
                inbound.ts,
                self.settings.thread_context_limit,
            )
        try:
            await self.firing.fire(
                thread_id,
                "user_message",
                context,
                detail=message_detail(inbound),
                also=[claim_op(inbound.claim_keys)],
                known=row,
                detached=True,  # stored: Slack is answered now, the run starts after
            )
        except AlreadyClaimed:
            return False
        return True

    async def _bot_may_run(self, thread_id: str, inbound: Inbound) -> bool:
        """The loop guard: after `max_bot_runs` runs started by bots in a row, bots are ignored
        in the thread until a person writes there (says so once, and logs every refusal)."""
        limit = self.policy(inbound.channel_id).max_bot_runs
        turns = bot_loops.bot_turns(await self.store.history(thread_id))
        runs = turns.runs
        if runs < limit:
            return True
        log.warning(
            "bot message ignored: too many bot-started runs in a row",
            extra={"conversation": thread_id, "bot": inbound.user, "runs": runs, "limit": limit},
        )
        thread = await self.store.get_thread(thread_id)
        if thread is not None and not turns.told:
            await self.store.record(thread, bot_loops.STOPPED, inbound.user, {"runs": runs})
            await self.notifier.say(
                thread.channel_id, thread.thread_ts, sentences.bots_stopped(runs), about=thread.id
            )
        return False

    async def retry(self, thread_id: str, actor: str, channel: str | None = None) -> str | None:
        """The Retry button. Returns a note for the clicker when there is nothing to retry."""
        thread = await self.store.get_thread(thread_id)
        if thread is None:
            return sentences.UNKNOWN_CONVERSATION
        if channel is not None and thread.channel_id != channel:
            log.warning(
                "retry of a thread in another channel",
                extra={"conversation": thread.id, "user": actor},
            )
            return sentences.NOT_HERE
        if not self.machine.allows(thread.state, "retry"):
            return sentences.NOTHING_TO_RETRY
        fired = await self.firing.fire(thread_id, "retry", Context(actor=actor))
        return None if fired else sentences.ALREADY_RETRIED
