"""Slack deliveries claimed once: a retry or the same message's other event is refused."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.errors import AlreadyClaimed
from persistence.models import InboundEvent
from persistence.sessions import Also, StorePart

_CLAIM = insert(InboundEvent.__table__)  # built once (see persistence/threads.py)


class InboundPart(StorePart):
    async def prune_inbound(self, older_than: float) -> int:
        async with self._writing.begin() as s:
            result = await s.execute(delete(InboundEvent).where(InboundEvent.at < older_than))
            return result.rowcount or 0


def claim_op(keys: Iterable[str]) -> Also:
    """Mark a Slack delivery as taken, with the write that takes it; AlreadyClaimed (and so no
    write at all) for a delivery taken before."""
    now = time.time()
    rows = [{"key": key[:255], "at": now} for key in dict.fromkeys(keys)]

    async def write(s: AsyncSession) -> None:
        if not rows:
            return
        try:
            await s.execute(_CLAIM, rows)
        except IntegrityError:
            raise AlreadyClaimed(rows[0]["key"]) from None

    return write
