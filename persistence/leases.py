"""Run leases: which process drives a thread's run, and until when.

The lease is also the run's fence: every write a run's process makes for the run (its
transitions, the run's start) goes with `fence_op`, which checks in the same transaction that
this process still holds the lease, and raises `LeaseLost` (rolling everything back) when another
process took the run over or ended it. The check is the owner, never a clock: two processes
whose clocks disagree still never both write for one run.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.errors import LeaseLost
from persistence.models import RunLease, Thread
from persistence.sessions import Also, StorePart, upsert

# The fence of every write of a run, built once (see persistence/threads.py).
_LEASES = RunLease.__table__
_MINE = (
    _LEASES.c.thread_id == bindparam("lease_thread"),
    _LEASES.c.owner == bindparam("lease_owner"),
)
_DROP_MINE = delete(_LEASES).where(*_MINE)
_EXTEND_MINE = update(_LEASES).where(*_MINE).values(expires_at=bindparam("until"))
_CHECK_MINE = update(_LEASES).where(*_MINE).values(expires_at=_LEASES.c.expires_at)


class LeasesPart(StorePart):
    async def renew_leases(
        self, owner: str, thread_ids: Sequence[str], expires_at: float
    ) -> list[str]:
        """Renew the leases `owner` holds on these threads' runs; the threads whose lease it no
        longer holds (taken over or ended by another process), whose runs must stop here."""
        if not thread_ids:
            return []
        ids = list(thread_ids)
        async with self._writing.begin() as s:
            await s.execute(
                update(RunLease)
                .where(RunLease.owner == owner, RunLease.thread_id.in_(ids))
                .values(expires_at=expires_at)
            )
            held = set(
                (
                    await s.scalars(
                        select(RunLease.thread_id).where(
                            RunLease.owner == owner, RunLease.thread_id.in_(ids)
                        )
                    )
                ).all()
            )
        return [thread_id for thread_id in ids if thread_id not in held]

    async def take_lease(
        self,
        thread_id: str,
        seen: str | None,
        owner: str,
        expires_at: float,
        seen_expires: float | None = None,
    ) -> bool:
        """Take over the run lease of a thread whose owner was `seen` (None: no lease), and
        with `seen_expires` only if that owner did not renew it since: one process wins."""
        async with self._writing.begin() as s:
            if seen is None:
                try:
                    async with s.begin_nested():
                        s.add(RunLease(thread_id=thread_id, owner=owner, expires_at=expires_at))
                except IntegrityError:
                    return False
                return True
            query = update(RunLease).where(RunLease.thread_id == thread_id, RunLease.owner == seen)
            if seen_expires is not None:
                query = query.where(RunLease.expires_at == seen_expires)
            result = await s.execute(query.values(owner=owner, expires_at=expires_at))
            return result.rowcount == 1

    async def streaming_leases(self) -> list[tuple[Thread, RunLease | None]]:
        """Every thread in `streaming`, with the lease of its run (None if it has none)."""
        query = (
            select(Thread, RunLease)
            .outerjoin(RunLease, RunLease.thread_id == Thread.id)
            .where(Thread.state == "streaming")
        )
        async with self._session() as s:
            return [(thread, lease) for thread, lease in (await s.execute(query)).all()]


def lease_op(thread_id: str, owner: str | None, expires_at: float = 0.0) -> Also:
    """Take the thread's run lease for `owner`, or drop it (owner None)."""

    async def write(s: AsyncSession) -> None:
        if owner is None:
            await s.execute(delete(RunLease).where(RunLease.thread_id == thread_id))
            return
        await s.execute(
            upsert(s, RunLease, {"thread_id": thread_id}, owner=owner, expires_at=expires_at)
        )

    return write


def fence_op(
    thread_id: str, owner: str, expires_at: float | None = None, *, release: bool = False
) -> Also:
    """Check, in the write's transaction, that `owner` still holds the thread's run lease (and
    extend it to `expires_at`, or drop it with `release`); `LeaseLost` otherwise."""

    async def write(s: AsyncSession) -> None:
        mine = {"lease_thread": thread_id, "lease_owner": owner}
        if release:
            result = await s.execute(_DROP_MINE, mine)
        elif expires_at is not None:
            result = await s.execute(_EXTEND_MINE, {**mine, "until": expires_at})
        else:  # checked only: the row is locked until the transaction ends
            result = await s.execute(_CHECK_MINE, mine)
        if result.rowcount != 1:
            raise LeaseLost(thread_id)

    return write
