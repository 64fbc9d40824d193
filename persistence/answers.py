"""Finished answers, and regenerating one."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.errors import AnswerTaken
from persistence.models import Answer, ConversationMessage, Thread
from persistence.sessions import Also, StorePart, column_values

_INSERT_ANSWER = insert(Answer.__table__)  # built once (see persistence/threads.py)


class AnswersPart(StorePart):
    async def get_answer(self, run_id: str) -> Answer | None:
        async with self._session() as s:
            return await s.get(Answer, run_id)

    async def set_answer(self, run_id: str, **fields: Any) -> None:
        async with self._writing.begin() as s:
            await s.execute(update(Answer).where(Answer.run_id == run_id).values(**fields))


def answer_op(row: Answer) -> Also:
    """Record a finished answer (with the state change that finishes its run)."""

    async def write(s: AsyncSession) -> None:
        await s.execute(_INSERT_ANSWER, column_values(row))

    return write


def regenerate_op(thread_id: str, run_id: str, user: str) -> Also:
    """Claim the answer of `run_id` for regeneration and rewind the history to its input.

    Runs inside the thread's versioned update, so of two clicks exactly one gets here with the
    answer still current; the other raises AnswerTaken and its transaction rolls back.
    """

    async def write(s: AsyncSession) -> None:
        current = await s.scalar(select(Thread.run_id).where(Thread.id == thread_id))
        claimed = await s.execute(
            update(Answer)
            .where(Answer.run_id == run_id, Answer.status == "current")
            .values(status="regenerated", regenerated_by=user, regenerated_at=time.time())
        )
        if current != run_id or claimed.rowcount != 1:
            raise AnswerTaken(run_id)
        rows = (
            await s.execute(
                select(ConversationMessage.seq, ConversationMessage.message)
                .where(ConversationMessage.thread_id == thread_id)
                .order_by(ConversationMessage.seq)
            )
        ).all()
        asked = [seq for seq, message in rows if message.get("role") == "user"]
        if not asked:
            raise AnswerTaken(run_id)
        await s.execute(
            delete(ConversationMessage).where(
                ConversationMessage.thread_id == thread_id, ConversationMessage.seq > asked[-1]
            )
        )
        # A backend that keeps its own history is sent the question again.
        await s.execute(
            update(ConversationMessage)
            .where(ConversationMessage.thread_id == thread_id, ConversationMessage.seq == asked[-1])
            .values(sent=False)
        )

    return write
