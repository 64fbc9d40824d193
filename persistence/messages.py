"""A thread's AG-UI conversation history, in `seq` order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import ConversationMessage
from persistence.sessions import Also, StorePart


class MessagesPart(StorePart):
    async def messages(self, thread_id: str) -> list[dict[str, Any]]:
        query = (
            select(ConversationMessage.message)
            .where(ConversationMessage.thread_id == thread_id)
            .order_by(ConversationMessage.seq)
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def unsent_messages(self, thread_id: str) -> list[dict[str, Any]]:
        query = (
            select(ConversationMessage.message)
            .where(ConversationMessage.thread_id == thread_id, ConversationMessage.sent.is_(False))
            .order_by(ConversationMessage.seq)
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def mark_messages_sent(self, thread_id: str) -> None:
        async with self._writing.begin() as s:
            await s.execute(
                update(ConversationMessage)
                .where(ConversationMessage.thread_id == thread_id)
                .values(sent=True)
            )


# One statement per appended message: its `seq` follows the thread's last one. A constant
# statement, so it is compiled once.
_MESSAGES = ConversationMessage.__table__
_APPEND = insert(_MESSAGES).values(  # a Core statement, built once (see persistence/threads.py)
    thread_id=bindparam("thread"),
    seq=select(func.coalesce(func.max(_MESSAGES.c.seq), 0))
    .where(_MESSAGES.c.thread_id == bindparam("thread"))
    .scalar_subquery()
    + bindparam("offset"),
    message=bindparam("message"),
    sent=bindparam("sent"),
)


def append_op(thread_id: str, messages: Sequence[dict[str, Any]], *, sent: bool = False) -> Also:
    """Append to the thread's AG-UI history (as part of a larger transaction).

    The rows number themselves after the thread's last `seq`, each above the one before it
    whether the driver runs them one by one (numbers may then skip) or as one batch.
    """

    async def write(s: AsyncSession) -> None:
        if not messages:
            return
        rows = [
            {"thread": thread_id, "offset": offset, "message": message, "sent": sent}
            for offset, message in enumerate(messages, start=1)
        ]
        await s.execute(_APPEND, rows)

    return write


def replace_op(thread_id: str, messages: Sequence[dict[str, Any]]) -> Also:
    """Replace the thread's history with the server's MESSAGES_SNAPSHOT."""

    async def write(s: AsyncSession) -> None:
        await s.execute(
            delete(ConversationMessage).where(ConversationMessage.thread_id == thread_id)
        )
        s.add_all(
            ConversationMessage(thread_id=thread_id, seq=i + 1, message=m, sent=True)
            for i, m in enumerate(messages)
        )

    return write
