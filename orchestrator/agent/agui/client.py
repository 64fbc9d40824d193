"""AG-UI client: POST a `RunAgentInput`, read the SSE answer as typed `ag_ui.core` events.

Failures become the typed errors of `orchestrator.agent.errors`. The per-event path is kept
lean on purpose: real servers send thousands of events per run, many of them large RAW ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final

import httpx
from ag_ui.core import BaseEvent, RunAgentInput, RunErrorEvent, RunFinishedEvent
from httpx_sse import EventSource, aconnect_sse

from orchestrator.agent.agui.events import (
    CHUNK_EVENTS,
    ChunkExpander,
    SSEReader,
    escape_text,
    parse_event,
)
from orchestrator.agent.agui.run_input import run_input_payload
from orchestrator.agent.errors import (
    AgentAuthError,
    AgentError,
    AgentHTTPError,
    AgentNotFound,
    AgentTimeout,
    AgentUnreachable,
    MalformedEvent,
    StreamIncomplete,
)
from orchestrator.agent.urls import redact_url

logger = logging.getLogger("orchestrator.agent")

_TERMINAL: Final = frozenset({RunFinishedEvent, RunErrorEvent})
_ERROR_BODY_LIMIT: Final = 4096
_CHECKS_PER_TIMEOUT: Final = 4
_END_GRACE: Final = 0.05  # seconds a finished run's response gets to end before it is cut
_BUSY_STATUSES: Final = frozenset({429, 503})


# --- timeouts ----------------------------------------------------------------------------------


class _Watchdog:
    """Cancels the consuming task when the agent stays silent for too long.

    Per event the stream only bumps `events` (and sets `held` while the consumer holds an event,
    which is not the agent's silence); a timer checks them a few times per timeout. An
    `asyncio.timeout()` per event would cost more than parsing the event. So a timeout fires
    between 1 and 1.5 times its length after the last sign of life.
    """

    def __init__(self, first_event_timeout: float, idle_timeout: float) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("AgentClient.stream must run inside an asyncio task")
        self._task = task
        self._cancelling = task.cancelling()
        self._loop = asyncio.get_running_loop()
        self._first = first_event_timeout
        self._idle = idle_timeout
        self._step = min(first_event_timeout, idle_timeout) / _CHECKS_PER_TIMEOUT
        self._seen = 0
        self._active_at = self._loop.time()
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(self._step, self._check)
        self.events = 0
        self.held = False
        self.expired = False

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def claim(self) -> bool:
        """True if a CancelledError being handled came from this watchdog (and withdraws it)."""
        return self.expired and self._task.uncancel() <= self._cancelling

    def _check(self) -> None:
        now = self._loop.time()
        if self.held or self.events != self._seen:
            self._seen, self._active_at = self.events, now
        if now - self._active_at >= (self._idle if self.events else self._first):
            self._handle = None
            self.expired = True
            self._task.cancel()
        else:
            self._handle = self._loop.call_at(now + self._step, self._check)


# --- client ------------------------------------------------------------------------------------


class AgentClient:
    """Runs AG-UI agents over HTTP + SSE with the given (shared) httpx client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        first_event_timeout: float = 60.0,
        idle_timeout: float = 300.0,
        retry_after_max: float = 5.0,
    ) -> None:
        self._http = http
        self.first_event_timeout = first_event_timeout
        self.idle_timeout = idle_timeout
        self.retry_after_max = retry_after_max

    async def stream(
        self,
        url: str,
        run_input: RunAgentInput,
        *,
        headers: Mapping[str, str] | Callable[[], Awaitable[Mapping[str, str]]] | None = None,
    ) -> AsyncGenerator[BaseEvent, None]:
        """Typed events of one run, ending with (and including) RUN_FINISHED or RUN_ERROR.

        `headers` may be a coroutine function (fresh credentials, fetched when the run starts).
        """
        where = redact_url(url)
        ids = {"thread_id": run_input.thread_id, "run_id": run_input.run_id}
        logger.debug("Starting agent run", extra={"agent_url": where, **ids})
        watchdog = _Watchdog(self.first_event_timeout, self.idle_timeout)
        responded = False
        try:
            if callable(headers):
                headers = await headers()
            body = run_input_payload(run_input)
            async with self._connect(url, body, dict(headers or {}), where) as source:
                responded = True
                expander = ChunkExpander()
                reader = SSEReader()  # the events of a whole read at once (see SSEReader)
                texts = source.response.aiter_text()
                async for text in texts:
                    for data in reader.feed(text):
                        watchdog.events += 1
                        event = parse_event(data)
                        if event is None:
                            continue
                        kind = type(event)
                        watchdog.held = True
                        if expander.idle and kind not in CHUNK_EVENTS:  # most: pass through
                            yield event
                        else:
                            for out in expander.feed(event):
                                yield out
                        watchdog.held = False
                        if kind in _TERMINAL:
                            watchdog.cancel()
                            await _let_response_end(texts)
                            return
            raise StreamIncomplete(
                f"The agent's stream ended after {watchdog.events} events without RUN_FINISHED "
                "or RUN_ERROR."
            )
        except asyncio.CancelledError:
            if not watchdog.claim():
                raise
            raise _logged(self._timeout(watchdog.events), where) from None
        except httpx.HTTPError as exc:
            error = _transport_error(exc, watchdog.events if responded else None)
            raise _logged(error, where) from exc
        except httpx.InvalidURL:
            raise _logged(AgentUnreachable("The agent URL is not a valid URL."), where) from None
        except AgentError as exc:
            raise _logged(exc, where) from None
        finally:
            watchdog.cancel()

    @contextlib.asynccontextmanager
    async def _connect(
        self, url: str, body: dict[str, Any], headers: dict[str, str], where: str
    ) -> AsyncIterator[EventSource]:
        """The event stream of a 2xx answer. A 429/503 whose Retry-After is at most
        `retry_after_max` seconds is waited out and the request sent once more."""
        for attempt in (1, 2):
            async with aconnect_sse(self._http, "POST", url, json=body, headers=headers) as source:
                try:
                    await _check_response(source.response)
                except AgentHTTPError as exc:
                    if attempt == 2 or not self._worth_waiting(exc):
                        raise
                    status, delay = exc.status, exc.retry_after or 0.0
                else:
                    yield source
                    return
            logger.info(
                "Agent busy (HTTP %s); retrying once in %gs",
                status,
                delay,
                extra={"agent_url": where, "retry_after": delay},
            )
            await asyncio.sleep(delay)

    def _worth_waiting(self, exc: AgentHTTPError) -> bool:
        return (
            exc.status in _BUSY_STATUSES
            and exc.retry_after is not None
            and exc.retry_after <= self.retry_after_max
        )

    def _timeout(self, received: int) -> AgentTimeout:
        if not received:
            return AgentTimeout(
                f"The agent sent nothing within {self.first_event_timeout:g} seconds."
            )
        return AgentTimeout(
            f"The agent went silent for {self.idle_timeout:g} seconds after {received} events."
        )


