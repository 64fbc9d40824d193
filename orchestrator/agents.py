"""Where each channel's runs go: the AG-UI endpoint, its auth headers, its history mode."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

HistoryMode = Literal["client", "server"]


@dataclass(frozen=True, slots=True)
class AgentTarget:
    """One AG-UI agent as the engine calls it. `headers` may hold secrets: never log them."""

    name: str  # what people see in messages: the agent id, or the URL
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    history: HistoryMode = "client"

    async def request_headers(self) -> dict[str, str]:
        return dict(self.headers)


AgentResolver = Callable[[str], AgentTarget]


def single_agent(target: AgentTarget) -> AgentResolver:
    """Every channel goes to the same agent."""
    return lambda _channel_id: target
