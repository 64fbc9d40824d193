"""The engine's task supervisor: runs and actions started in the background, housekeeping that
must not hold a run up, and the stop that lets runs finish within a grace period."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from orchestrator import answering
from persistence.write_turns import not_urgent

log = logging.getLogger("orchestrator.engine")


class Tasks:
    def __init__(self) -> None:
        self.closing = False  # stopping: no queued message starts a run here any more
        self._cut = asyncio.Event()  # stopping without waiting for the runs any longer
        self._work: set[asyncio.Task[None]] = set()
        self._housekeeping: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """A run or an action: the engine is busy until it ends. Started by a request, it begins
        once no Slack request waits for its answer (orchestrator/answering.py), and its writes
        do not go before other requests' (persistence/write_turns.py)."""
        task = asyncio.create_task(_after_answers(coro), context=not_urgent())
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    def background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Housekeeping that must not hold a run up (nor count as the engine being busy)."""
        task = asyncio.create_task(coro, context=not_urgent())
        self._housekeeping.add(task)
        task.add_done_callback(self._housekeeping.discard)

    @property
    def busy(self) -> bool:
        return bool(self._work)

    async def drain(self) -> None:
        """Wait until every run and action started here has finished."""
        while self._work:
            await asyncio.gather(*list(self._work), return_exceptions=True)

    async def let_finish(self, grace: float, runs: int) -> None:
        """Stopping: what still runs gets `grace` seconds to finish (or until `cut`)."""
        self.closing = True
        if not self._work or grace <= 0:
            return
        log.info(
            "waiting for runs to finish; a second stop signal cuts them",
            extra={"runs": runs, "grace": grace},
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        cut = asyncio.ensure_future(self._cut.wait())
        try:
            while self._work and not cut.done() and loop.time() < deadline:
                await asyncio.wait(
                    [*self._work, cut],
                    timeout=deadline - loop.time(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
        finally:
            cut.cancel()

    def cut(self) -> None:
        """Stop waiting in `let_finish` now."""
        self._cut.set()

    async def cancel(self) -> None:
        """Cancel everything and wait for it to end."""
        self.closing = True
        for task in [*self._work, *self._housekeeping]:
            task.cancel()
        await self.drain()
        await asyncio.gather(*self._housekeeping, return_exceptions=True)


async def _after_answers(coro: Coroutine[Any, Any, None]) -> None:
    try:
        await answering.settled()
    except BaseException:
        coro.close()  # cancelled before it began
        raise
    await coro
