"""Firing a trigger: lock the thread, load its row, run the machine, store the result with a
version check (and the writes that must land with it), then perform the actions it names.

`transitions` is a rule engine over rows here: no model stays attached between events. Each
thread is serialised in this process by its lock, and across replicas by the row's version.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator import metrics
from orchestrator.config.settings import Settings
from orchestrator.core.machine import Fired, InvalidTrigger, ThreadMachine
from orchestrator.engine.context import QUEUE_LIMIT, Action, Context
from orchestrator.slack.sessions import AgentSessions, first_line
from persistence.models import QueuedMessage, Thread
from persistence.store import (
    Also,
    StaleThread,
    Store,
    append_op,
    dequeue_op,
    enqueue_op,
    fence_op,
    lease_op,
    queue_head_op,
)

log = logging.getLogger("orchestrator.engine")

ATTEMPTS = 5  # a transition retried after a stale read; more means something is wrong


class Firing:
    def __init__(
        self,
        store: Store,
        machine: ThreadMachine,
        settings: Settings,
        owner: str,
        sessions: AgentSessions | None = None,
    ) -> None:
        self.store = store
        self.machine = machine
        self.settings = settings
        self.owner = owner
        self.sessions = sessions  # Slack's agent session of each thread follows its state
        self.actions: dict[str, Action] = {}  # the machine's actions, by the names YAML uses
        # Runs actions in the background (set by the engine): a delivery is acknowledged once
        # its transition is stored, and what follows goes on without holding Slack's request.
        self.spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None
        # One lock per thread while someone holds or waits for it: a long-running process sees
        # every thread it ever served, and keeping their locks would grow without end.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, thread_id: str) -> asyncio.Lock:
        lock = self._locks.get(thread_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[thread_id] = lock
        return lock

    async def fire(
        self,
        thread_id: str,
        trigger: str,
        context: Context | None = None,
        *,
        detail: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
        also: Sequence[Also] = (),
        expect_state: str | None = None,
        known: Thread | None = None,
        detached: bool = False,
    ) -> Fired | None:
        """Fire `trigger` on the stored thread, store the result, then perform its actions.

        `known` is a row this process holds (and keeps up to date) for the thread: it saves the
        read, and the version check still catches it being stale. With `detached` the actions
        run in the background once the transition is stored. Returns None when the trigger
        does not apply (any more) to the thread's state.
        """
        context = context or Context()
        change = _Change(trigger, detail, fields or {}, tuple(also), expect_state)
        async with self.lock(thread_id):
            fired, thread = await self._transition(thread_id, change, context, known)
        if fired is None:
            return None
        self._follow_session(thread, fired, context)
        if detached and self.spawn is not None:
            self.spawn(self._perform(fired, thread, context))
        else:
            await self._perform(fired, thread, context)
        return fired

    async def _perform(self, fired: Fired, thread: Thread, context: Context) -> None:
        for action in fired.effects:
            await self.actions[action](thread, context)

    def session_of(self, state: str) -> str:
        return self.machine.definition.session_of(state)

    def show_session(self, thread: Thread) -> None:
        """Set the thread's session status from its state (recovery, a stop with nothing to
        stop): Slack may show what a process that is gone last set."""
        if self.sessions is not None:
            self.sessions.follow(thread.channel_id, thread.thread_ts, self.session_of(thread.state))

    def _follow_session(self, thread: Thread, fired: Fired, context: Context) -> None:
        """A transition that changes the session status (as the machine names it) sets it in
        Slack; the thread's first one also gives the session its title and initiator."""
        if self.sessions is None:
            return
        before, after = self.session_of(fired.source), self.session_of(fired.dest)
        if context.live is not None:  # a closing native stream sets it too
            context.live.session_status = self.sessions.closing_status(after)
        if before == after:
            return
        inbound = context.inbound
        created = thread.version == 1 and inbound is not None
        self.sessions.follow(
            thread.channel_id,
            thread.thread_ts,
            after,
            title=first_line(inbound.text) if created and inbound else None,
            initiator=inbound.user if created and inbound and not inbound.is_bot else None,
        )

    async def facts(self, thread: Thread) -> dict[str, Any]:
        """What the machine's conditions read."""
        if thread.state != "awaiting_approval":
            return {}
        rows = await self.store.interrupts_of(thread.id, thread.run_id)
        return {"pending_interrupts": sum(1 for r in rows if r.status == "pending")}

    async def _transition(
        self, thread_id: str, change: _Change, context: Context, known: Thread | None
    ) -> tuple[Fired | None, Thread]:
        for _ in range(ATTEMPTS):
            fresh = known is None
            thread = known if known is not None else await self.store.get_thread(thread_id)
            known = None  # a held row is tried once; any doubt and the store is asked
            if thread is None:
                raise LookupError(f"unknown thread {thread_id}")
            if change.expect_state is not None and thread.state != change.expect_state:
                if not fresh:
                    continue
                return None, thread
            try:
                fired = self.machine.fire(thread.state, change.trigger, await self.facts(thread))
            except InvalidTrigger:
                if not fresh:
                    continue
                log.info(
                    "trigger refused",
                    extra={
                        "conversation": thread_id,
                        "trigger": change.trigger,
                        "state": thread.state,
                    },
                )
                return None, thread
            if context.dequeue_id is not None and "start_run" not in fired.effects:
                return None, thread  # another run went first: the message keeps its place
            writes = [*change.also, *self._writes_for(thread, fired, context)]
            try:
                await self.store.transition(
                    thread,
                    to_state=fired.dest,
                    trigger=change.trigger,
                    actor=context.actor,
                    detail=change.detail,
                    also=writes,
                    **change.fields,
                    **_requester_fields(fired, context),
                    **_run_fields(fired),
                )
            except StaleThread:
                context.seed = []  # the earlier messages are seeded by whoever stored it first
                continue
            metrics.TRANSITIONS.labels(change.trigger, fired.source, fired.dest).inc()
            log.info(
                "transition",
                extra={
                    "conversation": thread.id,
                    "trigger": change.trigger,
                    "from": fired.source,
                    "to": fired.dest,
                },
            )
            return fired, thread
        raise StaleThread(thread_id)

    def _writes_for(self, thread: Thread, fired: Fired, context: Context) -> list[Also]:
        """The writes that go with `fired` (called again for each attempt of a transition)."""
        writes: list[Also] = []
        context.notice = None
        if "start_run" in fired.effects and context.message is not None:
            writes.append(append_op(thread.id, [*context.seed, context.message]))
        if "queue_message" in fired.effects and context.inbound is not None:
            writes.append(_enqueue(thread, context))
        if context.dequeue_id is not None:
            writes.append(dequeue_op(context.dequeue_id))
        if "run_next_queued" in fired.effects:
            context.queue_head = []
            writes.append(queue_head_op(thread.id, context.queue_head))
        leaving = fired.source == "streaming" and fired.dest != "streaming"
        expires_at = time.time() + self.settings.run_lease
        if fired.dest == "streaming" and fired.source != "streaming":
            writes.append(lease_op(thread.id, self.owner, expires_at))
        elif context.fenced:  # the run's own write: only while its lease is this process's
            writes.append(fence_op(thread.id, self.owner, expires_at, release=leaving))
        elif leaving:  # ended by whoever found it lost (the thread's version decides)
            writes.append(lease_op(thread.id, None))
        return writes


@dataclass(frozen=True, slots=True)
class _Change:
    """One requested transition: the trigger and what is stored with it."""

    trigger: str
    detail: dict[str, Any] | None
    fields: dict[str, Any]
    also: tuple[Also, ...]
    expect_state: str | None


def _enqueue(thread: Thread, context: Context) -> Also:
    inbound = context.inbound
    assert inbound is not None and context.message is not None
    row = QueuedMessage(
        thread_id=thread.id,
        ts=inbound.ts,
        user=inbound.user,
        is_bot=inbound.is_bot,
        message=context.message,
        created_at=time.time(),
    )

    def full() -> None:
        context.notice = "full"

    return enqueue_op(row, limit=QUEUE_LIMIT, full=full)


def _run_fields(fired: Fired) -> dict[str, Any]:
    """A new run has not reached the agent yet (see `Thread.run_sent`)."""
    if fired.dest == "streaming" and fired.source != "streaming":
        return {"run_sent": None}
    return {}


def _requester_fields(fired: Fired, context: Context) -> dict[str, Any]:
    """A message that starts a run makes its sender the run's requester."""
    if "start_run" not in fired.effects or context.inbound is None:
        return {}
    return {"requester": context.inbound.user, "requester_is_bot": context.inbound.is_bot}
