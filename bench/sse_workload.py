"""The throughput bench's agent stream: text deltas with a large RAW event every so often,
pre-encoded, and a server that sends it to every POST as fast as it can."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from ag_ui.core import (
    BaseEvent,
    RawEvent,
    RunFinishedEvent,
    RunStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from orchestrator.sandbox.loopback import LoopbackServer

MESSAGE_ID: Final = "msg-bench"
RAW_EVERY: Final = 50
RAW_SIZE: Final = 2048
CHUNK_SIZE: Final = 64 * 1024
WORDS: Final = ("lorem ", "ipsum ", "dolor ", "sit ", "amet, ", "sed ", "do ", "tempor. ")


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
