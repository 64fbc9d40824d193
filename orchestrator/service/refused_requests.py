"""A log line for requests refused at the door (a bad or stale Slack signature), rate-limited.

A wrong signing secret makes Slack's every request fail; without a line in the log that is
invisible. One line says so at once, then at most one per interval with how many more were
refused. Nothing of the request's body is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("orchestrator.http")

REASONS = {
    401: "bad or stale Slack signature (is SLACK_SIGNING_SECRET this app's signing secret?)",
}
REFUSED = frozenset(REASONS)


class RefusedRequests:
    """Counts refused requests; logs the first at once, then at most one line per `interval`."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last_line: float | None = None
        self._since = 0  # refused since the last line

    def refused(self, status: int, path: str, client: str | None) -> None:
        self._since += 1
        now = self._clock()
        if self._last_line is not None and now - self._last_line < self.interval:
            return
        reason = REASONS.get(status, f"answered HTTP {status}")
        log.warning(
            "request refused",
            extra={
                "status": status,
                "reason": reason,
                "path": path,
                "client": client or "-",
                "refused_since_last_line": self._since,
            },
        )
        self._last_line, self._since = now, 0
