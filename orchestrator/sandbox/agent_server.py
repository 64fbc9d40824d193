"""A scripted AG-UI agent over real HTTP + SSE, for `orchestrator demo` and the tests.

POST `/agents/<scenario>` with a `RunAgentInput` body; the scenario picks the script (an answer,
tool calls, each human-in-the-loop form and its resume, every failure the client must survive,
or a verbatim replay of a recorded stream). Any other agent id answers 404.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ag_ui.encoder import EventEncoder
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from orchestrator.sandbox.agent_requests import Run, auto_scenario, is_resume
from orchestrator.sandbox.agent_scenarios import (
    APPROVAL_MESSAGE,
    INTERRUPT_SCENARIOS,
    Gate,
    Item,
    Pause,
    ScenarioScripts,
    Script,
    long_markdown,
)
from orchestrator.sandbox.loopback import LoopbackServer

_ERROR_RESPONSES: Final[dict[str, tuple[int, str, dict[str, str]]]] = {
    "500": (500, "internal error in the sandbox agent", {}),
    "503": (503, "the sandbox agent is overloaded, try again later", {"Retry-After": "7"}),
    "401": (401, "missing or invalid credentials", {}),
    "403": (403, "this token may not run this agent", {}),
}
# Answers 503 with a short Retry-After to the first request of each thread, then answers.
_BUSY_ONCE: Final = "503-once"
_RECORDING_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_REPLAY_CHUNK: Final = 8192


@dataclass(slots=True)
class ReceivedRequest:
    path: str
    scenario: str
    body: dict[str, Any]
    headers: dict[str, str]
    closed_early: bool = False  # the client closed the connection before the script ended


@dataclass(slots=True)
class AgentExchange:
    """One thing on the wire, in order: a run request received, or an event (or raw SSE text)
    sent back."""

    thread_id: str
    run_id: str
    kind: str  # "request", "event" or "raw"
    data: dict[str, Any] | str
    at: float


class _AbruptStreamResponse(StreamingResponse):
    """Sends its body, then returns without ending it, so the server cuts the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            body = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            await send({"type": "http.response.body", "body": body, "more_body": True})


