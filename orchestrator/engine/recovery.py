"""Recovery: whatever a dead process left half done is finished from the store. Runs that never
reached the agent start again; runs that did end visibly; answers left behind are sent once (or,
where the agent may have one and cannot refuse a second, the person is told and the form works
again); forms stored but never posted are posted once; live messages are closed; queues go on.
And the runs a stopping process cuts.
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
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

from orchestrator import kill_points
from orchestrator.config.channels import ChannelPolicy
from orchestrator.config.settings import Settings
from orchestrator.core import outcomes, sentences
from orchestrator.engine import recovery_plan as plan
from orchestrator.engine.approvals_desk import ApprovalsDesk
from orchestrator.engine.context import CUT_RUN_TIMEOUT, Context, Render
from orchestrator.engine.firing import Firing
from orchestrator.engine.live_runs import LiveRun
from orchestrator.slack.notifier import Notifier
from orchestrator.slack.publisher import Publisher, PublishError
from persistence.models import Answer, Interrupt, Thread
from persistence.store import RELEASED, LeaseLost, Store, interrupts_op
from persistence.write_turns import urgent
from renderers.view import ErrorView, ThreadView

log = logging.getLogger("orchestrator.engine")

# A thread that began waiting this long before a start had its session status set long since:
# only those that began waiting lately get it set again, so a start with 10,000 waiting threads
# does not spend Slack's rate limit on statuses that are already right.
RESHOW_WINDOW = 3600.0  # seconds


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
        live: Mapping[str, LiveRun],
        restart: Callable[[Thread], None],
        redraw_answer: Callable[[Answer], Awaitable[None]],
        closing: Callable[[], bool],
        follow: Callable[[Thread, str], Awaitable[bool]] | None = None,
        later: Callable[[Coroutine[Any, Any, None]], None] | None = None,
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
        self.restart = restart  # starts a thread's run here (one that never reached the agent)
        self.redraw_answer = redraw_answer  # draws a finished answer in its final form
        self.closing = closing  # the process is stopping: it starts nothing new
        self.follow = follow  # follows a lost run's agent-side task again (False: cannot)
        self.later = later  # housekeeping in the background (not holding the tick up)
        # The start-up recovery and the scheduler's ticks never work on the same thread at once.
        self._one_at_a_time = asyncio.Lock()

    async def recover(self) -> int:
        """After a restart: what the old process left half done is finished. Reads a fixed
        number of statements whatever the number of threads (`persistence.recovery_reads`);
        writes only for what needs finishing. Returns the number of threads waiting on a form."""
        async with self._one_at_a_time:
            now = time.time()
            waiting = await self.store.threads_in("awaiting_approval")
            for thread in waiting:  # the dead process may not have said so, if it died then
                if thread.updated_at >= now - RESHOW_WINDOW:
                    self.firing.show_session(thread)
            await self.reconcile_runs(now)
            await self.finish_live(now)
            await self.post_lost_forms(None)
            await self.run_queues()
            return len(waiting)

    async def tick(self, now: float) -> None:
        """Every scheduler tick, on every replica: what another process left behind is taken
        over once its lease lapsed."""
        async with self._one_at_a_time:
            await self.reconcile_runs(now)
            await self.finish_live(now - self.settings.run_lease)
            await self.post_lost_forms(now - self.settings.run_lease)
            await self.run_queues()

    async def post_lost_forms(self, stale_before: float | None) -> None:
        """Forms stored but not shown whose poster is gone (or silent since `stale_before`)."""
        for thread, rows in plan.forms_by_thread(await self.store.forms_to_post()):
            await self.desk.post_forms(thread, None, stale_before=stale_before, unposted=rows)

    async def finish_live(self, updated_before: float) -> None:
        """Live messages of runs whose end was stored but never shown get their final form."""
        for thread, answer in await self.store.live_left(updated_before):
            if thread.id not in self.live:
                await self._close_live(thread, answer)

    async def _close_live(self, thread: Thread, answer: Answer | None) -> None:
        log.warning("closing the live messages of a run", extra={"conversation": thread.id})
        if thread.state == "done" and answer is not None:
            await self.redraw_answer(answer)
        owned = {*(thread.message_ts or []), *(thread.live_ts or [])}
        await self.notifier.clear_cursors(thread.channel_id, thread.thread_ts, owned)
        self._clear_again(thread, owned, answer if thread.state == "done" else None)
        if thread.state == "errored":
            error = ErrorView(
                kind=thread.error_kind or "stream_lost",
                title=thread.error_text or "Answer interrupted",
                can_escalate=bool(self.policy(thread.channel_id).escalate_to),
            )
            await self._notice(thread, "errored", error)
        await self.store.update_thread(thread.id, when_run=thread.run_sent, live_ts=[])

    async def run_queues(self) -> None:
        """Queues whose run ended without starting the next message (its process died in
        between) go on, oldest message first; each message runs once whoever picks it up."""
        run_next = self.firing.actions["run_next_queued"]
        for thread in plan.queues_to_run(await self.store.queued_threads(plan.QUEUE_STATES)):
            await run_next(thread, Context())

    async def reconcile_runs(self, now: float | None = None) -> None:
        """Renew the leases of this process's runs; end the runs whose owner is gone."""
        now = time.time() if now is None else now
        await self.renew(now)
        for run in plan.lost_runs(await self.store.streaming_runs(), self.live, now):
            owner, expires_at = (
                (run.lease.owner, run.lease.expires_at) if run.lease else (None, 0.0)
            )
            log.warning(
                "run lost with its process",
                extra={"conversation": run.thread.id, "owner": owner or "none"},
            )
            try:
                await self.end_stream(run.thread, taken=(owner, expires_at))
            except LeaseLost:  # yet another process took it from this one meanwhile
                log.warning(
                    "lost run taken by another process", extra={"conversation": run.thread.id}
                )
        for claim in plan.claims_to_send(
            await self.store.left_claims(now - self.settings.run_lease)
        ):
            await self._send_claimed(claim.thread, [claim.row])

    async def renew(self, now: float) -> None:
        """Renew the leases of this process's runs; a run whose lease is gone (another process
        found it lost, and ended it or took it over) stops here at once, quietly."""
        if not self.live:
            return
        since, lease = time.monotonic(), self.settings.run_lease
        # The runs as they are now: by the time the store answers, a thread's next run may
        # have taken its place here, with a lease the renewal did not see.
        runs = dict(self.live)
        with urgent():  # late, it would end live runs: it goes before the runs' own writes
            lost = set(await self.store.renew_leases(self.owner, list(runs), now + lease))
        for thread_id, run in runs.items():
            if thread_id in lost and not run.ending:  # an ending gives the lease up itself
                log.warning("run lease lost", extra={"conversation": thread_id})
                run.lose()
            elif thread_id not in lost:
                run.held(since, lease)

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
                    elif thread is not None and thread.live_ts:  # ended, not yet shown
                        run_id = thread.run_id
                        answer = await self.store.get_answer(run_id) if run_id else None
                        await self._close_live(thread, answer)
            except LeaseLost:  # another replica took it over: it ends the run
                log.warning("cut run taken over", extra={"conversation": thread_id})
            except Exception:  # the next start (or another replica) ends it instead
                log.exception("cut run not ended", extra={"conversation": thread_id})

    async def _send_claimed(
        self, thread: Thread, rows: Sequence[Interrupt], *, resent: bool = False
    ) -> None:
        """Answers that were claimed but never sent (their process died): send them now.
        `resent`: they may have reached the agent before (which then refuses them)."""
        last = rows[-1]
        rejected = last.decision in ("rejected", "cancelled")
        trigger = "approval_rejected" if rejected else "approval_submitted"
        resume = await self.desk.resume_of(thread, last.run_id)
        if not resume.interrupt_keys:  # taken or put back meanwhile: nothing is left to send
            return
        resume.resent = resent
        log.warning("sending an answer its process left behind", extra={"conversation": thread.id})
        await self.firing.fire(
            thread.id,
            trigger,
            Context(actor="recovery", resume=resume),
            detail={"interrupt": last.interrupt_id, "decision": last.decision, "by": "recovery"},
            expect_state="awaiting_approval",
        )

    async def _open_task(self, thread: Thread) -> str | None:
        kept = await self.store.agent_task(thread.id)
        return kept.task_id if kept is not None else None

    async def end_stream(
        self, thread: Thread, *, taken: tuple[str | None, float] | None = None
    ) -> None:
        """A run that streamed in a process that is gone. `taken`: the lease found lost (its
        owner, None for none, and expiry); this process takes it over first, compare-and-set,
        and leaves the run alone if its owner renewed it meanwhile or another process took it.
        Without it, the run is this process's own (cut by its stop). Every write below is
        fenced by the lease. A run that never reached the agent is started again here; a
        stopping process restarts nothing."""
        if taken is not None:
            lease_owner, lease_expires = taken
            expires_at = time.time() + self.settings.run_lease
            seen = lease_expires if lease_owner is not None else None
            if not await self.store.take_lease(
                thread.id, lease_owner, self.owner, expires_at, seen_expires=seen
            ):
                return
        # Read once the lease is this process's: until it took it, the run's owner could still
        # store that it reached the agent or that the agent took the answers (its writes are
        # fenced by the lease).
        found = await self.store.streaming_runs(thread.id)
        if not found:
            return
        run = found[0]
        thread, answers, task_id = run.thread, run.answers, run.task_id
        owned = {*(thread.message_ts or []), *(thread.live_ts or [])}
        await self.notifier.clear_cursors(thread.channel_id, thread.thread_ts, owned)
        if taken is not None:
            self._clear_again(thread, owned)
        await self._draw_settled_forms(thread)
        sending = [r.id for r in answers if r.status == "sending"]
        if sending and task_id is not None:  # the agent's task has them: follow it below
            await self.desk.settle(thread, sending)
        elif answers:
            await self._answers_left(thread, answers)
            return
        if task_id is not None and self.follow is not None and await self.follow(thread, task_id):
            log.info("following the lost run's task", extra={"conversation": thread.id})
            return
        if thread.run_sent is None and taken is not None and not self.closing():
            log.warning("starting a run its process never sent", extra={"conversation": thread.id})
            self.restart(thread)
            return
        error = outcomes.restart_error(bool(self.policy(thread.channel_id).escalate_to))
        fired = await self.firing.fire(
            thread.id,
            "stream_lost",
            Context(actor="recovery", fenced=True),
            detail={"reason": "restart"},
            fields={"error_kind": error.kind, "error_text": error.title, "live_ts": []},
            expect_state="streaming",
        )
        if fired is not None:
            await self._notice(thread, fired.dest, error)

    def _clear_again(self, thread: Thread, owned: set[str], answer: Answer | None = None) -> None:
        """A live message may be drawn once more after it was cleared: by the process that lost
        the run if it lives on (its clock is behind, or a write was on its way; it writes
        nothing past its lease by its own clock), or by a write a dead process sent just before
        it died, which Slack applies in its own time. So they are cleared again once that is
        over, and a finished `answer` drawn again."""

        async def again() -> None:
            await asyncio.sleep(self.settings.run_lease + self.settings.scheduler_interval)
            fresh = await self.store.get_thread(thread.id)
            strict = fresh is None or fresh.state == "streaming"  # a new run is live there
            if answer is not None and fresh is not None and fresh.run_id == answer.run_id:
                drawn = await self.store.get_answer(answer.run_id)  # as it is now
                if drawn is not None:
                    await self.redraw_answer(drawn)
            await self.notifier.clear_cursors(
                thread.channel_id, thread.thread_ts, owned, strict=strict
            )

        if self.later is not None:
            self.later(again())

    async def _draw_settled_forms(self, thread: Thread) -> None:
        """The forms the lost run answered (those of the thread's latest interrupted run) whose
        answers the agent took, stored as final but never drawn so (their process died in
        between): they still say "resuming…". Posted with the run's answer or on their own."""
        rows = await self.store.interrupts_of(thread.id)
        latest = rows[-1].run_id if rows else None
        for row in rows:
            if row.run_id == latest and row.status in ("approved", "rejected"):
                await self.desk.refresh(thread, row)

    async def _answers_left(self, thread: Thread, answers: Sequence[Interrupt]) -> None:
        """Answers claimed for a resume whose process died. Not yet sent: back to the forms, and
        the same answers are sent. Maybe sent: sent again where the agent refuses a second
        resume of an interrupt (AG-UI 1.0 resumes, A2A); elsewhere never twice: the answers are
        released, the forms work again and the person is told."""
        maybe_sent = [r for r in answers if r.status == "sending"]
        resend = not maybe_sent or self._refuses_duplicates(thread, maybe_sent)
        keys, held = [r.id for r in answers], ("claimed", "sending")
        # With the thread's move: answers to send again are `claimed` (a crash before they
        # are sent leaves them to the next recovery's claims), the others released.
        answers_op = interrupts_op(keys, held, **({"status": "claimed"} if resend else RELEASED))
        fired = await self.firing.fire(
            thread.id,
            "resume_failed",
            Context(actor="recovery", fenced=True),
            detail={"reason": "restart", "resent": resend},
            fields={"live_ts": []},
            also=[answers_op],
            expect_state="streaming",
        )
        refreshed = await self.store.get_thread(thread.id)
        if fired is None or refreshed is None:
            return
        if resend:
            kill_points.reached("before_resend")
            await self._send_claimed(refreshed, answers, resent=bool(maybe_sent))
            return
        for row in answers:
            fresh = await self.store.get_interrupt(row.id)
            if fresh is not None:
                await self.desk.refresh(refreshed, fresh)
        await self.notifier.say(
            thread.channel_id, thread.thread_ts, sentences.RESUME_UNCERTAIN, about=thread.id
        )

    def _refuses_duplicates(self, thread: Thread, rows: Sequence[Interrupt]) -> bool:
        if self.policy(thread.channel_id).agent.protocol == "a2a":
            return True
        return all(r.wire_form == "outcome" for r in rows)

    async def _notice(self, thread: Thread, state: str, error: ErrorView) -> None:
        view = ThreadView(conversation_id=thread.id, state=state, error=error)
        view.interrupted = error.title
        publisher = Publisher(self.notifier.client, thread.channel_id, thread.thread_ts)
        try:
            await publisher.close(self.render(view))
        except PublishError as exc:
            log.warning(
                "restart notice not posted", extra={"conversation": thread.id, "error": exc.error}
            )
