"""An A2A task's stream as AG-UI events: pure, no I/O. Feed each `StreamResponse`, then `end()`.

- Agent text in status messages and artifact chunks streams as assistant text. Streamed chunks
  (ADK's `partial`) are followed by the whole text once more, and Kagent repeats the final text
  as an artifact: a complete text equal to the one just shown is not shown again.
- ADK-shaped tool calls and results (see `parts`) become TOOL_CALL_* events.
- `completed` (or a plain message reply) ends the run with RUN_FINISHED; `input-required` with
  RUN_FINISHED whose outcome is an interrupt (see `questions`); `failed`, `rejected`, `canceled`
  and `auth-required` with RUN_ERROR saying so (with the sign-in link the agent gave).
- The task's id is announced once as a CUSTOM event named `TASK_EVENT`, so a caller can keep it
  and re-attach to the task later.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

from a2a.types import Artifact, Message, StreamResponse, Task, TaskState
from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    RunErrorEvent,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)

from orchestrator.agent.a2a.parts import (
    CONFIRMATION_CALL,
    FUNCTION_CALL,
    FunctionPart,
    data_of,
    function_part,
    is_from_user,
    is_partial,
    links_of,
    text_of,
)
from orchestrator.agent.a2a.questions import asked
from orchestrator.agent.contract import AGENT_TASK_EVENT

TASK_EVENT = AGENT_TASK_EVENT
_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_FINAL_STATES = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
        TaskState.TASK_STATE_INPUT_REQUIRED,
        TaskState.TASK_STATE_AUTH_REQUIRED,
    }
)
_SHOWN_STATES = frozenset({TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_COMPLETED})


@dataclass(slots=True)
class _Text:
    """The assistant text shown so far, as AG-UI text messages."""

    open_id: str | None = None
    streamed: str = ""  # chunks shown since the last complete text
    last_block: str = ""  # the last complete text shown
    artifacts: dict[str, str] = field(default_factory=dict)  # artifact id -> text shown

    def chunk(self, text: str) -> list[BaseEvent]:
        out = self._open() if self.open_id is None else []
        assert self.open_id is not None
        out.append(TextMessageContentEvent(message_id=self.open_id, delta=text))
        self.streamed += text
        return out

    def block(self, text: str) -> list[BaseEvent]:
        """A complete text: shown unless it repeats what was just streamed or shown."""
        said = text.strip()
        if self.streamed.strip() == said or self.last_block.strip() == said:
            self.streamed, self.last_block = "", text
            return self.close()
        out = [*self.close(), *self.chunk(text)]
        self.streamed, self.last_block = "", text
        return out

    def close(self) -> list[BaseEvent]:
        if self.open_id is None:
            return []
        message_id, self.open_id = self.open_id, None
        return [TextMessageEndEvent(message_id=message_id)]

    def _open(self) -> list[BaseEvent]:
        self.open_id = str(uuid.uuid4())
        return [TextMessageStartEvent(message_id=self.open_id, role="assistant")]


class TaskStream:
    """Translates one run's A2A stream (a send, a resume, or a re-attach) into AG-UI events."""

    def __init__(self, *, thread_id: str, run_id: str) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        self.task_id: str | None = None
        self.context_id: str | None = None
        self.state: int = TaskState.TASK_STATE_UNSPECIFIED
        self.status_message: Message | None = None
        self.replied = False  # the agent answered with a message and no task
        self._text = _Text()
        self._tools_started: set[str] = set()
        self._tools_ended: set[str] = set()
        self._messages_shown: set[str] = set()

    @property
    def ended(self) -> bool:
        """The stream reached a state that ends this run (final, or waiting for people)."""
        return self.replied or self.state in _FINAL_STATES

    def started(self) -> RunStartedEvent:
        return RunStartedEvent(thread_id=self.thread_id, run_id=self.run_id)

    def feed(self, response: StreamResponse) -> list[BaseEvent]:
        kind = response.WhichOneof("payload")
        if kind == "task":
            return self._task(response.task)
        if kind == "status_update":
            update = response.status_update
            status = update.status
            message = status.message if status.HasField("message") else None
            events = self._ids(update.task_id, update.context_id)
            return events + self._status(status.state, message)
        if kind == "artifact_update":
            update = response.artifact_update
            events = self._ids(update.task_id, update.context_id)
            return events + self._artifact(update.artifact, update.append)
        if kind == "message":
            self.replied = True
            return self._message(response.message)
        return []

    def end(self) -> list[BaseEvent]:
        """The events that close the run, once the stream has ended (see `ended`)."""
        out = [*self._text.close(), *self._end_open_tools()]
        state, message = self.state, self.status_message
        said = text_of(message.parts).strip() if message is not None else ""
        if self.replied or state == TaskState.TASK_STATE_COMPLETED:
            return [*out, self._finished()]
        if state == TaskState.TASK_STATE_INPUT_REQUIRED:
            return out + self._interrupt(message)
        if state == TaskState.TASK_STATE_AUTH_REQUIRED:
            links = _links(message)
            where = f" at {links[0]}" if links else ""
            detail = f" The agent said: {said}" if said and not links else ""
            text = f"The agent needs you to sign in{where} before it can go on.{detail}"
            return [*out, self._error(text, "a2a_auth_required")]
        if state == TaskState.TASK_STATE_FAILED:
            return [*out, self._error(_because("The agent's task failed", said), "a2a_failed")]
        if state == TaskState.TASK_STATE_REJECTED:
            text = _because("The agent rejected the request", said)
            return [*out, self._error(text, "a2a_rejected")]
        if state == TaskState.TASK_STATE_CANCELED:
            text = _because("The agent's task was canceled", said)
            return [*out, self._error(text, "a2a_canceled")]
        return out

    # --- stream results ----------------------------------------------------------------------

    def _task(self, task: Task) -> list[BaseEvent]:
        """A task snapshot: the first result of a send, or of a re-attach (with its artifacts)."""
        out = self._ids(task.id, task.context_id)
        for artifact in task.artifacts:
            out += self._artifact(artifact, append=False)
        message = task.status.message if task.status.HasField("message") else None
        return out + self._status(task.status.state, message)

    def _ids(self, task_id: str, context_id: str) -> list[BaseEvent]:
        if self.task_id or not task_id:
            return []
        self.task_id, self.context_id = task_id, context_id or self.context_id
        value = {"taskId": task_id, "contextId": context_id}
        return [CustomEvent(name=TASK_EVENT, value=value)]

    def _status(self, state: int, message: Message | None) -> list[BaseEvent]:
        self.state = state
        self.status_message = message
        if message is None or is_from_user(message) or state not in _SHOWN_STATES:
            return []
        if message.message_id and message.message_id in self._messages_shown:
            return []  # a task snapshot repeats the last status message
        self._messages_shown.add(message.message_id)
        return self._message(message)

    def _message(self, message: Message) -> list[BaseEvent]:
        out: list[BaseEvent] = []
        partial = is_partial(message)
        text = ""
        for part in message.parts:
            call = function_part(part)
            if call is not None:
                out += self._text.close() + self._tool(call)
            elif part.WhichOneof("content") == "text":
                text += part.text
            elif part.WhichOneof("content") == "url" and part.url:
                text += f"\n{part.url}\n"
        if text:
            out += self._text.chunk(text) if partial else self._text.block(text)
        return out

    def _artifact(self, artifact: Artifact, append: bool) -> list[BaseEvent]:
        text = text_of(artifact.parts) + "".join(f"\n{url}" for url in links_of(artifact.parts))
        for part in artifact.parts:
            data = data_of(part)
            if data is not None and function_part(part) is None:
                text += f"\n```\n{json.dumps(data, indent=2)[:2000]}\n```\n"
        if not text:
            return []
        key = artifact.artifact_id
        shown = self._text.artifacts.get(key)
        if not append and shown is not None and text.startswith(shown):
            # a task snapshot repeats the artifact as far as it was shown
            self._text.artifacts[key] = text
            return self._text.chunk(text[len(shown) :]) if len(text) > len(shown) else []
        if append and key in self._text.artifacts:
            self._text.artifacts[key] += text
            return self._text.chunk(text)
        self._text.artifacts[key] = text
        return self._text.block(text)

    def _tool(self, call: FunctionPart) -> list[BaseEvent]:
        if call.kind == FUNCTION_CALL:
            if call.name == CONFIRMATION_CALL or not call.id or call.id in self._tools_started:
                return []
            return self._start_tool(call.id, call.name, call.args)
        if call.name == CONFIRMATION_CALL or not call.id:
            return []
        out: list[BaseEvent] = []
        if call.id in self._tools_started and call.id not in self._tools_ended:
            out.append(ToolCallEndEvent(tool_call_id=call.id))
            self._tools_ended.add(call.id)
        content = call.response if isinstance(call.response, str) else json.dumps(call.response)
        out.append(
            ToolCallResultEvent(
                message_id=str(uuid.uuid4()), tool_call_id=call.id, content=content, role="tool"
            )
        )
        return out

    def _start_tool(self, call_id: str, name: str, args: dict[str, object]) -> list[BaseEvent]:
        self._tools_started.add(call_id)
        return [
            ToolCallStartEvent(tool_call_id=call_id, tool_call_name=name),
            ToolCallArgsEvent(tool_call_id=call_id, delta=json.dumps(args)),
        ]

    def _end_open_tools(self) -> list[BaseEvent]:
        open_ids = [i for i in self._tools_started if i not in self._tools_ended]
        self._tools_ended.update(open_ids)
        return [ToolCallEndEvent(tool_call_id=i) for i in sorted(open_ids)]

    # --- the end -----------------------------------------------------------------------------

    def _interrupt(self, message: Message | None) -> list[BaseEvent]:
        question = asked(message, self.task_id or "")
        out: list[BaseEvent] = []
        for call in question.tool_calls:
            if call.id not in self._tools_started:
                out += self._start_tool(call.id, call.name, call.args)
                out.append(ToolCallEndEvent(tool_call_id=call.id))
                self._tools_ended.add(call.id)
        outcome = RunFinishedInterruptOutcome(interrupts=question.interrupts)
        return [*out, self._finished(outcome)]

    def _finished(self, outcome: RunFinishedInterruptOutcome | None = None) -> RunFinishedEvent:
        return RunFinishedEvent(thread_id=self.thread_id, run_id=self.run_id, outcome=outcome)

    @staticmethod
    def _error(message: str, code: str) -> RunErrorEvent:
        return RunErrorEvent(message=message, code=code)


def _because(what: str, said: str) -> str:
    return f"{what}: {said}" if said else f"{what}."


def _links(message: Message | None) -> list[str]:
    """Sign-in links in a message: in its text, its url parts, or its data (ADK auth configs)."""
    if message is None:
        return []
    found = _URL.findall(text_of(message.parts)) + links_of(message.parts)
    for part in message.parts:
        data = data_of(part)
        if data is not None:
            found += _URL.findall(json.dumps(data))
    return list(dict.fromkeys(link.rstrip(".,;") for link in found))
