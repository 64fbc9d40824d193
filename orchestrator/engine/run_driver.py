"""Driving a run: post the live answer, send the run input through the agent seam, fold the
events into the view with the pure reducer, and hand the result to finishing.

The agent side is one interface (`orchestrator.agent.contract`): a run input in, an async stream
of `ag_ui.core` events out; nothing here names a wire protocol. A thread's runs go to the agent
that answered it first (else the channel's routes pick one), and a run that follows an
agent-side task keeps its id, so after a restart `follow_task` picks the task up again. A run
someone stops (`stop`) has its stream closed and the agent told to cancel. A run whose lease
another process took (`LeaseLost`) stops quietly: no more writes, no cancel, no Slack call."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable

from ag_ui.core import BaseEvent, EventType, RunAgentInput

from orchestrator import kill_points, metrics
from orchestrator.agent.contract import AgentClients
from orchestrator.agent.errors import (
    AgentAuthError,
    AgentError,
    AgentHTTPError,
    StreamIncomplete,
    TaskGone,
)
from orchestrator.agent.targets import AgentResolver, AgentTarget
from orchestrator.config.channels import ChannelPolicy
from orchestrator.config.settings import Settings
from orchestrator.core import approvals, outcomes, sentences
from orchestrator.core.conversation import RunRecorder
from orchestrator.core.outcomes import AgentPlace, RunResult
from orchestrator.core.reducer import RunReducer, Step
from orchestrator.engine.approvals_desk import ApprovalsDesk
from orchestrator.engine.context import CUT_RUN_TIMEOUT, Context, Render
from orchestrator.engine.finishing import Finisher, finished_result
from orchestrator.engine.firing import Firing
from orchestrator.engine.live_runs import LiveRun, RunSlots, cancel_at_agent, read_or_stop
from orchestrator.engine.run_progress import RunProgress, typing_status
from orchestrator.engine.run_requests import RunRequests
from orchestrator.engine.run_writes import RunWrites
from orchestrator.engine.tasks import Tasks
from orchestrator.slack.notifier import Notifier
from orchestrator.slack.publisher import LivePublisher, PublisherFactory, PublishError
from orchestrator.slack.sessions import AgentSessions
from persistence.models import Thread
from persistence.store import LeaseLost, Store, fence_op, keep_agent_op, lease_op
from renderers.view import SlackMessage, ThreadView

log = logging.getLogger("orchestrator.engine")


class RunDriver:
    def __init__(
        self,
        *,
        store: Store,
        firing: Firing,
        tasks: Tasks,
        desk: ApprovalsDesk,
        finisher: Finisher,
        notifier: Notifier,
        clients: AgentClients,
        agents: AgentResolver,
        publishers: PublisherFactory,
        render: Render,
        settings: Settings,
        policy: Callable[[str], ChannelPolicy],
        sessions: AgentSessions | None = None,
    ) -> None:
        self.store = store
        self.firing = firing
        self.tasks = tasks
        self.desk = desk
        self.finisher = finisher
        self.notifier = notifier
        self.clients = clients
        self.agents = agents
        self.publishers = publishers
        self.render = render
        self.settings = settings
        self.policy = policy
        self.requests = RunRequests(store, agents, policy)
        self.sessions = sessions
        self.live: dict[str, LiveRun] = {}  # the runs streaming in this process, by thread
        self.slots = RunSlots(settings.max_concurrent_runs)

    async def run(
        self, thread: Thread, resume: approvals.Resume | None = None, task_id: str | None = None
    ) -> None:
        """One run of the thread's agent; with `task_id`, the rest of a task started earlier."""
        metrics.LIVE_RUNS.inc()
        started = time.monotonic()
        live = self.live[thread.id] = LiveRun(thread.version)
        try:
            await self._run(thread, resume, task_id, live)
        except LeaseLost:  # another process has the run: it writes the rest, this one nothing
            log.warning("run taken over by another process", extra={"conversation": thread.id})
        except Exception:
            log.exception("run crashed", extra={"conversation": thread.id})
            await self._fail_crashed(thread)
        finally:
            if self.live.get(thread.id) is live:  # the thread's next run may have begun
                del self.live[thread.id]
            metrics.LIVE_RUNS.dec()
            metrics.RUN_SECONDS.observe(time.monotonic() - started)

    async def follow_task(self, thread: Thread, task_id: str) -> bool:
        """After a restart: follow the task the thread's lost run followed, in this process.
        False when the thread's agent cannot follow a task again (its run is then lost)."""
        target = await self.target(thread)
        if not self.clients.can_reattach(target):
            return False
        expires_at = time.time() + self.settings.run_lease
        fired = await self.firing.fire(
            thread.id,
            "run_started",
            Context(actor="recovery"),
            detail={"reattached": task_id},
            also=[lease_op(thread.id, self.firing.owner, expires_at)],
            expect_state="streaming",
        )
        if fired is None:
            return False
        refreshed = await self.store.get_thread(thread.id)
        if refreshed is None:
            return False
        self.live[thread.id] = LiveRun(refreshed.version)  # its lease is renewed from now on
        self.tasks.spawn(self.run(refreshed, task_id=task_id))
        return True

    def stop(self, thread_id: str, by: str, version: int) -> bool:
        """Stop the thread's run if it streams here and the stop (stored when the thread was at
        `version`) is about it. True when this call stopped it."""
        live = self.live.get(thread_id)
        return live is not None and live.stop_for(by, version)

    async def target(self, thread: Thread) -> AgentTarget:
        return await self.requests.target(thread)

    async def _run(
        self,
        thread: Thread,
        resume: approvals.Resume | None,
        task_id: str | None,
        live: LiveRun,
    ) -> None:
        target = await self.target(thread)
        run_id = str(uuid.uuid4())
        view = ThreadView(
            conversation_id=thread.id,
            state="streaming",
            requester=thread.requester,
            stoppable=self._stoppable(thread),
        )
        publisher = self.publishers(thread, view)
        live.shown = self.render(view)[:1]  # what the live message shows until the lease is held
        try:
            await publisher.open(live.shown)
        except PublishError as exc:
            log.error(
                "cannot post in the thread",
                extra={"conversation": thread.id, "channel": thread.channel_id, "error": exc.error},
            )
            metrics.SLACK_ERRORS.labels(exc.error).inc()
        thread.run_id = run_id  # stored with the run's first transition (run_started or its end)
        try:
            await self._started(thread, run_id, resume, publisher.ts, live)
        except LeaseLost:  # its messages are stored nowhere: no other process can close them
            for ts in publisher.ts:
                await self.notifier.delete(thread.channel_id, ts)
            raise
        reducer = RunReducer(view, RunRecorder())
        status = await typing_status(
            self.notifier, thread, publisher, self.settings.update_interval
        )
        progress = RunProgress(RunWrites(), status=status, task_id=task_id, slot=self.slots.slot())
        try:
            result = await self._consume(
                thread, target, run_id, resume, reducer, publisher, progress, live
            )
            await progress.writes.flush()  # stored before the ending, in the stream's order
            if progress.task_id is not None:  # the task is over, or waits for people
                await self.store.set_open_task(thread.id, None)
            live.ending = True  # its lease goes with its ending (or LeaseLost if not its own)
            await self.finisher.finish(
                thread, target, view, publisher, reducer.recorder, result, resume
            )
        except BaseException as exc:  # cut (stopping), crashed, or no longer this run's owner
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CUT_RUN_TIMEOUT):
                    if isinstance(exc, asyncio.CancelledError | LeaseLost):
                        await publisher.abandon()
                    if not isinstance(exc, LeaseLost):  # its writes are the new owner's now
                        await progress.writes.flush()  # what its events stored lands first
            raise
        finally:
            if status is not None and not live.lost:
                self.tasks.background(status.clear())

    async def _started(
        self,
        thread: Thread,
        run_id: str,
        resume: approvals.Resume | None,
        live_ts: list[str],
        live: LiveRun,
    ) -> None:
        """Store that the run may reach the agent from now on, with its live messages (for
        recovery), while this process holds its lease; the answers it resumes are `sending`.
        Those of the run before, if not closed yet, stay listed until this run's end closes
        them (a crash in between leaves none live for ever)."""
        if resume is not None:
            kill_points.reached("before_resume")
        since, lease = time.monotonic(), self.settings.run_lease
        fence = fence_op(thread.id, self.firing.owner, time.time() + lease)
        thread.live_ts = [*(t for t in thread.live_ts or [] if t not in live_ts), *live_ts]
        await self.store.update_thread(
            thread.id, also=[fence], live_ts=thread.live_ts, run_sent=run_id
        )
        live.held(since, lease)
        live.stored = True
        for key in resume.interrupt_keys if resume is not None else ():
            await self.store.cas_interrupt(key, "claimed", status="sending")

    def _stoppable(self, thread: Thread) -> bool:
        """The live answer gets a Stop button where Slack shows no Stop of its own (no agent
        sessions) and someone watches it (bots get one final message)."""
        sessions = self.sessions
        return not thread.requester_is_bot and (sessions is None or not sessions.available)

    async def _consume(
        self,
        thread: Thread,
        target: AgentTarget,
        run_id: str,
        resume: approvals.Resume | None,
        reducer: RunReducer,
        publisher: LivePublisher,
        progress: RunProgress,
        live: LiveRun,
    ) -> RunResult:
        run_input = await self.requests.run_input(thread, target, run_id, resume)
        following = progress.task_id
        try:
            if following is not None:
                stream = self.clients.reattach(target, run_input, following)
            else:
                stream = self.clients.stream(target, run_input)
            async with contextlib.aclosing(stream):
                reading = asyncio.ensure_future(
                    self._read(thread, target, run_id, stream, reducer, publisher, resume, progress)
                )
                progress.live = live
                finished = await read_or_stop(reading, live.stop)
            if finished:
                return reading.result()
            if live.lost:  # never `cancel` at the agent: the run may go on for its new owner
                raise LeaseLost(thread.id)
            return await self._stopped(thread, target, run_input, resume, progress, live)
        except TaskGone as exc:
            if following is None:
                raise
            log.warning("task gone after a restart", extra={"conversation": thread.id})
            error = outcomes.restart_error(bool(self.policy(thread.channel_id).escalate_to))
            return RunResult("stream_lost", {"reason": "restart", "error": exc.kind}, error)
        except AgentError as exc:
            if isinstance(exc, AgentAuthError):
                target.credentials_refused()
            if resume is not None and not progress.delivered:
                return outcomes.resume_failure(exc)
            retry_after = exc.retry_after if isinstance(exc, AgentHTTPError) else None
            return outcomes.agent_failure(exc, AgentPlace(target.name, target.origin), retry_after)
        finally:
            if progress.slot is not None:  # the stream is closed: its connection is free again
                progress.slot.release()
            if progress.delivered and target.history == "server":  # the backend has them now
                progress.writes.add(functools.partial(self.store.mark_messages_sent, thread.id))

    async def _read(
        self,
        thread: Thread,
        target: AgentTarget,
        run_id: str,
        stream: AsyncIterator[BaseEvent],
        reducer: RunReducer,
        publisher: LivePublisher,
        resume: approvals.Resume | None,
        progress: RunProgress,
    ) -> RunResult:
        view = reducer.view

        def draw() -> list[SlackMessage]:
            view.stoppable = self._stoppable(thread)  # sessions may have turned out missing
            return self.render(view)

        def render() -> list[SlackMessage]:  # the throttle calls it when due
            return progress.live.gate(draw) if progress.live is not None else draw()

        def waiting(now: bool) -> None:  # no slot free: the message says the run waits in line
            view.waiting = now
            publisher.changed(render)
            if progress.status is not None:
                progress.status.waiting(now)

        if progress.slot is not None:  # taken here, so that a Stop ends the wait too
            await progress.slot.take(waiting)
        feed, writes = reducer.feed, progress.writes
        # Nothing here waits on the database: what is stored goes to `writes`, in order.
        async for event in stream:
            writes.check()
            if not progress.delivered:
                progress.delivered = True
                if event.type != EventType.RUN_STARTED:  # else stored with `run_started`
                    writes.add(functools.partial(self.store.keep_agent, thread.id, target.name))
                if resume is not None:  # the backend took the answers: they become final
                    kill_points.reached("after_resume")
                    keys = resume.interrupt_keys
                    writes.add(functools.partial(self.desk.settle, thread, keys))
            if event.type == EventType.CUSTOM and progress.task_id is None:
                progress.keep_task(self.store, thread.id, event)
            step = feed(event)
            if step is Step.CHANGED:
                if progress.texted or event.type != EventType.TEXT_MESSAGE_CONTENT:
                    publisher.changed(render)
                else:  # the answer's first text: shown at once, the throttle counts from it
                    progress.texted = True
                    publisher.changed(render, now=True)
                if progress.status is not None:
                    progress.show(event)
            elif step is Step.STARTED:
                started = functools.partial(
                    self.firing.fire,
                    thread.id,
                    "run_started",
                    Context(fenced=True),
                    detail={"run_id": run_id},
                    fields={"run_id": run_id, "message_ts": list(publisher.ts)},
                    also=[keep_agent_op(thread.id, target.name)],
                    known=thread,
                )
                writes.add(started)
            elif step is Step.ENDED:
                error, refused = reducer.error, resume is not None and not reducer.answered
                if error is not None and refused and not outcomes.already_answered(error):
                    return outcomes.resume_refused(error)  # (a server that had it: it stands)
                if error is not None:  # sent again after a restart: it had them before
                    resent = refused and resume is not None and resume.resent
                    return outcomes.reply_lost(error) if resent else outcomes.run_error(error)
                return finished_result(
                    thread, run_id, reducer, self.policy(thread.channel_id), self.firing.owner
                )
        raise StreamIncomplete("the stream ended without RUN_FINISHED or RUN_ERROR")

    async def _stopped(
        self,
        thread: Thread,
        target: AgentTarget,
        run_input: RunAgentInput,
        resume: approvals.Resume | None,
        progress: RunProgress,
        live: LiveRun,
    ) -> RunResult:
        """Someone stopped the run: its stream is closed; the agent is told to cancel."""
        by = live.stopped_by or "someone"
        if resume is not None and not progress.delivered:  # it may have them: never sent again
            await self.desk.settle(thread, resume.interrupt_keys)
        told = await cancel_at_agent(
            self.clients, target, run_input, progress.task_id, about=thread.id
        )
        log.info(
            "run stopped",
            extra={"conversation": thread.id, "by": by, "agent": target.name, "cancel": told},
        )
        return outcomes.stopped(by)

    async def _fail_crashed(self, thread: Thread) -> None:
        # The store may be what failed: the thread is told either way, and a thread left in
        # `streaming` is ended by the recovery at the next start.
        try:
            await self.firing.fire(
                thread.id,
                "stream_lost",
                Context(actor="engine", fenced=True),
                detail={"reason": "internal error"},
                fields={"error_kind": "internal", "error_text": "Something went wrong in the bot"},
                expect_state="streaming",
            )
        except LeaseLost:  # the run is another process's now: it says what happened
            return
        except Exception:
            pass
        await self.notifier.say(
            thread.channel_id, thread.thread_ts, sentences.CRASHED, about=thread.id
        )
