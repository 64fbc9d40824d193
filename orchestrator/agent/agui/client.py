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
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any, Final

import httpx
from ag_ui.core import (
    BaseEvent,
    Event,
    EventType,
    ReasoningMessageChunkEvent,
    ReasoningMessageContentEvent,
    ReasoningMessageEndEvent,
    ReasoningMessageStartEvent,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedEvent,
    TextMessageChunkEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallChunkEvent,
    ToolCallEndEvent,
    ToolCallStartEvent,
)
from httpx_sse import EventSource, ServerSentEvent, aconnect_sse
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

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

logger = logging.getLogger("orchestrator.agent")

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

# Servers put the discriminator first; when they do, the prefix decides RAW without parsing.
_TYPE_FIRST: Final = '{"type":"'
_TYPE_FIRST_SPACED: Final = '{"type": "'
_TERMINAL: Final = frozenset({RunFinishedEvent, RunErrorEvent})
_CHUNKS: Final = frozenset({TextMessageChunkEvent, ToolCallChunkEvent, ReasoningMessageChunkEvent})
_MAX_WARNED_TYPES: Final = 256  # bounds the memory a stream of invented types can take
_ERROR_BODY_LIMIT: Final = 4096
_CHECKS_PER_TIMEOUT: Final = 4
_END_GRACE: Final = 0.05  # seconds a finished run's response gets to end before it is cut
_BUSY_STATUSES: Final = frozenset({429, 503})
_warned_types: set[str] = set()


# --- parsing -----------------------------------------------------------------------------------


def parse_event(data: str) -> BaseEvent | None:
    """One SSE `data:` payload as a typed event; None for RAW and unknown types."""
    if data.startswith(_TYPE_FIRST):
        if data.startswith('RAW"', len(_TYPE_FIRST)):
            return None
    elif data.startswith(_TYPE_FIRST_SPACED):
        if data.startswith('RAW"', len(_TYPE_FIRST_SPACED)):
            return None
    else:
        return _parse_any_order(data)
    try:
        return EVENT_ADAPTER.validate_json(data)
    except ValidationError as exc:
        return _skip_unknown_type(exc)


def _parse_any_order(data: str) -> BaseEvent | None:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        raise MalformedEvent("The agent sent an event that is not valid JSON.") from None
    if isinstance(obj, dict) and obj.get("type") == EventType.RAW.value:
        return None
    try:
        return EVENT_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        return _skip_unknown_type(exc)


def _skip_unknown_type(exc: ValidationError) -> None:
    """Returns None for an event of a type this protocol version does not know; else raises."""
    error = exc.errors(include_url=False, include_input=False)[0]
    if error["type"] == "union_tag_invalid" and not error["loc"]:
        _warn_unknown_type(str(error.get("ctx", {}).get("tag", "")))
        return None
    raise MalformedEvent(_schema_detail(error)) from None


def _schema_detail(error: ErrorDetails) -> str:
    if error["type"] == "json_invalid":
        return "The agent sent an event that is not valid JSON."
    if error["type"] == "union_tag_not_found":
        return "The agent sent an event without a type."
    where = ".".join(str(part) for part in error["loc"]) or "event"
    return (
        "The agent sent an event that does not match the AG-UI schema "
        f"({_escape(where, 120)}: {_escape(error['msg'], 200)})."
    )


def _warn_unknown_type(event_type: str) -> None:
    if event_type in _warned_types or len(_warned_types) >= _MAX_WARNED_TYPES:
        return
    _warned_types.add(event_type)
    name = _escape(event_type, 80)
    logger.warning("Skipping AG-UI events of unknown type %s", name, extra={"event_type": name})


def _escape(text: str, limit: int) -> str:
    """Control characters escaped and length capped: safe for a log line or a Slack message."""
    return text[:limit].encode("unicode_escape").decode("ascii")


# --- chunk expansion ---------------------------------------------------------------------------