class ScriptedAgent(ScenarioScripts):
    """Serves the scripted scenarios on 127.0.0.1 and records every request it receives."""

    def __init__(
        self,
        *,
        name: str = "sandbox-agent",
        token_delay: float = 0.0,
        recordings_dir: Path | None = None,
    ) -> None:
        super().__init__(name=name, token_delay=token_delay)
        self.name = name
        self.recordings_dir = recordings_dir
        self.slow_start_seconds = 2.0
        self.busy_retry_after = 1  # seconds, the Retry-After of the `503-once` scenario
        self.requests: list[ReceivedRequest] = []
        self.record_exchanges = False  # keep `exchanges`: every request and what was streamed
        self.exchanges: list[AgentExchange] = []
        self.exchange_watchers: list[Callable[[AgentExchange], None]] = []
        self.resumes = 0
        self.duplicate_resumes = 0  # AG-UI 1.0 resumes refused: their interrupt was resolved
        self._resolved: set[str] = set()  # interrupt ids whose resume was acted on
        self.resumed: Counter[str] = Counter()  # resumes received, by interrupt id
        self._busy_answered: set[str] = set()
        self._resumable: set[str] = set()  # served scenarios whose resumes get a continuation
        self.app = Starlette(
            routes=[Route("/agents/{scenario:path}", self._handle, methods=["POST"])]
        )
        self.base_url = ""  # set by start()
        self._server: LoopbackServer | None = None
        self._closing = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> str:
        self._closing.clear()
        self._server = LoopbackServer(self.app)
        self.base_url = await self._server.start()
        return self.base_url

    async def stop(self) -> None:
        self._closing.set()  # wakes sleeping scripts so the server can finish its responses
        if self._server is not None:
            await self._server.stop()
            self._server = None

    def url(self, scenario: str = "auto") -> str:
        return f"{self.base_url}/agents/{scenario}"

    def reset(self) -> None:
        """Forgets the requests and resumes seen so far."""
        self.requests.clear()
        self.resumes = 0
        self.duplicate_resumes = 0
        self._resolved.clear()
        self.resumed.clear()
        self._busy_answered.clear()

    def serve(self, scenario: str, items: list[Item], *, resumable: bool = False) -> str:
        """Answers `scenario` with exactly `items` (events, raw SSE text, pauses); its URL.
        A `resumable` scenario answers resumes as the interrupt scenarios do."""
        fixed = list(items)
        self._scripts[scenario] = lambda _run: iter(fixed)
        if resumable:
            self._resumable.add(scenario)
        return self.url(scenario)

    def acted_on(self, interrupt_id: str) -> bool:
        """Whether a resume of this interrupt was acted on (the first one is; later refused)."""
        return interrupt_id in self._resolved

    def requests_for(self, scenario: str) -> list[ReceivedRequest]:
        return [request for request in self.requests if request.scenario == scenario]

    # --- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        scenario = request.path_params["scenario"]
        body = await _json_body(request)
        headers = dict(request.headers)
        received = ReceivedRequest(request.url.path, scenario, body, headers)
        self.requests.append(received)
        run = Run.of(body)
        if self.record_exchanges:
            self._exchanged(run, "request", body)
        return await self._respond(scenario, run, received)

    def _exchanged(self, run: Run, kind: str, data: dict[str, Any] | str) -> None:
        exchange = AgentExchange(run.thread_id, run.run_id, kind, data, time.time())
        self.exchanges.append(exchange)
        for watcher in self.exchange_watchers:
            watcher(exchange)

    def closed_by_client(self) -> list[ReceivedRequest]:
        """The runs whose client closed the connection mid-stream (how an AG-UI run is
        cancelled)."""
        return [request for request in self.requests if request.closed_early]

    async def _respond(self, scenario: str, run: Run, received: ReceivedRequest) -> Response:
        if scenario in _ERROR_RESPONSES:
            status, detail, headers = _ERROR_RESPONSES[scenario]
            return JSONResponse({"detail": detail}, status_code=status, headers=headers)
        if scenario == _BUSY_ONCE:
            if run.thread_id not in self._busy_answered:
                self._busy_answered.add(run.thread_id)
                headers = {"Retry-After": str(self.busy_retry_after)}
                return JSONResponse({"detail": "busy"}, status_code=503, headers=headers)
            scenario = "answer"
        if scenario == "slow-start":
            await self._sleep(self.slow_start_seconds)
        script = self._script(scenario, run)
        if script is None:
            return JSONResponse({"detail": "agent not found"}, status_code=404)
        response_class = _AbruptStreamResponse if scenario == "drop-abrupt" else StreamingResponse
        return response_class(
            self._sse(script, run, received),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    def _script(self, scenario: str, run: Run) -> Script | None:
        if scenario.startswith("replay-"):
            return self._replay(scenario.removeprefix("replay-"), run)
        if scenario == "auto":
            scenario = auto_scenario(run.body)
        resumable = scenario in INTERRUPT_SCENARIOS or scenario in self._resumable
        if resumable and is_resume(run.body):
            # Like AG-UI 1.0 servers, a second resume of a resolved interrupt id is refused.
            resumes = [r for r in run.body.get("resume") or [] if isinstance(r, dict)]
            ids = {str(r.get("interruptId")) for r in resumes}
            self.resumed.update(ids)
            if ids & self._resolved:
                self.duplicate_resumes += 1
                return self._already_resolved(run)
            if not self.refuse_resumes:  # a resume refused for its answer is not acted on
                self._resolved |= ids
            self.resumes += 1
            return self._continuation(run)
        make = self._scripts.get(scenario)
        return make(run) if make else None

    async def _sse(
        self, script: Script, run: Run, received: ReceivedRequest
    ) -> AsyncIterator[str | bytes]:
        encoder = EventEncoder()
        ended = False
        try:
            for item in script:
                if isinstance(item, Pause):
                    await self._sleep(item.seconds)
                elif isinstance(item, Gate):
                    await self._sleep(None, item.opened)
                elif isinstance(item, str | bytes):
                    if self.record_exchanges:
                        raw = item if isinstance(item, str) else item.decode(errors="replace")
                        self._exchanged(run, "raw", raw)
                    yield item
                else:
                    if self.record_exchanges:
                        self._exchanged(run, "event", item.model_dump(mode="json", by_alias=True))
                    yield encoder.encode(item)
            ended = True
        finally:
            # Cut short while the server runs: the client disconnected (the server cancels the
            # response when it sees the connection close).
            if not ended and not self._closing.is_set():
                received.closed_early = True

    async def _sleep(self, seconds: float | None, opened: asyncio.Event | None = None) -> None:
        """Sleeps `seconds` (or until `opened` is set), but wakes at once when the server stops
        (so stop() never waits on a script)."""
        waits = [asyncio.ensure_future(self._closing.wait())]
        if opened is not None:
            waits.append(asyncio.ensure_future(opened.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def _replay(self, name: str, run: Run) -> Script | None:
        resume = name.endswith("-interrupt") and is_resume(run.body)
        if resume:
            name = name.removesuffix("-interrupt") + "-resume"
        path = self._recording(name)
        if path is None:
            return None
        self.resumes += resume
        return self._replay_bytes(path.read_bytes())

    def _replay_bytes(self, data: bytes) -> Script:
        for start in range(0, len(data), _REPLAY_CHUNK):
            if self.token_delay and start:
                yield Pause(self.token_delay)
            yield data[start : start + _REPLAY_CHUNK]

    def _recording(self, name: str) -> Path | None:
        if self.recordings_dir is None or not _RECORDING_NAME.fullmatch(name):
            return None
        path = self.recordings_dir / f"{name}.sse"
        return path if path.is_file() else None


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, ClientDisconnect):  # a client killed mid-request sent no run
        return {}
    return body if isinstance(body, dict) else {}


__all__ = [
    "APPROVAL_MESSAGE",
    "AgentExchange",
    "Gate",
    "Item",
    "ReceivedRequest",
    "ScriptedAgent",
    "long_markdown",
]
