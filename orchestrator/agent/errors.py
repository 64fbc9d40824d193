"""Typed failures of an AG-UI agent run, each with a stable `kind` and a human `title`.

`detail` is a sentence for people saying what happened; it never carries headers, tokens or
request bodies, so it is safe to log and to show in Slack.
"""

from __future__ import annotations

from typing import ClassVar


class AgentError(Exception):
    """Base of every failure the agent client reports."""

    kind: ClassVar[str] = "agent_error"
    title: ClassVar[str] = "The agent failed"
    retryable: ClassVar[bool] = True

    def __init__(self, detail: str, *, url: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.url = url

    def __str__(self) -> str:
        return f"{self.title}: {self.detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, detail={self.detail!r})"


class AgentUnreachable(AgentError):
    """Connection refused, DNS failure, TLS or other connect-level error."""

    kind = "agent_unreachable"
    title = "The agent could not be reached"


class AgentNotFound(AgentError):
    """HTTP 404: the backend does not know this agent."""

    kind = "agent_not_found"
    title = "The agent was not found"
    retryable = False


class AgentAuthError(AgentError):
    """HTTP 401/403: the backend refused our credentials."""

    kind = "agent_auth_failed"
    title = "The agent refused our credentials"
    retryable = False


class AgentHTTPError(AgentError):
    """Any other non-2xx answer; `retry_after` is in seconds when the backend said so."""

    kind = "agent_http_error"
    title = "The agent returned an error"

    def __init__(
        self,
        detail: str,
        *,
        status: int,
        retry_after: float | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(detail, url=url)
        self.status = status
        self.retry_after = retry_after


class AgentTimeout(AgentError):
    """No first event in time, or silence for too long in the middle of a stream."""

    kind = "agent_timeout"
    title = "The agent took too long to answer"


class StreamIncomplete(AgentError):
    """The stream ended or dropped without RUN_FINISHED or RUN_ERROR."""

    kind = "stream_lost"
    title = "The agent's answer was cut off"


class MalformedEvent(AgentError):
    """A `data:` line that is not JSON, or that breaks the AG-UI schema of a known type."""

    kind = "malformed_event"
    title = "The agent sent an event we could not read"


class AgentCredentialsError(AgentError):
    """The agent's credentials were refused or are unusable (the OAuth2 token endpoint said no,
    or answered without a token): an admin must act."""

    kind = "agent_credentials_unavailable"
    title = "The agent's credentials could not be obtained"
    retryable = False


class CredentialsEndpointDown(AgentCredentialsError):
    """The token endpoint could not be reached, or failed on its side (5xx, 429): may pass."""

    retryable = True


class TaskGone(AgentError):
    """The agent no longer knows the task a run followed (it restarted, or forgot it)."""

    kind = "agent_task_unknown"
    title = "The agent no longer knows this task"
