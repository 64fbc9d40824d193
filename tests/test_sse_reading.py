"""Reading server-sent events a read at a time: the SSE rules whatever the line ends, fields and
comments, and wherever the reads cut the stream; end to end through the AG-UI client."""

from __future__ import annotations

import json

import httpx
from ag_ui.core import (
    RunAgentInput,
    RunFinishedEvent,
    RunStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
)

from orchestrator.agent.agui.client import AgentClient
from orchestrator.agent.agui.events import SSEReader
from orchestrator.sandbox.agent_scenarios import Pause
from orchestrator.sandbox.agent_server import ScriptedAgent


def data(event: object) -> str:
    return json.dumps(event, separators=(",", ":"))


START = data({"type": "RUN_STARTED", "threadId": "t", "runId": "r"})
OPEN = data({"type": "TEXT_MESSAGE_START", "messageId": "m", "role": "assistant"})
DELTA = data({"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": "héllo\nworld"})
CLOSE = data({"type": "TEXT_MESSAGE_END", "messageId": "m"})
END = data({"type": "RUN_FINISHED", "threadId": "t", "runId": "r"})

# Every shape the SSE rules allow: comments, other fields, no space after the colon, data over
# several lines (joined with "\n"), blank lines in a row, and an unfinished event at the end.
STREAM = (
    ": keep-alive\n\n"
    f"data: {START}\n\n"
    f"event: message\nid: 1\ndata:{OPEN}\n\n\n"
    f"data: {DELTA[:20]}\ndata: {DELTA[20:]}\n\n"
    f"retry: 100\ndata: {CLOSE}\n\n"
    f"data: {END}\n\n"
    "data: never finished"
)
EXPECTED = [START, OPEN, DELTA[:20] + "\n" + DELTA[20:], CLOSE, END]


def read_in(pieces: list[str]) -> list[str]:
    reader = SSEReader()
    return [out for piece in pieces for out in reader.feed(piece)]


def test_every_cut_of_the_stream_reads_the_same_events() -> None:
    for line_end in ("\n", "\r\n", "\r"):
        text = STREAM.replace("\n", line_end)
        assert read_in([text]) == EXPECTED
        for cut in range(1, len(text)):
            assert read_in([text[:cut], text[cut:]]) == EXPECTED, (line_end, cut)


def test_one_character_at_a_time() -> None:
    assert read_in(list(STREAM)) == EXPECTED
    assert read_in(list(STREAM.replace("\n", "\r\n"))) == EXPECTED


async def test_the_client_reads_events_cut_anywhere_and_with_crlf(agent: ScriptedAgent) -> None:
    events = [
        RunStartedEvent(thread_id="t", run_id="r"),
        TextMessageStartEvent(message_id="m", role="assistant"),
        TextMessageContentEvent(message_id="m", delta="one "),
        TextMessageContentEvent(message_id="m", delta="two"),
        TextMessageEndEvent(message_id="m"),
        RunFinishedEvent(thread_id="t", run_id="r"),
    ]
    lines = [
        f"data: {event.model_dump_json(by_alias=True, exclude_none=True)}\r\n\r\n"
        for event in events
    ]
    text = ": hello\r\n\r\n" + "".join(lines)
    # Written in pieces that cut events (and a CRLF) in two, with pauses between the writes.
    pieces: list[str | Pause] = []
    for start in range(0, len(text), 37):
        pieces += [text[start : start + 37], Pause(0.005)]
    url = agent.serve("crlf", pieces)
    run_input = RunAgentInput(
        thread_id="t", run_id="r", state=None, messages=[], tools=[], context=[], forwarded_props={}
    )
    async with httpx.AsyncClient() as http:
        got = [event async for event in AgentClient(http).stream(url, run_input)]
    assert got == events