def _logged(error: AgentError, where: str) -> AgentError:
    error.url = error.url or where
    logger.warning(
        "Agent run failed: %s",
        error.kind,
        extra={"agent_url": where, "error_kind": error.kind, "error_detail": error.detail},
    )
    return error


async def _let_response_end(texts: AsyncIterator[str]) -> None:
    """Gives a finished response a moment to end, so its connection can be reused.

    Whatever the server still sends is ignored; one that keeps the stream open is cut off.
    """
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(_END_GRACE):
            async for _ in texts:
                pass


def _transport_error(exc: httpx.HTTPError, received: int | None) -> AgentError:
    """`received` is the count of SSE events read, or None if no response arrived."""
    reason = escape_text(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, 200)
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return AgentTimeout(f"The connection to the agent timed out ({reason}).")
    if received is None:
        return AgentUnreachable(f"Could not get an answer from the agent ({reason}).")
    if isinstance(exc, httpx.DecodingError):
        return MalformedEvent(f"The agent's stream could not be decoded ({reason}).")
    return StreamIncomplete(
        f"The connection to the agent dropped after {received} events ({reason})."
    )


# --- HTTP status -------------------------------------------------------------------------------


async def _check_response(response: httpx.Response) -> None:
    """Raises the typed error for a non-2xx answer or an answer that is not an event stream."""
    status = response.status_code
    if 200 <= status < 300:
        content_type = response.headers.get("content-type", "").partition(";")[0]
        if "text/event-stream" not in content_type:
            shown = escape_text(content_type, 80) or "no content type"
            raise MalformedEvent(f"The agent answered with {shown} instead of an event stream.")
        return
    said = await _error_message(response)
    what = f"HTTP {status}: {said}" if said else f"HTTP {status}"
    raise _status_error(status, what, response.headers.get("retry-after"))


def _status_error(status: int, what: str, retry_after: str | None) -> AgentError:
    if status == 404:
        return AgentNotFound(f"The backend does not know this agent ({what}).")
    if status in (401, 403):
        return AgentAuthError(f"The agent refused our credentials ({what}).")
    return AgentHTTPError(
        f"The agent answered with an error ({what}).",
        status=status,
        retry_after=_retry_after_seconds(retry_after),
    )


async def _error_message(response: httpx.Response) -> str:
    """The message of a JSON error body, if any (an HTML error page says nothing useful)."""
    body = b""
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT:
                return ""
    except httpx.HTTPError:
        return ""
    try:
        return _message_in(json.loads(body))
    except ValueError:
        return ""


def _message_in(data: Any) -> str:
    if isinstance(data, dict):
        for key in ("detail", "message", "error"):
            value = data.get(key)
            if isinstance(value, str):
                return escape_text(value, 200)
            if isinstance(value, dict):
                return _message_in(value)
    return ""


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now: either delay-seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
