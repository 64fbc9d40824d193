"""Publishes a run's answer with Slack's native text streaming.

A drop-in alternative to `Publisher` (same `open`, `changed`, `close`, `ts`, `calls`) that reads
the run's `ThreadView` itself:

- `open` starts a stream (`chat.startStream`) under the user's message.
- On every change, at most once per `interval` (the answer's first text at once), the text
  Slack has not confirmed yet is sent with `chat.appendStream` (only the new suffix), together
  with the tool calls as `task_update` chunks and the running plan step as the `plan_update`
  title.
- Before a message reaches `max_chars` characters or `max_age` seconds, its stream is stopped
  and the text goes on in a new streamed message.
- When Slack says the stream is gone or too long (`message_not_in_streaming_state`,
  `msg_too_long`, `streaming_state_conflict`, `stopped_by_user`), or refuses the call for any
  other reason, the rest goes out with `chat.update`-style publishing (`Publisher`), starting at
  the first character Slack did not confirm: no text is lost or sent twice.
- `close(messages)` takes the renderer's final messages: the answer's text is already streamed,
  the other blocks of the answer (summary, notes, error, Retry) close the stream through
  `chat.stopStream(blocks=...)`, and the messages after the answer (approval forms) are posted
  as normal messages.

`ts` lists every message the run owns in thread order: the streamed messages, then any fallback
messages, then the extra messages of `close` — those are also `extra_ts`, one per extra message.
Forms are therefore `publisher.ts[len(publisher.ts) - len(forms):]`, which holds for `Publisher`
too (its last messages are the forms, one each).

When the stream's Stop is pressed in Slack, `stopped_by_user` is set: nothing more is sent live,
and `close` still delivers the final state (a session's Stop cancels the run: engine/stops.py).
A workspace without native streaming (`unknown_method`, `missing_scope`, ... or HTTP 404) calls
`on_unsupported(error)` and the run goes on with the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.models.messages.chunk import Chunk, MarkdownTextChunk
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator.slack.api_errors import slack_error
from orchestrator.slack.publisher import Publisher, Render, Throttle, stop_throttle
from orchestrator.slack.stream_content import (
    TaskState,
    cut_text,
    rest_messages,
    split_final,
    task_updates,
)
from orchestrator.slack.stream_segments import (
    STOPPED_BY_USER,
    TRANSIENT,
    UNSUPPORTED,
    Segment,
    StreamRefused,
    stream_body,
)
from renderers.limits import FENCE, leaves_fence_open
from renderers.view import SlackMessage, ThreadView

log = logging.getLogger("orchestrator.native_publisher")

MARKDOWN_TEXT_MAX = 12_000  # Slack's limit on one call's markdown text
TASK_DISPLAY_MODE = "plan"  # the tool calls sit together in one plan titled by the current step


class NativePublisher:
    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        view: ThreadView,
        *,
        recipient_user_id: str | None = None,
        recipient_team_id: str | None = None,
        interval: float = 1.0,
        max_chars: int = 3000,
        max_age: float = 210.0,
        on_unsupported: Callable[[str], None] | None = None,
    ) -> None:
        if not 0 < max_chars <= MARKDOWN_TEXT_MAX:
            raise ValueError(f"max_chars must be between 1 and {MARKDOWN_TEXT_MAX}")
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.view = view
        self.recipient_user_id = recipient_user_id
        self.recipient_team_id = recipient_team_id
        self.interval = interval
        self.max_chars = max_chars
        self.max_age = max_age
        self.on_unsupported = on_unsupported
        self.stopped_by_user = False
        self.fallback_reason: str | None = None
        self._segments: list[Segment] = []
        self._confirmed = 0  # characters of view.text that Slack confirmed in streamed messages
        self._reopen = False  # a rollover closed a code block: the next message opens it again
        self._shown: set[str] = set()  # ids of the tasks some streamed message shows
        self._tail = Publisher(client, channel, thread_ts, interval=interval)
        self._extra = 0
        self._native_calls = 0
        self._dirty = False
        self._throttle = Throttle(interval)
        self._loop_task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Future[None] | None = None

    # -- what the engine reads ----------------------------------------------------------------

    @property
    def ts(self) -> list[str]:
        return [segment.ts for segment in self._segments] + self._tail.ts

    @property
    def extra_ts(self) -> list[str]:
        return self._tail.ts[len(self._tail.ts) - self._extra :] if self._extra else []

    @property
    def redraw_from(self) -> tuple[int, int]:
        """Where drawing the finished answer again starts: (index in `ts`, offset in the text).

        Streamed messages hold the text as Slack confirmed it, cut where the stream rolled
        over, so a redraw (new feedback counts, a "Regenerated" mark) replaces only the last
        streamed message, or the `chat.update` messages after a fallback, from their first
        character on; the messages before it keep their text.
        """
        if self._tail.ts or not self._segments:
            return len(self._segments), self._confirmed
        return len(self._segments) - 1, self._confirmed - self._segments[-1].chars

    @property
    def calls(self) -> int:
        return self._native_calls + self._tail.calls

    @property
    def native(self) -> bool:
        """True while the answer still goes out as a native stream."""
        return self.fallback_reason is None

    # -- the publisher interface --------------------------------------------------------------

    async def open(self, messages: Sequence[SlackMessage]) -> None:
        """Start the stream now, so the answer's message exists from the start of the run."""
        try:
            await self._start("", [], TaskState())
        except StreamRefused as exc:
            self._fall_back(exc.error)
            await self._tail.open(messages)

    def changed(self, render: Render | None = None, *, now: bool = False) -> None:
        """The view changed: send what is new within the interval (the view is read then); with
        `now` (the answer's first text), at once."""
        if self.stopped_by_user:
            return
        if not self.native:
            self._tail.changed(self._render_rest, now=now)
            return
        if now:
            self._throttle.hurry()
        if self._dirty:
            return
        self._dirty = True
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._flush_loop())

    async def close(
        self,
        messages: Sequence[SlackMessage],
        extras: Sequence[SlackMessage] = (),
        *,
        session_status: str | None = None,
    ) -> None:
        """The run is over: send the rest, close the stream with the final blocks (and the
        thread's agent session status, when given), post extras."""
        messages = [*messages, *extras]
        self._dirty = False
        await stop_throttle(self._loop_task, self._inflight)
        parts = split_final(messages, self.view.text)
        self._extra = len(parts.extra)
        if self.native and not self.stopped_by_user:
            try:
                await self._push()
                await self._finish(parts.closing_blocks, session_status)
            except StreamRefused as exc:
                self._fall_back(exc.error)
            else:
                await self._tail.close(parts.extra)
                return
        await self._end_streams()
        if not self._confirmed and not self._tail.ts:
            await self._tail.close(messages)  # nothing was streamed: the messages as rendered
            return
        rest = rest_messages(self.view, self._confirmed, parts.closing_blocks)
        await self._tail.close(rest + parts.extra)

    async def abandon(self) -> None:
        """The run was cut (the service is stopping): stop writing, and stop the streams so no
        message is left spinning."""
        self._dirty = False
        await stop_throttle(self._loop_task, self._inflight)
        await self._end_streams()
        await self._tail.abandon()

    # -- streaming ----------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        try:
            while self._dirty:
                await self._throttle.due()
                self._dirty = False
                # Shielded: a call that reached Slack must be accounted for even if the run
                # ends meanwhile, or `close` would send the same text twice.
                self._inflight = asyncio.ensure_future(self._flush())
                await asyncio.shield(self._inflight)
                self._throttle.wrote()
        finally:
            self._loop_task = None

    async def _flush(self) -> None:
        if not self.native or self.stopped_by_user:
            return
        try:
            await self._push()
        except StreamRefused as exc:
            if exc.error in TRANSIENT:  # nothing was appended: try again on the next interval
                self.changed()
                return
            self._fall_back(exc.error)
            await self._end_streams()
            if not self.stopped_by_user:
                self._tail.changed(self._render_rest)

    async def _push(self) -> None:
        """Send what Slack has not confirmed of the text as it is now, and the task changes,
        rolling over to new messages as needed (text arriving meanwhile waits for the next
        flush)."""
        loop = asyncio.get_running_loop()
        end = len(self.view.text)
        while True:
            segment = self._segments[-1] if self._segments else None
            streaming = segment is not None and segment.open
            pending = self.view.text[self._confirmed : end]
            shown = segment.tasks if segment is not None and streaming else TaskState()
            chunks, after = task_updates(self.view, shown, self._shown)
            if not pending and not chunks:
                return
            if segment is not None and streaming:
                aged = loop.time() - segment.started_at >= self.max_age
                if aged or (pending and (segment.full or segment.chars >= self.max_chars)):
                    await self._close_code_block(segment)
                    await self._stop(segment, [])
                    continue
                piece = cut_text(pending, self.max_chars - segment.chars)
                await self._append(segment, piece, chunks, after)
            else:
                piece = cut_text(pending, self.max_chars)
                await self._start(piece, chunks, after)
            if len(piece) == len(pending):
                return
            self._segments[-1].full = True

    async def _start(self, piece: str, chunks: list[Chunk], after: TaskState) -> None:
        response = await self._call(
            self.client.chat_startStream,
            channel=self.channel,
            thread_ts=self.thread_ts,
            chunks=stream_body(self._opened(piece), chunks) or None,
            recipient_user_id=self.recipient_user_id,
            recipient_team_id=self.recipient_team_id,
            task_display_mode=TASK_DISPLAY_MODE,
        )
        segment = Segment(ts=response["ts"], started_at=asyncio.get_running_loop().time())
        self._segments.append(segment)
        self._confirm(segment, piece, after)

    async def _append(
        self, segment: Segment, piece: str, chunks: list[Chunk], after: TaskState
    ) -> None:
        try:
            await self._call(
                self.client.chat_appendStream,
                channel=self.channel,
                ts=segment.ts,
                chunks=stream_body(self._opened(piece), chunks),
            )
        except StreamRefused as exc:
            if exc.error not in TRANSIENT:
                segment.open = False
                segment.ended = exc.error in ("message_not_in_streaming_state", STOPPED_BY_USER)
            raise
        self._confirm(segment, piece, after)

    async def _close_code_block(self, segment: Segment) -> None:
        """A message rolled over inside a code block ends it, so the block renders."""
        if not leaves_fence_open(self.view.text[: self._confirmed]):
            return
        self._reopen = True
        with contextlib.suppress(StreamRefused):  # the stop that follows meets the same refusal
            await self._call(
                self.client.chat_appendStream,
                channel=self.channel,
                ts=segment.ts,
                chunks=[MarkdownTextChunk(text=f"\n{FENCE}")],
            )

    def _opened(self, piece: str) -> str:
        """`piece`, led by a code fence when it goes on a code block the last message closed."""
        if not (piece and self._reopen):
            return piece
        self._reopen = False
        return f"{FENCE}\n{piece}"

    def _confirm(self, segment: Segment, piece: str, tasks: TaskState) -> None:
        self._confirmed += len(piece)
        segment.chars += len(piece)
        segment.tasks = tasks
        self._shown.update(tasks.tasks)

    async def _stop(
        self, segment: Segment, blocks: list[dict[str, Any]], session_status: str | None = None
    ) -> None:
        """Stop a stream: before a rollover, or at the end with the closing blocks."""
        segment.open = False
        try:
            await self._call(
                self.client.chat_stopStream,
                channel=self.channel,
                ts=segment.ts,
                blocks=blocks or None,
                session_status=session_status,
            )
        except StreamRefused as exc:
            segment.ended = exc.error in ("message_not_in_streaming_state", STOPPED_BY_USER)
            if blocks or exc.error == STOPPED_BY_USER:
                raise
            log.info("stream ended before its stop", extra={"error": exc.error})
            return
        segment.ended = True
        if not segment.chars and not segment.tasks.tasks and not blocks:
            await self._delete_empty(segment)

    async def _finish(self, closing: list[dict[str, Any]], session_status: str | None) -> None:
        segment = self._segments[-1] if self._segments else None
        if segment is not None and segment.open:
            await self._stop(segment, closing, session_status)
        elif closing:
            raise StreamRefused("no_open_stream")

    async def _end_streams(self) -> None:
        """Stop what still streams after a fallback, so no message is left spinning, and remove
        the streams Slack ended before they showed anything, so no empty message is left."""
        for segment in list(self._segments):
            if not segment.ended:
                with contextlib.suppress(StreamRefused):
                    await self._stop(segment, [])
            if segment.ended and not segment.chars and not segment.tasks.tasks:
                await self._delete_empty(segment)

    async def _delete_empty(self, segment: Segment) -> None:
        """A stream that ends before anything was said leaves no empty message behind."""
        if segment not in self._segments:
            return
        with contextlib.suppress(StreamRefused):
            await self._call(self.client.chat_delete, channel=self.channel, ts=segment.ts)
            self._segments.remove(segment)

    async def _call(self, method: Callable[..., Any], **params: Any) -> Any:
        """One Web API call; every refusal becomes `StreamRefused` with Slack's error."""
        self._native_calls += 1
        try:
            return await method(**params)
        except SlackApiError as exc:
            error = slack_error(exc)
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            error = type(exc).__name__
        if error == STOPPED_BY_USER:
            self.stopped_by_user = True
        elif error in UNSUPPORTED and self.on_unsupported is not None:
            self.on_unsupported(error)
        raise StreamRefused(error)

    # -- the chat.update fallback -------------------------------------------------------------

    def _fall_back(self, error: str) -> None:
        if self.fallback_reason is None:
            self.fallback_reason = error
            log.warning(
                "native streaming ended, publishing with chat.update",
                extra={"channel": self.channel, "error": error},
            )

    def _render_rest(self) -> list[Any]:
        return rest_messages(self.view, self._confirmed, None)
