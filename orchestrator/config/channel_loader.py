"""Reading the channel configuration: YAML, `${NAME}` from the environment, and errors that name
the channel and the field."""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.config.channel_schema import (
    ChannelConfig,
    ConfigFileError,
    is_kagent_ref,
    is_url,
)

# `${NAME}` is replaced by the variable; `$${` stays a literal `${` (as in Docker Compose).
_ENV_REF = re.compile(r"\$(\$)\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]+")


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
        if agent.kagent is not None:
            if not is_kagent_ref(agent.kagent):
                problems.append(f"agents.{name}.kagent: write it namespace/agent")
            elif config.kagent_base is None:
                problems.append(f"agents.{name}.kagent: there is no kagent_base to serve it")
        elif agent.url is None and config.agent_base is None:
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
        refs = [(f"{where}.agent", settings.agent)]
        routes = enumerate(settings.routes or [])
        refs += [(f"{where}.routes.{i}.agent", route.agent) for i, route in routes]
        for at, agent in refs:
            problems += _agent_ref_problems(config, at, agent)
    return problems


def _agent_ref_problems(config: ChannelConfig, where: str, agent: str | None) -> list[str]:
    if not agent or is_url(agent) or agent in config.agents:
        return []
    if is_kagent_ref(agent):
        if config.kagent_base is None:
            return [f"{where}: {agent!r} is a Kagent agent, but there is no kagent_base"]
        return []
    if not config.agent_base:
        return [
            f"{where}: {agent!r} is an agent id, but there is no agent_base "
            "(set agent_base, list the agent under agents:, or give a full URL)"
        ]
    return []
