"""What Slack said when a Web API call failed, however its answer came."""

from __future__ import annotations


def slack_error(exc: Exception) -> str:
    """Slack's `error` code (`ratelimited`, `channel_not_found`…), else the HTTP status, else
    the exception itself. A `SlackApiError` whose body was not JSON (a proxy's HTML page, an
    empty 502) holds a string or bytes there, which has no `error` to read."""
    response = getattr(exc, "response", None)
    data = getattr(response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    status = getattr(response, "status_code", None)
    return f"HTTP {status}" if status else (str(exc) or type(exc).__name__)
