"""Escalations: someone asked the channel's people for help in a thread; one per thread."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from persistence.models import Escalation
from persistence.sessions import StorePart


class EscalationsPart(StorePart):
    async def add_escalation(
        self, thread_id: str, user: str, targets: Sequence[str], run_id: str | None
    ) -> Escalation | None:
        """Record the thread's escalation; None when someone escalated it already."""
        row = Escalation(
            thread_id=thread_id, user=user, targets=list(targets), run_id=run_id, at=time.time()
        )
        try:
            async with self._writing.begin() as s:
                s.add(row)
        except IntegrityError:
            return None
        return row

    async def get_escalation(self, thread_id: str) -> Escalation | None:
        async with self._session() as s:
            return await s.get(Escalation, thread_id)

    async def remove_escalation(self, thread_id: str, user: str) -> None:
        async with self._writing.begin() as s:
            await s.execute(
                delete(Escalation).where(Escalation.thread_id == thread_id, Escalation.user == user)
            )
