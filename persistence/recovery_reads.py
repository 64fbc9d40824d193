"""The reads of recovery (at start-up and on every scheduler tick): each one statement, with the
rows it needs joined in, whatever the number of threads. Recovery then works on them in memory;
every write it makes stays a compare-and-set (a row read here may be stale by then)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import String, and_, cast, func, or_, select

from persistence.models import AgentTask, Answer, Interrupt, QueuedMessage, RunLease, Thread
from persistence.sessions import StorePart

OPEN_FORMS = ("pending", "claimed", "sending")  # a form still in play
IN_FLIGHT = ("claimed", "sending")  # an answer taken for a resume, not yet settled

# An interrupt of its thread's current run (all of the thread's while it has no run id), as
# `interrupts_of(thread.id, thread.run_id)` reads them.
_OF_CURRENT_RUN = and_(
    Interrupt.thread_id == Thread.id,
    or_(Thread.run_id.is_(None), Interrupt.run_id == Thread.run_id),
)


@dataclass(slots=True)
class StreamingRun:
    """A thread in `streaming`, its run's lease, its agent-side task, its answers in flight."""

    thread: Thread
    lease: RunLease | None
    task_id: str | None
    answers: list[Interrupt] = field(default_factory=list)


@dataclass(slots=True)
class LeftClaim:
    """An answer claimed and never sent, its thread (waiting on forms), and how many forms of
    the thread's run are still pending."""

    row: Interrupt
    thread: Thread
    pending: int


class RecoveryReadsPart(StorePart):
    async def streaming_runs(self, thread_id: str | None = None) -> list[StreamingRun]:
        """Every thread in `streaming` (or only `thread_id`, if it is) with its lease, its task
        and its answers in flight."""
        streaming = [Thread.state == "streaming"]
        if thread_id is not None:
            streaming.append(Thread.id == thread_id)
        runs = (
            select(Thread, RunLease, AgentTask.task_id)
            .outerjoin(RunLease, RunLease.thread_id == Thread.id)
            .outerjoin(AgentTask, AgentTask.thread_id == Thread.id)
            .where(*streaming)
        )
        answers = (
            select(Interrupt)
            .join(Thread, Thread.id == Interrupt.thread_id)
            .where(*streaming, Interrupt.status.in_(IN_FLIGHT))
            .order_by(Interrupt.created_at)
        )
        async with self._session() as s:
            found = {
                thread.id: StreamingRun(thread, lease, task_id)
                for thread, lease, task_id in (await s.execute(runs)).all()
            }
            if not found:
                return []
            for row in (await s.scalars(answers)).all():
                if row.thread_id in found:
                    found[row.thread_id].answers.append(row)
        return list(found.values())

    async def left_claims(self, answered_before: float) -> list[LeftClaim]:
        """Answers claimed before `answered_before` and never sent (their process died), of
        threads waiting on forms, oldest first."""
        claims = (
            select(Interrupt, Thread)
            .join(Thread, Thread.id == Interrupt.thread_id)
            .where(
                Interrupt.status == "claimed",
                Interrupt.answered_at < answered_before,
                Thread.state == "awaiting_approval",
            )
            .order_by(Interrupt.answered_at)
        )
        pending = (
            select(Interrupt.thread_id, func.count())
            .join(Thread, _OF_CURRENT_RUN)
            .where(
                Interrupt.status == "pending",
                Thread.state == "awaiting_approval",
                Interrupt.thread_id.in_(
                    select(Interrupt.thread_id).where(
                        Interrupt.status == "claimed", Interrupt.answered_at < answered_before
                    )
                ),
            )
            .group_by(Interrupt.thread_id)
        )
        async with self._session() as s:
            rows = (await s.execute(claims)).all()
            if not rows:
                return []
            counts = {thread_id: n for thread_id, n in (await s.execute(pending)).all()}
        return [LeftClaim(row, thread, counts.get(thread.id, 0)) for row, thread in rows]

    async def forms_to_post(self) -> list[tuple[Interrupt, Thread]]:
        """Open forms of the current run of threads waiting on them that Slack has not shown
        yet (as far as the store knows), with their thread, oldest first."""
        query = (
            select(Interrupt, Thread)
            .join(Thread, _OF_CURRENT_RUN)
            .where(
                Interrupt.form_ts.is_(None),
                Interrupt.status.in_(OPEN_FORMS),
                Thread.state == "awaiting_approval",
            )
            .order_by(Interrupt.created_at)
        )
        async with self._session() as s:
            return [(row, thread) for row, thread in (await s.execute(query)).all()]

    async def live_left(self, updated_before: float) -> list[tuple[Thread, Answer | None]]:
        """Threads not streaming whose run's live messages were never closed (see
        `threads_left_live`), with the answer of their run, if stored."""
        query = (
            select(Thread, Answer)
            .outerjoin(Answer, Answer.run_id == Thread.run_id)
            .where(
                Thread.state != "streaming",
                cast(Thread.live_ts, String) != "[]",
                Thread.updated_at < updated_before,
            )
        )
        async with self._session() as s:
            return [(t, a) for t, a in (await s.execute(query)).all() if t.live_ts]

    async def queued_threads(self, states: Sequence[str]) -> list[Thread]:
        """Threads in one of `states` with messages queued."""
        query = select(Thread).where(
            Thread.state.in_(list(states)),
            Thread.id.in_(select(QueuedMessage.thread_id)),
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())
