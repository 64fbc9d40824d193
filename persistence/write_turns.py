"""Whose write goes next: the writes that answer Slack first, then the others in order.

A SQLite file has one writer, so the process's write transactions take turns on one connection
(persistence/schema.py); on PostgreSQL they share the connection pool with the reads, at most
two thirds of it at once. Turns given in arrival order (as the pool's own queue does) let a
burst of streaming runs' writes (each run stores its start, its progress and its ending) hold
up the write a Slack delivery is waiting on, and past Slack's 3 s the delivery is retried; past
the pool timeout the message is refused, and a run's write fails, losing the answer. So turns
have two lines:

- **urgent**: writes made while a Slack request waits for its answer (`urgent()` marks them:
  the inbound HTTP request or Socket Mode envelope, until it is acknowledged). They go before
  every other waiting write and wait at most the pool timeout (then SQLAlchemy's pool
  TimeoutError, a `DatabaseFailure`: the sender is told, or Slack redelivers).
- **in order**: everything else (runs, recovery, housekeeping). No deadline: under a load the
  process cannot write as fast as it is asked, a run's writes wait their turn rather than fail
  and lose the answer. Each turn is bounded anyway: a transaction waits at most `busy_timeout`
  for another process's lock.

asyncio has no semaphore with priorities (nor does SQLAlchemy's pool), hence this small one: a
turn is handed from the writer that ends to the first urgent waiter, else the first in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from collections.abc import AsyncIterator, Iterator

from sqlalchemy.exc import TimeoutError as PoolTimeout

_URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar("urgent_writes", default=False)


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """The writes made inside (and in tasks started inside) go first: a Slack request waits."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


def not_urgent() -> contextvars.Context:
    """A copy of the current context whose writes take their turn in order: for the work a
    request starts in the background (a run), which must not go before other requests."""
    context = contextvars.copy_context()
    context.run(_URGENT.set, False)
    return context


class WriteTurns:
    """`slots` writers at once (one on SQLite)."""

    __slots__ = ("_holders", "_in_order", "_slots", "_timeout", "_urgent")

    def __init__(self, urgent_timeout: float, slots: int = 1) -> None:
        self._timeout = urgent_timeout
        self._slots = slots
        self._holders = 0  # writers that have a turn
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._in_order: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._urgent) + len(self._in_order)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        await self._acquire(_URGENT.get())
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, first: bool) -> None:
        if self._holders < self._slots and not self.waiting:
            self._holders += 1
            return
        line = self._urgent if first else self._in_order
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line.append(waiter)
        try:
            if first:
                async with asyncio.timeout(self._timeout):
                    await waiter
            else:
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._release()  # it was handed the turn as it gave up: pass it on
            else:
                with contextlib.suppress(ValueError):  # `_release` may have dropped it
                    line.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise PoolTimeout(
                    f"no turn to write within {self._timeout:g} s "
                    "(ORCH_DATABASE_POOL_TIMEOUT): the database is too busy"
                ) from exc
            raise

    def _release(self) -> None:
        for line in (self._urgent, self._in_order):
            while line:
                waiter = line.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the turn passes on: `_holders` stays
                    return
        self._holders -= 1
