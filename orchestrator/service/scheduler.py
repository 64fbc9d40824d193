"""Deadlines read from the store, never held in memory: run leases, approval expiries and
reminders, feedback sends to retry, and the pruning of old delivery claims.

Every replica may run it: each expiry and each lost run is a compare-and-set, so only one wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.engine import Engine

log = logging.getLogger("orchestrator.scheduler")

# Slack retries a delivery within minutes; a day of claims covers that with room to spare.
INBOUND_KEEP = 24 * 3600.0
PRUNE_EVERY = 3600.0


class Scheduler:
    def __init__(self, engine: Engine, *, interval: float = 5.0) -> None:
        self.engine = engine
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._pruned_at = 0.0
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        # The flag ends the loop even if the cancel is lost inside a tick (a `wait_for` racing
        # its own timeout can swallow one on Python 3.11), so a stop never waits forever.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def tick(self, now: float | None = None) -> None:
        """Renew run leases, end runs lost elsewhere, expire and remind whatever is due."""
        now = time.time() if now is None else now
        await self.engine.tick(now)
        if now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            pruned = await self.engine.prune_deliveries(now - INBOUND_KEEP)
            log.debug("old delivery claims pruned", extra={"count": pruned})

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler tick failed")
            await asyncio.sleep(self.interval)
