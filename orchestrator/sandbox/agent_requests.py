"""What a run request to the scripted agent says: its ids, whether it resumes an interrupt (in any
of the three HITL forms) and with what answer, the user's last words."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from ag_ui.core import RunFinishedEvent, RunFinishedOutcome, RunStartedEvent


@dataclass(slots=True)
class Run:
    """The run being answered; its ids are echoed in RUN_STARTED and RUN_FINISHED."""

    thread_id: str
    run_id: str
    body: dict[str, Any]

    @classmethod
    def of(cls, body: dict[str, Any]) -> Run:
        thread_id = str(body.get("threadId") or "sandbox-thread")
        return cls(thread_id, str(body.get("runId") or "sandbox-run"), body)

    def id(self, suffix: str) -> str:
        return f"{self.run_id}-{suffix}"

    def started(self) -> RunStartedEvent:
        return RunStartedEvent(thread_id=self.thread_id, run_id=self.run_id)

    def finished(self, outcome: RunFinishedOutcome | None = None) -> RunFinishedEvent:
        return RunFinishedEvent(thread_id=self.thread_id, run_id=self.run_id, outcome=outcome)


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


def auto_scenario(body: dict[str, Any]) -> str:
    text = last_user_text(body).lower()
    if any(word in text for word in ("approve", "deploy", "scale")):
        return "interrupt-outcome"
    if any(word in text for word in ("tool", "search")):
        return "tools"
    if "fail" in text:
        return "run-error"
    return "answer"
