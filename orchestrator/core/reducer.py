"""The run reducer, pure: each AG-UI event of a run updates the live view and the conversation
record, and says whether it matters to the machine.

Text deltas are most of a run's events: their path is two appends and a flag. Only lifecycle
events (RUN_STARTED, RUN_FINISHED, RUN_ERROR) come back as a `Step` the run driver acts on;
deltas never cost a database write or a trigger.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    EventType,
    RunErrorEvent,
    RunFinishedEvent,
    StepFinishedEvent,
    StepStartedEvent,
    ToolCallArgsEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)

from orchestrator.core import interrupt_records
from orchestrator.core.conversation import RunRecorder
from renderers.view import StepView, ThreadView, ToolCallView


class Step(enum.Enum):
    """What an event means beyond the view."""

    NONE = "none"  # nothing shown changed
    CHANGED = "changed"  # the view changed: the publisher redraws when due
    STARTED = "started"  # RUN_STARTED
    ENDED = "ended"  # RUN_FINISHED or RUN_ERROR: `finished` or `error` says which


class RunReducer:
    """Folds one run's events into its `ThreadView` and its `RunRecorder`."""

    __slots__ = ("answered", "error", "finished", "legacy", "recorder", "view")

    def __init__(self, view: ThreadView, recorder: RunRecorder) -> None:
        self.view = view
        self.recorder = recorder
        self.legacy: CustomEvent | None = None  # a legacy `on_interrupt` event, if one came
        self.finished: RunFinishedEvent | None = None
        self.error: RunErrorEvent | None = None
        self.answered = False  # the agent said something or called a tool in this run

    def feed(self, event: BaseEvent) -> Step:
        kind = event.type
        if kind is _TEXT:  # most events: keep this path to two appends and a flag
            self.view.chunks.append(event.delta)  # type: ignore[attr-defined]
            self.recorder.text(event.message_id, event.delta)  # type: ignore[attr-defined]
            self.answered = True
            return Step.CHANGED
        apply = _DELTAS.get(kind)
        if apply is not None:
            apply(self.view, event)
            self.recorder.observe(event)
            self.answered = self.answered or kind not in _STEPS
            return Step.CHANGED
        if kind == EventType.RUN_STARTED:
            return Step.STARTED
        if kind == EventType.MESSAGES_SNAPSHOT:
            self.recorder.observe(event)
        elif kind == EventType.CUSTOM:
            assert isinstance(event, CustomEvent)
            if interrupt_records.is_legacy_interrupt(event):
                self.legacy = event
        elif kind == EventType.RUN_ERROR:
            assert isinstance(event, RunErrorEvent)
            self.error = event
            return Step.ENDED
        elif kind == EventType.RUN_FINISHED:
            assert isinstance(event, RunFinishedEvent)
            self.finished = event
            return Step.ENDED
        return Step.NONE


def activity(event: BaseEvent) -> tuple[str, str] | None:
    """("tool", name) or ("step", name) for events the thread status shows."""
    if isinstance(event, ToolCallStartEvent):
        return "tool", event.tool_call_name
    if isinstance(event, StepStartedEvent):
        return "step", event.step_name
    return None


def _text_start(view: ThreadView, _event: BaseEvent) -> None:
    if view.chunks and not view.text.endswith("\n\n"):
        view.chunks.append("\n\n")


def _tool_start(view: ThreadView, event: BaseEvent) -> None:
    assert isinstance(event, ToolCallStartEvent)
    view.tool_calls[event.tool_call_id] = ToolCallView(event.tool_call_id, event.tool_call_name)


def _tool_args(view: ThreadView, event: BaseEvent) -> None:
    assert isinstance(event, ToolCallArgsEvent)
    call = view.tool_calls.get(event.tool_call_id)
    if call is not None:
        call.args += event.delta


def _tool_result(view: ThreadView, event: BaseEvent) -> None:
    assert isinstance(event, ToolCallResultEvent)
    call = view.tool_calls.get(event.tool_call_id)
    if call is not None:
        call.status = "done"
        call.result = event.content if isinstance(event.content, str) else str(event.content)


def _step_start(view: ThreadView, event: BaseEvent) -> None:
    assert isinstance(event, StepStartedEvent)
    view.steps.append(StepView(event.step_name))


def _step_end(view: ThreadView, event: BaseEvent) -> None:
    assert isinstance(event, StepFinishedEvent)
    for step in reversed(view.steps):
        if step.name == event.step_name:
            step.status = "done"
            return


_TEXT = EventType.TEXT_MESSAGE_CONTENT
_STEPS = frozenset({EventType.STEP_STARTED, EventType.STEP_FINISHED})

_DELTAS: dict[str, Callable[[ThreadView, BaseEvent], None]] = {
    EventType.TEXT_MESSAGE_START: _text_start,
    EventType.TOOL_CALL_START: _tool_start,
    EventType.TOOL_CALL_ARGS: _tool_args,
    EventType.TOOL_CALL_RESULT: _tool_result,
    EventType.STEP_STARTED: _step_start,
    EventType.STEP_FINISHED: _step_end,
}
