"""The fast stand-ins of `bench/load.py`: a Slack Web API that keeps only what the figures need,
and an AG-UI agent streaming one text delta per clock tick, both served by aiohttp on 127.0.0.1.

The sandbox's Slack emulator validates every Block Kit payload and keeps whole workspaces; under
a thousand concurrent answers it costs more CPU than the bot it serves (see bench/README.md), so
the load bench answers here with the few fields a bot reads back, and records, per mention, when a
message in its thread first showed agent text and when it first held the whole answer.

The agent sends every stream's next delta on one shared clock tick (one timer for all streams, not
one per stream), one event per write, as model streams arrive (several only when the bench's own
loop runs late, so an answer takes the same time whatever the load).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from orchestrator.slack.manifest import required_scopes

TEAM_ID: Final = "T0LOAD"
BOT_USER_ID: Final = "UBOTLOAD"
WORDS: Final = ("lorem", "ipsum", "dolor", "sit", "amet", "sed", "do", "tempor")
_SPACES: Final = re.compile(r"\s+")


def answer_text(question: str, deltas: int) -> str:
    """The answer the agent streams to `question`: the question itself, then plain words."""
    return " ".join([question, *(WORDS[i % len(WORDS)] for i in range(deltas - 1))])


def answer_deltas(question: str, deltas: int) -> list[str]:
    words = answer_text(question, deltas).split(" ")
    return [words[0], *(" " + word for word in words[1:])]


def _flat(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


@dataclass(slots=True)
class Mention:
    """One delivered mention and what became of it."""

    question: str
    thread_ts: str
    answer: str
    sent_at: float = 0.0
    status: int = 0  # the HTTP status of the delivery; 0 = no answer
    acked_at: float | None = None
    first_message_at: float | None = None  # first Slack write in its thread ("Thinking…")
    stream_started: float | None = None
    stream_ended: float | None = None
    first_text_at: float | None = None  # first Slack write in the thread showing agent text
    complete_at: float | None = None  # first Slack write in the thread holding the whole answer
    messages: dict[str, str] = field(default_factory=dict)  # ts -> its latest visible text

    @property
    def complete(self) -> bool:
        answer = _flat(self.answer)
        return any(answer in _flat(text) for text in self.messages.values())


def visible_text(params: dict[str, Any]) -> str:
    """The message's `text` and every text in its blocks, joined."""
    parts = [str(params.get("text") or "")]
    blocks = params.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    _collect(blocks or [], parts)
    return "\n".join(parts)


