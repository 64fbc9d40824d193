"""The runs streaming in this process, and stopping one: reading a run's stream until it ends or
someone stops it, and telling the agent to cancel (`orchestrator.engine.stops` decides who may
stop, and stores the stop for whichever replica streams the run)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from ag_ui.core import RunAgentInput

from orchestrator.agent.contract import AgentClients
from orchestrator.agent.targets import AgentTarget
from orchestrator.core.outcomes import RunResult

log = logging.getLogger("orchestrator.engine")

CANCEL_TIMEOUT = 10.0  # seconds the agent gets to take a stopped run's cancel


@dataclass(slots=True)
class LiveRun:
    """A run streaming in this process, and whether someone stopped it."""

    version: int  # the thread's version when it started: a stop stored before is not for it
    started_at: float = field(default_factory=time.time)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stopped_by: str | None = None

    def stop_for(self, by: str, version: int) -> bool:
        """Stop this run for a stop stored when the thread was at `version`. True when this
        call stopped it (not before it started, not twice)."""
        if version < self.version or self.stop.is_set():
            return False
        self.stopped_by = by
        self.stop.set()
        return True


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
