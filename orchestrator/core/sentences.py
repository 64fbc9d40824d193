"""What the bot says in threads and to clickers, in one place: pure functions of plain values."""

from __future__ import annotations

from collections.abc import Iterable

from persistence.models import Interrupt

UNKNOWN_REQUEST = "This approval request is no longer known to the bot."
UNKNOWN_CONVERSATION = "This conversation is no longer known to the bot."
UNKNOWN_ANSWER = "This answer is no longer known to the bot."
NOT_HERE = "This button does not belong to this conversation."
NOTHING_TO_RETRY = "This conversation is not in an error state any more; nothing to retry."
ALREADY_RETRIED = "Someone else already retried this."
RESUME_UNCERTAIN = (
    "A restart interrupted the sending of the answer to this request, and it may not have "
    "reached the agent. Nothing was assumed: please answer the form again."
)
MOVED_ON = "This conversation has moved on; your answer was not sent."
CRASHED = "Something went wrong on my side while answering. Please retry."
QUEUED = "I'm still answering the previous message; I'll pick this up right after."
THANKS = "Thanks for the feedback! It helps improve the answers."
NOTHING_TO_STOP = "The agent is not working on anything here; nothing to stop."
MODAL_FAILED = "Slack did not open the arguments editor; please click again."


def refused(message: str) -> str:
    """On a form the agent's server refused to take an answer for."""
    return f"The agent refused this answer: {message} Please answer again."


def queue_full(limit: int) -> str:
    return (
        f"I'm still answering, and {limit} messages are already waiting. "
        "Please send this again once I'm done."
    )


def wait_for_form(link: str | None) -> str:
    where = f"<{link}|the approval above>" if link else "the approval above"
    return (
        f"I'm waiting for {where} before I go on, so I haven't passed this message to the "
        "agent. Answer the form, then write again."
    )


def bots_stopped(runs: int) -> str:
    return (
        f"I have answered {runs} bot messages in a row in this thread, so I'll stop "
        "answering bots here until a person writes."
    )


def reminder(who: str, link: str | None, expires: str | None) -> str:
    form = f"<{link}|This approval>" if link else "The approval above"
    return f"{who}: {form} is still waiting for an answer; it expires at {expires}."


def only(allowed: Iterable[str]) -> str:
    return f"Only {people(allowed)} can answer this request."


def only_stop(allowed: Iterable[str]) -> str:
    return f"Only {people(allowed)} can stop this answer; it goes on."


def already(row: Interrupt) -> str:
    if row.status in ("expired", "cancelled"):
        return f"This request has {row.status}; the answer was not sent."
    who = f"<@{row.answered_by}>" if row.answered_by else "someone"
    return f"This request was already answered by {who}."


def people(ids: Iterable[str]) -> str:
    named = sorted(i for i in ids if i)
    return ", ".join(f"<@{i}>" for i in named) if named else "the configured approvers"