def _collect(node: Any, parts: list[str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("text"), str):
            parts.append(node["text"])
        for value in node.values():
            if isinstance(value, (dict, list)):
                _collect(value, parts)
    elif isinstance(node, list):
        for item in node:
            _collect(item, parts)


class Clock:
    """One timer for every stream: `tick()` returns at the next tick."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._event: asyncio.Event | None = None
        self.lateness: list[float] = []  # how late each tick fired: the stand-ins' own load

    async def tick(self) -> None:
        if self._event is None:
            self._event = asyncio.Event()
            due = time.monotonic() + self.interval
            asyncio.get_running_loop().call_later(self.interval, self._fire, self._event, due)
        await self._event.wait()

    def _fire(self, event: asyncio.Event, due: float) -> None:
        self.lateness.append(time.monotonic() - due)
        self._event = None
        event.set()


class StandIns:
    """The Slack Web API on /api/{method} and the agent on /agent, on one aiohttp server."""

    def __init__(self, deltas: int, seconds: float) -> None:
        self.deltas = deltas
        self.clock = Clock(seconds / max(deltas, 1))
        self.mentions: dict[str, Mention] = {}  # by thread_ts
        self.by_question: dict[str, Mention] = {}
        self.calls: dict[str, Counter[str]] = defaultdict(Counter)  # by token, by method
        self.last_activity = time.monotonic()
        self._message_thread: dict[str, str] = {}  # message ts -> thread ts
        self._ts = 0
        self._scopes = ",".join(required_scopes())
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)  # conversations.replies is a GET
        app.router.add_post("/agent", self._agent)
        self._runner = web.AppRunner(app, access_log=None)
        self.base_url = ""

    def reset(self) -> None:
        """Forget the previous bot's mentions and calls."""
        self.mentions.clear()
        self.by_question.clear()
        self.calls.clear()
        self.clock.lateness.clear()

    def expect(self, mention: Mention) -> None:
        self.mentions[mention.thread_ts] = mention
        self.by_question[mention.question] = mention

    async def start(self) -> str:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        await self._runner.cleanup()

    # --- Slack ------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params |= await request.json()
        elif request.method == "POST":
            params |= dict(await request.post())
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.calls[token or str(params.get("token", ""))][method] += 1
        self.last_activity = time.monotonic()
        body = self._answer(method, params)
        headers = {"x-oauth-scopes": self._scopes}
        return web.Response(text=json.dumps(body), content_type="application/json", headers=headers)

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://load.slack.com/",
                "team": "Load",
                "user": "load-bot",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": "BLOAD",
                "is_enterprise_install": False,
            }
        channel = str(params.get("channel", ""))
        if method == "chat.postMessage":
            self._ts += 1
            ts = f"1800000000.{self._ts:06d}"
            self._message_thread[ts] = str(params.get("thread_ts") or ts)
            self._written(ts, params)
            return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts}}
        if method == "chat.update":
            ts = str(params.get("ts", ""))
            if ts not in self._message_thread:
                return {"ok": False, "error": "message_not_found"}
            self._written(ts, params)
            return {"ok": True, "channel": channel, "ts": ts, "text": params.get("text", "")}
        if method == "conversations.replies":
            return {"ok": True, "messages": [], "has_more": False}
        return {"ok": True}

    def _written(self, ts: str, params: dict[str, Any]) -> None:
        mention = self.mentions.get(self._message_thread[ts])
        if mention is None:
            return
        text = visible_text(params)
        mention.messages[ts] = text
        now = time.monotonic()
        if mention.first_message_at is None:
            mention.first_message_at = now
        if mention.first_text_at is None and mention.question in text:
            mention.first_text_at = now
        if mention.complete_at is None and _flat(mention.answer) in _flat(text):
            mention.complete_at = now

    # --- the agent --------------------------------------------------------------------------

    async def _agent(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        question = _flat(str(body["messages"][-1].get("content", "")))
        mention = self.by_question.get(question)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        thread_id, run_id = body.get("threadId", ""), body.get("runId", "")
        if mention is not None:
            mention.stream_started = time.monotonic()
        await response.write(
            _sse({"type": "RUN_STARTED", "threadId": thread_id, "runId": run_id})
            + _sse({"type": "TEXT_MESSAGE_START", "messageId": run_id, "role": "assistant"})
        )
        # Delta i is due `i + 1` ticks after the start: when the loop runs late, the deltas due
        # meanwhile go in one write, so the answer takes SECONDS whatever the bench's own load.
        events = [
            _sse({"type": "TEXT_MESSAGE_CONTENT", "messageId": run_id, "delta": delta})
            for delta in answer_deltas(question, self.deltas)
        ]
        started, sent = time.monotonic(), 0
        while sent < len(events):
            await self.clock.tick()
            due = int((time.monotonic() - started) / self.clock.interval + 0.5)
            due = min(len(events), max(due, sent + 1))
            await response.write(b"".join(events[sent:due]))
            sent = due
        await response.write(
            _sse({"type": "TEXT_MESSAGE_END", "messageId": run_id})
            + _sse({"type": "RUN_FINISHED", "threadId": thread_id, "runId": run_id})
        )
        await response.write_eof()
        self.last_activity = time.monotonic()
        if mention is not None:
            mention.stream_ended = self.last_activity
        return response


_COMPACT: Final = json.JSONEncoder(
    separators=(",", ":")
)  # one encoder: json.dumps makes one a call


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {_COMPACT.encode(event)}\n\n".encode()
