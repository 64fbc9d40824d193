"""Where a streaming run is beyond its view: whether the agent answered, the agent-side task it
follows, the thread status until the answer's text starts, whether that text started, and the
writes its events asked for (`RunWrites`: made in order behind the reading)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ag_ui.core import BaseEvent, CustomEvent, EventType

from orchestrator.agent.contract import AGENT_TASK_EVENT
from orchestrator.core.reducer import activity
from orchestrator.engine.live_runs import LiveRun, RunSlot
from orchestrator.engine.run_writes import RunWrites
from orchestrator.slack.native_publisher import NativePublisher
from orchestrator.slack.notifier import Notifier
from orchestrator.slack.publisher import LivePublisher
from orchestrator.slack.thread_status import TypingStatus
from persistence.models import Thread
from persistence.store import Store


@dataclass(slots=True)
class RunProgress:
    writes: RunWrites  # what the events ask to be stored, written in order behind the reading
    delivered: bool = False  # the backend answered with at least one event
    status: TypingStatus | None = None  # the thread status, until the answer's text starts
    task_id: str | None = None  # the agent-side task the run follows, once announced
    texted: bool = False  # the answer's first text arrived (it is shown at once)
    live: LiveRun | None = None  # the run in this process (its lease and stop)
    slot: RunSlot | None = None  # the run's place among those streaming at once

    def keep_task(self, store: Store, thread_id: str, event: BaseEvent) -> None:
        """An agent-side task announced by `event` is followed (and stored, for a restart)."""
        assert isinstance(event, CustomEvent)
        value = event.value if isinstance(event.value, dict) else {}
        task_id = value.get("taskId")
        if event.name == AGENT_TASK_EVENT and isinstance(task_id, str) and task_id:
            self.task_id = task_id
            self.writes.add(functools.partial(store.set_open_task, thread_id, task_id))

    def show(self, event: BaseEvent) -> None:
        """The thread status follows the tool calls and steps until the answer's text starts."""
        status = self.status
        assert status is not None
        shown = activity(event)
        if shown is None:
            if event.type == EventType.TEXT_MESSAGE_CONTENT:
                status.text_started()
                self.status = None
        elif shown[0] == "tool":
            status.tool(shown[1])
        else:
            status.step(shown[1])


async def typing_status(
    notifier: Notifier, thread: Thread, publisher: LivePublisher, interval: float
) -> TypingStatus | None:
    """With native streaming the message shows text only: the thread status shows progress
    (in update mode the live message itself says "Thinking…" and shows tools and steps)."""
    if not isinstance(publisher, NativePublisher):
        return None
    status = TypingStatus(notifier.client, thread.channel_id, thread.thread_ts, interval=interval)
    await status.start()
    return status
