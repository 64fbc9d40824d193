"""The agent seam: the one interface the engine runs agents through.

A run input (`ag_ui.core.RunAgentInput`) goes in; an async stream of typed `ag_ui.core` events
comes out, ending with RUN_FINISHED or RUN_ERROR. Failures are the typed errors of
`orchestrator.agent.errors`. AG-UI is the engine's own event language; any other protocol is a
client here that translates at the edge, chosen by the target's `protocol`.

A protocol whose runs follow a task on the agent's side (A2A) announces the task with a CUSTOM
event named `AGENT_TASK_EVENT` (value `{"taskId": …}`); the engine keeps it with the run, and
after a restart `reattach` follows that task to its end instead of losing it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol, runtime_checkable

from ag_ui.core import BaseEvent, RunAgentInput

from orchestrator.agent.agui.client import AgentClient
from orchestrator.agent.errors import AgentError, TaskGone
from orchestrator.agent.targets import AgentTarget

AGENT_TASK_EVENT = "agent_task"


class ProtocolClient(Protocol):
    """Runs agents of one protocol.

    A client may also offer `cancel` (see `Cancellable`): the engine calls it when someone stops
    a run, after closing the run's stream (which, for AG-UI over HTTP, is the whole of a cancel:
    the server sees the connection closed).
    """

    def stream(self, target: AgentTarget, run_input: RunAgentInput) -> AsyncIterator[BaseEvent]:
        """The run's events, ending with (and including) RUN_FINISHED or RUN_ERROR."""
        ...


@runtime_checkable
class Cancellable(Protocol):
    """A protocol client that can tell the agent to stop a run (A2A: `CancelTask`)."""

    async def cancel(
        self, target: AgentTarget, run_input: RunAgentInput, task_id: str | None
    ) -> None:
        """Stop the run that `stream(target, run_input)` started; its stream is already closed.

        `run_input.thread_id` and `run_input.run_id` name the run; `task_id` is the agent-side
        task it announced (`AGENT_TASK_EVENT`), if any. Raises the typed errors of
        `orchestrator.agent.errors` on failure (the engine logs them; the run is stopped here
        either way)."""
        ...


@runtime_checkable
class TaskFollower(Protocol):
    """A protocol client that can follow a task started by an earlier process."""

    def reattach(
        self, target: AgentTarget, run_input: RunAgentInput, task_id: str
    ) -> AsyncIterator[BaseEvent]:
        """The rest of the task's run, as `stream` gives it; raises `TaskGone` when the agent
        no longer knows the task."""
        ...


class AguiClient:
    """AG-UI over HTTP + SSE: the target's URL with its headers and fresh credentials."""

    def __init__(self, client: AgentClient) -> None:
        self.client = client

    def stream(self, target: AgentTarget, run_input: RunAgentInput) -> AsyncIterator[BaseEvent]:
        # The client's own generator, not a wrapper around it: a layer per event costs.
        return self.client.stream(target.url, run_input, headers=target.request_headers)


class UnknownProtocol(AgentError):
    kind = "agent_protocol"
    title = "The agent's protocol is not supported"
    retryable = False


class AgentClients:
    """The client of each protocol, picked by `AgentTarget.protocol`."""

    def __init__(self, clients: Mapping[str, ProtocolClient]) -> None:
        self.clients = dict(clients)

    def stream(self, target: AgentTarget, run_input: RunAgentInput) -> AsyncIterator[BaseEvent]:
        client = self.clients.get(target.protocol)
        if client is None:
            return _failing(
                UnknownProtocol(
                    f"The agent `{target.name}` uses the protocol {target.protocol!r}; "
                    f"this bot speaks {', '.join(sorted(self.clients))}."
                )
            )
        return client.stream(target, run_input)

    async def cancel(
        self, target: AgentTarget, run_input: RunAgentInput, task_id: str | None = None
    ) -> bool:
        """Ask the agent to stop the run, where its protocol can (see `Cancellable`). False when
        the protocol has no cancel of its own (closing the stream was all there was to do)."""
        client = self.clients.get(target.protocol)
        if not isinstance(client, Cancellable):
            return False
        await client.cancel(target, run_input, task_id)
        return True

    def can_reattach(self, target: AgentTarget) -> bool:
        return hasattr(self.clients.get(target.protocol), "reattach")

    def reattach(
        self, target: AgentTarget, run_input: RunAgentInput, task_id: str
    ) -> AsyncIterator[BaseEvent]:
        client = self.clients.get(target.protocol)
        if not isinstance(client, TaskFollower):
            return _failing(TaskGone(f"Runs of `{target.name}` cannot be followed again."))
        return client.reattach(target, run_input, task_id)

    async def aclose(self) -> None:
        for client in self.clients.values():
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()


async def _failing(error: AgentError) -> AsyncIterator[BaseEvent]:
    raise error
    yield  # an async generator that fails when first read
