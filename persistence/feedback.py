"""Feedback on answers (ratings, reasons, comments) and the state of forwarding it."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import flag_modified

from persistence.errors import StaleThread
from persistence.models import Feedback
from persistence.sessions import StorePart


class FeedbackPart(StorePart):
    async def save_feedback(
        self,
        *,
        thread_id: str,
        run_id: str,
        user: str,
        rating: str,
        details: tuple[list[str], str | None] | None = None,
        forward: bool,
    ) -> Feedback:
        """Store `user`'s rating of the answer of `run_id`, replacing their earlier one.

        `details` (reasons, comment) replace the stored ones; without them a changed rating
        clears them and an unchanged one keeps them. `forward` marks the record due for sending.
        """
        now = time.time()
        forwarding: dict[str, Any] = (
            {"forward_state": "pending", "forward_due": now, "forward_attempts": 0}
            if forward
            else {}
        )
        for _ in range(2):
            try:
                async with self._writing.begin() as s:
                    row = await s.scalar(
                        select(Feedback).where(Feedback.run_id == run_id, Feedback.user == user)
                    )
                    if row is None:
                        row = Feedback(
                            thread_id=thread_id,
                            run_id=run_id,
                            user=user,
                            rating=rating,
                            reasons=[],
                            created_at=now,
                            forward_attempts=0,
                        )
                        s.add(row)
                    elif row.rating != rating and details is None:
                        row.reasons, row.comment = [], None
                    row.rating, row.updated_at = rating, now
                    if details is not None:
                        row.reasons, row.comment = list(details[0]), details[1]
                    for key, value in forwarding.items():
                        setattr(row, key, value)
                        # Written even when it reads unchanged: a send finishing meanwhile
                        # may have marked the record sent, and this change must go out too.
                        flag_modified(row, key)
            except IntegrityError:  # the same person's first click, twice at once
                continue
            return row
        raise StaleThread(thread_id)

    async def feedback_of(self, thread_id: str) -> list[Feedback]:
        query = select(Feedback).where(Feedback.thread_id == thread_id).order_by(Feedback.id)
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def feedback_counts(self, run_id: str) -> dict[str, int]:
        query = (
            select(Feedback.rating, func.count())
            .where(Feedback.run_id == run_id)
            .group_by(Feedback.rating)
        )
        async with self._session() as s:
            return {rating: count for rating, count in (await s.execute(query)).all()}

    async def due_forwards(self, now: float) -> list[Feedback]:
        query = select(Feedback).where(
            Feedback.forward_state == "pending", Feedback.forward_due <= now
        )
        async with self._session() as s:
            return list((await s.scalars(query.order_by(Feedback.forward_due))).all())

    async def claim_forward(self, feedback_id: int, due: float, lease_until: float) -> bool:
        """Take a pending forward for sending; False when another task or replica has it."""
        async with self._writing.begin() as s:
            result = await s.execute(
                update(Feedback)
                .where(
                    Feedback.id == feedback_id,
                    Feedback.forward_state == "pending",
                    Feedback.forward_due == due,
                )
                .values(forward_due=lease_until)
            )
            return result.rowcount == 1

    async def settle_forward(self, feedback_id: int, updated_at: float, **fields: Any) -> bool:
        """Record a forwarding outcome unless the feedback changed meanwhile (it is due again)."""
        async with self._writing.begin() as s:
            result = await s.execute(
                update(Feedback)
                .where(Feedback.id == feedback_id, Feedback.updated_at == updated_at)
                .values(**fields)
            )
            return result.rowcount == 1
