"""The agent seam: the one interface the engine runs agents through.

A run input (`ag_ui.core.RunAgentInput`) goes in; an async stream of typed `ag_ui.core` events
comes out, ending with RUN_FINISHED or RUN_ERROR. Failures are the typed errors of
`orchestrator.agent.errors`. AG-UI is the engine's own event language; any other protocol is a
client here that translates at the edge, chosen by the target's `protocol`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from ag_ui.core import BaseEvent, RunAgentInput

from orchestrator.agent.agui.client import AgentClient
from orchestrator.agent.errors import AgentError
from orchestrator.agent.targets import AgentTarget


class ProtocolClient(Protocol):
    """Runs agents of one protocol."""

    def stream(self, target: AgentTarget, run_input: RunAgentInput) -> AsyncIterator[BaseEvent]:
        """The run's events, ending with (and including) RUN_FINISHED or RUN_ERROR."""
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


async def _failing(error: AgentError) -> AsyncIterator[BaseEvent]:
    raise error
    yield  # an async generator that fails when first read