class ChunkExpander:
    """Expands *_CHUNK events into START/CONTENT/END (or ARGS) events, as the AG-UI JS client does.

    A chunk with a new id opens a message or tool call; chunks with its id (or no id) continue it;
    a chunk with another id, or any other event, closes it first. Other events pass through.
    """

    def __init__(self) -> None:
        self._mode: type[BaseEvent] | None = None  # the chunk class whose message is open
        self._open_id: str | None = None
        self._expanders: dict[type[BaseEvent], Callable[[Any], list[BaseEvent]]] = {
            TextMessageChunkEvent: self._text,
            ToolCallChunkEvent: self._tool_call,
            ReasoningMessageChunkEvent: self._reasoning,
        }

    @property
    def idle(self) -> bool:
        """No chunked message is open: a non-chunk event passes through unchanged."""
        return self._mode is None

    def feed(self, event: BaseEvent) -> list[BaseEvent]:
        expand = self._expanders.get(type(event))
        if expand is not None:
            return expand(event)
        if self._mode is None:
            return [event]
        return [*self.close(), event]

    def close(self) -> list[BaseEvent]:
        """The END event of whatever chunks left open (none if nothing is open)."""
        mode, open_id = self._mode, self._open_id
        self._mode = self._open_id = None
        if mode is None or open_id is None:
            return []
        if mode is ToolCallChunkEvent:
            return [ToolCallEndEvent(tool_call_id=open_id)]
        if mode is ReasoningMessageChunkEvent:
            return [ReasoningMessageEndEvent(message_id=open_id)]
        return [TextMessageEndEvent(message_id=open_id)]

    def _text(self, chunk: TextMessageChunkEvent) -> list[BaseEvent]:
        out: list[BaseEvent] = []
        message_id = self._continued_id(TextMessageChunkEvent, chunk.message_id)
        if message_id is None:
            out = self.close()
            message_id = self._open(TextMessageChunkEvent, chunk.message_id)
            role = chunk.role or "assistant"
            out.append(TextMessageStartEvent(message_id=message_id, role=role, name=chunk.name))
        if chunk.delta:
            out.append(TextMessageContentEvent(message_id=message_id, delta=chunk.delta))
        return out

    def _tool_call(self, chunk: ToolCallChunkEvent) -> list[BaseEvent]:
        out: list[BaseEvent] = []
        call_id = self._continued_id(ToolCallChunkEvent, chunk.tool_call_id)
        if call_id is None:
            if chunk.tool_call_name is None:
                raise MalformedEvent("A TOOL_CALL_CHUNK opened a tool call without a name.")
            out = self.close()
            call_id = self._open(ToolCallChunkEvent, chunk.tool_call_id)
            out.append(
                ToolCallStartEvent(
                    tool_call_id=call_id,
                    tool_call_name=chunk.tool_call_name,
                    parent_message_id=chunk.parent_message_id,
                )
            )
        if chunk.delta:
            out.append(ToolCallArgsEvent(tool_call_id=call_id, delta=chunk.delta))
        return out

    def _reasoning(self, chunk: ReasoningMessageChunkEvent) -> list[BaseEvent]:
        out: list[BaseEvent] = []
        message_id = self._continued_id(ReasoningMessageChunkEvent, chunk.message_id)
        if message_id is None:
            out = self.close()
            message_id = self._open(ReasoningMessageChunkEvent, chunk.message_id)
            out.append(ReasoningMessageStartEvent(message_id=message_id, role="reasoning"))
        if chunk.delta:
            out.append(ReasoningMessageContentEvent(message_id=message_id, delta=chunk.delta))
        return out

    def _continued_id(self, mode: type[BaseEvent], chunk_id: str | None) -> str | None:
        """The open id this chunk continues, or None when it must open a new one."""
        if self._mode is mode and (chunk_id is None or chunk_id == self._open_id):
            return self._open_id
        return None

    def _open(self, mode: type[BaseEvent], chunk_id: str | None) -> str:
        if chunk_id is None:
            raise MalformedEvent(f"A {mode.__name__} opened a message without an id.")
        self._mode, self._open_id = mode, chunk_id
        return chunk_id


# --- request -----------------------------------------------------------------------------------


def run_input_payload(run_input: RunAgentInput) -> dict[str, Any]:
    """The JSON body of a run: camelCase, Nones left out, but tools/context/forwardedProps always
    present (older servers reject a run without them)."""
    payload = run_input.model_dump(mode="json", by_alias=True, exclude_none=True)
    payload.setdefault("messages", [])
    payload.setdefault("tools", [])
    payload.setdefault("context", [])
    payload.setdefault("forwardedProps", {})
    return payload


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
        headers: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[BaseEvent, None]:
        """Typed events of one run, ending with (and including) RUN_FINISHED or RUN_ERROR."""
        where = _redact_url(url)
        ids = {"thread_id": run_input.thread_id, "run_id": run_input.run_id}
        logger.debug("Starting agent run", extra={"agent_url": where, **ids})
        watchdog = _Watchdog(self.first_event_timeout, self.idle_timeout)
        responded = False
        try:
            body = run_input_payload(run_input)
            async with self._connect(url, body, dict(headers or {}), where) as source:
                responded = True
                expander = ChunkExpander()
                messages = source.aiter_sse()
                async for sse in messages:
                    watchdog.events += 1
                    event = parse_event(sse.data) if sse.data else None
                    if event is None:
                        continue
                    kind = type(event)
                    watchdog.held = True
                    if expander.idle and kind not in _CHUNKS:  # most events: pass through
                        yield event
                    else:
                        for out in expander.feed(event):
                            yield out
                    watchdog.held = False
                    if kind in _TERMINAL:
                        watchdog.cancel()
                        await _let_response_end(messages)
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


def _redact_url(url: str) -> str:
    """The URL without credentials, query or fragment (where tokens tend to hide)."""
    base = url.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = base.partition("://")
    if not sep:
        return base
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"


async def _let_response_end(messages: AsyncIterator[ServerSentEvent]) -> None:
    """Gives a finished response a moment to end, so its connection can be reused.

    Whatever the server still sends is ignored; one that keeps the stream open is cut off.
    """
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(_END_GRACE):
            async for _ in messages:
                pass


def _transport_error(exc: httpx.HTTPError, received: int | None) -> AgentError:
    """`received` is the count of SSE messages read, or None if no response arrived."""
    reason = _escape(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, 200)
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
            shown = _escape(content_type, 80) or "no content type"
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
                return _escape(value, 200)
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
