"""A run's database writes, made in order behind its stream: reading never waits on one.

What a run's events ask to be stored while it streams (the agent that answered, the answers that
became final, the agent-side task it follows, the `run_started` transition) goes into the run's
queue and is written there one after the other, in the order the events came, while the next
events are read and shown. Before the run's ending is stored (`finishing`), `flush` waits until
every write has landed, so the thread's transitions keep their order: `run_started`, then the
ending. A write that fails drops the ones after it (they may depend on it) and the failure is
raised to the reader at its next event and by `flush`, as it was when the reader made the
write itself: the run then ends as crashed, and recovery finds the thread where the last
stored write left it.

Nothing the user is told waits on these writes except what always did: the run's request goes to
the agent only once the run is stored (`RunDriver._run`), and the ending only once they landed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

Write = Callable[[], Awaitable[object]]


class RunWrites:
    __slots__ = ("_queue", "_task", "failure")

    def __init__(self) -> None:
        self._queue: deque[Write] = deque()
        self._task: asyncio.Task[None] | None = None
        self.failure: Exception | None = None  # the first write that failed

    def add(self, write: Write) -> None:
        """Queue `write` (made after every write queued before it)."""
        if self.failure is not None:
            return  # the run ends as crashed: nothing after the failed write is stored
        self._queue.append(write)
        if self._task is None:
            self._task = asyncio.create_task(self._write())

    def check(self) -> None:
        """Raise the failure of a write, if one failed."""
        if self.failure is not None:
            raise self.failure

    async def flush(self) -> None:
        """Wait until every queued write has landed; raise the first that failed."""
        task = self._task
        if task is not None:
            await asyncio.shield(task)  # a cancelled caller does not cut a write in half
        self.check()

    async def _write(self) -> None:
        try:
            while self._queue:
                write = self._queue.popleft()
                try:
                    await write()
                except Exception as exc:  # raised to the run, which logs it
                    self.failure = exc
                    self._queue.clear()
                    return
        finally:
            self._task = None
