"""The channel configuration's schema (`ORCH_CONFIG` file or inline `SLACK_INTEGRATION_BOT_CONFIG`
YAML), as pydantic models.

Validated at start-up (`channel_config_loader`); an error names the channel and the field. Any
string may reference the environment as `${NAME}`, so secrets need not be written in the file.

    agent_base: "https://agents.example.com/agents/{agent_id}"
    agents:                         # optional: agents that need more than a URL
      ops-agent:
        url: https://ops.example.com/agui   # omit to use agent_base with the id
        history: server             # client (default): send the whole history every run
        auth:
          bearer: ${OPS_AGENT_TOKEN}
          # or oauth2: {token_url: …, client_id: …, client_secret: ${…}, scope: …}
        headers:
          CF-Access-Client-Id: ${CF_ID}
          CF-Access-Client-Secret: ${CF_SECRET}
    defaults:
      agent: default-agent          # an agent id (above, or with agent_base) or a full URL
      approvers: [requester]        # user ids (U…), user-group ids (S…), or "requester"
      approval_timeout: 86400       # seconds; an interrupt's own expiresAt wins
      approval_reminder: 3600       # seconds before expiry; omit for no reminder
      listen: {humans: mention, bots: "off"}   # mention | message | off
      max_bot_runs: 5               # consecutive bot-started runs per thread, then stop
      escalate_to: [S0ONCALL]       # pinged by "Get help": user ids (U…) or user-group ids (S…)
      suggested_prompts:            # pinned when someone opens the app's Messages tab (at most 4)
        - {title: "Summarise", message: "Summarise the last incident for me"}
    channels:
      C0123456:
        name: ops
        agent: ops-agent
        approvers: [U0LEAD, S0ONCALL]
        listen: {humans: message}

A2A agents (Kagent's among them) say `protocol: a2a`. With `kagent_base` set, an agent written
`namespace/agent` (in `agent:`, in `routes:`, or as `kagent:` under `agents:`) is the Kagent
agent at `{kagent_base}/api/a2a/{namespace}/{agent}`, spoken to over A2A. `routes` send a
thread to another agent when its first message matches (first match wins; else `agent`):

    kagent_base: https://kagent.example.com
    agents:
      k8s-agent-dev: {kagent: kagent/k8s-agent-dev, headers: {CF-Access-Client-Id: ${CF_ID}}}
    defaults:
      agent: kagent/k8s-agent
      routes:
        - {match: "\\b(dev|development)\\b", agent: k8s-agent-dev}
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
    model_validator,
)

from orchestrator.agent.targets import HistoryMode, ProtocolName

Listen = Literal["mention", "message", "off"]
DEFAULT_MAX_BOT_RUNS = 5


class ConfigFileError(ValueError):
    """The channel configuration cannot be used; the message names where and why."""


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


class ListenRules(BaseModel):
    """When the bot answers without being asked: `mention`, `message` (every message) or `off`."""

    model_config = ConfigDict(extra="forbid")

    humans: Listen | None = None
    bots: Listen | None = None

    @field_validator("humans", "bots", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML 1.1 reads an unquoted `off` as false


class OAuth2Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token_url: str
    client_id: str
    client_secret: SecretStr
    scope: str | None = None
    audience: str | None = None
    client_auth: Literal["basic", "post"] = "basic"

    @field_validator("token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not is_url(value):
            raise ValueError("must be an http:// or https:// URL")
        return value


class AgentAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bearer: SecretStr | None = None
    oauth2: OAuth2Settings | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> AgentAuth:
        if (self.bearer is None) == (self.oauth2 is None):
            raise ValueError("give exactly one of bearer or oauth2")
        return self


class AgentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    kagent: str | None = None  # `namespace/agent`, served under kagent_base (implies a2a)
    protocol: ProtocolName | None = None  # ag-ui (default) or a2a
    history: HistoryMode = "client"
    auth: AgentAuth | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not is_url(value):
            raise ValueError("must be an http:// or https:// URL")
        return value


class SuggestedPrompt(BaseModel):
    """A prompt pinned in the app's Messages tab: its label, and the message it sends."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=75)
    message: str = Field(min_length=1, max_length=2000)


MAX_SUGGESTED_PROMPTS = 4  # Slack shows at most four


class Route(BaseModel):
    """Messages whose text matches `match` (a regular expression, case-insensitive) go to
    `agent`."""

    model_config = ConfigDict(extra="forbid")

    match: str
    agent: str

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


class ChannelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    agent: str | None = None
    approvers: list[str] | None = None
    approval_timeout: PositiveFloat | None = None
    approval_reminder: PositiveFloat | None = None
    listen: ListenRules | None = None
    max_bot_runs: PositiveInt | None = None
    escalate_to: list[str] | None = None
    suggested_prompts: list[SuggestedPrompt] | None = Field(None, max_length=MAX_SUGGESTED_PROMPTS)
    routes: list[Route] | None = None

    @field_validator("approvers")
    @classmethod
    def _known_approvers(cls, value: list[str] | None) -> list[str] | None:
        for who in value or []:
            if who != "requester" and who[:1] not in ("U", "W", "S"):
                raise ValueError(
                    f"{who!r} is not a user id (U…/W…), a user-group id (S…) or 'requester'"
                )
        return value

    @field_validator("escalate_to")
    @classmethod
    def _known_targets(cls, value: list[str] | None) -> list[str] | None:
        for who in value or []:
            if who[:1] not in ("U", "W", "S") or not who.isalnum():
                raise ValueError(f"{who!r} is not a user id (U…/W…) or a user-group id (S…)")
        return value


class ChannelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_base: str | None = None
    agents: dict[str, AgentSettings] = Field(default_factory=dict)
    defaults: ChannelSettings = Field(default_factory=ChannelSettings)
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    kagent_base: str | None = None

    @field_validator("kagent_base")
    @classmethod
    def _kagent_url(cls, value: str | None) -> str | None:
        if value is not None and not is_url(value):
            raise ValueError("must be an http:// or https:// URL, e.g. https://kagent.example.com")
        return value

    @field_validator("agent_base")
    @classmethod
    def _has_placeholder(cls, value: str | None) -> str | None:
        if value is not None and "{agent_id}" not in value:
            raise ValueError("must contain {agent_id}, e.g. https://host/agents/{agent_id}")
        return value


def is_kagent_ref(value: str) -> bool:
    """`namespace/agent`: a Kagent agent, served under `kagent_base`."""
    parts = value.split("/")
    return not is_url(value) and len(parts) == 2 and all(parts)
