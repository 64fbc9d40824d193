"""A scripted AG-UI agent over real HTTP + SSE, for `orchestrator demo` and the tests.

POST `/agents/<scenario>` with a `RunAgentInput` body; the scenario picks the script (an answer,
tool calls, each human-in-the-loop form and its resume, every failure the client must survive,
or a verbatim replay of a recorded stream). Any other agent id answers 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    Interrupt,
    RunErrorEvent,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunFinishedOutcome,
    RunFinishedSuccessOutcome,
    RunStartedEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageChunkEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallChunkEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from ag_ui.encoder import EventEncoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from orchestrator.sandbox.loopback import LoopbackServer


@dataclass(frozen=True, slots=True)
class _Pause:
    seconds: float


# A script yields events, raw SSE text/bytes (for what no model may express) and pauses.
Item = BaseEvent | str | bytes | _Pause
Script = Iterator[Item]

INTERRUPT_SCENARIOS: Final = frozenset(
    {"interrupt-outcome", "interrupt-legacy", "interrupt-tool", "interrupt-multi"}
)
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

APPROVAL_MESSAGE: Final = "Approve scaling deployment web to 5 replicas?"
_SCALE_ARGS: Final = {"deployment": "web", "replicas": 5}
_SCALE_SCHEMA: Final = {
    "type": "object",
    "properties": {
        "replicas": {"type": "string", "enum": ["3", "5", "8"], "default": "5"},
        "comment": {"type": "string", "format": "textarea"},
    },
    "required": ["replicas"],
}
_WINDOW_SCHEMA: Final = {
    "type": "object",
    "properties": {"start": {"type": "string", "format": "date"}},
    "required": ["start"],
}
_LEGACY_INTERRUPT: Final = {
    "message": APPROVAL_MESSAGE,
    "reason": "confirmation",
    "fields": [
        {"name": "replicas", "type": "select", "options": ["3", "5", "8"], "default": "5"},
        {"name": "comment", "type": "textarea"},
    ],
}
_APPROVAL_INTRO: Final = (
    "I looked at your request. Scaling deployment web from 3 to 5 replicas needs approval "
    "before I continue."
)


@dataclass(slots=True)
class ReceivedRequest:
    path: str
    scenario: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(slots=True)
class _Run:
    """The run being answered; its ids are echoed in RUN_STARTED and RUN_FINISHED."""

    thread_id: str
    run_id: str
    body: dict[str, Any]

    @classmethod
    def of(cls, body: dict[str, Any]) -> _Run:
        thread_id = str(body.get("threadId") or "sandbox-thread")
        return cls(thread_id, str(body.get("runId") or "sandbox-run"), body)

    def id(self, suffix: str) -> str:
        return f"{self.run_id}-{suffix}"

    def started(self) -> RunStartedEvent:
        return RunStartedEvent(thread_id=self.thread_id, run_id=self.run_id)

    def finished(self, outcome: RunFinishedOutcome | None = None) -> RunFinishedEvent:
        return RunFinishedEvent(thread_id=self.thread_id, run_id=self.run_id, outcome=outcome)


class _AbruptStreamResponse(StreamingResponse):
    """Sends its body, then returns without ending it, so the server cuts the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            body = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            await send({"type": "http.response.body", "body": body, "more_body": True})


