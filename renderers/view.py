"""The in-memory view of a thread that renderers turn into Block Kit.

The engine owns one `ThreadView` per live run and mutates it as AG-UI deltas arrive (cheaply: text
is a list of chunks joined only when rendered). Renderers read it and never write it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ToolStatus = Literal["running", "done", "failed"]
StepStatus = Literal["running", "done"]
InterruptStatus = Literal[
    "pending", "claimed", "sending", "approved", "rejected", "expired", "cancelled"
]


@dataclass(slots=True)
class ToolCallView:
    id: str
    name: str
    args: str = ""  # the JSON text of the arguments as streamed
    status: ToolStatus = "running"
    result: str | None = None


@dataclass(slots=True)
class StepView:
    name: str
    status: StepStatus = "running"


@dataclass(slots=True)
class ErrorView:
    """What went wrong, for people: `title` names it, `detail` says what to do."""

    kind: str  # e.g. "agent_unreachable", "agent_not_found", "run_error", "stream_lost"
    title: str
    detail: str = ""
    retryable: bool = True
    can_escalate: bool = False  # the channel has people to ask for help (`escalate_to`)


@dataclass(slots=True)
class FormField:
    """One input of an approval form, normalised from JSON Schema or a legacy field list."""

    name: str
    label: str
    kind: Literal["text", "textarea", "select", "multiselect", "boolean", "number", "date", "json"]
    options: list[str] = field(default_factory=list)
    default: Any = None
    required: bool = False
    description: str = ""
    integer: bool = False


@dataclass(slots=True)
class InterruptView:
    """A pending (or answered) human-in-the-loop request, as the form shows it."""

    id: str  # the store's key for the interrupt record; buttons carry only this
    message: str
    fields: list[FormField] = field(default_factory=list)
    tool_name: str | None = None
    tool_args: str | None = None
    approve_label: str = "Approve"
    reject_label: str = "Reject"
    status: InterruptStatus = "pending"
    answered_by: str | None = None
    answered_at: str | None = None  # preformatted for display, e.g. "14:02 UTC"
    answer: dict[str, Any] | None = None  # the answered fields (the decision is the status)
    edited_args: dict[str, Any] | None = None  # the arguments a person edited, once answered
    editable: bool = False  # the server takes edited arguments: the form offers to edit them
    expires_at: str | None = None  # preformatted for display
    error: str | None = None  # validation error shown on the form, e.g. "replicas is required"


@dataclass(slots=True)
class AnswerView:
    """The buttons and notes under a finished answer. Buttons carry only `run_id`."""

    run_id: str
    thumbs_up: int = 0  # how many people rated it; who is never shown
    thumbs_down: int = 0
    regenerated_by: str | None = None  # set once a newer answer replaced this one
    can_escalate: bool = False  # the channel names people to ask for help


@dataclass(slots=True)
class ThreadView:
    """Everything a renderer may show about one thread's current (or last) run."""

    conversation_id: str
    state: str
    run_id: str | None = None
    requester: str | None = None  # Slack user id of the person who asked
    chunks: list[str] = field(default_factory=list)
    tool_calls: dict[str, ToolCallView] = field(default_factory=dict)
    steps: list[StepView] = field(default_factory=list)
    error: ErrorView | None = None
    interrupted: str | None = None  # why the partial answer stopped, shown as a visible note
    interrupts: list[InterruptView] = field(default_factory=list)
    queued: int = 0  # user messages waiting for this run to end
    waiting: bool = False  # the run waits in line: the process streams all the runs it may
    answer: AnswerView | None = None  # a finished answer's feedback and follow-up buttons
    stoppable: bool = False  # the live answer carries a Stop button (Slack shows none)
    stopped_by: str | None = None  # who stopped the run; its partial answer stays, marked

    @property
    def text(self) -> str:
        if len(self.chunks) > 1:
            self.chunks[:] = ["".join(self.chunks)]
        return self.chunks[0] if self.chunks else ""

    def append_text(self, delta: str) -> None:
        self.chunks.append(delta)


@dataclass(slots=True)
class SlackMessage:
    """One Slack message as a renderer produces it: blocks plus the notification fallback text."""

    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None = None  # Slack message metadata, set when posted
