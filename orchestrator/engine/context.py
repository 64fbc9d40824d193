"""What the engine's parts hand each other: the inbound message, what an action needs beyond
the thread row, the live answer a finishing run closes, and how a view is rendered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.approvals import Resume
from orchestrator.core.machine import ThreadMachine
from orchestrator.slack.publisher import LivePublisher
from persistence.models import QueuedMessage, Thread
from renderers import get_renderer
from renderers.view import SlackMessage, ThreadView

QUEUE_LIMIT = 5
CUT_RUN_TIMEOUT = 5.0  # seconds a run cut by the shutdown gets to end visibly

Render = Callable[[ThreadView], list[SlackMessage]]


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message for the agent, as the Slack app hands it over."""

    team_id: str
    channel_id: str
    thread_ts: str
    ts: str
    user: str
    text: str
    is_bot: bool = False
    display_name: str | None = None
    claim_keys: tuple[str, ...] = ()  # the delivery's dedupe keys, stored with what it starts


@dataclass(slots=True)
class LiveAnswer:
    """A finishing run's Slack messages: `post_forms` closes them with the forms after them."""

    view: ThreadView
    publisher: LivePublisher
    shown_as: str | None = None  # the state the run's own message shows, if not the new one
    closed: bool = False
    error: str | None = None  # Slack's error when the final messages could not be posted
    session_status: str | None = None  # the agent session status a closing native stream sets


@dataclass(slots=True)
class Context:
    """What an action needs beyond the thread row."""

    actor: str | None = None
    inbound: Inbound | None = None
    message: dict[str, Any] | None = None
    dequeue_id: int | None = None
    resume: Resume | None = None
    notice: str | None = None
    seed: list[dict[str, Any]] = field(default_factory=list)  # earlier thread messages
    # The queue's head as read in the transition that ran `run_next_queued` (None: not read).
    queue_head: list[QueuedMessage] | None = None
    live: LiveAnswer | None = None  # the run that is finishing, for post_forms
    # A write of the run streaming in this process: stored only while this process holds the
    # run's lease (`LeaseLost` otherwise, and nothing is written).
    fenced: bool = False


Action = Callable[[Thread, Context], Awaitable[None]]


def renderer_for(machine: ThreadMachine) -> Render:
    """Each state's renderer, as the machine names it."""

    def render(view: ThreadView) -> list[SlackMessage]:
        return get_renderer(machine.definition.renderer_of(view.state))(view)

    return render


def message_detail(inbound: Inbound) -> dict[str, Any]:
    """What the history keeps of a message; `bot` lets the loop guard count bot turns."""
    return {"ts": inbound.ts, "bot": True} if inbound.is_bot else {"ts": inbound.ts}
