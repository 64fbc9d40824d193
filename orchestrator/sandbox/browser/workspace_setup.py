"""What the sandbox sets up: its channels (from your channel configuration, or its own), its
people, which agent answers, and the environment the real service is started with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from orchestrator.config.channels import ChannelConfig, load_config
from orchestrator.config.settings import Settings
from orchestrator.sandbox.browser.people import APPROVER, BOT_SENDER, Person, people_for

GENERAL = "C0GENERAL"
_SCRIPTED_TOPICS = {
    GENERAL: (
        "The scripted agent answers from your words: “search” or “tool” shows tool calls "
        "and plan steps; “deploy”, “scale” or “approve” pauses for an approval form; "
        "“fail” ends in an error; anything else is a plain answer."
    ),
    "C0APPROVALS": (
        f"Every question pauses for two forms (replicas and a comment, then a date). Only "
        f"{APPROVER.name} may answer them."
    ),
    "C0ALERTS": (
        f"Bots' messages reach the agent without a mention here: write as {BOT_SENDER.name}. "
        "A bot gets the whole answer in one message."
    ),
}
# The service's settings the sandbox picks when you have not set them.
SANDBOX_DEFAULTS = {
    "slack_streaming": ("ORCH_SLACK_STREAMING", "native"),
    "update_interval": ("ORCH_UPDATE_INTERVAL", "0.3"),
    "scheduler_interval": ("ORCH_SCHEDULER_INTERVAL", "1"),
    "shutdown_grace": ("ORCH_SHUTDOWN_GRACE", "1"),
}
# Never handed to the service: the sandbox speaks for Slack.
_SLACK_VARIABLES = ("SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL")


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    topic: str

    def json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "topic": self.topic}


@dataclass(frozen=True, slots=True)
class WorkspaceSetup:
    channels: list[Channel]
    people: list[Person]
    agent: str  # who answers, in words
    scripted: bool  # the sandbox's scripted agent answers
    inline_config: str | None  # the channel configuration the sandbox writes, if it writes one


def your_agent_given(settings: Settings) -> bool:
    """`AGENT_URL`, `ORCH_CONFIG` or the inline configuration set (environment or `.env`)."""
    given = settings.model_fields_set
    return bool({"agent_url", "config_file", "inline_config"} & given)


def scripted_setup(agent_base_url: str) -> WorkspaceSetup:
    """The sandbox's own channels, each answered by a scenario of the scripted agent."""
    config = {
        "defaults": _sandbox_defaults(),
        "channels": {
            GENERAL: {"name": "general", "agent": f"{agent_base_url}/agents/auto"},
            "C0APPROVALS": {
                "name": "approvals",
                "agent": f"{agent_base_url}/agents/interrupt-multi",
                "approvers": [APPROVER.id],
            },
            "C0ALERTS": {
                "name": "alerts",
                "agent": f"{agent_base_url}/agents/tools",
                "listen": {"humans": "mention", "bots": "message"},
            },
        },
    }
    channels = [
        Channel(channel_id, str(settings["name"]), _SCRIPTED_TOPICS[channel_id])
        for channel_id, settings in config["channels"].items()
    ]
    return WorkspaceSetup(
        channels, people_for(None), "the scripted agent", True, yaml.safe_dump(config)
    )


def your_agent_setup(settings: Settings) -> WorkspaceSetup:
    """Your agent: your channel configuration as it is, or, with only `AGENT_URL`, the sandbox's
    channels (approvers, listen rules) all answered by it."""
    if settings.config_file is None and settings.inline_config is None:
        config = {
            "defaults": _sandbox_defaults(),
            "channels": {
                GENERAL: {"name": "general"},
                "C0APPROVALS": {"name": "approvals", "approvers": [APPROVER.id]},
            },
        }
        topic = f"Answered by your agent at {settings.agent_url}."
        channels = [
            Channel(GENERAL, "general", topic),
            Channel("C0APPROVALS", "approvals", f"{topic} Only {APPROVER.name} may approve."),
        ]
        return WorkspaceSetup(
            channels, people_for(None), settings.agent_url, False, yaml.safe_dump(config)
        )
    inline = settings.inline_config.get_secret_value() if settings.inline_config else None
    loaded = load_config(settings.config_file, inline)
    source = str(settings.config_file or "SLACK_INTEGRATION_BOT_CONFIG")
    return WorkspaceSetup(
        _configured_channels(loaded, settings.agent_url),
        people_for(_approvers(loaded)),
        f"the agents of {source}",
        False,
        None,
    )


def _sandbox_defaults() -> dict[str, object]:
    return {
        "approvers": ["requester", APPROVER.id],
        "listen": {"humans": "mention", "bots": "mention"},
        "escalate_to": [APPROVER.id],
    }


def _configured_channels(config: ChannelConfig, agent_url: str) -> list[Channel]:
    default_agent = config.defaults.agent or agent_url
    channels = [
        Channel(
            channel_id,
            settings.name or channel_id.lower(),
            f"Answered by {settings.agent or default_agent} (channel {channel_id}).",
        )
        for channel_id, settings in config.channels.items()
    ]
    if GENERAL not in config.channels:
        topic = f"Not in your configuration: answered by the defaults' agent, {default_agent}."
        channels.insert(0, Channel(GENERAL, "general", topic))
    return channels


def _approvers(config: ChannelConfig) -> list[str]:
    found = list(config.defaults.approvers or [])
    for settings in config.channels.values():
        found += settings.approvers or []
    return found


def service_environment(
    base: Mapping[str, str],
    settings: Settings,
    *,
    setup: WorkspaceSetup,
    slack_token: str,
    slack_api_url: str,
    signing_secret: str,
    database_url: str,
    scripted_agent_url: str | None,
) -> dict[str, str]:
    """The environment of `orchestrator run --http`: yours, with Slack pointed at the emulator,
    the sandbox's database and, where you set none, the sandbox's channels and agent."""
    env = {key: value for key, value in base.items() if key not in _SLACK_VARIABLES}
    env.update(
        SLACK_BOT_TOKEN=slack_token,
        SLACK_SIGNING_SECRET=signing_secret,
        SLACK_API_URL=slack_api_url,
        ORCH_DATABASE_URL=database_url,
        ORCH_LOG_FORMAT="json",  # the page reads the service's log lines
    )
    for field, (variable, value) in SANDBOX_DEFAULTS.items():
        if field not in settings.model_fields_set:
            env[variable] = value
    if scripted_agent_url is not None:
        env["AGENT_URL"] = scripted_agent_url
    if setup.inline_config is not None:
        env.pop("ORCH_CONFIG", None)
        env["SLACK_INTEGRATION_BOT_CONFIG"] = setup.inline_config
    return env
