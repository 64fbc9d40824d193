"""The scripted agent's scenarios: an answer, tool calls, each human-in-the-loop form and its
resume, and every failure the client must survive."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    Interrupt,
    RunErrorEvent,
    RunFinishedInterruptOutcome,
    RunFinishedSuccessOutcome,
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

from orchestrator.sandbox.agent_requests import Run, last_user_text, resume_text


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Gate:
    """The script goes on once `opened` is set (by a test, when it has seen what it waits for)."""

    opened: asyncio.Event


# A script yields events, raw SSE text/bytes (for what no model may express), pauses and gates.
Item = BaseEvent | str | bytes | Pause | Gate
Script = Iterator[Item]

INTERRUPT_SCENARIOS: Final = frozenset(
    {"interrupt-outcome", "interrupt-legacy", "interrupt-tool", "interrupt-multi"}
)


APPROVAL_MESSAGE: Final = "Approve scaling deployment web to 5 replicas?"
_SCALE_ARGS: Final = {"deployment": "web", "replicas": 5}
_SCALE_SCHEMA: Final = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "enum": [3, 5, 8], "default": 5},
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


class ScenarioScripts:
    """The scripted scenarios, by name: each turns a run request into the items to stream."""

    def __init__(self, *, name: str, token_delay: float) -> None:
        self.token_delay = token_delay
        self.stall_seconds = 30.0
        self.resume_delay = 0.0  # seconds a resume waits before its first event
        self.refuse_resumes = 0  # how many resumes to come are refused with RUN_ERROR
        self.interrupt_expires_at: str | None = None  # ISO 8601; omitted from interrupts if None
        self.answer_text = (
            f"Hello from {name}! I am a **scripted** agent running on this machine. "
            "Here is what I can show you:\n\n"
            "- streamed text, word by word\n"
            "- tool calls with their results\n"
            "- approval forms that pause the run\n\n"
            "Try `orchestrator demo` to watch a whole thread. Nothing here calls a real model."
        )
        self._scripts: dict[str, Callable[[Run], Script]] = {
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

    # --- building blocks ---------------------------------------------------------------------

    def _say(self, message_id: str, text: str) -> Script:
        yield TextMessageStartEvent(message_id=message_id, role="assistant")
        for token in tokens(text):
            if self.token_delay:
                yield Pause(self.token_delay)
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

    def _approval(self, run: Run, call_id: str) -> Interrupt:
        return Interrupt(
            id=run.id("interrupt-1"),
            reason="confirmation",
            message=APPROVAL_MESSAGE,
            tool_call_id=call_id,
            response_schema=_SCALE_SCHEMA,
            expires_at=self.interrupt_expires_at,
        )

    # --- scenarios ---------------------------------------------------------------------------

    def _answer(self, run: Run) -> Script:
        yield run.started()
        yield from self._say(run.id("text"), self.answer_text)
        yield run.finished()

    def _tools(self, run: Run) -> Script:
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

    def _chunks(self, run: Run) -> Script:
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
        for token in tokens(self.answer_text):
            if self.token_delay:
                yield Pause(self.token_delay)
            yield TextMessageChunkEvent(message_id=message_id, role="assistant", delta=token)
        yield run.finished()

    def _interrupt_outcome(self, run: Run) -> Script:
        call_id = run.id("scale")
        yield run.started()
        yield from self._say(run.id("text"), _APPROVAL_INTRO)
        yield from self._tool_call(call_id, "scale_deployment", _SCALE_ARGS, parent=run.id("text"))
        yield run.finished(RunFinishedInterruptOutcome(interrupts=[self._approval(run, call_id)]))

    def _interrupt_multi(self, run: Run) -> Script:
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

    def _interrupt_legacy(self, run: Run) -> Script:
        yield run.started()
        yield from self._say(run.id("text"), _APPROVAL_INTRO)
        yield CustomEvent(name="on_interrupt", value=json.dumps(_LEGACY_INTERRUPT))
        yield run.finished()

    def _interrupt_tool(self, run: Run) -> Script:
        call_id = run.id("confirm")
        args = {"action": "scale_deployment", **_SCALE_ARGS, "message": APPROVAL_MESSAGE}
        yield run.started()
        yield from self._tool_call(call_id, "confirm_action", args, parent=run.id("assistant"))
        yield run.finished(RunFinishedSuccessOutcome(pending_tool_call_ids=[call_id]))

    def _continuation(self, run: Run) -> Script:
        if self.resume_delay:
            yield Pause(self.resume_delay)
        yield run.started()
        if self.refuse_resumes > 0:  # as a server does with an answer it cannot take
            self.refuse_resumes -= 1
            yield RunErrorEvent(message="The answer does not fit this request.", code="INVALID")
            return
        yield from self._say(run.id("text"), resume_text(run.body))
        yield run.finished()

    def _run_error(self, run: Run) -> Script:
        message_id = run.id("text")
        yield run.started()
        yield TextMessageStartEvent(message_id=message_id, role="assistant")
        yield TextMessageContentEvent(message_id=message_id, delta="Let me look into that")
        yield RunErrorEvent(message="The model provider is overloaded", code="overloaded")

    def _already_resolved(self, run: Run) -> Script:
        yield RunErrorEvent(
            message="This interrupt was already resolved", code="interrupt_already_resolved"
        )

    def _drop(self, run: Run) -> Script:
        message_id = run.id("text")
        yield run.started()
        yield TextMessageStartEvent(message_id=message_id, role="assistant")
        yield TextMessageContentEvent(message_id=message_id, delta="This answer will be cut ")

    def _stall(self, run: Run) -> Script:
        message_id = run.id("text")
        yield run.started()
        yield TextMessageStartEvent(message_id=message_id, role="assistant")
        yield TextMessageContentEvent(message_id=message_id, delta="Thinking very hard")
        yield Pause(self.stall_seconds)
        yield TextMessageContentEvent(message_id=message_id, delta="... done.")
        yield TextMessageEndEvent(message_id=message_id)
        yield run.finished()

    def _malformed(self, run: Run) -> Script:
        yield run.started()
        yield "data: {not json\n\n"
        yield run.finished()

    def _out_of_order(self, run: Run) -> Script:
        """Content before its start, an end that was never started, no RUN_STARTED at all."""
        message_id = run.id("text")
        yield TextMessageContentEvent(message_id=message_id, delta="Content before its start. ")
        yield TextMessageEndEvent(message_id=run.id("never-started"))
        yield TextMessageStartEvent(message_id=message_id, role="assistant")
        yield TextMessageContentEvent(message_id=message_id, delta="Then the rest.")
        yield TextMessageEndEvent(message_id=message_id)
        yield run.finished()

    def _unknown_type(self, run: Run) -> Script:
        yield run.started()
        yield 'data: {"type":"FUTURE_THING","payload":{"note":"from a newer protocol"}}\n\n'
        yield from self._say(run.id("text"), self.answer_text)
        yield run.finished()

    def _huge_delta(self, run: Run) -> Script:
        message_id = run.id("text")
        text = ("All work and no play makes a very long delta. " * 1100)[:50_000]
        yield run.started()
        yield TextMessageStartEvent(message_id=message_id, role="assistant")
        yield TextMessageContentEvent(message_id=message_id, delta=text)
        yield TextMessageEndEvent(message_id=message_id)
        yield run.finished()

    def _long(self, run: Run) -> Script:
        yield run.started()
        yield from self._say(run.id("text"), long_markdown())
        yield run.finished()

    def _echo(self, run: Run) -> Script:
        messages = run.body.get("messages") or []
        summary = {"messages": len(messages), "last_user_message": last_user_text(run.body)}
        yield run.started()
        yield from self._say(run.id("text"), json.dumps(summary))
        yield run.finished()


def tokens(text: str) -> list[str]:
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
