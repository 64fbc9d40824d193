"""Throughput of one AG-UI SSE stream: bare parsing against the whole engine path.

The same pre-encoded stream (text deltas with a large RAW event every so often) is served on
127.0.0.1 and read K times by each of two paths:

(a) by httpx + httpx-sse + `TypeAdapter(Event).validate_json` on every `data:` line;
(b) by a real `Runtime` (SQLite in a temp dir, production update interval) with a recording
    publisher: the engine's own `Publisher`, throttle and renders, writing its Slack calls to
    memory instead of HTTP. The run is started by a signed `app_mention` delivered to the app and
    timed until the engine has drained it; the thread row is then checked to be `done`.

The two paths alternate K times (so both see the machine in the same state) and the best run of
each is reported. Run as `python bench/throughput.py [--events N] [--repeat K]` (defaults 20000
and 5).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
from ag_ui.core import (
    BaseEvent,
    Event,
    RawEvent,
    RunAgentInput,
    RunFinishedEvent,
    RunStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
)
from httpx_sse import aconnect_sse
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from orchestrator.agent.agui.run_input import run_input_payload
from orchestrator.sandbox import slack_delivery
from orchestrator.sandbox.loopback import LoopbackServer
from orchestrator.sandbox.slack_emulator import API_APP_ID, VERIFICATION_TOKEN, SlackEmulator
from orchestrator.service.runtime import Runtime
from orchestrator.service.settings import Settings
from orchestrator.slack.publisher import Publisher
from persistence.models import Thread
from renderers.view import ThreadView

ADAPTER: Final[TypeAdapter[Event]] = TypeAdapter(Event)

CHANNEL: Final = "C0BENCH"
USER: Final = "U0BENCH"
SECRET: Final = "bench-signing-secret"
MESSAGE_ID: Final = "msg-bench"
RAW_EVERY: Final = 50
RAW_SIZE: Final = 2048
CHUNK_SIZE: Final = 64 * 1024
WORDS: Final = ("lorem ", "ipsum ", "dolor ", "sit ", "amet, ", "sed ", "do ", "tempor. ")
UPDATE_INTERVAL: Final = 1.0
PICKUP_POLL: Final = 0.0005
SETTLE_TIMEOUT: Final = 600.0
START_WAIT: Final = 5.0  # how long the engine may take to pick up the delivered mention
TARGET: Final = 0.5


# --- the stream ----------------------------------------------------------------------------


def delta_text(index: int) -> str:
    """The few characters of the `index`-th delta; a paragraph break every 200 deltas."""
    word = WORDS[index % len(WORDS)]
    return word + "\n\n" if index % 200 == 199 else word


def raw_event(index: int) -> RawEvent:
    """A RAW event of about RAW_SIZE bytes, as LangGraph-style servers send many of."""
    filler = "x" * RAW_SIZE
    payload = {
        "event": "on_chat_model_stream",
        "run_id": f"raw-{index}",
        "data": {"chunk": {"content": filler}},
        "metadata": {"langgraph_node": "agent", "langgraph_step": index},
    }
    return RawEvent(event={"event": "on_chat_model_stream"}, raw_event=payload, source="bench")


def build_events(deltas: int) -> list[BaseEvent]:
    """RUN_STARTED, TEXT_MESSAGE_START, the deltas (and RAW events), TEXT_MESSAGE_END,
    RUN_FINISHED."""
    events: list[BaseEvent] = [
        RunStartedEvent(thread_id="bench-thread", run_id="bench-run"),
        TextMessageStartEvent(message_id=MESSAGE_ID, role="assistant"),
    ]
    for index in range(deltas):
        if index % RAW_EVERY == RAW_EVERY - 1:
            events.append(raw_event(index))
        events.append(TextMessageContentEvent(message_id=MESSAGE_ID, delta=delta_text(index)))
    events.append(TextMessageEndEvent(message_id=MESSAGE_ID))
    events.append(RunFinishedEvent(thread_id="bench-thread", run_id="bench-run"))
    return events


def encode(events: list[BaseEvent]) -> bytes:
    lines = (f"data: {e.model_dump_json(by_alias=True, exclude_none=True)}\n\n" for e in events)
    return "".join(lines).encode()


def expected_text(deltas: int) -> str:
    return "".join(delta_text(index) for index in range(deltas))


@dataclass(frozen=True, slots=True)
class Workload:
    """The stream both paths read, pre-encoded, and the answer it spells out."""

    deltas: int
    events: int
    raws: int
    payload: bytes
    text: str

    @classmethod
    def build(cls, deltas: int) -> Workload:
        events = build_events(deltas)
        raws = sum(isinstance(event, RawEvent) for event in events)
        return cls(deltas, len(events), raws, encode(events), expected_text(deltas))


class StreamServer:
    """Serves the pre-encoded stream to every POST on /agent, in large chunks, at full speed."""

    def __init__(self, payload: bytes) -> None:
        self._chunks = [
            payload[start : start + CHUNK_SIZE] for start in range(0, len(payload), CHUNK_SIZE)
        ]
        app = Starlette(routes=[Route("/agent", self._agent, methods=["POST"])])
        self._server = LoopbackServer(app)
        self.url = ""

    async def start(self) -> str:
        self.url = f"{await self._server.start()}/agent"
        return self.url

    async def stop(self) -> None:
        await self._server.stop()

    async def _agent(self, request: Request) -> Response:
        await request.body()
        return StreamingResponse(
            self._body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    async def _body(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


# --- (a) the baseline ----------------------------------------------------------------------


def request_body() -> dict[str, Any]:
    """The same kind of body the engine sends: a RunAgentInput with one user message."""
    run_input = RunAgentInput.model_validate(
        {
            "threadId": "bench-thread",
            "runId": "bench-run",
            "messages": [{"id": "u-1", "role": "user", "content": "<@UBOT> go"}],
            "tools": [],
            "context": [],
            "state": None,
            "forwardedProps": {"source": "slack"},
        }
    )
    return run_input_payload(run_input)


async def bare_run(http: httpx.AsyncClient, url: str) -> tuple[float, int]:
    """Seconds to read and validate the whole stream, and the number of events read."""
    body = request_body()
    count = 0
    started = time.perf_counter()
    async with aconnect_sse(http, "POST", url, json=body) as source:
        source.response.raise_for_status()
        async for sse in source.aiter_sse():
            ADAPTER.validate_json(sse.data)
            count += 1
    return time.perf_counter() - started, count


# --- (b) the engine ------------------------------------------------------------------------


class RecordingSlack:
    """The two Web API methods the publisher calls, kept in memory with their payloads."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("chat.postMessage", kwargs))
        return {"ok": True, "ts": f"{len(self.calls)}.000000"}

    async def chat_update(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("chat.update", kwargs))
        return {"ok": True, "ts": kwargs["ts"]}


