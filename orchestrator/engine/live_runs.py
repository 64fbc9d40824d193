"""The runs streaming in this process, and stopping one: reading a run's stream until it ends or
someone stops it, and telling the agent to cancel (`orchestrator.engine.stops` decides who may
stop, and stores the stop for whichever replica streams the run). At most
`ORCH_MAX_CONCURRENT_RUNS` runs stream at once; the others wait in line (`RunSlots`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ag_ui.core import RunAgentInput

from orchestrator import metrics
from orchestrator.agent.contract import AgentClients
from orchestrator.agent.targets import AgentTarget
from orchestrator.core.outcomes import RunResult
from renderers.view import SlackMessage

log = logging.getLogger("orchestrator.engine")

CANCEL_TIMEOUT = 10.0  # seconds the agent gets to take a stopped run's cancel


@dataclass(slots=True)
class LiveRun:
    """A run streaming in this process, whether someone stopped it, and whether this process
    still holds its lease.

    The lease is held for sure until `held_until` (this process's monotonic clock: each fenced
    write or renewal that succeeds holds it for one lease from just before it was sent, never
    longer than the lease the store has). Past it, the run writes nothing to Slack until a
    renewal holds it again: another process may own the run by then. `lost`: another process
    took the run over or ended it; the run stops here and writes nothing more.
    """

    version: int  # the thread's version when it started: a stop stored before is not for it
    started_at: float = field(default_factory=time.time)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stopped_by: str | None = None
    held_until: float = 0.0
    lost: bool = False
    stored: bool = False  # its live messages are stored: after a loss, the new owner's to close
    ending: bool = False  # its ending is being stored, which gives its lease up (fenced)
    shown: list[SlackMessage] = field(default_factory=list)  # what the live messages show

    def held(self, since: float, lease: float) -> None:
        """A fenced write or a renewal sent at `since` (monotonic) succeeded."""
        self.held_until = max(self.held_until, since + lease)

    def holds(self) -> bool:
        return not self.lost and time.monotonic() < self.held_until

    def lose(self) -> None:
        """Another process has the run now: it stops here, quietly."""
        self.lost = True
        self.stop.set()

    def gate(self, render: Callable[[], list[SlackMessage]]) -> list[SlackMessage]:
        """What the live messages are drawn with: `render`'s, while the lease is held for sure;
        otherwise what they show already (so the publisher writes nothing)."""
        if self.holds():
            self.shown = render()
        return self.shown

    def stop_for(self, by: str, version: int) -> bool:
        """Stop this run for a stop stored when the thread was at `version`. True when this
        call stopped it (not before it started, not twice)."""
        if version < self.version or self.stop.is_set():
            return False
        self.stopped_by = by
        self.stop.set()
        return True


class RunSlots:
    """At most `limit` runs of this process stream at once; the agent connection pools are sized
    for them (`orchestrator.agent.pool`). A run past the limit waits in line, first come first
    served, instead of waiting for a connection and failing as a timeout."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = asyncio.Semaphore(limit)

    def slot(self) -> RunSlot:
        return RunSlot(self._free)


class RunSlot:
    """One run's place among the runs streaming at once: taken before the run connects to its
    agent, released once its stream is closed (`release` is safe to call in any case)."""

    def __init__(self, free: asyncio.Semaphore) -> None:
        self._free = free
        self.held = False

    async def take(self, waiting: Callable[[bool], None]) -> None:
        """Take a slot; when none is free, `waiting(True)` first and `waiting(False)` once one
        is taken (so the run's message can say it waits in line)."""
        if not self._free.locked():
            await self._free.acquire()  # returns at once
            self.held = True
            return
        waiting(True)
        metrics.RUNS_WAITING.inc()
        try:
            await self._free.acquire()
            self.held = True
        finally:
            metrics.RUNS_WAITING.dec()
        waiting(False)

    def release(self) -> None:
        if self.held:
            self.held = False
            self._free.release()


async def read_or_stop(reading: asyncio.Future[RunResult], stop: asyncio.Event) -> bool:
    """Wait for the run's stream to end, or for a stop. True when the stream ended (its result
    or error is `reading`'s); False when a stop came first and reading was cancelled, which
    closes the stream (for AG-UI over HTTP the agent sees the connection close)."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((reading, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not reading.done():  # stopped, or the service is cutting this run
            reading.cancel()
            await asyncio.wait((reading,))
    return not reading.cancelled()


async def cancel_at_agent(
    clients: AgentClients,
    target: AgentTarget,
    run_input: RunAgentInput,
    task_id: str | None,
    *,
    about: str,
) -> bool:
    """Tell the agent to cancel a stopped run where its protocol can (A2A: `CancelTask`).
    Best effort: a failure is logged, and the run is stopped here either way."""
    try:
        async with asyncio.timeout(CANCEL_TIMEOUT):
            return await clients.cancel(target, run_input, task_id)
    except Exception as exc:
        log.warning(
            "agent not told to cancel",
            extra={"conversation": about, "agent": target.name, "error": repr(exc)},
        )
        return False
