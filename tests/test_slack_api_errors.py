"""What the logs and notices say a failed Slack call answered, whatever its body was."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from orchestrator.slack.api_errors import slack_error


def _refused(data: Any, status: int) -> SlackApiError:
    response = AsyncSlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/chat.update",
        req_args={},
        data=data,
        headers={},
        status_code=status,
    )
    return SlackApiError("The request to the Slack API failed.", response)


@pytest.mark.parametrize(
    ("data", "status", "said"),
    [
        ({"ok": False, "error": "ratelimited"}, 429, "ratelimited"),
        ({"ok": False}, 500, "HTTP 500"),
        ("<html>502 Bad Gateway</html>", 502, "HTTP 502"),  # a proxy's page, not JSON
    ],
)
def test_slacks_error_code_else_the_http_status(data: Any, status: int, said: str) -> None:
    assert slack_error(_refused(data, status)) == said


def test_an_error_without_a_response_says_itself() -> None:
    assert slack_error(ConnectionResetError("reset by peer")) == "reset by peer"
