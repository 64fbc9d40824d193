"""Messages queued behind a thread's run, in the order they were written in Slack."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.errors import AlreadyClaimed
from persistence.models import QueuedMessage
from persistence.sessions import Also, StorePart

# Queued messages run in the order they were written in Slack (ts has a fixed width), whatever
# order their deliveries were handled in.
_QUEUE_ORDER = (QueuedMessage.ts, QueuedMessage.id)


class QueuePart(StorePart):
    async def queued(self, thread_id: str) -> list[QueuedMessage]:
        query = (
            select(QueuedMessage)
            .where(QueuedMessage.thread_id == thread_id)
            .order_by(*_QUEUE_ORDER)
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def threads_with_queue(self) -> list[str]:
        async with self._session() as s:
            return list((await s.scalars(select(QueuedMessage.thread_id).distinct())).all())

    async def queue_head(self, thread_id: str) -> list[QueuedMessage]:
        """The thread's oldest queued message, if any (as a list of at most one)."""
        query = (
            select(QueuedMessage)
            .where(QueuedMessage.thread_id == thread_id)
            .order_by(*_QUEUE_ORDER)
            .limit(1)
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())


def enqueue_op(row: QueuedMessage, *, limit: int, full: Callable[[], None]) -> Also:
    """Queue `row` behind the thread's run, unless `limit` messages wait already (then `full`)."""

    async def write(s: AsyncSession) -> None:
        waiting = await s.scalar(
            select(func.count()).where(QueuedMessage.thread_id == row.thread_id)
        )
        if (waiting or 0) >= limit:
            full()
            return
        s.add(row)

    return write


def queue_head_op(thread_id: str, into: list[QueuedMessage]) -> Also:
    """Put the thread's oldest queued message (if any) in `into`, read with the state change
    that lets it run."""

    async def write(s: AsyncSession) -> None:
        into.clear()
        head = await s.scalar(
            select(QueuedMessage)
            .where(QueuedMessage.thread_id == thread_id)
            .order_by(*_QUEUE_ORDER)
            .limit(1)
        )
        if head is not None:
            into.append(head)

    return write


def dequeue_op(queued_id: int) -> Also:
    """Take a queued message off the queue to run it; AlreadyClaimed (and no write at all) when
    another process took it first, so it runs once whoever picks the queue up."""

    async def write(s: AsyncSession) -> None:
        result = await s.execute(delete(QueuedMessage).where(QueuedMessage.id == queued_id))
        if result.rowcount != 1:
            raise AlreadyClaimed(f"queued:{queued_id}")

    return write
