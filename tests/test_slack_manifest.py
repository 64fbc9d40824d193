"""The Slack app manifest: what a person pastes into Slack to create the app, in either mode."""

from __future__ import annotations

import pytest
import yaml

from orchestrator.slack.app import HANDLED_EVENTS
from orchestrator.slack.manifest import (
    BOT_EVENTS,
    BOT_SCOPES,
    app_manifest,
    event_types,
    granted_scopes,
    manifest_yaml,
    missing_scopes,
    request_url,
)


def test_socket_mode_manifest_needs_no_url() -> None:
    manifest = app_manifest()
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"] == {"is_enabled": True}
    assert "request_url" not in settings["event_subscriptions"]
    assert "request_url" not in yaml.safe_dump(manifest)


def test_http_manifest_sends_events_and_clicks_to_one_url() -> None:
    settings = app_manifest(http_url="https://bot.example.com")["settings"]
    url = "https://bot.example.com/slack/events"
    assert settings["socket_mode_enabled"] is False
    assert settings["event_subscriptions"]["request_url"] == url
    assert settings["interactivity"] == {"is_enabled": True, "request_url": url}


def test_the_bot_can_be_written_to_directly_and_is_a_bot_user() -> None:
    features = app_manifest(name="Ops helper")["features"]
    assert features["app_home"] == {
        "home_tab_enabled": False,
        "messages_tab_enabled": True,
        "messages_tab_read_only_enabled": False,
    }
    assert features["bot_user"] == {"display_name": "Ops helper", "always_online": True}
    assert features["agent_view"]["agent_description"]  # declared an agent: sessions, Stop


def test_scopes_and_events_cover_channels_private_channels_dms_and_group_dms() -> None:
    manifest = app_manifest()
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert scopes == [need.name for need in BOT_SCOPES]
    assert events == [need.name for need in BOT_EVENTS]
    assert {"app_mentions:read", "chat:write", "usergroups:read", "assistant:write"} <= set(scopes)
    assert {"agent_session_stopped", "app_home_opened"} <= set(events)
    for kind in ("channels", "groups", "im", "mpim"):
        assert f"{kind}:history" in scopes
        assert f"message.{kind}" in events
    assert event_types() == {
        "app_mention",
        "message",
        "agent_session_stopped",
        "app_home_opened",
    }
    assert len(set(scopes)) == len(scopes) and len(set(events)) == len(events)
    assert all(need.why for need in (*BOT_SCOPES, *BOT_EVENTS))


def test_the_yaml_is_the_manifest_with_a_note_on_where_to_paste_it() -> None:
    text = manifest_yaml(http_url="https://bot.example.com/orchestrator/")
    assert text.startswith("# Slack app manifest (HTTP mode")
    assert "From a manifest" in text
    assert yaml.safe_load(text) == app_manifest(http_url="https://bot.example.com/orchestrator")
    assert "https://bot.example.com/orchestrator/slack/events" in text


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://bot.example.com", "https://bot.example.com/slack/events"),
        ("https://bot.example.com/", "https://bot.example.com/slack/events"),
        ("https://bot.example.com/slack/events", "https://bot.example.com/slack/events"),
        ("https://example.com/bots/ops", "https://example.com/bots/ops/slack/events"),
        (" https://bot.example.com:8443 ", "https://bot.example.com:8443/slack/events"),
    ],
)
def test_request_url(given: str, expected: str) -> None:
    assert request_url(given) == expected


@pytest.mark.parametrize("given", ["http://bot.example.com", "bot.example.com", "https://"])
def test_a_url_slack_would_not_call_is_refused_with_the_reason(given: str) -> None:
    with pytest.raises(ValueError, match="not an https URL: Slack sends events only to a public"):
        app_manifest(http_url=given)


def test_names_slack_would_refuse_are_refused() -> None:
    with pytest.raises(ValueError, match="1 to 35 characters"):
        app_manifest(name="x" * 36)
    with pytest.raises(ValueError, match="1 to 35 characters"):
        app_manifest(name="  ")
    with pytest.raises(ValueError, match="at most 140 characters"):
        app_manifest(description="x" * 141)


def test_missing_scopes_are_named_from_the_granted_header() -> None:
    granted = granted_scopes("app_mentions:read,chat:write, channels:history,groups:history")
    assert [need.name for need in missing_scopes(granted)] == [
        "im:history",
        "mpim:history",
        "usergroups:read",
        "assistant:write",
    ]
    everything = ",".join(need.name for need in BOT_SCOPES) + ",users:read"
    assert missing_scopes(granted_scopes(everything)) == []
    assert len(missing_scopes(granted_scopes(None))) == len(BOT_SCOPES)


def test_the_manifest_subscribes_to_exactly_the_events_the_bot_handles() -> None:
    assert event_types() == set(HANDLED_EVENTS)