class ScriptedAgent:
    """Serves the scripted scenarios on 127.0.0.1 and records every request it receives."""

    def __init__(
        self,
        *,
        name: str = "sandbox-agent",
        token_delay: float = 0.0,
        recordings_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.token_delay = token_delay
        self.recordings_dir = recordings_dir
        self.slow_start_seconds = 2.0
        self.stall_seconds = 30.0
        self.resume_delay = 0.0  # seconds a resume waits before its first event
        self.interrupt_expires_at: str | None = None  # ISO 8601; omitted from interrupts if None
        self.busy_retry_after = 1  # seconds, the Retry-After of the `503-once` scenario
        self.requests: list[ReceivedRequest] = []
        self.resumes = 0
        self._busy_answered: set[str] = set()
        self.answer_text = (
            f"Hello from {name}! I am a **scripted** agent running on this machine. "
            "Here is what I can show you:\n\n"
            "- streamed text, word by word\n"
            "- tool calls with their results\n"
            "- approval forms that pause the run\n\n"
            "Try `orchestrator demo` to watch a whole thread. Nothing here calls a real model."
        )
        self.app = Starlette(
            routes=[Route("/agents/{scenario:path}", self._handle, methods=["POST"])]
        )
        self.base_url = ""  # set by start()
        self._server: LoopbackServer | None = None
        self._closing = asyncio.Event()
        self._scripts: dict[str, Callable[[_Run], Script]] = {
            "answer": self._answer,
            "slow-start": self._answer,
            "tools": self._tools,
            "chunks": self._chunks,
            "interrupt-outcome": self._interrupt_outcome,
            "interrupt-legacy": self._interrupt_legacy,
            "interrupt-tool": self._interrupt_tool,
            "interrupt-multi": self._interrupt_multi,
            "run-error": self._run_error,
            "drop": self._drop,
            "drop-abrupt": self._drop,
            "stall": self._stall,
            "malformed": self._malformed,
            "out-of-order": self._out_of_order,
            "unknown-type": self._unknown_type,
            "huge-delta": self._huge_delta,
            "long": self._long,
            "echo": self._echo,
        }

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
        self._busy_answered.clear()

    def serve(self, scenario: str, items: list[Item]) -> str:
        """Answers `scenario` with exactly `items` (events, raw SSE text, pauses); its URL."""
        fixed = list(items)
        self._scripts[scenario] = lambda _run: iter(fixed)
        return self.url(scenario)

    def requests_for(self, scenario: str) -> list[ReceivedRequest]:
        return [request for request in self.requests if request.scenario == scenario]

    # --- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        scenario = request.path_params["scenario"]
        body = await _json_body(request)
        headers = dict(request.headers)
        self.requests.append(ReceivedRequest(request.url.path, scenario, body, headers))
        return await self._respond(scenario, _Run.of(body))

    async def _respond(self, scenario: str, run: _Run) -> Response:
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
            self._sse(script), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    def _script(self, scenario: str, run: _Run) -> Script | None:
        if scenario.startswith("replay-"):
            return self._replay(scenario.removeprefix("replay-"), run)
        if scenario == "auto":
            scenario = _auto_scenario(run.body)
        if scenario in INTERRUPT_SCENARIOS and is_resume(run.body):
            self.resumes += 1
            return self._continuation(run)
        make = self._scripts.get(scenario)
        return make(run) if make else None

    async def _sse(self, script: Script) -> AsyncIterator[str | bytes]:
        encoder = EventEncoder()
        for item in script:
            if isinstance(item, _Pause):
                await self._sleep(item.seconds)
            elif isinstance(item, str | bytes):
                yield item
            else:
                yield encoder.encode(item)

    async def _sleep(self, seconds: float) -> None:
        """Sleeps, but wakes at once when the server stops (so stop() never waits on a script)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()

    # --- building blocks ---------------------------------------------------------------------

    def _say(self, message_id: str, text: str) -> Script:
        yield TextMessageStartEvent(message_id=message_id, role="assistant")
        for token in _tokens(text):
            if self.token_delay:
                yield _Pause(self.token_delay)
            yield TextMessageContentEvent(message_id=message_id, delta=token)
        yield TextMessageEndEvent(message_id=message_id)

    def _tool_call(
        self, call_id: str, name: str, args: dict[str, Any], *, parent: str, result: Any = None
    ) -> Script:
        text = json.dumps(args)
        half = len(text) // 2
        yield ToolCallStartEvent(
            tool_call_id=call_id, tool_call_name=name, parent_message_id=parent
        )
        yield ToolCallArgsEvent(tool_call_id=call_id, delta=text[:half])
        yield ToolCallArgsEvent(tool_call_id=call_id, delta=text[half:])
        yield ToolCallEndEvent(tool_call_id=call_id)
        if result is not None:
            yield ToolCallResultEvent(
                message_id=f"{call_id}-result",
                tool_call_id=call_id,
                content=json.dumps(result),
                role="tool",
            )

    def _approval(self, run: _Run, call_id: str) -> Interrupt:
        return Interrupt(
            id=run.id("interrupt-1"),
            reason="confirmation",
            message=APPROVAL_MESSAGE,
            tool_call_id=call_id,
            response_schema=_SCALE_SCHEMA,
            expires_at=self.interrupt_expires_at,
        )

    # --- scenarios ---------------------------------------------------------------------------

    def _answer(self, run: _Run) -> Script:
        yield run.started()
        yield from self._say(run.id("text"), self.answer_text)
        yield run.finished()

    def _tools(self, run: _Run) -> Script:
        parent = run.id("assistant")
        yield run.started()
        yield StepStartedEvent(step_name="plan")
        yield from self._tool_call(
            run.id("search"),
            "search_docs",
            {"query": "deploy checklist", "limit": 3},
            parent=parent,
            result=[{"title": "Deploy checklist", "url": "https://docs.example/deploy"}],
        )
        yield StepFinishedEvent(step_name="plan")
        yield from self._tool_call(
            run.id("runbook"),
            "read_runbook",
            {"page": "deploys"},
            parent=parent,
            result={"steps": ["build", "canary", "rollout"]},
        )
        summary = "I searched the docs and read the runbook. " + self.answer_text
        yield from self._say(run.id("text"), summary)
        yield run.finished()

    def _chunks(self, run: _Run) -> Script:
        call_id, message_id = run.id("search"), run.id("text")
        args = json.dumps({"query": "deploy checklist"})
        yield run.started()
        yield ToolCallChunkEvent(
            tool_call_id=call_id, tool_call_name="search_docs", parent_message_id=message_id
        )
        yield ToolCallChunkEvent(tool_call_id=call_id, delta=args[:10])
        yield ToolCallChunkEvent(delta=args[10:])  # no id: continues the open tool call
        yield ToolCallResultEvent(
            message_id=f"{call_id}-result", tool_call_id=call_id, content='["Deploy checklist"]'
        )
        for token in _tokens(self.answer_text):
            if self.token_delay:
                yield _Pause(self.token_delay)
            yield TextMessageChunkEvent(message_id=message_id, role="assistant", delta=token)
        yield run.finished()

    def _interrupt_outcome(self, run: _Run) -> Script:
        call_id = run.id("scale")
        yield run.started()
        yield from self._say(run.id("text"), _APPROVAL_INTRO)
        yield from self._tool_call(call_id, "scale_deployment", _SCALE_ARGS, parent=run.id("text"))
        yield run.finished(RunFinishedInterruptOutcome(interrupts=[self._approval(run, call_id)]))

    def _interrupt_multi(self, run: _Run) -> Script:
        call_id = run.id("scale")
        window = Interrupt(
            id=run.id("interrupt-2"),
            reason="input",
            message="When should the maintenance window start?",
            response_schema=_WINDOW_SCHEMA,
            expires_at=self.interrupt_expires_at,
        )
        yield run.started()
        yield from self._say(run.id("text"), _APPROVAL_INTRO + " I also need a maintenance window.")
        yield from self._tool_call(call_id, "scale_deployment", _SCALE_ARGS, parent=run.id("text"))
        outcome = RunFinishedInterruptOutcome(interrupts=[self._approval(run, call_id), window])
        yield run.finished(outcome)

    def _interrupt_legacy(self, run: _Run) -> Script:
        yield run.started()
        yield from self._say(run.id("text"), _APPROVAL_INTRO)
        yield CustomEvent(name="on_interrupt", value=json.dumps(_LEGACY_INTERRUPT))
        yield run.finished()

    def _interrupt_tool(self, run: _Run) -> Script:
        call_id = run.id("confirm")
        args = {"action": "scale_deployment", **_SCALE_ARGS, "message": APPROVAL_MESSAGE}
        yield run.started()
        yield from self._tool_call(call_id, "confirm_action", args, parent=run.id("assistant"))
        yield run.finished(RunFinishedSuccessOutcome(pending_tool_call_ids=[call_id]))

    def _continuation(self, run: _Run) -> Script:
        if self.resume_delay:
            yield _Pause(self.resume_delay)
        yield run.started()
        yield from self._say(run.id("text"), resume_text(run.body))
        yield run.finished()

    def _run_error(self, run: _Run) -> Script:
        message_id = run.id("text")
        yield run.started()
        yield TextMessageStartEvent(message_id=message_id, role="assistant")
        yield TextMessageContentEvent(message_id=message_id, delta="Let me look into that")
        yield RunErrorEvent(message="The model provider is overloaded", code="overloaded")

    def _drop(self, run: _Run) -> Script:
        message_id = run.id("text")
        yield run.started()
        yield TextMessageStartEvent(message_id=message_id, role="assistant")
        yield TextMessageContentEvent(message_id=message_id, delta="This answer will be cut ")

    def _stall(self, run: _Run) -> Script:
        message_id = run.id("text")
        yield run.started()
        yield TextMessageStartEvent(message_id=message_id, role="assistant")
        yield TextMessageContentEvent(message_id=message_id, delta="Thinking very hard")
        yield _Pause(self.stall_seconds)
        yield TextMessageContentEvent(message_id=message_id, delta="... done.")
        yield TextMessageEndEvent(message_id=message_id)
        yield run.finished()

    def _malformed(self, run: _Run) -> Script:
        yield run.started()
        yield "data: {not json\n\n"
        yield run.finished()

    def _out_of_order(self, run: _Run) -> Script:
        """Content before its start, an end that was never started, no RUN_STARTED at all."""
        message_id = run.id("text")
        yield TextMessageContentEvent(message_id=message_id, delta="Content before its start. ")
        yield TextMessageEndEvent(message_id=run.id("never-started"))
        yield TextMessageStartEvent(message_id=message_id, role="assistant")
        yield TextMessageContentEvent(message_id=message_id, delta="Then the rest.")
        yield TextMessageEndEvent(message_id=message_id)
        yield run.finished()

    def _unknown_type(self, run: _Run) -> Script:
        yield run.started()
        yield 'data: {"type":"FUTURE_THING","payload":{"note":"from a newer protocol"}}\n\n'
        yield from self._say(run.id("text"), self.answer_text)
        yield run.finished()

    def _huge_delta(self, run: _Run) -> Script:
        message_id = run.id("text")
        text = ("All work and no play makes a very long delta. " * 1100)[:50_000]
        yield run.started()
        yield TextMessageStartEvent(message_id=message_id, role="assistant")
        yield TextMessageContentEvent(message_id=message_id, delta=text)
        yield TextMessageEndEvent(message_id=message_id)
        yield run.finished()

    def _long(self, run: _Run) -> Script:
        yield run.started()
        yield from self._say(run.id("text"), long_markdown())
        yield run.finished()

    def _echo(self, run: _Run) -> Script:
        messages = run.body.get("messages") or []
        summary = {"messages": len(messages), "last_user_message": last_user_text(run.body)}
        yield run.started()
        yield from self._say(run.id("text"), json.dumps(summary))
        yield run.finished()

    def _replay(self, name: str, run: _Run) -> Script | None:
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
                yield _Pause(self.token_delay)
            yield data[start : start + _REPLAY_CHUNK]

    def _recording(self, name: str) -> Path | None:
        if self.recordings_dir is None or not _RECORDING_NAME.fullmatch(name):
            return None
        path = self.recordings_dir / f"{name}.sse"
        return path if path.is_file() else None


# --- request inspection --------------------------------------------------------------------------


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def is_resume(body: dict[str, Any]) -> bool:
    """Whether a request answers an interrupt, in any of the three HITL forms."""
    if body.get("resume"):
        return True
    if "resume" in _legacy_command(body):
        return True
    messages = body.get("messages") or []
    return bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"


def resume_text(body: dict[str, Any]) -> str:
    """The continuation's answer: the decision it received, or that it was cancelled."""
    answers = _resume_answers(body)
    if all(_is_cancelled(answer) for answer in answers):
        return "Cancelled."
    decision = answers[0] if len(answers) == 1 else answers
    return f"Done. Decision received: {json.dumps(decision)}."


def _resume_answers(body: dict[str, Any]) -> list[Any]:
    entries = body.get("resume")
    if isinstance(entries, list) and entries:
        return [_entry_answer(entry) for entry in entries]
    command = _legacy_command(body)
    if "resume" in command:
        return [command["resume"]]
    content = (body.get("messages") or [{}])[-1].get("content")
    with contextlib.suppress(TypeError, ValueError):
        return [json.loads(content)]
    return [content]


def _entry_answer(entry: Any) -> Any:
    if not isinstance(entry, dict) or entry.get("status") == "cancelled":
        return {"status": "cancelled"}
    payload = entry.get("payload")
    return {"status": entry.get("status")} if payload is None else payload


def _is_cancelled(answer: Any) -> bool:
    return answer == "cancelled" or (
        isinstance(answer, dict) and answer.get("status") == "cancelled"
    )


def _legacy_command(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("forwardedProps")
    command = props.get("command") if isinstance(props, dict) else None
    return command if isinstance(command, dict) else {}


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text", "") for part in content if isinstance(part, dict)]
        return " ".join(part for part in parts if isinstance(part, str))
    return ""


def _auto_scenario(body: dict[str, Any]) -> str:
    text = last_user_text(body).lower()
    if any(word in text for word in ("approve", "deploy", "scale")):
        return "interrupt-outcome"
    if any(word in text for word in ("tool", "search")):
        return "tools"
    if "fail" in text:
        return "run-error"
    return "answer"


# --- text ----------------------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    """Word-sized deltas that join back to exactly `text`."""
    return re.findall(r"\S+\s*|\s+", text)


def long_markdown() -> str:
    """About 15,000 characters of Markdown: paragraphs, a list and a code block per section."""
    sections = []
    for number in range(1, 31):
        sections.append(
            f"## Section {number}\n\n"
            f"This is paragraph {number} of a long answer. It keeps going so that the message "
            "has to be split or truncated when it is rendered, and it uses **bold** words, "
            "`code spans` and [a link](https://example.com/docs) along the way. A careful reader "
            "will notice that every section looks alike, which is fine for a sandbox.\n\n"
            "- first point: check the deployment\n"
            "- second point: watch the error rate\n"
            "- third point: roll back if it rises\n\n"
            "```python\n"
            f"def step_{number}(replicas: int) -> int:\n"
            "    return replicas + 1\n"
            "```\n\n"
        )
    return "".join(sections)