class EngineBench:
    """A Runtime between the Slack emulator and the stream server, served over HTTP."""

    def __init__(self, slack: SlackEmulator, agent_url: str, db_path: Path) -> None:
        self.slack = slack
        self.recorded = RecordingSlack()
        self.runtime = Runtime(
            Settings(
                SLACK_BOT_TOKEN=slack.token,
                SLACK_SIGNING_SECRET=SECRET,
                SLACK_API_URL=slack.api_url,
                AGENT_URL=agent_url,
                ORCH_DATABASE_URL=f"sqlite+aiosqlite:///{db_path}",
                ORCH_UPDATE_INTERVAL=UPDATE_INTERVAL,
            ),
            publishers=self._recording_publisher,
        )
        self._server: LoopbackServer | None = None
        # One client for every delivery: a new one per request (as `deliver_event` makes) would
        # put the building of its TLS context, ~20 ms, inside the timed window.
        self._delivery = httpx.AsyncClient(timeout=slack_delivery.DELIVERY_TIMEOUT)
        self.events_url = ""
        self.settled_at = 0.0

    def _recording_publisher(self, thread: Thread, _view: ThreadView) -> Publisher:
        return Publisher(
            self.recorded,  # type: ignore[arg-type]
            thread.channel_id,
            thread.thread_ts,
            interval=UPDATE_INTERVAL,
        )

    async def start(self) -> None:
        await self.runtime.start()
        self._server = LoopbackServer(self.runtime.asgi())
        self.events_url = f"{await self._server.start()}/slack/events"

    async def stop(self) -> None:
        await self._delivery.aclose()
        if self._server is not None:
            await self._server.stop()
        await self.runtime.stop()

    async def deliver(self, event: dict[str, Any]) -> httpx.Response:
        """The same signed Events API request as `SlackEmulator.deliver_event`."""
        envelope = slack_delivery.event_envelope(
            event,
            team_id=self.slack.team_id,
            api_app_id=API_APP_ID,
            bot_user_id=self.slack.bot_user_id,
            event_id=slack_delivery.new_event_id(),
            verification_token=VERIFICATION_TOKEN,
        )
        body, content_type = slack_delivery.json_body(envelope)
        headers = slack_delivery.signed_headers(SECRET, body, content_type)
        return await self._delivery.post(self.events_url, content=body.encode(), headers=headers)

    async def run(self, text: str) -> tuple[float, int]:
        """Seconds from the mention's delivery to the settled thread, and the Slack calls made."""
        event = self.slack.post_user_message(CHANNEL, USER, "go", mention=True)
        thread_ts = event.get("thread_ts") or event["ts"]
        thread_id = self.runtime.engine.conversation_id(self.slack.team_id, CHANNEL, thread_ts)
        calls_before = len(self.recorded.calls)
        started = time.perf_counter()
        response = await self.deliver(event)
        if response.status_code != 200:
            raise RuntimeError(f"the mention was refused: HTTP {response.status_code}")
        await self._settled(thread_id)
        elapsed = self.settled_at - started
        await self._check_history(thread_id, text)
        return elapsed, len(self.recorded.calls) - calls_before

    async def _settled(self, thread_id: str) -> None:
        # The run is spawned while the delivery is handled: once the engine is seen busy, its
        # own drain() says when the run (and what it started) ended, with no polling; the row is
        # read after that, so the bench's queries never compete with the run's.
        engine, store = self.runtime.engine, self.runtime.store
        picked_up_by = time.monotonic() + START_WAIT
        while not engine.busy:
            if time.monotonic() > picked_up_by:
                break  # handled without a task of its own, or refused: the row says which
            await asyncio.sleep(PICKUP_POLL)
        await asyncio.wait_for(engine.drain(), SETTLE_TIMEOUT)
        self.settled_at = time.perf_counter()
        row = await store.get_thread(thread_id)
        if row is None or row.state != "done":
            state = row.state if row is not None else "no thread"
            raise RuntimeError(f"the run ended in {state}: {row.error_text if row else ''}")

    async def _check_history(self, thread_id: str, text: str) -> None:
        messages = await self.runtime.store.messages(thread_id)
        answers = [m for m in messages if m.get("role") == "assistant"]
        if not answers or answers[-1].get("content") != text:
            raise RuntimeError("the stored answer is not the streamed text")


