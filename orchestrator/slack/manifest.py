"""The Slack app this service needs, kept in one place.

The bot scopes and events below are the only list of them: `orchestrator manifest` prints them
as a Slack app manifest (paste it at https://api.slack.com/apps > Create New App > From a
manifest), and `orchestrator check` compares the scopes a bot token was granted with them. Each
entry says what it is for, so a missing one can be explained.

Pure: no I/O, no Slack calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

EVENTS_PATH: Final = "/slack/events"  # HTTP mode: events and interactivity arrive here
DEFAULT_NAME: Final = "Agent"
DEFAULT_DESCRIPTION: Final = "An AI agent in Slack threads: answers, approvals, follow-ups."
AGENT_DESCRIPTION: Final = (
    "Answers in threads, asks for approval before it acts, and picks up follow-ups."
)
NAME_LIMIT: Final = 35  # Slack's limits for display_information.name and description
DESCRIPTION_LIMIT: Final = 140


@dataclass(frozen=True, slots=True)
class Need:
    """A scope or an event the bot needs, and what it is for."""

    name: str
    why: str


BOT_SCOPES: Final[tuple[Need, ...]] = (
    Need("app_mentions:read", "to hear mentions of the bot in channels"),
    Need(
        "channels:history",
        "to hear follow-ups in public channels' threads and read a thread before answering",
    ),
    Need(
        "groups:history",
        "to hear follow-ups in private channels' threads and read a thread before answering",
    ),
    Need("im:history", "to hear direct messages to the bot"),
    Need("mpim:history", "to hear group direct messages that include the bot"),
    Need(
        "chat:write",
        "to post, stream and edit answers and approval forms, and show the thread status",
    ),
    Need("usergroups:read", "to resolve user groups named as approvers or as people to ask"),
    Need(
        "assistant:write",
        "the agent scope: agent sessions (a status and Slack's Stop per thread) and suggested "
        "prompts in the Messages tab",
    ),
)

BOT_EVENTS: Final[tuple[Need, ...]] = (
    Need("app_mention", "a mention of the bot starts or continues a thread"),
    Need("message.channels", "messages in public channels (thread follow-ups, listen rules)"),
    Need("message.groups", "messages in private channels (thread follow-ups, listen rules)"),
    Need("message.im", "direct messages to the bot"),
    Need("message.mpim", "group direct messages that include the bot"),
    Need("agent_session_stopped", "Slack's Stop on a thread's agent session stops its run"),
    Need("app_home_opened", "opening the Messages tab shows the suggested prompts"),
)


def required_scopes() -> frozenset[str]:
    return frozenset(need.name for need in BOT_SCOPES)


def event_types() -> frozenset[str]:
    """The event types the bot listens to (`message.im` and friends are all `message`)."""
    return frozenset(need.name.split(".", 1)[0] for need in BOT_EVENTS)


def granted_scopes(header: str | None) -> frozenset[str]:
    """The scopes in Slack's `x-oauth-scopes` response header ("chat:write,im:history")."""
    return frozenset(part.strip() for part in (header or "").split(",") if part.strip())


def missing_scopes(granted: Iterable[str]) -> list[Need]:
    """The bot scopes not in `granted`, in the order of BOT_SCOPES."""
    have = set(granted)
    return [need for need in BOT_SCOPES if need.name not in have]


def request_url(url: str) -> str:
    """The Events API and Interactivity request URL for a service reachable at `url`.

    `https://bot.example.com` and `https://bot.example.com/slack/events` give the same URL.
    Slack only calls https URLs, so anything else is refused with a ValueError that says so.
    """
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError(
            f"{url!r} is not an https URL: Slack sends events only to a public https address, "
            "e.g. https://bot.example.com (the service answers at /slack/events)"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(EVENTS_PATH):
        path += EVENTS_PATH
    return f"https://{parts.netloc}{path}"


def app_manifest(
    *,
    http_url: str | None = None,
    name: str = DEFAULT_NAME,
    description: str = DEFAULT_DESCRIPTION,
) -> dict[str, Any]:
    """The Slack app manifest: Socket Mode unless `http_url` (the service's public URL) is set.

    Both modes enable interactivity (buttons, forms, modals) and the Messages tab, so people can
    write to the bot directly, and declare the app an agent (`agent_view`), which Slack's agent
    sessions need. A ValueError names a value Slack would refuse.
    """
    name = name.strip()
    if not name or len(name) > NAME_LIMIT:
        raise ValueError(f"the app name must be 1 to {NAME_LIMIT} characters, not {name!r}")
    if len(description) > DESCRIPTION_LIMIT:
        raise ValueError(f"the description must be at most {DESCRIPTION_LIMIT} characters")
    events: dict[str, Any] = {"bot_events": [need.name for need in BOT_EVENTS]}
    interactivity: dict[str, Any] = {"is_enabled": True}
    if http_url is not None:
        url = request_url(http_url)
        events = {"request_url": url, **events}
        interactivity["request_url"] = url
    return {
        "display_information": {"name": name, "description": description},
        "features": {
            "app_home": {
                "home_tab_enabled": False,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": name, "always_online": True},
            "agent_view": {"agent_description": AGENT_DESCRIPTION},
        },
        "oauth_config": {"scopes": {"bot": [need.name for need in BOT_SCOPES]}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": http_url is None,
            "token_rotation_enabled": False,
        },
    }


def manifest_yaml(
    *,
    http_url: str | None = None,
    name: str = DEFAULT_NAME,
    description: str = DEFAULT_DESCRIPTION,
) -> str:
    """The manifest as YAML, with a comment saying where to paste it and what comes next."""
    mode = f"HTTP mode: Slack calls {request_url(http_url)}" if http_url else "Socket Mode"
    head = (
        f"# Slack app manifest ({mode}).\n"
        "# https://api.slack.com/apps > Create New App > From a manifest: paste this, create,\n"
        "# then Install to Workspace (see the README, 'Create the Slack app').\n"
    )
    body = app_manifest(http_url=http_url, name=name, description=description)
    return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
