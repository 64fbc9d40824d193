"""Interrupts (approvals, forms): compare-and-set on `interrupts.status`, reminders, expiry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Interrupt
from persistence.recovery_reads import OPEN_FORMS
from persistence.sessions import Also, StorePart

# An answer put back: its form takes a new one.
RELEASED: dict[str, Any] = {
    "status": "pending",
    "answered_by": None,
    "answered_at": None,
    "answer": None,
    "decision": None,
}


def interrupts_op(keys: Sequence[str], held: Sequence[str], **fields: Any) -> Also:
    """Set `fields` on the interrupts `keys` that are still in one of the `held` statuses, in
    the transaction of a state change (so a crash never leaves one without the other)."""

    async def write(s: AsyncSession) -> None:
        if keys:
            await s.execute(
                update(Interrupt)
                .where(Interrupt.id.in_(list(keys)), Interrupt.status.in_(list(held)))
                .values(**fields)
            )

    return write


def release_op(keys: Sequence[str], *, refused: bool = False) -> Also:
    """Put claimed answers back to pending (their resume was not delivered; or the server
    refused it after it had taken it, `refused`), in the transaction of a state change."""
    held = ("claimed", "sending", "approved", "rejected") if refused else ("claimed", "sending")
    return interrupts_op(keys, held, **RELEASED)


class InterruptsPart(StorePart):
    async def get_interrupt(self, interrupt_key: str) -> Interrupt | None:
        async with self._session() as s:
            return await s.get(Interrupt, interrupt_key)

    async def interrupts_of(self, thread_id: str, run_id: str | None = None) -> list[Interrupt]:
        query = select(Interrupt).where(Interrupt.thread_id == thread_id)
        if run_id is not None:
            query = query.where(Interrupt.run_id == run_id)
        async with self._session() as s:
            return list((await s.scalars(query.order_by(Interrupt.created_at))).all())

    async def set_interrupt(self, interrupt_key: str, **fields: Any) -> None:
        async with self._writing.begin() as s:
            await s.execute(update(Interrupt).where(Interrupt.id == interrupt_key).values(**fields))

    async def cas_interrupt(
        self,
        interrupt_key: str,
        expected: str | Sequence[str],
        also: Sequence[Also] = (),
        **fields: Any,
    ) -> bool:
        """Compare-and-set on the interrupt's status: True only for the one caller that wins.
        `also`: writes of the same transaction (a lease fence)."""
        expected = (expected,) if isinstance(expected, str) else tuple(expected)
        async with self._writing.begin() as s:
            for write in also:
                await write(s)
            result = await s.execute(
                update(Interrupt)
                .where(Interrupt.id == interrupt_key, Interrupt.status.in_(expected))
                .values(**fields)
            )
            return result.rowcount == 1

    async def take_form(self, interrupt_key: str, seen: str | None, owner: str, now: float) -> bool:
        """This process posts the form from now on, if it is still open, unposted and meant for
        `seen` (its intent when read): one process wins."""
        async with self._writing.begin() as s:
            result = await s.execute(
                update(Interrupt)
                .where(
                    Interrupt.id == interrupt_key,
                    Interrupt.form_ts.is_(None),
                    Interrupt.status.in_(OPEN_FORMS),  # answered or expired meanwhile: not shown
                    Interrupt.form_intent.is_(None)
                    if seen is None
                    else Interrupt.form_intent == seen,
                )
                .values(form_intent=owner, form_intent_at=now)
            )
            return result.rowcount == 1

    async def unposted_forms(self) -> list[Interrupt]:
        """Open forms that Slack has not shown yet (as far as the store knows)."""
        query = select(Interrupt).where(
            Interrupt.form_ts.is_(None), Interrupt.status.in_(("pending", "claimed", "sending"))
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def stale_claims(self, answered_before: float) -> list[Interrupt]:
        """Answers claimed long ago and never sent: their process died in between."""
        query = select(Interrupt).where(
            Interrupt.status == "claimed", Interrupt.answered_at < answered_before
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def due_interrupts(self, now: float) -> list[Interrupt]:
        query = select(Interrupt).where(
            Interrupt.status == "pending",
            Interrupt.expires_at.is_not(None),
            Interrupt.expires_at <= now,
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())

    async def due_reminders(self, now: float) -> list[Interrupt]:
        query = select(Interrupt).where(
            Interrupt.status == "pending",
            Interrupt.remind_at.is_not(None),
            Interrupt.remind_at <= now,
        )
        async with self._session() as s:
            return list((await s.scalars(query)).all())
