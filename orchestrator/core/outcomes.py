"""How a run ends, pure: the result of a run, failures as people read them, and the outcome
table that says what finishing a run does for each way it can end.

The engine looks the ending trigger up in `OUTCOMES` instead of branching on its name; the
machine (`machines/thread.yaml`) says which state follows and which actions run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ag_ui.core import RunErrorEvent

from orchestrator.core import sentences
from persistence.models import Interrupt
from renderers.view import ErrorView


@dataclass(slots=True)
class RunResult:
    """How a run ended: the trigger to fire and what to store with it."""

    trigger: str
    detail: dict[str, Any] = field(default_factory=dict)
    error: ErrorView | None = None
    interrupts: list[Interrupt] = field(default_factory=list)
    actor: str = "agent"  # who ended it, as the thread's history names them
    form_error: str | None = None  # shown on the forms that open again


@dataclass(frozen=True, slots=True)
class Outcome:
    """What finishing a run does, for one ending trigger."""

    keeps_history: bool = False  # what the run streamed joins the stored conversation
    records_answer: bool = False  # the answer gets its record and its buttons
    stores_interrupts: bool = False  # the run's interrupt records land with the transition
    finishes_tools: bool = True  # tool calls still running are shown as done
    releases_answers: bool = False  # the claimed answers go back to pending (not delivered)
    shown_as: str | None = None  # the run's own message renders this state, not the new one


OUTCOMES: dict[str, Outcome] = {
    "run_finished": Outcome(keeps_history=True, records_answer=True),
    "interrupt": Outcome(keeps_history=True, stores_interrupts=True, finishes_tools=False),
    "run_error": Outcome(),
    "stream_lost": Outcome(),
    "resume_failed": Outcome(releases_answers=True, shown_as="errored"),
    # Stopped by someone: the partial answer stays in Slack (marked), not in the conversation.
    "stop": Outcome(),
}


class AgentFailure(Protocol):
    """What the agent side's typed errors carry (`orchestrator.agent.errors.AgentError`)."""

    kind: str
    title: str
    detail: str
    retryable: bool


@dataclass(frozen=True, slots=True)
class AgentPlace:
    """The agent as messages name it: its id and where it is configured."""

    name: str
    origin: str | None = None


def stopped(by: str) -> RunResult:
    """Someone stopped the run; its stream was closed and the agent told to cancel it."""
    return RunResult("stop", {"by": by}, actor=by)


def run_error(event: RunErrorEvent) -> RunResult:
    code = f" ({event.code})" if event.code else ""
    error = ErrorView(
        kind="run_error",
        title="The agent reported an error",
        detail=f"{event.message}{code}",
        retryable=True,
    )
    return RunResult("run_error", {"message": event.message, "code": event.code}, error)


def agent_failure(
    exc: AgentFailure, agent: AgentPlace, retry_after: float | None = None
) -> RunResult:
    detail = exc.detail
    if exc.kind == "agent_not_found":
        detail = (
            f"The agent `{agent.name}` is not known to the backend (HTTP 404). "
            f"An admin should check {configured_at(agent)}."
        )
    elif exc.kind in ("agent_auth_failed", "agent_credentials_unavailable") and not exc.retryable:
        detail = (
            f"{exc.detail} An admin should check the credentials of the agent `{agent.name}` "
            f"({configured_at(agent)})."
        )
    elif retry_after is not None:
        detail = f"{exc.detail} It asked to be retried {when(retry_after)}; use Retry then."
    elif exc.retryable:
        detail = f"{exc.detail} You can try again."
    error = ErrorView(kind=exc.kind, title=exc.title, detail=detail, retryable=exc.retryable)
    trigger = "stream_lost" if exc.kind in ("stream_lost", "agent_timeout") else "run_error"
    return RunResult(trigger, {"error": exc.kind, "detail": exc.detail}, error)


def resume_failure(exc: AgentFailure) -> RunResult:
    error = ErrorView(
        kind=exc.kind,
        title="Your answer could not be delivered to the agent",
        detail=f"{exc.title}: {exc.detail} The form is open again; please answer once more.",
        retryable=False,
    )
    return RunResult("resume_failed", {"error": exc.kind, "detail": exc.detail}, error)


# RUN_ERROR codes by which a server says it already has the answer: a resume sent again after a
# restart (it may have arrived before) is refused by interrupt id, and the answer stands.
ALREADY_ANSWERED = frozenset(
    {"interrupt_already_resolved", "already_resolved", "duplicate_resume", "interrupt_resolved"}
)


def already_answered(event: RunErrorEvent) -> bool:
    """Whether a RUN_ERROR answering a resume says the server had the answer already."""
    return (event.code or "").lower() in ALREADY_ANSWERED


def resume_refused(event: RunErrorEvent) -> RunResult:
    """The server answered the resume with RUN_ERROR before anything else: it did not take the
    answer (a payload it rejects, an interrupt it does not know). The form opens again with the
    server's message, so the person can answer once more."""
    code = f" ({event.code})" if event.code else ""
    error = ErrorView(
        kind="resume_refused",
        title="The agent refused the answer",
        detail=f"{event.message}{code} The form is open again; please answer once more.",
        retryable=False,
    )
    detail = {"error": "resume_refused", "message": event.message, "code": event.code}
    return RunResult("resume_failed", detail, error, form_error=sentences.refused(event.message))


def reply_lost(event: RunErrorEvent) -> RunResult:
    """Answers sent again after a restart, refused as already resolved: the agent took them
    the first time, and its reply went with the process that sent them. The answers stand;
    the person is told the reply was lost to a restart, and may retry."""
    error = restart_error(can_escalate=False)
    error.detail = (
        "The bot restarted while the agent was answering: the agent has the answer, but its "
        "reply was lost. You can retry it."
    )
    detail = {"reason": "restart", "code": event.code, "message": event.message}
    return RunResult("stream_lost", detail, error)


def restart_error(can_escalate: bool) -> ErrorView:
    return ErrorView(
        kind="restart",
        title="Interrupted by a restart",
        detail="The bot restarted while this answer was being written. You can retry it.",
        can_escalate=can_escalate,
    )


def configured_at(agent: AgentPlace) -> str:
    if agent.origin is None:
        return "the agent configured for this channel"
    if agent.origin == "AGENT_URL":
        return "`AGENT_URL`, the default agent"
    return f"`{agent.origin}` in the channel configuration"


def when(seconds: float) -> str:
    if seconds < 120:
        return f"in {math.ceil(seconds)} seconds"
    return "after " + time.strftime("%H:%M UTC", time.gmtime(time.time() + seconds))
