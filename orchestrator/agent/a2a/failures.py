"""The `a2a-sdk` client's exceptions as the agent side's typed errors: pure, no I/O.

The SDK wraps transport failures in `A2AClientError` (the httpx exception is its cause) and
turns JSON-RPC errors into `A2AError` subclasses; each becomes the `AgentError` people would
want to read, and nothing of a request's headers or body.
"""

from __future__ import annotations

import httpx
from a2a.client import A2AClientTimeoutError, AgentCardResolutionError
from a2a.utils.errors import A2AError, TaskNotFoundError, VersionNotSupportedError

from orchestrator.agent.errors import (
    AgentAuthError,
    AgentError,
    AgentHTTPError,
    AgentNotFound,
    AgentTimeout,
    AgentUnreachable,
    MalformedEvent,
    StreamIncomplete,
    TaskGone,
)

_DETAIL_LIMIT = 200


def escape(text: str, limit: int = _DETAIL_LIMIT) -> str:
    """Control characters escaped and length capped: safe for a log line or a Slack message."""
    return text[:limit].encode("unicode_escape").decode("ascii")


def from_card_error(exc: AgentCardResolutionError, url: str) -> AgentError:
    status = exc.status_code
    if status == 404:
        return AgentNotFound(
            f"There is no A2A agent card at {url} (HTTP 404): check the agent's URL (Kagent "
            "serves each agent at {base}/api/a2a/{namespace}/{agent}).",
            url=url,
        )
    if status in (401, 403):
        return AgentAuthError(
            f"The agent refused our credentials when asked for its card (HTTP {status}).", url=url
        )
    if status is not None:
        return AgentHTTPError(
            f"The agent answered HTTP {status} when asked for its card.", status=status, url=url
        )
    cause = exc.__cause__
    if isinstance(cause, httpx.HTTPError):
        return AgentUnreachable(f"Could not read the agent's card ({_reason(cause)}).", url=url)
    return MalformedEvent(f"The agent's card could not be read ({escape(str(exc))}).", url=url)


def from_client_error(exc: Exception, *, received: int) -> AgentError:
    """`received` is the number of stream results read before the failure."""
    if isinstance(exc, A2AClientTimeoutError):
        return AgentTimeout("The connection to the agent timed out.")
    if isinstance(exc, TaskNotFoundError):
        return TaskGone(f"The agent does not know the task ({escape(str(exc))}).")
    if isinstance(exc, VersionNotSupportedError):
        return AgentHTTPError(
            f"The agent does not speak this A2A version ({escape(str(exc))}).", status=400
        )
    cause = exc.__cause__
    if isinstance(cause, httpx.HTTPStatusError):
        return _status_error(cause.response)
    if isinstance(cause, httpx.TimeoutException) and not isinstance(cause, httpx.ConnectTimeout):
        return AgentTimeout(f"The connection to the agent timed out ({_reason(cause)}).")
    if isinstance(cause, httpx.HTTPError):
        if received == 0:
            return AgentUnreachable(f"Could not get an answer from the agent ({_reason(cause)}).")
        return StreamIncomplete(
            f"The connection to the agent dropped after {received} updates ({_reason(cause)})."
        )
    if isinstance(exc, A2AError):
        return AgentHTTPError(f"The agent answered with an error: {escape(str(exc))}", status=500)
    return MalformedEvent(f"The agent's answer could not be read ({escape(str(exc))}).")


def _status_error(response: httpx.Response) -> AgentError:
    status = response.status_code
    if status == 404:
        return AgentNotFound(f"The backend does not know this agent (HTTP {status}).")
    if status in (401, 403):
        return AgentAuthError(f"The agent refused our credentials (HTTP {status}).")
    retry_after = response.headers.get("retry-after")
    seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
    return AgentHTTPError(
        f"The agent answered with an error (HTTP {status}).", status=status, retry_after=seconds
    )


def _reason(exc: httpx.HTTPError) -> str:
    return escape(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
