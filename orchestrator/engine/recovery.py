"""Recovery: runs whose process died end visibly, answers left behind are sent once, forms that
were stored but never posted are posted, queues go on; and the runs a stopping process cuts.
Every thread touched has its Slack agent session status set again (by its transition, or from
its state).

Which runs are lost is decided by leases (`orchestrator.engine.leases`), so a replica starting
during a rolling update leaves the other replicas' live runs alone. A lost run that followed a
task on the agent's side (A2A) is not lost at all: the task is followed again, here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence

from orchestrator.config.channels import ChannelPolicy
from orchestrator.config.settings import Settings
from orchestrator.core import outcomes
from orchestrator.engine import leases
from orchestrator.engine.approvals_desk import ApprovalsDesk
from orchestrator.engine.context import CUT_RUN_TIMEOUT, Context, Render
from orchestrator.engine.firing import Firing
from orchestrator.slack.notifier import Notifier
from orchestrator.slack.publisher import Publisher, PublishError
from persistence.models import Interrupt, Thread
from persistence.store import Store
from renderers.view import ThreadView

log = logging.getLogger("orchestrator.engine")


class Recovery:
    def __init__(
        self,
        *,
        store: Store,
        firing: Firing,
        desk: ApprovalsDesk,
        notifier: Notifier,
        render: Render,
        settings: Settings,
        policy: Callable[[str], ChannelPolicy],
        owner: str,
        live: Collection[str],
        follow: Callable[[Thread, str], Awaitable[bool]] | None = None,
    ) -> None:
        self.store = store
        self.firing = firing
        self.desk = desk
        self.notifier = notifier
        self.render = render
        self.settings = settings
        self.policy = policy
        self.owner = owner
        self.live = live  # threads whose run streams in this process
        self.follow = follow  # follows a lost run's agent-side task again (False: cannot)

    async def recover(self) -> None:
        """After a restart: runs that died with the old process end visibly; queues go on."""
        await self.reconcile_runs()
        for thread in await self.store.threads_in("awaiting_approval"):
            self.firing.show_session(thread)  # the dead process may not have said so
            await self.desk.post_forms(thread, None)
        run_next = self.firing.actions["run_next_queued"]
        for thread_id in await self.store.threads_with_queue():
            thread = await self.store.get_thread(thread_id)
            if thread is not None and thread.state in ("idle", "done", "errored"):
                await run_next(thread, Context())

    async def reconcile_runs(self, now: float | None = None) -> None:
        """Renew the leases of this process's runs; end the runs whose owner is gone."""
        now = time.time() if now is None else now
        if self.live:
            await self.store.renew_leases(self.owner, now + self.settings.run_lease)
        for thread, lease in await self.store.streaming_leases():
            if thread.id in self.live:
                continue
            owner, expires_at = (lease.owner, lease.expires_at) if lease else (None, 0.0)
            if leases.is_lost(owner, expires_at, now):
                log.warning(
                    "run lost with its process",
                    extra={"conversation": thread.id, "owner": owner or "none"},
                )
                await self.end_stream(thread)
        for row in await self.store.stale_claims(now - self.settings.run_lease):
            thread = await self.store.get_thread(row.thread_id)
            if thread is None or thread.state != "awaiting_approval":
                continue
            if (await self.firing.facts(thread))["pending_interrupts"]:
                continue  # not left behind: it waits for the run's other forms
            await self._send_claimed(thread, [row])

    async def end_cut_runs(self, thread_ids: Sequence[str]) -> None:
        """The runs a stopping process cut end visibly now, as another process would end them."""
        for thread_id in thread_ids:
            log.warning("run cut by the shutdown", extra={"conversation": thread_id})
            try:
                async with asyncio.timeout(CUT_RUN_TIMEOUT):
                    thread = await self.store.get_thread(thread_id)
                    if thread is not None and thread.state == "streaming":
                        if await self._open_task(thread) is not None:
                            # its task goes on at the agent: the next start follows it
                            log.info("run left to follow", extra={"conversation": thread_id})
                            continue
                        await self.end_stream(thread)
            except Exception:  # the next start (or another replica) ends it instead
                log.exception("cut run not ended", extra={"conversation": thread_id})

    async def _send_claimed(self, thread: Thread, rows: Sequence[Interrupt]) -> None:
        """Answers that were claimed but never sent (their process died): send them now."""
        last = rows[-1]
        rejected = last.decision in ("rejected", "cancelled")
        trigger = "approval_rejected" if rejected else "approval_submitted"
        log.warning("sending an answer its process left behind", extra={"conversation": thread.id})
        await self.firing.fire(
            thread.id,
            trigger,
            Context(actor="recovery", resume=await self.desk.resume_of(thread, last.run_id)),
            detail={"interrupt": last.interrupt_id, "decision": last.decision, "by": "recovery"},
            expect_state="awaiting_approval",
        )

    async def _open_task(self, thread: Thread) -> str | None:
        kept = await self.store.agent_task(thread.id)
        return kept.task_id if kept is not None else None

    async def end_stream(self, thread: Thread) -> None:
        """A run that streamed in a process that is gone."""
        await self.notifier.clear_cursors(
            thread.channel_id, thread.thread_ts, set(thread.message_ts or [])
        )
        answers = [
            r
            for r in await self.store.interrupts_of(thread.id)
            if r.status in ("claimed", "sending")
        ]
        sent = [r.id for r in answers if r.status == "sending"]
        if sent:  # the agent may have them: never send twice, keep them as answered
            await self.desk.settle(thread, sent)
        elif answers:  # the resume never left: back to the forms, then send the same answers
            fired = await self.firing.fire(
                thread.id,
                "resume_failed",
                Context(actor="recovery"),
                detail={"reason": "restart"},
                expect_state="streaming",
            )
            refreshed = await self.store.get_thread(thread.id)
            if fired is not None and refreshed is not None:
                await self._send_claimed(refreshed, answers)
            return
        task_id = await self._open_task(thread)
        if task_id is not None and self.follow is not None and await self.follow(thread, task_id):
            log.info("following the lost run's task", extra={"conversation": thread.id})
            return
        error = outcomes.restart_error(bool(self.policy(thread.channel_id).escalate_to))
        fired = await self.firing.fire(
            thread.id,
            "stream_lost",
            Context(actor="recovery"),
            detail={"reason": "restart"},
            fields={"error_kind": error.kind, "error_text": error.title},
            expect_state="streaming",
        )
        if fired is None:
            return
        view = ThreadView(conversation_id=thread.id, state=fired.dest, error=error)
        view.interrupted = error.title
        publisher = Publisher(self.notifier.client, thread.channel_id, thread.thread_ts)
        try:
            await publisher.close(self.render(view))
        except PublishError as exc:
            log.warning(
                "restart notice not posted", extra={"conversation": thread.id, "error": exc.error}
            )
