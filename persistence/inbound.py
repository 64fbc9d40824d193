"""Slack deliveries claimed once: a retry or the same message's other event is refused."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Final

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.errors import AlreadyClaimed
from persistence.models import InboundEvent
from persistence.sessions import Also, StorePart

_CLAIMS = InboundEvent.__table__
_CLAIM = insert(_CLAIMS)  # built once (see persistence/threads.py)
PRUNE_BATCH: Final = 1000
_PRUNE = delete(_CLAIMS).where(
    _CLAIMS.c.key.in_(
        select(_CLAIMS.c.key).where(_CLAIMS.c.at < bindparam("older_than")).limit(PRUNE_BATCH)
    )
)


class InboundPart(StorePart):
    async def prune_inbound(self, older_than: float) -> int:
        """Forget the claims older than `older_than`, at most `PRUNE_BATCH` per write
        transaction: an hour of a busy day's deliveries is tens of thousands of rows, and no
        one transaction should hold the writer (on SQLite, the event loop) that long."""
        pruned = 0
        while True:
            async with self._writing.begin() as s:
                result = await s.execute(_PRUNE, {"older_than": older_than})
            pruned += result.rowcount or 0
            if (result.rowcount or 0) < PRUNE_BATCH:
                return pruned


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
