"""Threads and their transitions: the machine state, compare-and-set on `threads.version`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, bindparam, cast, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from persistence.errors import StaleThread
from persistence.models import Thread, Transition
from persistence.sessions import Also, StorePart, column_values, row_by_key

# The statements of every run, built once: a Core statement given its values at execution
# skips the ORM's handling of DML and the building and cache keying of a statement each time.
_THREADS = Thread.__table__
_INSERT_THREAD = insert(_THREADS)
_LOG = insert(Transition.__table__)
# SET from the execution's parameters (the columns they name)
_UPDATE_SEEN = update(_THREADS).where(
    _THREADS.c.id == bindparam("seen_id"), _THREADS.c.version == bindparam("seen_version")
)
_UPDATE = update(_THREADS).where(_THREADS.c.id == bindparam("seen_id"))
_UPDATE_WHEN_RUN = _UPDATE.where(_THREADS.c.run_sent == bindparam("seen_run"))


class ThreadsPart(StorePart):
    async def get_thread(self, thread_id: str) -> Thread | None:
        async with self._session() as s:
            return await row_by_key(s, Thread, thread_id)

    def new_thread(
        self, thread_id: str, *, team_id: str, channel_id: str, thread_ts: str, state: str
    ) -> Thread:
        """A thread row that is not stored yet: its first `transition` inserts it."""
        now = time.time()
        return Thread(
            id=thread_id,
            team_id=team_id,
            channel_id=channel_id,
            thread_ts=thread_ts,
            state=state,
            version=0,
            message_ts=[],
            live_ts=[],
            created_at=now,
            updated_at=now,
        )

    async def transition(
        self,
        thread: Thread,
        *,
        to_state: str,
        trigger: str,
        actor: str | None = None,
        detail: dict[str, Any] | None = None,
        also: Sequence[Also] = (),
        **fields: Any,
    ) -> Thread:
        """Move `thread` to `to_state` if nobody changed it since it was read; log the trigger.

        A thread from `new_thread` is inserted in the same transaction (StaleThread if another
        task or replica created it first). `also` are writes (queue, history) that must land
        with the state change or not at all.
        """
        now = time.time()
        values = {**fields, "state": to_state, "version": thread.version + 1, "updated_at": now}
        from_state, created = thread.state, inspect(thread).transient
        async with self._writing.begin() as s:
            if created:
                await _insert_thread(s, thread, values)
            else:
                await _update_thread(s, thread, values)
            await s.execute(
                _LOG,
                {
                    "thread_id": thread.id,
                    "from_state": from_state,
                    "to_state": to_state,
                    "trigger": trigger,
                    "actor": actor,
                    "detail": detail or {},
                    "at": now,
                },
            )
            for write in also:
                await write(s)
        if created:
            make_transient_to_detached(thread)  # stored now: the next transition updates it
        for key, value in values.items():
            setattr(thread, key, value)
        return thread

    async def update_thread(
        self,
        thread_id: str,
        *,
        when_run: str | None = None,
        also: Sequence[Also] = (),
        **fields: Any,
    ) -> None:
        """Write fields that are not the machine's state (message ts, run id); with `when_run`,
        only while that run is still the thread's latest sent to the agent. `also` are writes
        (a lease fence) that must land with them or not at all."""
        query, seen = _UPDATE, {"seen_id": thread_id}
        if when_run is not None:
            query, seen = _UPDATE_WHEN_RUN, {**seen, "seen_run": when_run}
        async with self._writing.begin() as s:
            for write in also:
                await write(s)
            await s.execute(query, {**seen, **fields, "updated_at": time.time()})

    async def record(
        self, thread: Thread, trigger: str, actor: str | None, detail: dict[str, Any] | None = None
    ) -> None:
        """A history entry that changes nothing (e.g. a refused click)."""
        async with self._writing.begin() as s:
            s.add(
                Transition(
                    thread_id=thread.id,
                    from_state=thread.state,
                    to_state=thread.state,
                    trigger=trigger,
                    actor=actor,
                    detail=detail or {},
                    at=time.time(),
                )
            )

    async def list_threads(self, state: str | None = None, limit: int = 500) -> list[Thread]:
        query = select(Thread).order_by(Thread.updated_at.desc()).limit(limit)
        if state:
            query = query.where(Thread.state == state)
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def threads_starting_with(self, prefix: str, limit: int = 2) -> list[Thread]:
        """Threads whose id starts with `prefix` (at most `limit`)."""
        query = select(Thread).where(Thread.id.startswith(prefix, autoescape=True)).limit(limit)
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def threads_at(
        self, thread_ts: str, channel_id: str | None = None, limit: int = 2
    ) -> list[Thread]:
        """Threads whose Slack thread starts at `thread_ts` (in `channel_id`, when given)."""
        query = select(Thread).where(Thread.thread_ts == thread_ts).limit(limit)
        if channel_id is not None:
            query = query.where(Thread.channel_id == channel_id)
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def threads_left_live(self, updated_before: float) -> list[Thread]:
        """Threads not streaming whose run's live messages were never closed (its process died
        between storing the end and showing it), last changed before `updated_before`."""
        query = select(Thread).where(
            Thread.state != "streaming",
            cast(Thread.live_ts, String) != "[]",
            Thread.updated_at < updated_before,
        )
        async with self._session() as s:
            return [t for t in (await s.scalars(query)).all() if t.live_ts]

    async def threads_in(self, state: str) -> list[Thread]:
        async with self._session() as s:
            return list((await s.scalars(select(Thread).where(Thread.state == state))).all())

    async def stop_requests(self, thread_ids: Sequence[str], since: float) -> list[Transition]:
        """The `stop_requested` entries of these threads recorded since `since`, oldest first."""
        query = (
            select(Transition)
            .where(
                Transition.thread_id.in_(list(thread_ids)),
                Transition.trigger == "stop_requested",
                Transition.at >= since,
            )
            .order_by(Transition.id)
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def history(self, thread_id: str) -> list[Transition]:
        query = select(Transition).where(Transition.thread_id == thread_id).order_by(Transition.id)
        async with self._session() as s:
            return list((await s.scalars(query)).all())


async def _insert_thread(s: AsyncSession, thread: Thread, values: dict[str, Any]) -> None:
    try:
        await s.execute(_INSERT_THREAD, {**column_values(thread), **values})
    except IntegrityError:  # created at the same moment by another task or replica
        raise StaleThread(thread.id) from None


async def _update_thread(s: AsyncSession, thread: Thread, values: dict[str, Any]) -> None:
    seen = {"seen_id": thread.id, "seen_version": thread.version}
    result = await s.execute(_UPDATE_SEEN, {**seen, **values})
    if result.rowcount != 1:
        raise StaleThread(thread.id)
