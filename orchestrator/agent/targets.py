"""Where each channel's runs go: the agent's endpoint and protocol, its credentials, its
history mode."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

HistoryMode = Literal["client", "server"]
ProtocolName = Literal["ag-ui", "a2a"]


class CredentialSource(Protocol):
    """Headers that must be obtained at run time (e.g. an OAuth2 access token)."""

    async def headers(self) -> dict[str, str]: ...

    def forget(self) -> None: ...


@dataclass(frozen=True, slots=True)
class AgentTarget:
    """One AG-UI agent as the engine calls it. `headers` may hold secrets: never log them.

    `origin` says where the agent is configured (e.g. `channels.C0OPS.agent`), so a message
    about an unknown agent can point an admin to the right place.
    """

    name: str  # what people see in messages: the agent id, or the URL
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    history: HistoryMode = "client"
    credentials: CredentialSource | None = field(default=None, repr=False)
    origin: str | None = None
    protocol: ProtocolName = "ag-ui"

    async def request_headers(self) -> dict[str, str]:
        """Static headers plus fresh credentials; raises AgentCredentialsError when unobtainable."""
        headers = dict(self.headers)
        if self.credentials is not None:
            headers |= await self.credentials.headers()
        return headers

    def credentials_refused(self) -> None:
        """The agent answered 401/403: obtain new credentials for the next run."""
        if self.credentials is not None:
            self.credentials.forget()


AgentResolver = Callable[[str], AgentTarget]
