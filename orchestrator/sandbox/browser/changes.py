"""Telling open pages that something changed: a version number they wait on, and notices (what
Slack would show as a warning) sent to every page once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

COALESCE = 0.05  # seconds: changes this close together are sent as one
HEARTBEAT = 15.0  # seconds between comments that keep an idle connection open


class Changes:
    def __init__(self) -> None:
        self.version = 0
        self.notices: list[dict[str, Any]] = []
        self.closed = False
        self._event = asyncio.Event()

    def bump(self) -> None:
        """Something the page shows changed (a Slack call, a log line, the service's status)."""
        self.version += 1
        self._event.set()

    def notice(self, text: str, *, level: str = "warning") -> None:
        self.notices.append({"text": text, "level": level})
        self.bump()

    def close(self) -> None:
        self.closed = True
        self._event.set()

    async def stream(self) -> AsyncIterator[str]:
        """Server-sent events: `change` with the version, `notice` for each new notice."""
        seen_version, seen_notices = -1, len(self.notices)
        while not self.closed:
            if self.version == seen_version:
                event = self._event
                event.clear()
                try:
                    async with asyncio.timeout(HEARTBEAT):
                        await event.wait()
                except TimeoutError:
                    yield ": still here\n\n"
                    continue
                await asyncio.sleep(COALESCE)
            seen_version = self.version
            for notice in self.notices[seen_notices:]:
                yield f"event: notice\ndata: {json.dumps(notice)}\n\n"
            seen_notices = len(self.notices)
            yield f"event: change\ndata: {json.dumps({'version': seen_version})}\n\n"
