"""Keeps a run's Slack messages in step with its view.

The first message is posted at once, and so is the answer's first text (`changed(now=True)`);
after that at most one `chat.update` per message per interval, the latest content winning; a
final sync when the run ends. Renders happen here, on the
throttle, never per AG-UI event. Slack 429s are retried by slack_sdk's retry handler on the client.
Bot senders get `final_only`: nothing is posted until the run ends, then one complete answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator.slack.api_errors import slack_error
from renderers.limits import truncate
from renderers.view import SlackMessage

if TYPE_CHECKING:
    from persistence.models import Thread
    from renderers.view import ThreadView

log = logging.getLogger("orchestrator.publisher")

# Slack refused the blocks or the length: the message is sent again as plain text, so the
# answer still reaches the thread. 4,000 characters is the text length Slack never refuses.
_PLAIN_FALLBACK = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long"})
PLAIN_TEXT_MAX = 4000

Render = Callable[[], Sequence[SlackMessage]]


class LivePublisher(Protocol):
    """What the engine needs from whatever shows a run in Slack while it streams."""

    ts: list[str]  # the messages it owns, in order; extra messages (forms) come last
    calls: int

    async def open(self, messages: Sequence[SlackMessage]) -> None: ...

    def changed(self, render: Render, *, now: bool = False) -> None: ...

    async def close(
        self,
        messages: Sequence[SlackMessage],
        extras: Sequence[SlackMessage] = (),
        *,
        session_status: str | None = None,  # a native stream's close sets the session too
    ) -> None: ...

    async def abandon(self) -> None: ...  # the run was cut: stop, and write nothing more

    @property
    def extra_ts(self) -> list[str]: ...  # the ts of the `extras` posted by `close`, in order

    @property
    def redraw_from(self) -> tuple[int, int]: ...  # see `Publisher.redraw_from`


# Builds the publisher of one run: the thread it writes to and the view it shows.
PublisherFactory = Callable[["Thread", "ThreadView"], LivePublisher]


class PublishError(RuntimeError):
    """The thread cannot be written to at all (e.g. channel_not_found, not_in_channel)."""

    def __init__(self, error: str) -> None:
        super().__init__(f"Slack refused the message: {error}")
        self.error = error


class Publisher:
    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        *,
        interval: float = 1.0,
        final_only: bool = False,
    ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.interval = interval
        self.final_only = final_only
        self.ts: list[str] = []
        self._sent: list[tuple[str, list[dict[str, Any]]]] = []
        self._render: Render | None = None
        self._dirty = False
        self._throttle = Throttle(interval)
        self._loop_task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Task[None] | None = None
        self.calls = 0
        self._answer_count = 0

    async def open(self, messages: Sequence[SlackMessage]) -> None:
        """Post the run's first message now, so the user sees at once that it started."""
        if self.final_only:
            return
        await self._sync(messages[:1])
        self._throttle.wrote()

    def changed(self, render: Render, *, now: bool = False) -> None:
        """The view changed: schedule a render within the interval (latest content wins); with
        `now` (the answer's first text), at once: the interval counts from that write."""
        if self.final_only:
            return
        if now:
            self._throttle.hurry()
        if self._dirty:
            return
        self._render = render
        self._dirty = True
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._flush_loop())

    @property
    def extra_ts(self) -> list[str]:
        return self.ts[self._answer_count :]

    @property
    def redraw_from(self) -> tuple[int, int]:
        """Where drawing the finished answer again starts: (index in `ts`, offset in the text).

        Every message here is drawn from the whole answer, so a redraw covers them all.
        """
        return 0, 0

    async def close(
        self,
        messages: Sequence[SlackMessage],
        extras: Sequence[SlackMessage] = (),
        *,
        session_status: str | None = None,
    ) -> None:
        """The run is over: stop the throttle and write the final content, then `extras`.

        (`session_status` is for native streams; messages posted here leave the session as
        it is.)"""
        self._answer_count = len(messages)
        self._dirty = False
        await stop_throttle(self._loop_task, self._inflight)
        await self._sync([*messages, *extras])

    async def abandon(self) -> None:
        """The run was cut (the service is stopping): no write after the one on its way."""
        self._dirty = False
        await stop_throttle(self._loop_task, self._inflight)

    async def _flush_loop(self) -> None:
        try:
            while self._dirty:
                await self._throttle.due()
                self._dirty = False
                assert self._render is not None
                messages = self._render()
                # Shielded: a post that reached Slack must have its ts recorded even if the
                # run ends meanwhile, or the final sync would post a duplicate continuation.
                self._inflight = asyncio.ensure_future(self._sync(messages))
                try:
                    await asyncio.shield(self._inflight)
                except PublishError:
                    log.warning("live update failed", extra={"channel": self.channel})
                self._throttle.wrote()
        finally:
            self._loop_task = None

    async def _sync(self, messages: Sequence[SlackMessage]) -> None:
        for index, message in enumerate(messages):
            payload = (message.text, message.blocks)
            if index < len(self._sent):
                if self._sent[index] != payload:
                    await self._update(index, message)
            else:
                await self._post(message)

    async def _post(self, message: SlackMessage) -> None:
        extra = {"metadata": message.metadata} if message.metadata else {}
        response = await self._call(
            self.client.chat_postMessage,
            message,
            channel=self.channel,
            thread_ts=self.thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            **extra,
        )
        self.ts.append(response["ts"])
        self._sent.append((message.text, message.blocks))

    async def _update(self, index: int, message: SlackMessage) -> None:
        await self._call(self.client.chat_update, message, channel=self.channel, ts=self.ts[index])
        self._sent[index] = (message.text, message.blocks)

    async def _call(self, method: Any, message: SlackMessage, **params: Any) -> Any:
        """One post or update; refused blocks or length fall back to the text alone."""
        try:
            return await self._send(method, text=message.text, blocks=message.blocks, **params)
        except PublishError as exc:
            if exc.error not in _PLAIN_FALLBACK:
                raise
            log.warning(
                "message sent as plain text", extra={"channel": self.channel, "error": exc.error}
            )
        text = truncate(message.text, PLAIN_TEXT_MAX, "… (shortened)")
        if "ts" in params:  # an update must clear the blocks it replaces
            params["blocks"] = []
        return await self._send(method, text=text, **params)

    async def _send(self, method: Any, **params: Any) -> Any:
        try:
            return await method(**params)
        except SlackApiError as exc:
            raise PublishError(slack_error(exc)) from exc
        finally:
            self.calls += 1


class Throttle:
    """When a publisher's next write is due: one interval after its last write, or at once
    when hurried (the answer's first text must not wait for the interval)."""

    __slots__ = ("_hurried", "_next_at", "_woken", "interval")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next_at = 0.0
        self._hurried = False  # holds across a write on its way: the next one goes at once
        self._woken = asyncio.Event()

    def hurry(self) -> None:
        self._hurried = True
        self._woken.set()

    def wrote(self) -> None:
        self._next_at = asyncio.get_running_loop().time() + self.interval

    async def due(self) -> None:
        """Wait until the next write is due (what is written then is rendered after this)."""
        delay = self._next_at - asyncio.get_running_loop().time()
        if delay > 0 and not self._hurried:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._woken.wait()
        self._hurried = False
        self._woken.clear()


async def stop_throttle(
    loop_task: asyncio.Task[None] | None, inflight: asyncio.Future[None] | None
) -> None:
    """End a publisher's flush loop and let the Slack call already on its way finish."""
    if loop_task is not None:
        loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop_task
    if inflight is not None:
        with contextlib.suppress(Exception):
            await inflight
