"""The assistant thread status ("is thinking…") shown under a thread while a run has no text yet.

Uses `assistant.threads.setStatus`. The status is set when the run starts, follows the current
tool call or plan step, and is cleared (an empty status) when the answer's text starts or the
run ends. Calls are throttled to one per interval, the latest status winning. Slack drops a
status after two minutes without a message, so a status still wanted is sent again every
`refresh` seconds. A failure is only logged, and the status stays off for the rest of the run:
it must never break a run.

    status = TypingStatus(client, channel, thread_ts, interval=settings.update_interval)
    await status.start()        # the user's message was received
    status.tool("search")       # a tool call started
    status.step("Planning")     # a plan step started
    status.text_started()       # the first text delta arrived
    status.show(event)          # any of the three above, as the event says
    await status.clear()        # the run ended
"""

from __future__ import annotations

import asyncio
import logging

from ag_ui.core import BaseEvent, EventType
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator.core.reducer import activity
from orchestrator.slack.api_errors import slack_error
from renderers.limits import truncate

log = logging.getLogger("orchestrator.typing_status")

THINKING = "is thinking…"
WAITING = "is waiting in line…"  # more runs than the process streams at once
NAME_MAX = 80


class TypingStatus:
    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        *,
        interval: float = 1.0,
        refresh: float = 90.0,
    ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.interval = interval
        self.refresh = refresh
        self.calls = 0
        self._wanted = ""
        self._sent = ""
        self._text_started = False
        self._failed = False
        self._next_at = 0.0
        self._loop_task: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Show "is thinking…" now."""
        self._wanted = THINKING
        await self._send()

    def waiting(self, now: bool) -> None:
        """The run waits in line for a free slot (`now`), or has just taken one."""
        self._want(WAITING if now else THINKING)

    def show(self, event: BaseEvent) -> bool:
        """Shows the tool or step an event starts; False once the answer's text started (the
        status is then cleared and needs no more events)."""
        shown = activity(event)
        if shown is None:
            if event.type == EventType.TEXT_MESSAGE_CONTENT:
                self.text_started()
                return False
        elif shown[0] == "tool":
            self.tool(shown[1])
        else:
            self.step(shown[1])
        return True

    def tool(self, name: str) -> None:
        self._want(f"is running {truncate(name or 'a tool', NAME_MAX)}…")

    def step(self, name: str) -> None:
        self._want(f"is working on {truncate(name or 'a step', NAME_MAX)}…")

    def text_started(self) -> None:
        """The answer is visible now: clear the status and ignore later tools and steps."""
        if not self._text_started:
            self._want("")
            self._text_started = True

    async def clear(self) -> None:
        """The run ended: clear the status (within the throttle) and wait until it is sent."""
        self._text_started = True
        self._wanted = ""
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        if self._loop_task is not None:
            await self._loop_task
        loop = asyncio.get_running_loop()
        delay = self._next_at - loop.time()
        if self._sent and delay > 0:
            await asyncio.sleep(delay)
        await self._send()

    def _want(self, status: str) -> None:
        if self._text_started or self._failed:
            return
        self._wanted = status
        if self._loop_task is None and self._wanted != self._sent:
            self._loop_task = asyncio.create_task(self._throttle())

    async def _throttle(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._wanted != self._sent and not self._failed:
                delay = self._next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._send()
        finally:
            self._loop_task = None

    async def _send(self) -> None:
        status = self._wanted
        if status == self._sent or self._failed:
            return
        self._sent = status
        self._next_at = asyncio.get_running_loop().time() + self.interval
        self._schedule_refresh(status)
        self.calls += 1
        try:
            await self.client.assistant_threads_setStatus(
                channel_id=self.channel, thread_ts=self.thread_ts, status=status
            )
        except Exception as exc:  # a status is never worth a failed run
            self._failed = True
            log.warning(
                "thread status not set",
                extra={"channel": self.channel, "error": slack_error(exc)},
            )

    def _schedule_refresh(self, status: str) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            self._refresh_task = None
        if status:
            self._refresh_task = asyncio.create_task(self._refresh_later(status))

    async def _refresh_later(self, status: str) -> None:
        await asyncio.sleep(self.refresh)
        if self._wanted == status and self._sent == status and not self._failed:
            self._refresh_task = None
            self._sent = ""  # sent again, as if it were new
            self._want(status)
