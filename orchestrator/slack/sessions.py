"""Slack's agent session of each thread (`agents.sessions.setStatus`), kept in step with the
thread's state.

Every state of the machine names its session status (`machines/thread.yaml`: `processing`,
`suspended`, `active` or `closed`); the engine calls `follow` for each transition that changes
it. Calls are throttled per thread (at most one per `interval`, the latest status winning), best
effort (a refusal is logged and nothing else happens) and never hold a run up. The first call of
a thread carries its title (the first question) and who asked: Slack uses them only when it
creates the session.

`ORCH_SLACK_SESSIONS`:

- `auto` (the default): until Slack answers that the workspace does not offer agent sessions
  (`unknown_method`, `missing_scope`, `not_allowed_token_type`, `feature_not_enabled`, HTTP
  404). From then on, for the life of the process, nothing is asked any more.
- `on`: every transition asks, whatever Slack answered before (each refusal is logged).
- `off`: never.

    sessions = AgentSessions(client, "auto", interval=1.0)
    sessions.follow("C0123", "1712345678.000100", "processing", title="Why is the build red?")
    sessions.follow("C0123", "1712345678.000100", "active")   # sent after the interval
    await sessions.close()                                      # pending calls go out first
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Literal

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator import answering, metrics
from orchestrator.slack.api_errors import slack_error
from orchestrator.slack.stream_segments import UNSUPPORTED
from renderers.limits import truncate

log = logging.getLogger("orchestrator.sessions")

Setting = Literal["auto", "on", "off"]
TITLE_MAX = 200  # Slack's limit on a session's title
NOT_SUBSCRIBED = "missing_agent_session_stopped_event_subscription"
CLOSE_TIMEOUT = 5.0  # seconds pending calls get to go out when the process stops
# Calls on their way at once, whatever the number of threads: a start-up that sets the status
# of every thread waiting on a form stays within Slack's rate limits (429s are waited out).
CONCURRENT_CALLS = 4


@dataclass(slots=True)
class _Pending:
    """One thread's session: the status still to send, and when the next call may go."""

    status: str | None = None
    title: str | None = None
    initiator: str | None = None
    next_at: float = 0.0
    task: asyncio.Task[None] | None = None


class AgentSessions:
    def __init__(self, client: AsyncWebClient, setting: Setting, *, interval: float = 1.0) -> None:
        if setting not in ("auto", "on", "off"):
            raise ValueError(f"sessions must be auto, on or off, not {setting!r}")
        self.client = client
        self.setting: Setting = setting
        self.interval = interval
        self.unsupported: str | None = None  # in auto mode: why sessions are off for good
        self.calls = 0
        self._threads: dict[tuple[str, str], _Pending] = {}
        self._warned: set[str] = set()
        self._slots = asyncio.Semaphore(CONCURRENT_CALLS)
        self._closing = asyncio.Event()  # set: what the throttle holds back goes out at once

    @property
    def available(self) -> bool:
        """Whether threads get a Slack session (and with it Slack's own Stop button)."""
        return self.setting == "on" or (self.setting == "auto" and self.unsupported is None)

    def closing_status(self, status: str) -> str | None:
        """The `session_status` a native stream closing in a state with `status` hands Slack."""
        return status if self.available else None

    def follow(
        self,
        channel: str,
        thread_ts: str,
        status: str,
        *,
        title: str | None = None,
        initiator: str | None = None,
    ) -> None:
        """Set the thread's session status soon (at once unless a call went out just now)."""
        if not self.available:
            return
        key = (channel, thread_ts)
        pending = self._threads.get(key)
        if pending is None:
            pending = self._threads[key] = _Pending()
        pending.status = status
        if title is not None and pending.title is None:
            pending.title = truncate(" ".join(title.split()), TITLE_MAX) or None
            pending.initiator = initiator
        if pending.task is None:
            pending.task = asyncio.create_task(self._send(key, pending))

    async def close(self) -> None:
        """Send the calls still pending at once, not after their interval (a few seconds at
        most), then stop."""
        tasks = [p.task for p in self._threads.values() if p.task is not None]
        self._closing.set()
        try:
            if tasks:
                await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._closing.clear()

    async def _send(self, key: tuple[str, str], pending: _Pending) -> None:
        loop = asyncio.get_running_loop()
        try:
            if not self._closing.is_set():  # Slack requests waiting go first (a burst)
                await answering.settled()
            while pending.status is not None and self.available:
                delay = pending.next_at - loop.time()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):  # the interval, or the close
                        await asyncio.wait_for(self._closing.wait(), delay)
                async with self._slots:
                    status, title, initiator = pending.status, pending.title, pending.initiator
                    if status is None or not self.available:
                        break
                    pending.status = pending.title = pending.initiator = None
                    pending.next_at = loop.time() + self.interval
                    await self._call(key, status, title, initiator)
        finally:
            pending.task = None
            loop.call_later(self.interval, self._forget, key, pending)

    def _forget(self, key: tuple[str, str], pending: _Pending) -> None:
        """A thread with nothing pending and no call in the last interval is dropped."""
        if self._threads.get(key) is pending and pending.task is None:
            del self._threads[key]

    async def _call(
        self, key: tuple[str, str], status: str, title: str | None, initiator: str | None
    ) -> None:
        channel, thread_ts = key
        self.calls += 1
        try:
            response = await self.client.agents_sessions_setStatus(
                channel_id=channel,
                thread_ts=thread_ts,
                status=status,
                title=title,
                initiator_user_id=initiator,
            )
        except SlackApiError as exc:
            self._refused(channel, status, slack_error(exc))
            return
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            self._refused(channel, status, type(exc).__name__)
            return
        warning = str(response.get("warning") or "")
        if NOT_SUBSCRIBED in warning and NOT_SUBSCRIBED not in self._warned:
            self._warned.add(NOT_SUBSCRIBED)
            log.warning(
                "the app is not subscribed to agent_session_stopped: people see a spinner "
                "without a Stop button; subscribe to the event (README, 'Agent sessions')"
            )

    def _refused(self, channel: str, status: str, error: str) -> None:
        metrics.SLACK_ERRORS.labels(error).inc()
        if error in UNSUPPORTED and self.setting == "auto":
            if self.unsupported is None:
                self.unsupported = error
                log.warning(
                    "agent sessions are not available here; not asked again until a restart",
                    extra={"error": error},
                )
            return
        log.warning(
            "session status not set", extra={"channel": channel, "status": status, "error": error}
        )


def first_line(text: str) -> str:
    """A session title from a question: its first non-empty line."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
