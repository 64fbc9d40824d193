"""Run leases: which process drives a thread's run, and until when."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import RunLease, Thread
from persistence.sessions import Also, StorePart, upsert


class LeasesPart(StorePart):
    async def renew_leases(self, owner: str, expires_at: float) -> None:
        async with self._writing.begin() as s:
            await s.execute(
                update(RunLease).where(RunLease.owner == owner).values(expires_at=expires_at)
            )

    async def take_lease(
        self, thread_id: str, seen: str | None, owner: str, expires_at: float
    ) -> bool:
        """Take over the run lease of a thread whose owner was `seen` (None: no lease): one
        process wins."""
        async with self._writing.begin() as s:
            if seen is None:
                try:
                    async with s.begin_nested():
                        s.add(RunLease(thread_id=thread_id, owner=owner, expires_at=expires_at))
                except IntegrityError:
                    return False
                return True
            result = await s.execute(
                update(RunLease)
                .where(RunLease.thread_id == thread_id, RunLease.owner == seen)
                .values(owner=owner, expires_at=expires_at)
            )
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
