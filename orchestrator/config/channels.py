"""Each channel's policy (its agent and routes, approvers, listening rules), resolved from the
channel configuration (`orchestrator.config.channel_schema`) over its defaults."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.agent.credentials import ClientCredentials
from orchestrator.agent.targets import AgentTarget, ProtocolName
from orchestrator.config.channel_loader import load_config, parse_config
from orchestrator.config.channel_schema import (
    DEFAULT_MAX_BOT_RUNS,
    AgentSettings,
    ChannelConfig,
    ChannelSettings,
    ConfigFileError,
    Listen,
    is_kagent_ref,
    is_url,
)

__all__ = [
    "ChannelConfig",
    "ChannelDirectory",
    "ChannelPolicy",
    "ConfigFileError",
    "Listen",
    "load_config",
    "parse_config",
]


KAGENT_A2A_PATH = "/api/a2a/{namespace}/{agent}"


@dataclass(frozen=True, slots=True)
class AgentRoute:
    pattern: re.Pattern[str]
    agent: AgentTarget


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """Everything the engine and the Slack listeners need to know about one channel."""

    agent: AgentTarget
    routes: tuple[AgentRoute, ...] = ()
    approvers: tuple[str, ...] = ("requester",)
    approval_timeout: float | None = None
    approval_reminder: float | None = None
    listen_humans: Listen = "mention"
    listen_bots: Listen = "off"
    max_bot_runs: int = DEFAULT_MAX_BOT_RUNS
    escalate_to: tuple[str, ...] = ()  # who "Get help" pings; empty: no button
    suggested_prompts: tuple[tuple[str, str], ...] = ()  # (title, message), for the Messages tab

    def agent_for(
        self, text: str, kept: str | None = None, default: AgentTarget | None = None
    ) -> AgentTarget:
        """The agent a thread kept (when this channel still has it), else the first route whose
        pattern the text matches, else the channel's agent (or `default`)."""
        default = default or self.agent
        if kept is not None:
            for target in (default, *(route.agent for route in self.routes)):
                if target.name == kept:
                    return target
        for route in self.routes:
            if route.pattern.search(text):
                return route.agent
        return default


