"""What Slack says of the tokens: the bot token (`auth.test`, and the scopes it was granted,
from the `x-oauth-scopes` header of the answer) and the app-level token (a Socket Mode
connection). Used by `orchestrator check`, and at start-up by `orchestrator run`."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator.config.settings import StartError
from orchestrator.service.check_results import Check
from orchestrator.slack.api_errors import slack_error
from orchestrator.slack.manifest import BOT_SCOPES, granted_scopes, missing_scopes

log = logging.getLogger("orchestrator.service")
AUTH = "slack auth.test"
SCOPES = "slack scopes"


async def auth_test_checks(client: AsyncWebClient) -> list[Check]:
    """auth.test with the bot token, then (when it passed) the scopes the token was granted."""
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        return [Check("FAIL", AUTH, _refused(exc))]
    except Exception as exc:  # any transport failure means the check failed; say which
        return [Check("FAIL", AUTH, f"Slack did not answer ({type(exc).__name__})")]
    data = response.data if isinstance(response.data, dict) else {}
    passed = Check(
        "ok",
        AUTH,
        f"bot {data.get('user')} ({data.get('user_id')}) in {data.get('team')} "
        f"({data.get('team_id')})",
    )
    return [passed, scopes_check(response.headers)]


async def require_bot_token(client: AsyncWebClient) -> None:
    """At start-up: a bot token Slack refuses stops the start (StartError); missing scopes,
    or Slack not answering, are logged and the start goes on."""
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        raise StartError(f"cannot start: {_refused(exc)}") from exc
    except Exception as exc:  # Slack unreachable: the service may still come up after it
        log.warning("slack auth.test: Slack did not answer (%s)", type(exc).__name__)
        return
    scopes = scopes_check(response.headers)
    if scopes.status == "FAIL":
        log.warning("%s: %s", scopes.what, scopes.detail)


def _refused(exc: SlackApiError) -> str:
    return (
        f"Slack refused the bot token ({slack_error(exc)}): SLACK_BOT_TOKEN must be "
        "the app's Bot User OAuth Token (xoxb-…) from OAuth & Permissions, of an app installed "
        "in the workspace"
    )


def scopes_check(headers: Mapping[str, object]) -> Check:
    header = next((str(v) for k, v in headers.items() if k.lower() == "x-oauth-scopes"), None)
    if header is None:
        return Check("skip", SCOPES, "Slack did not say which scopes the token has")
    missing = missing_scopes(granted_scopes(header))
    if not missing:
        return Check("ok", SCOPES, f"the {len(BOT_SCOPES)} scopes the bot needs are granted")
    named = "; ".join(f"{need.name} ({need.why})" for need in missing)
    return Check(
        "FAIL",
        SCOPES,
        f"the bot token lacks {named}. Add them under OAuth & Permissions (or paste "
        "`orchestrator manifest` into the app's App Manifest), then reinstall the app",
    )


async def socket_mode_check(client: AsyncWebClient, app_token: str) -> Check:
    """Whether Slack opens a Socket Mode connection for `app_token` (the URL it hands out is
    left unused; each is good for one connection)."""
    what = "slack socket mode"
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = slack_error(exc)
        return Check(
            "FAIL",
            what,
            f"Slack answered {error!r} to apps.connections.open: SLACK_APP_TOKEN must be this "
            "app's app-level token (xapp-…) with the connections:write scope",
        )
    except Exception as exc:  # any transport failure means the check failed; say which
        return Check("FAIL", what, f"Slack did not answer ({type(exc).__name__})")
    return Check("ok", what, "the app-level token opens a connection")