# --- reporting -----------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    seconds: float
    events: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def print_table(
    work: Workload,
    bare: Result,
    engine: Result,
    *,
    repeat: int,
    calls: int,
    rss: float,
) -> None:
    ratio = engine.rate / bare.rate
    print(
        f"stream: {work.events} events ({work.deltas} text deltas, {work.raws} RAW of "
        f"~{RAW_SIZE} B), {len(work.payload) / 1e6:.2f} MB; best of {repeat}"
    )
    print(f"{'path':<26}{'events':>9}{'seconds':>10}{'events/s':>12}")
    for name, result in (("(a) httpx-sse + validate", bare), ("(b) engine, recorded", engine)):
        print(f"{name:<26}{result.events:>9}{result.seconds:>10.3f}{result.rate:>12,.0f}")
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"ratio (b)/(a): {ratio:.2f}   target ≥ {TARGET}: {verdict}")
    print(f"Slack calls recorded in (b): {calls} (update interval {UPDATE_INTERVAL:g}s)")
    print(f"peak RSS of the process: {rss:.1f} MB")


# --- main ----------------------------------------------------------------------------------


async def bench(deltas: int, repeat: int) -> None:
    work = Workload.build(deltas)
    stream = StreamServer(work.payload)
    slack = SlackEmulator(channels=[CHANNEL])
    await stream.start()
    await slack.start()
    try:
        with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
            await measure(work, stream, slack, Path(tmp) / "bench.db", repeat)
    finally:
        await slack.stop()
        await stream.stop()


async def measure(
    work: Workload, stream: StreamServer, slack: SlackEmulator, db_path: Path, repeat: int
) -> None:
    # (a) and (b) alternate, so both see the machine in the same state; the best of each counts.
    bare_runs: list[tuple[float, int]] = []
    engine_runs: list[tuple[float, int]] = []
    engine_bench = EngineBench(slack, stream.url, db_path)
    await engine_bench.start()
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(repeat):
                bare_runs.append(await bare_run(http, stream.url))
                engine_runs.append(await engine_bench.run(work.text))
    finally:
        await engine_bench.stop()
    seconds_a, count = min(bare_runs)
    if count != work.events:
        raise RuntimeError(f"(a) read {count} events of {work.events}")
    seconds_b, calls = min(engine_runs)
    print_table(
        work,
        Result(seconds_a, count),
        Result(seconds_b, work.events),
        repeat=repeat,
        calls=calls,
        rss=peak_rss_mb(),
    )


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=positive, default=20000, help="text deltas (N)")
    parser.add_argument("--repeat", type=positive, default=5, help="take the best of K runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(bench(args.events, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