class ChannelDirectory:
    """Resolves a channel to its policy: the channel's own settings over the defaults.

    Agents listed under `agents:` are built once, so their cached credentials are shared by
    every channel that uses them.
    """

    def __init__(
        self,
        config: ChannelConfig,
        *,
        default_agent_url: str,
        agent_headers: Mapping[str, str],
        default_agent_protocol: ProtocolName = "ag-ui",
        approval_timeout: float | None = None,
        approval_reminder: float | None = None,
        max_bot_runs: int = DEFAULT_MAX_BOT_RUNS,
    ) -> None:
        self.config = config
        self.default_agent_url = default_agent_url
        self.default_agent_protocol: ProtocolName = default_agent_protocol
        self.agent_headers = dict(agent_headers)
        self.approval_timeout = approval_timeout
        self.approval_reminder = approval_reminder
        self.max_bot_runs = max_bot_runs
        self._named = {name: self._build(name, s) for name, s in config.agents.items()}
        self._cache: dict[str, ChannelPolicy] = {}

    def policy(self, channel_id: str) -> ChannelPolicy:
        policy = self._cache.get(channel_id)
        if policy is None:
            policy = self._cache[channel_id] = self._resolve(channel_id)
        return policy

    def agent(self, channel_id: str) -> AgentTarget:
        return self.policy(channel_id).agent

    def targets(self) -> list[AgentTarget]:
        """Every distinct agent the configuration can send runs to (for `orchestrator check`)."""
        found = [self._target(self.config.defaults.agent, self._origin(None))]
        found += self._named.values()
        for channel_id, settings in self.config.channels.items():
            if settings.agent:
                found.append(self._target(settings.agent, self._origin(channel_id)))
        for channel_id in (None, *self.config.channels):
            settings = self.config.channels[channel_id] if channel_id else self.config.defaults
            for index, route in enumerate(settings.routes or []):
                found.append(self._target(route.agent, self._route_origin(channel_id, index)))
        unique: dict[tuple[str, str], AgentTarget] = {}
        for target in found:
            unique.setdefault((target.name, target.url), target)
        return list(unique.values())

    def _resolve(self, channel_id: str) -> ChannelPolicy:
        own = self.config.channels.get(channel_id, ChannelSettings())
        base = self.config.defaults

        def pick(name: str) -> Any:
            value = getattr(own, name)
            return value if value is not None else getattr(base, name)

        def listen(kind: str, default: Listen) -> Listen:
            for rules in (own.listen, base.listen):
                if rules is not None and getattr(rules, kind) is not None:
                    return getattr(rules, kind)
            return default

        origin = self._origin(channel_id if own.agent else None)
        routes_from = channel_id if own.routes is not None else None
        routes = tuple(
            AgentRoute(
                re.compile(route.match, re.IGNORECASE),
                self._target(route.agent, self._route_origin(routes_from, index)),
            )
            for index, route in enumerate(pick("routes") or [])
        )
        return ChannelPolicy(
            agent=self._target(pick("agent"), origin),
            routes=routes,
            approvers=tuple(pick("approvers") or ("requester",)),
            approval_timeout=pick("approval_timeout") or self.approval_timeout,
            approval_reminder=pick("approval_reminder") or self.approval_reminder,
            listen_humans=listen("humans", "mention"),
            listen_bots=listen("bots", "off"),
            max_bot_runs=pick("max_bot_runs") or self.max_bot_runs,
            escalate_to=tuple(pick("escalate_to") or ()),
            suggested_prompts=tuple((p.title, p.message) for p in pick("suggested_prompts") or ()),
        )

    def _origin(self, channel_id: str | None) -> str:
        if channel_id is not None:
            return f"channels.{channel_id}.agent"
        return "defaults.agent" if self.config.defaults.agent else "AGENT_URL"

    @staticmethod
    def _route_origin(channel_id: str | None, index: int) -> str:
        where = f"channels.{channel_id}" if channel_id is not None else "defaults"
        return f"{where}.routes.{index}.agent"

    def _kagent_url(self, ref: str) -> str:
        assert self.config.kagent_base is not None  # parse_config checked it
        namespace, agent = ref.split("/")
        path = KAGENT_A2A_PATH.format(namespace=namespace, agent=agent)
        return self.config.kagent_base.rstrip("/") + path

    def _target(self, agent: str | None, origin: str) -> AgentTarget:
        if not agent:
            target = AgentTarget(
                name=self.default_agent_url,
                url=self.default_agent_url,
                headers=self.agent_headers,
                protocol=self.default_agent_protocol,
            )
        elif agent in self._named:
            target = self._named[agent]
        elif is_kagent_ref(agent):
            url = self._kagent_url(agent)
            target = AgentTarget(name=agent, url=url, headers=self.agent_headers, protocol="a2a")
        elif is_url(agent):
            target = AgentTarget(name=agent, url=agent, headers=self.agent_headers)
        else:
            assert self.config.agent_base is not None  # parse_config checked it
            url = self.config.agent_base.format(agent_id=agent)
            target = AgentTarget(name=agent, url=url, headers=self.agent_headers)
        return replace(target, origin=origin)

    def _build(self, name: str, settings: AgentSettings) -> AgentTarget:
        url = settings.url
        protocol: ProtocolName = settings.protocol or "ag-ui"
        if settings.kagent is not None:
            url = self._kagent_url(settings.kagent)
            protocol = settings.protocol or "a2a"
        elif url is None:
            assert self.config.agent_base is not None  # parse_config checked it
            url = self.config.agent_base.format(agent_id=name)
        headers = {key: value.get_secret_value() for key, value in settings.headers.items()}
        credentials = None
        auth = settings.auth
        if auth is not None and auth.bearer is not None:
            headers["Authorization"] = f"Bearer {auth.bearer.get_secret_value()}"
        elif auth is not None and auth.oauth2 is not None:
            oauth = auth.oauth2
            credentials = ClientCredentials(
                token_url=oauth.token_url,
                client_id=oauth.client_id,
                client_secret=oauth.client_secret,
                scope=oauth.scope,
                audience=oauth.audience,
                client_auth=oauth.client_auth,
            )
        return AgentTarget(
            name=name,
            url=url,
            headers=headers,
            history=settings.history,
            credentials=credentials,
            origin=f"agents.{name}",
            protocol=protocol,
        )
