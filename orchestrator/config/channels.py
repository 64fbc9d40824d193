"""Channel configuration (`ORCH_CONFIG` file or inline `SLACK_INTEGRATION_BOT_CONFIG` YAML).

Validated with pydantic at start-up; an error names the channel and the field. Any string may
reference the environment as `${NAME}`, so secrets need not be written in the file.

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
    channels:
      C0123456:
        name: ops
        agent: ops-agent
        approvers: [U0LEAD, S0ONCALL]
        listen: {humans: message}
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.agent.credentials import ClientCredentials
from orchestrator.agent.targets import AgentTarget, HistoryMode

Listen = Literal["mention", "message", "off"]
DEFAULT_MAX_BOT_RUNS = 5

# `${NAME}` is replaced by the variable; `$${` stays a literal `${` (as in Docker Compose).
_ENV_REF = re.compile(r"\$(\$)\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]+")


class ConfigFileError(ValueError):
    """The channel configuration cannot be used; the message names where and why."""


def _is_url(value: str) -> bool:
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
        if not _is_url(value):
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
    history: HistoryMode = "client"
    auth: AgentAuth | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not _is_url(value):
            raise ValueError("must be an http:// or https:// URL")
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

    @field_validator("agent_base")
    @classmethod
    def _has_placeholder(cls, value: str | None) -> str | None:
        if value is not None and "{agent_id}" not in value:
            raise ValueError("must contain {agent_id}, e.g. https://host/agents/{agent_id}")
        return value


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """Everything the engine and the Slack listeners need to know about one channel."""

    agent: AgentTarget
    approvers: tuple[str, ...] = ("requester",)
    approval_timeout: float | None = None
    approval_reminder: float | None = None
    listen_humans: Listen = "mention"
    listen_bots: Listen = "off"
    max_bot_runs: int = DEFAULT_MAX_BOT_RUNS
    escalate_to: tuple[str, ...] = ()  # who "Get help" pings; empty: no button


# --- loading ---------------------------------------------------------------------------


def parse_config(text: str, source: str, env: Mapping[str, str] | None = None) -> ChannelConfig:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        # Only the position and the problem: the offending line may hold a secret.
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise ConfigFileError(f"{source}: YAML syntax error{at}: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigFileError(f"{source}: expected a mapping of settings at the top level")
    problems: list[str] = []
    raw = _substitute(raw, (), os.environ if env is None else env, problems)
    if problems:
        raise ConfigFileError(f"{source}: " + "; ".join(problems))
    try:
        config = ChannelConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(error, raw) for error in exc.errors()]
        raise ConfigFileError(f"{source}: " + "; ".join(problems)) from exc
    problems = _reference_problems(config)
    if problems:
        raise ConfigFileError(f"{source}: " + "; ".join(problems))
    return config


def load_config(path: Path | None, inline: str | None) -> ChannelConfig:
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigFileError(f"{path}: cannot read: {exc.strerror}") from exc
        return parse_config(text, str(path))
    if inline:
        return parse_config(inline, "SLACK_INTEGRATION_BOT_CONFIG")
    return ChannelConfig()


def _substitute(
    value: Any, loc: tuple[Any, ...], env: Mapping[str, str], problems: list[str]
) -> Any:
    """Replace `${NAME}` in every string by the environment variable's value (`$${` is `${`)."""
    if isinstance(value, dict):
        return {k: _substitute(v, (*loc, k), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*loc, i), env, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(match: re.Match[str]) -> str:
        escaped, name = match.groups()
        if escaped:
            return "${"
        if name not in env:
            problems.append(f"{_path(loc)}: environment variable {name} is not set")
            return ""
        return env[name]

    return _ENV_REF.sub(lookup, value)


def _describe(error: Any, raw: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        hint = f"; expected one of: {', '.join(known)}" if known else ""
        return f"{_path(loc, raw)}: unknown key{hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{_path(loc, raw)}: {message}"


def _path(loc: tuple[Any, ...], raw: Mapping[str, Any] | None = None) -> str:
    """`channels.C0OPS (ops).listen.bots`: the channel's name joins its id when it has one."""
    parts = [str(p) for p in loc]
    if raw is not None and len(loc) >= 2 and loc[0] == "channels":
        channel = (raw.get("channels") or {}).get(loc[1])
        name = channel.get("name") if isinstance(channel, dict) else None
        if isinstance(name, str) and name:
            parts[1] = f"{loc[1]} ({name})"
    return ".".join(parts) or "(top level)"


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a mapping at `loc` accepts, found by walking the models' annotations."""
    node: Any = ChannelConfig
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return []
            node = _unwrap(field.annotation)
        elif typing.get_origin(node) is dict:
            node = _unwrap(typing.get_args(node)[1])
        else:
            return []
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _reference_problems(config: ChannelConfig) -> list[str]:
    """What pydantic cannot see field by field: channel keys, and agents that cannot be built."""
    problems: list[str] = []
    for name, agent in config.agents.items():
        if agent.url is None and config.agent_base is None:
            problems.append(
                f"agents.{name}.url: missing, and there is no agent_base to build it from the id"
            )
    entries = [("defaults", config.defaults)]
    for channel_id, settings in config.channels.items():
        label = f"{channel_id} ({settings.name})" if settings.name else channel_id
        if not _CHANNEL_ID.fullmatch(channel_id):
            problems.append(
                f"channels.{label}: not a channel id (C…, G… or D…); "
                "key channels by id and put the name under name:"
            )
        entries.append((f"channels.{label}", settings))
    for where, settings in entries:
        agent = settings.agent
        if agent and not _is_url(agent) and agent not in config.agents and not config.agent_base:
            problems.append(
                f"{where}.agent: {agent!r} is an agent id, but there is no agent_base "
                "(set agent_base, list the agent under agents:, or give a full URL)"
            )
    return problems


# --- resolving -------------------------------------------------------------------------


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
        approval_timeout: float | None = None,
        approval_reminder: float | None = None,
        max_bot_runs: int = DEFAULT_MAX_BOT_RUNS,
    ) -> None:
        self.config = config
        self.default_agent_url = default_agent_url
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
        return ChannelPolicy(
            agent=self._target(pick("agent"), origin),
            approvers=tuple(pick("approvers") or ("requester",)),
            approval_timeout=pick("approval_timeout") or self.approval_timeout,
            approval_reminder=pick("approval_reminder") or self.approval_reminder,
            listen_humans=listen("humans", "mention"),
            listen_bots=listen("bots", "off"),
            max_bot_runs=pick("max_bot_runs") or self.max_bot_runs,
            escalate_to=tuple(pick("escalate_to") or ()),
        )

    def _origin(self, channel_id: str | None) -> str:
        if channel_id is not None:
            return f"channels.{channel_id}.agent"
        return "defaults.agent" if self.config.defaults.agent else "AGENT_URL"

    def _target(self, agent: str | None, origin: str) -> AgentTarget:
        if not agent:
            target = AgentTarget(
                name=self.default_agent_url, url=self.default_agent_url, headers=self.agent_headers
            )
        elif agent in self._named:
            target = self._named[agent]
        elif _is_url(agent):
            target = AgentTarget(name=agent, url=agent, headers=self.agent_headers)
        else:
            assert self.config.agent_base is not None  # parse_config checked it
            url = self.config.agent_base.format(agent_id=agent)
            target = AgentTarget(name=agent, url=url, headers=self.agent_headers)
        return replace(target, origin=origin)

    def _build(self, name: str, settings: AgentSettings) -> AgentTarget:
        url = settings.url
        if url is None:
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
        )
