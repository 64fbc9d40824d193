"""Channel configuration (`ORCH_CONFIG` file or inline `SLACK_INTEGRATION_BOT_CONFIG` YAML).

Validated with pydantic at start-up; an error names the channel and the field.

    agent_base: "https://agents.example.com/agents/{agent_id}"
    defaults:
      agent: default-agent          # an agent id (with agent_base) or a full URL
      approvers: [requester]        # user ids (U…), user-group ids (S…), or "requester"
      approval_timeout: 86400       # seconds; an interrupt's own expiresAt wins
      approval_reminder: 3600       # seconds before expiry; omit for no reminder
      escalate_to: [S0ONCALL]       # pinged by "Get help": user ids (U…) or user-group ids (S…)
    channels:
      C0123456:
        name: ops
        agent: ops-agent
        approvers: [U0LEAD, S0ONCALL]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, field_validator

from orchestrator.agents import AgentTarget


class ConfigFileError(ValueError):
    """The channel configuration cannot be used; the message names where and why."""


class ChannelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    agent: str | None = None
    approvers: list[str] | None = None
    approval_timeout: PositiveFloat | None = None
    approval_reminder: PositiveFloat | None = None
    escalate_to: list[str] | None = None

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
    defaults: ChannelSettings = Field(default_factory=ChannelSettings)
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)

    @field_validator("agent_base")
    @classmethod
    def _has_placeholder(cls, value: str | None) -> str | None:
        if value is not None and "{agent_id}" not in value:
            raise ValueError("must contain {agent_id}, e.g. https://host/agents/{agent_id}")
        return value


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """Everything the engine needs to know about one channel."""

    agent: AgentTarget
    approvers: tuple[str, ...] = ("requester",)
    approval_timeout: float | None = None
    approval_reminder: float | None = None
    escalate_to: tuple[str, ...] = ()  # who "Get help" pings; empty: no button


def parse_config(text: str, source: str) -> ChannelConfig:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigFileError(f"{source}: YAML syntax error{at}: {exc}") from exc
    try:
        return ChannelConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigFileError(f"{source}: {problems}") from exc


def load_config(path: Path | None, inline: str | None) -> ChannelConfig:
    if path is not None:
        try:
            return parse_config(path.read_text(encoding="utf-8"), str(path))
        except OSError as exc:
            raise ConfigFileError(f"{path}: cannot read: {exc.strerror}") from exc
    if inline:
        return parse_config(inline, "SLACK_INTEGRATION_BOT_CONFIG")
    return ChannelConfig()


class ChannelDirectory:
    """Resolves a channel to its policy: the channel's own settings over the defaults."""

    def __init__(
        self,
        config: ChannelConfig,
        *,
        default_agent_url: str,
        agent_headers: Mapping[str, str],
        approval_timeout: float | None = None,
        approval_reminder: float | None = None,
    ) -> None:
        self.config = config
        self.default_agent_url = default_agent_url
        self.agent_headers = dict(agent_headers)
        self.approval_timeout = approval_timeout
        self.approval_reminder = approval_reminder
        self._cache: dict[str, ChannelPolicy] = {}

    def policy(self, channel_id: str) -> ChannelPolicy:
        policy = self._cache.get(channel_id)
        if policy is None:
            policy = self._cache[channel_id] = self._resolve(channel_id)
        return policy

    def agent(self, channel_id: str) -> AgentTarget:
        return self.policy(channel_id).agent

    def _resolve(self, channel_id: str) -> ChannelPolicy:
        own = self.config.channels.get(channel_id, ChannelSettings())
        base = self.config.defaults

        def pick(name: str) -> Any:
            value = getattr(own, name)
            return value if value is not None else getattr(base, name)

        return ChannelPolicy(
            agent=self._target(pick("agent")),
            approvers=tuple(pick("approvers") or ("requester",)),
            approval_timeout=pick("approval_timeout") or self.approval_timeout,
            approval_reminder=pick("approval_reminder") or self.approval_reminder,
            escalate_to=tuple(pick("escalate_to") or ()),
        )

    def _target(self, agent: str | None) -> AgentTarget:
        if not agent:
            url, name = self.default_agent_url, self.default_agent_url
        elif "://" in agent:
            url, name = agent, agent
        elif self.config.agent_base:
            url, name = self.config.agent_base.format(agent_id=agent), agent
        else:
            raise ConfigFileError(f"agent {agent!r} is an id, but no agent_base is configured")
        return AgentTarget(name=name, url=url, headers=self.agent_headers)
