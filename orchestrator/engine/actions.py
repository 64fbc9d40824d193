"""The machine's actions: what `after:` in `machines/thread.yaml` names, performed once the new
state is stored. Each takes the thread row and the firing's context."""

from __future__ import annotations

import logging

from orchestrator import kill_points
from orchestrator.core import sentences
from orchestrator.engine.approvals_desk import ApprovalsDesk
from orchestrator.engine.context import QUEUE_LIMIT, Action, Context, Inbound, message_detail
from orchestrator.engine.firing import Firing
from orchestrator.engine.run_driver import RunDriver
from orchestrator.engine.tasks import Tasks
from orchestrator.slack.notifier import Notifier
from persistence.models import Thread
from persistence.store import AlreadyClaimed

log = logging.getLogger("orchestrator.engine")


class Actions:
    def __init__(
        self,
        *,
        firing: Firing,
        tasks: Tasks,
        runs: RunDriver,
        desk: ApprovalsDesk,
        notifier: Notifier,
    ) -> None:
        self.firing = firing
        self.tasks = tasks
        self.runs = runs
        self.desk = desk
        self.notifier = notifier

    def table(self) -> dict[str, Action]:
        """Every action a machine file may name (checked when the file is loaded)."""
        return {
            "start_run": self.start_run,
            "resume_run": self.resume_run,
            "queue_message": self.queue_message,
            "point_to_form": self.point_to_form,
            "run_next_queued": self.run_next_queued,
            "post_forms": self.post_forms,
        }

    async def start_run(self, thread: Thread, context: Context) -> None:
        """A run of the agent starts, for the message (or the retry) that fired."""
        if context.inbound is not None:  # stored with the transition (requester fields)
            thread.requester = context.inbound.user
            thread.requester_is_bot = context.inbound.is_bot
        self.tasks.spawn(self.runs.run(thread))

    async def resume_run(self, thread: Thread, context: Context) -> None:
        """The run goes on with the answers of its forms."""
        self.tasks.spawn(self.runs.run(thread, resume=context.resume))

    async def queue_message(self, thread: Thread, context: Context) -> None:
        """The message was queued with the transition: the sender is told it will run next."""
        text = sentences.queue_full(QUEUE_LIMIT) if context.notice == "full" else sentences.QUEUED
        await self.notifier.say(thread.channel_id, thread.thread_ts, text, about=thread.id)

    async def point_to_form(self, thread: Thread, context: Context) -> None:
        """A message while a form waits is not passed on: the sender is pointed to the form."""
        rows = [r for r in await self.desk.open_forms(thread) if r.form_ts]
        link = await self.notifier.permalink(thread.channel_id, rows[0].form_ts) if rows else None
        text = sentences.wait_for_form(link)
        await self.notifier.say(thread.channel_id, thread.thread_ts, text, about=thread.id)

    async def run_next_queued(self, thread: Thread, context: Context) -> None:
        """The oldest queued message (read with the transition, else now) starts the next run.

        Whoever runs it takes it off the queue in the transition that starts it, so a queue
        picked up by several processes (a restart, another replica) runs each message once.
        """
        if self.tasks.closing:  # a closing process leaves it queued for the next one
            return
        queue_head = context.queue_head
        if queue_head is None:  # not read with a transition (recovery)
            queue_head = await self.firing.store.queue_head(thread.id)
        if not queue_head:
            return
        kill_points.reached("before_next_queued")
        head = queue_head[0]
        inbound = Inbound(
            team_id=thread.team_id,
            channel_id=thread.channel_id,
            thread_ts=thread.thread_ts,
            ts=head.ts,
            user=head.user,
            text=str(head.message.get("content", "")),
            is_bot=head.is_bot,
        )
        next_context = Context(
            actor=head.user, inbound=inbound, message=head.message, dequeue_id=head.id
        )
        self.tasks.spawn(self._fire_detached(thread.id, next_context, inbound))

    async def post_forms(self, thread: Thread, context: Context) -> None:
        """The run's forms reach Slack, after its answer (see `ApprovalsDesk.post_forms`)."""
        await self.desk.post_forms(thread, context.live)

    async def _fire_detached(self, thread_id: str, context: Context, inbound: Inbound) -> None:
        try:
            await self.firing.fire(
                thread_id, "user_message", context, detail=message_detail(inbound)
            )
        except AlreadyClaimed:
            log.info("queued message taken by another process", extra={"conversation": thread_id})
        except Exception:
            log.exception("background trigger failed", extra={"conversation": thread_id})
