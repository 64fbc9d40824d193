"""The engine: load a thread's row, fire a trigger, store it, then do what the machine says.

Lifecycle events (a message, RUN_STARTED, RUN_FINISHED, RUN_ERROR, a lost stream, an interrupt,
an answer, a retry) fire triggers and are stored. Text, tool and step deltas only change the run's
in-memory view, which the publisher renders on its throttle. Each thread is serialised by a lock in
this process and by the row's version across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    EventType,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedEvent,
    StepFinishedEvent,
    StepStartedEvent,
    ToolCallArgsEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator import metrics
from orchestrator.agent.agui.client import AgentClient
from orchestrator.agent.errors import AgentAuthError, AgentError, AgentHTTPError, StreamIncomplete
from orchestrator.agent.targets import AgentResolver, AgentTarget
from orchestrator.config.channels import ChannelPolicy
from orchestrator.config.settings import Settings
from orchestrator.core import approvals, bot_loops
from orchestrator.core.conversation import RunRecorder, user_message
from orchestrator.core.ids import conversation_id
from orchestrator.core.machine import Fired, InvalidTrigger, ThreadMachine
from orchestrator.engine import leases
from orchestrator.engine.answer_actions import AnswerActions
from orchestrator.engine.feedback_forwarder import FeedbackForwarder
from orchestrator.logs import escape
from orchestrator.slack.native_publisher import NativePublisher
from orchestrator.slack.publisher import LivePublisher, Publisher, PublisherFactory, PublishError
from orchestrator.slack.streaming_mode import StreamingMode
from orchestrator.slack.thread_context import (
    BotIdentity,
    bot_identity,
    earlier_messages,
    thread_messages,
)
from orchestrator.slack.thread_status import TypingStatus
from persistence.models import Interrupt, QueuedMessage, Thread
from persistence.store import (
    AlreadyClaimed,
    Also,
    StaleThread,
    Store,
    append_op,
    claim_op,
    dequeue_op,
    enqueue_op,
    lease_op,
    queue_head_op,
    replace_op,
)
from renderers import get_renderer
from renderers.common import has_cursor, without_cursor
from renderers.forms import read_form_values
from renderers.view import ErrorView, StepView, ThreadView, ToolCallView

log = logging.getLogger("orchestrator.engine")

QUEUE_LIMIT = 5
CUT_RUN_TIMEOUT = 5.0  # seconds a run cut by the shutdown gets to end visibly


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
class Context:
    """What an effect needs beyond the thread row."""

    actor: str | None = None
    inbound: Inbound | None = None
    message: dict[str, Any] | None = None
    dequeue_id: int | None = None
    resume: approvals.Resume | None = None
    notice: str | None = None
    seed: list[dict[str, Any]] = field(default_factory=list)  # earlier thread messages
    queue_head: list[QueuedMessage] = field(default_factory=list)  # read by run_next_queued


@dataclass(slots=True)
class RunResult:
    """How a run ended: the trigger to fire and what to store with it."""

    trigger: str
    detail: dict[str, Any] = field(default_factory=dict)
    error: ErrorView | None = None
    interrupts: list[Interrupt] = field(default_factory=list)


Effect = Callable[[Thread, Context], Awaitable[None]]


@dataclass(slots=True)
class _Progress:
    delivered: bool = False  # the backend answered with at least one event
    status: TypingStatus | None = None  # the thread status, until the answer's text starts


class Engine:
    def __init__(
        self,
        *,
        store: Store,
        machine: ThreadMachine,
        agent_client: AgentClient,
        slack: AsyncWebClient,
        agents: AgentResolver,
        settings: Settings,
        policies: Callable[[str], ChannelPolicy] | None = None,
        publishers: PublisherFactory | None = None,
    ) -> None:
        self.store = store
        self.machine = machine
        self.client = agent_client
        self.slack = slack
        self.agents = agents
        self.settings = settings
        self._policies = policies
        self.streaming = StreamingMode(
            settings.slack_streaming, slack, interval=settings.update_interval
        )
        self._publishers = publishers or self._mode_publisher
        self._me: BotIdentity | None = None
        self.owner = leases.new_owner()  # names this process in the leases of its runs
        self._live: set[str] = set()  # threads whose run streams in this process
        self._closing = False  # stopping: no queued message starts a run here any more
        self._cut = asyncio.Event()  # stopping without waiting for the runs any longer
        # One lock per thread while someone holds or waits for it: a long-running process sees
        # every thread it ever served, and keeping their locks would grow without end.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._tasks: set[asyncio.Task[None]] = set()
        self._housekeeping: set[asyncio.Task[None]] = set()
        self._effects: dict[str, Effect] = {
            "start_run": self._start_run,
            "queue_message": self._queue_notice,
            "point_to_form": self._point_to_form,
            "run_next_queued": self._run_next_queued,
            "post_forms": self._post_forms,
            "resume_run": self._resume_run,
        }
        self.answers = AnswerActions(self, FeedbackForwarder(store, settings.feedback_url))

    # --- entry points ------------------------------------------------------------------

    def conversation_id(self, team_id: str, channel_id: str, thread_ts: str) -> str:
        return conversation_id(
            team_id, channel_id, thread_ts, self.settings.conversation_key, self._namespace()
        )

    def policy(self, channel_id: str) -> ChannelPolicy:
        """Approvers and deadlines of a channel (its configuration, else the settings)."""
        if self._policies is not None:
            return self._policies(channel_id)
        return ChannelPolicy(
            agent=self.agents(channel_id),
            approval_timeout=self.settings.approval_timeout,
            approval_reminder=self.settings.approval_reminder,
        )

    def _namespace(self) -> uuid.UUID:
        from orchestrator.core.ids import NAMESPACE

        ns = self.settings.conversation_namespace
        return uuid.UUID(ns) if ns else NAMESPACE

    async def handle_message(self, inbound: Inbound) -> bool:
        """A person (or an allowed bot) wrote to the agent in a thread.

        The delivery is marked as taken in the transaction that acts on it, so a database
        failure leaves it untaken (a redelivery is answered). False for a delivery taken before.
        """
        thread_id = self.conversation_id(inbound.team_id, inbound.channel_id, inbound.thread_ts)
        row = await self.store.get_thread(thread_id)
        created = row is None
        if row is None:  # stored with its first transition
            row = self.store.new_thread(
                thread_id,
                team_id=inbound.team_id,
                channel_id=inbound.channel_id,
                thread_ts=inbound.thread_ts,
                state=self.machine.definition.initial,
            )
        if inbound.is_bot and not await self._bot_may_run(thread_id, inbound):
            return True
        message = user_message(inbound.text, name=inbound.display_name or inbound.user)
        context = Context(actor=inbound.user, inbound=inbound, message=message)
        if created and inbound.ts != inbound.thread_ts:  # first asked in an existing discussion
            context.seed = await earlier_messages(
                self.slack,
                channel=inbound.channel_id,
                thread_ts=inbound.thread_ts,
                before_ts=inbound.ts,
                me=await self._identity(),
                limit=self.settings.thread_context_limit,
            )
        try:
            await self.fire(
                thread_id,
                "user_message",
                context,
                detail=_message_detail(inbound),
                also=[claim_op(inbound.claim_keys)],
                known=row,
            )
        except AlreadyClaimed:
            return False
        return True

    async def _bot_may_run(self, thread_id: str, inbound: Inbound) -> bool:
        """The loop guard: after `max_bot_runs` runs started by bots in a row, bots are ignored
        in the thread until a person writes there (says so once, and logs every refusal)."""
        limit = self.policy(inbound.channel_id).max_bot_runs
        turns = bot_loops.bot_turns(await self.store.history(thread_id))
        runs = turns.runs
        if runs < limit:
            return True
        log.warning(
            "bot message ignored: too many bot-started runs in a row",
            extra={"conversation": thread_id, "bot": inbound.user, "runs": runs, "limit": limit},
        )
        thread = await self.store.get_thread(thread_id)
        if thread is not None and not turns.told:
            await self.store.record(thread, bot_loops.STOPPED, inbound.user, {"runs": runs})
            await self._say(
                thread,
                f"I have answered {runs} bot messages in a row in this thread, so I'll stop "
                "answering bots here until a person writes.",
            )
        return False

    async def _identity(self) -> BotIdentity:
        if self._me is None or self._me.user_id is None:
            self._me = await bot_identity(self.slack)
        return self._me

    async def retry(self, thread_id: str, actor: str, channel: str | None = None) -> str | None:
        """The Retry button. Returns a note for the clicker when there is nothing to retry."""
        thread = await self.store.get_thread(thread_id)
        if thread is None:
            return "This conversation is no longer known to the bot."
        if channel is not None and thread.channel_id != channel:
            log.warning(
                "retry of a thread in another channel",
                extra={"conversation": thread.id, "user": actor},
            )
            return "This button does not belong to this conversation."
        if not self.machine.allows(thread.state, "retry"):
            return "This conversation is not in an error state any more; nothing to retry."
        fired = await self.fire(thread_id, "retry", Context(actor=actor))
        return None if fired else "Someone else already retried this."

    async def answer(
        self,
        *,
        interrupt_key: str,
        user: str,
        decision: str,
        state_values: dict[str, Any],
        channel: str,
        message_ts: str,
    ) -> str | None:
        """A click on Approve or Reject. Returns an ephemeral note for the clicker, if any.

        The answer is claimed with a compare-and-set in the store before anything is sent, so
        the backend receives exactly one resume per interrupt whatever Slack and people do.
        """
        row = await self.store.get_interrupt(interrupt_key)
        thread = await self.store.get_thread(row.thread_id) if row else None
        if row is None or thread is None:
            return "This approval request is no longer known to the bot."
        if thread.channel_id != channel or row.form_ts is None or row.form_ts != message_ts:
            log.warning(
                "click on a form of another thread", extra={"conversation": thread.id, "user": user}
            )
            return "This button does not belong to this conversation."
        allowed = await self._approvers(row)
        if user not in allowed:
            await self.store.record(
                thread, "approval_refused", user, {"interrupt": row.interrupt_id}
            )
            return f"Only {_people(allowed)} can answer this request."
        if row.status != "pending":
            return _already(row)
        values: dict[str, Any] = {}
        if decision == "resolved":
            values, errors = read_form_values(state_values, approvals.form_fields(row))
            if errors:
                await self._refresh_form(thread, row, error="; ".join(errors))
                return None
        claimed = await self.store.cas_interrupt(
            row.id,
            "pending",
            status="claimed",
            answered_by=user,
            answered_at=time.time(),
            answer=values,
            decision=decision,
        )
        if not claimed:
            return _already(await self.store.get_interrupt(row.id) or row)
        return await self._after_claim(thread, row.id, user, decision)

    async def _after_claim(self, thread: Thread, key: str, user: str, decision: str) -> str | None:
        row = await self.store.get_interrupt(key)
        assert row is not None
        await self._refresh_form(thread, row)
        resume = await self._resume_of(thread, row.run_id)
        trigger = "approval_submitted" if decision == "resolved" else "approval_rejected"
        fired = await self.fire(
            thread.id,
            trigger,
            Context(actor=user, resume=resume),
            detail={"interrupt": row.interrupt_id, "decision": decision, "values": row.answer},
            expect_state="awaiting_approval",
        )
        if fired is None:
            await self._release([key])
            return "This conversation has moved on; your answer was not sent."
        return None

    async def _resume_of(self, thread: Thread, run_id: str | None) -> approvals.Resume:
        rows = await self.store.interrupts_of(thread.id, run_id)
        answered = ("claimed", "sending", "expired")
        return approvals.resume_for([r for r in rows if r.status in answered])

    async def expire(self, row: Interrupt) -> None:
        """The deadline passed: the form says so and the backend is told `cancelled`."""
        expired = await self.store.cas_interrupt(
            row.id, "pending", status="expired", decision="cancelled", answered_at=time.time()
        )
        thread = await self.store.get_thread(row.thread_id)
        if not expired or thread is None:
            return
        fresh = await self.store.get_interrupt(row.id)
        assert fresh is not None
        await self._refresh_form(thread, fresh)
        resume = await self._resume_of(thread, row.run_id)
        await self.fire(
            thread.id,
            "approval_expired",
            Context(actor="scheduler", resume=resume),
            detail={"interrupt": row.interrupt_id},
            expect_state="awaiting_approval",
        )

    async def remind(self, row: Interrupt) -> None:
        """Nudge the people who can answer before the deadline passes (once)."""
        if not await self.store.cas_interrupt(row.id, "pending", remind_at=None):
            return
        thread = await self.store.get_thread(row.thread_id)
        if thread is None:
            return
        link = await self._permalink(thread.channel_id, row.form_ts)
        form = f"<{link}|This approval>" if link else "The approval above"
        who = _people(await self._approvers(row))
        when = approvals.moment(row.expires_at)
        await self._say(
            thread, f"{who}: {form} is still waiting for an answer; it expires at {when}."
        )

    async def recover(self) -> None:
        """After a restart: runs that died with the old process end visibly; queues go on."""
        await self.reconcile_runs()
        for thread in await self.store.threads_in("awaiting_approval"):
            await self._post_missing_forms(thread)
        for thread_id in await self.store.threads_with_queue():
            thread = await self.store.get_thread(thread_id)
            if thread is not None and thread.state in ("idle", "done", "errored"):
                await self._run_next_queued(thread, Context())

    async def reconcile_runs(self, now: float | None = None) -> None:
        """Renew the leases of this process's runs; end the runs whose owner is gone."""
        now = time.time() if now is None else now
        if self._live:
            await self.store.renew_leases(self.owner, now + self.settings.run_lease)
        for thread, lease in await self.store.streaming_leases():
            if thread.id in self._live:
                continue
            owner, expires_at = (lease.owner, lease.expires_at) if lease else (None, 0.0)
            if leases.is_lost(owner, expires_at, now):
                log.warning(
                    "run lost with its process",
                    extra={"conversation": thread.id, "owner": owner or "none"},
                )
                await self._reconcile_stream(thread)
        for row in await self.store.stale_claims(now - self.settings.run_lease):
            thread = await self.store.get_thread(row.thread_id)
            if thread is None or thread.state != "awaiting_approval":
                continue
            if (await self._facts(thread))["pending_interrupts"]:
                continue  # not left behind: it waits for the run's other forms
            await self._send_claimed(thread, [row])

    async def _send_claimed(self, thread: Thread, rows: Sequence[Interrupt]) -> None:
        """Answers that were claimed but never sent (their process died): send them now."""
        last = rows[-1]
        trigger = "approval_submitted" if last.decision == "resolved" else "approval_rejected"
        log.warning("sending an answer its process left behind", extra={"conversation": thread.id})
        await self.fire(
            thread.id,
            trigger,
            Context(actor="recovery", resume=await self._resume_of(thread, last.run_id)),
            detail={"interrupt": last.interrupt_id, "decision": last.decision, "by": "recovery"},
            expect_state="awaiting_approval",
        )

    async def _post_missing_forms(self, thread: Thread) -> None:
        """The state was stored but the process died before the forms reached Slack."""
        for row in await self._open_forms(thread):
            if row.form_ts:
                continue
            publisher = Publisher(self.slack, thread.channel_id, thread.thread_ts)
            try:
                await publisher.close([self._form_message(thread, row)])
            except PublishError as exc:
                log.warning(
                    "form not posted", extra={"conversation": thread.id, "error": exc.error}
                )
                continue
            await self.store.set_interrupt(row.id, form_ts=publisher.ts[0])

    async def _reconcile_stream(self, thread: Thread) -> None:
        await self._finish_live_messages(thread)
        answers = [
            r
            for r in await self.store.interrupts_of(thread.id)
            if r.status in ("claimed", "sending")
        ]
        sent = [r.id for r in answers if r.status == "sending"]
        if sent:  # the agent may have them: never send twice, keep them as answered
            await self._settle(thread, sent)
        elif answers:  # the resume never left: back to the forms, then send the same answers
            fired = await self.fire(
                thread.id,
                "resume_failed",
                Context(actor="recovery"),
                detail={"reason": "restart"},
                expect_state="streaming",
            )
            refreshed = await self.store.get_thread(thread.id)
            if fired is not None and refreshed is not None:
                await self._send_claimed(refreshed, answers)
            return
        error = ErrorView(
            kind="restart",
            title="Interrupted by a restart",
            detail="The bot restarted while this answer was being written. You can retry it.",
            can_escalate=self._has_helpers(thread),
        )
        fired = await self.fire(
            thread.id,
            "stream_lost",
            Context(actor="recovery"),
            detail={"reason": "restart"},
            fields={"error_kind": error.kind, "error_text": error.title},
            expect_state="streaming",
        )
        if fired is None:
            return
        view = ThreadView(conversation_id=thread.id, state=fired.dest, error=error)
        view.interrupted = error.title
        publisher = Publisher(self.slack, thread.channel_id, thread.thread_ts)
        with contextlib.suppress(PublishError):
            await publisher.close(self._render(view))

    async def _approvers(self, row: Interrupt) -> set[str]:
        allowed: set[str] = set()
        for who in row.approvers or ["requester"]:
            if who == "requester":
                allowed.add(row.requester or "")
            elif who.startswith("S"):
                allowed |= await self._group_members(who)
            else:
                allowed.add(who)
        return allowed

    async def _group_members(self, group: str) -> set[str]:
        try:
            response = await self.slack.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            log.warning("user group not readable", extra={"group": group, "error": str(exc)})
            return set()
        return set(response.get("users") or [])

    async def _release(self, keys: Sequence[str]) -> None:
        """Put claimed answers back to pending: the resume was not delivered."""
        for key in keys:
            await self.store.cas_interrupt(
                key,
                ("claimed", "sending"),
                status="pending",
                answered_by=None,
                answered_at=None,
                answer=None,
                decision=None,
            )

    async def _settle(self, thread: Thread, keys: Sequence[str]) -> None:
        """The backend accepted the resume: claimed answers become final records."""
        for key in keys:
            row = await self.store.get_interrupt(key)
            if row is None:
                continue
            final = "approved" if row.decision == "resolved" else "rejected"
            if await self.store.cas_interrupt(key, ("claimed", "sending"), status=final):
                row.status = final
                await self._refresh_form(thread, row)

    async def _refresh_form(self, thread: Thread, row: Interrupt, error: str | None = None) -> None:
        if not row.form_ts:
            return
        message = self._form_message(thread, row, error)
        try:
            await self.slack.chat_update(
                channel=thread.channel_id, ts=row.form_ts, text=message.text, blocks=message.blocks
            )
        except SlackApiError as exc:
            log.warning("form not updated", extra={"conversation": thread.id, "error": str(exc)})

    def _form_message(self, thread: Thread, row: Interrupt, error: str | None = None) -> Any:
        view = ThreadView(
            conversation_id=thread.id,
            state="awaiting_approval",
            requester=thread.requester,
            interrupts=[approvals.view_of(row, error)],
        )
        return self._render(view)[-1]

    @property
    def busy(self) -> bool:
        """True while a run or an effect started here is still going."""
        return bool(self._tasks)

    async def drain(self) -> None:
        """Wait until every run and effect started by this engine has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def finish_runs(self, grace: float) -> None:
        """The service is stopping: runs still going get `grace` seconds to finish (or until
        `stop_waiting`), and no queued message starts a new one here (the next process runs
        it)."""
        self._closing = True
        if not self._tasks or grace <= 0:
            return
        log.info(
            "waiting for runs to finish; a second stop signal cuts them",
            extra={"runs": len(self._live), "grace": grace},
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        cut = asyncio.ensure_future(self._cut.wait())
        try:
            while self._tasks and not cut.done() and loop.time() < deadline:
                await asyncio.wait(
                    [*self._tasks, cut],
                    timeout=deadline - loop.time(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
        finally:
            cut.cancel()

    def stop_waiting(self) -> None:
        """Cut the runs `finish_runs` is waiting for now."""
        self._cut.set()

    async def close(self) -> None:
        """Stop. The runs cut here end visibly at once ("Interrupted by a restart", Retry), as
        another process would end them."""
        self._closing = True
        cut = list(self._live)
        leases.retire(self.owner)  # what this process still streams is lost from now on
        for task in [*self._tasks, *self._housekeeping]:
            task.cancel()
        await self.drain()
        await asyncio.gather(*self._housekeeping, return_exceptions=True)
        await self._end_cut_runs(cut)
        await self.answers.close()

    async def _end_cut_runs(self, thread_ids: Sequence[str]) -> None:
        for thread_id in thread_ids:
            log.warning("run cut by the shutdown", extra={"conversation": thread_id})
            try:
                async with asyncio.timeout(CUT_RUN_TIMEOUT):
                    thread = await self.store.get_thread(thread_id)
                    if thread is not None and thread.state == "streaming":
                        await self._reconcile_stream(thread)
            except Exception:  # the next start (or another replica) ends it instead
                log.exception("cut run not ended", extra={"conversation": thread_id})

    # --- firing ------------------------------------------------------------------------

    def _lock(self, thread_id: str) -> asyncio.Lock:
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
    ) -> Fired | None:
        """Fire `trigger` on the stored thread, store the result, then perform its effects.

        `known` is a row this process holds (and keeps up to date) for the thread: it saves the
        read, and the version check still catches it being stale. Returns None when the trigger
        does not apply (any more) to the thread's state.
        """
        context = context or Context()
        async with self._lock(thread_id):
            fired, thread = await self._fire_locked(
                thread_id, trigger, context, detail, fields or {}, also, expect_state, known
            )
        if fired is None:
            return None
        for effect in fired.effects:
            await self._effects[effect](thread, context)
        return fired

    async def _fire_locked(
        self,
        thread_id: str,
        trigger: str,
        context: Context,
        detail: dict[str, Any] | None,
        fields: dict[str, Any],
        also: Sequence[Also],
        expect_state: str | None,
        known: Thread | None,
    ) -> tuple[Fired | None, Thread]:
        for _ in range(5):
            fresh = known is None
            thread = known if known is not None else await self.store.get_thread(thread_id)
            known = None  # a held row is tried once; any doubt and the store is asked
            if thread is None:
                raise LookupError(f"unknown thread {thread_id}")
            if expect_state is not None and thread.state != expect_state:
                if not fresh:
                    continue
                return None, thread
            try:
                fired = self.machine.fire(thread.state, trigger, await self._facts(thread))
            except InvalidTrigger:
                if not fresh:
                    continue
                log.info(
                    "trigger refused",
                    extra={"conversation": thread_id, "trigger": trigger, "state": thread.state},
                )
                return None, thread
            if context.dequeue_id is not None and "start_run" not in fired.effects:
                return None, thread  # another run went first: the message keeps its place
            writes = [*also, *self._writes_for(thread, fired, context)]
            try:
                await self.store.transition(
                    thread,
                    to_state=fired.dest,
                    trigger=trigger,
                    actor=context.actor,
                    detail=detail,
                    also=writes,
                    **fields,
                    **_requester_fields(fired, context),
                )
            except StaleThread:
                context.seed = []  # the earlier messages are seeded by whoever stored it first
                continue
            metrics.TRANSITIONS.labels(trigger, fired.source, fired.dest).inc()
            log.info(
                "transition",
                extra={
                    "conversation": thread.id,
                    "trigger": trigger,
                    "from": fired.source,
                    "to": fired.dest,
                },
            )
            return fired, thread
        raise StaleThread(thread_id)

    async def _facts(self, thread: Thread) -> dict[str, Any]:
        if thread.state != "awaiting_approval":
            return {}
        rows = await self.store.interrupts_of(thread.id, thread.run_id)
        return {"pending_interrupts": sum(1 for r in rows if r.status == "pending")}

    def _writes_for(self, thread: Thread, fired: Fired, context: Context) -> list[Also]:
        """The writes that go with `fired` (called again for each attempt of a transition)."""
        writes: list[Also] = []
        context.notice = None
        if "start_run" in fired.effects and context.message is not None:
            writes.append(append_op(thread.id, [*context.seed, context.message]))
        if "queue_message" in fired.effects and context.inbound is not None:
            writes.append(self._enqueue(thread, context))
        if context.dequeue_id is not None:
            writes.append(dequeue_op(context.dequeue_id))
        if "run_next_queued" in fired.effects:
            writes.append(queue_head_op(thread.id, context.queue_head))
        if fired.dest == "streaming" and fired.source != "streaming":
            expires_at = time.time() + self.settings.run_lease
            writes.append(lease_op(thread.id, self.owner, expires_at))
        elif fired.source == "streaming" and fired.dest != "streaming":
            writes.append(lease_op(thread.id, None))
        return writes

    def _enqueue(self, thread: Thread, context: Context) -> Also:
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

    # --- effects -----------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_run(self, thread: Thread, context: Context) -> None:
        if context.inbound is not None:  # stored with the transition (_requester_fields)
            thread.requester = context.inbound.user
            thread.requester_is_bot = context.inbound.is_bot
        self._spawn(self._run(thread))

    async def _resume_run(self, thread: Thread, context: Context) -> None:
        self._spawn(self._run(thread, resume=context.resume))

    async def _queue_notice(self, thread: Thread, context: Context) -> None:
        if context.notice == "full":
            text = (
                f"I'm still answering, and {QUEUE_LIMIT} messages are already waiting. "
                "Please send this again once I'm done."
            )
        else:
            text = "I'm still answering the previous message; I'll pick this up right after."
        await self._say(thread, text)

    async def _point_to_form(self, thread: Thread, context: Context) -> None:
        rows = [r for r in await self.store.interrupts_of(thread.id, thread.run_id) if r.form_ts]
        link = await self._permalink(thread.channel_id, rows[0].form_ts) if rows else None
        where = f"<{link}|the approval above>" if link else "the approval above"
        await self._say(
            thread,
            f"I'm waiting for {where} before I go on, so I haven't passed this message to the "
            "agent. Answer the form, then write again.",
        )

    async def _run_next_queued(self, thread: Thread, context: Context) -> None:
        if not context.queue_head or self._closing:  # a closing process leaves it queued
            return
        head = context.queue_head[0]
        inbound = Inbound(
            team_id=thread.team_id,
            channel_id=thread.channel_id,
            thread_ts=thread.thread_ts,
            ts=head.ts,
            user=head.user,
            text=str(head.message.get("content", "")),
            is_bot=head.is_bot,
        )
        next_context = Context(
            actor=head.user, inbound=inbound, message=head.message, dequeue_id=head.id
        )
        detail = _message_detail(inbound)
        self._spawn(self._fire_detached(thread.id, "user_message", next_context, detail))

    async def _fire_detached(
        self, thread_id: str, trigger: str, context: Context, detail: dict[str, Any]
    ) -> None:
        try:
            await self.fire(thread_id, trigger, context, detail=detail)
        except Exception:
            log.exception("background trigger failed", extra={"conversation": thread_id})

    async def _post_forms(self, thread: Thread, context: Context) -> None:
        """Forms are posted by the run's final sync, after their records are stored."""

    # --- a run -------------------------------------------------------------------------

    async def _run(self, thread: Thread, *, resume: approvals.Resume | None = None) -> None:
        metrics.LIVE_RUNS.inc()
        started = time.monotonic()
        self._live.add(thread.id)
        try:
            await self._run_inner(thread, resume)
        except Exception:
            log.exception("run crashed", extra={"conversation": thread.id})
            await self._fail_crashed(thread)
        finally:
            self._live.discard(thread.id)
            metrics.LIVE_RUNS.dec()
            metrics.RUN_SECONDS.observe(time.monotonic() - started)

    async def _run_inner(self, thread: Thread, resume: approvals.Resume | None) -> None:
        target = self.agents(thread.channel_id)
        run_id = str(uuid.uuid4())
        view = ThreadView(conversation_id=thread.id, state="streaming", requester=thread.requester)
        publisher = self._publishers(thread, view)
        try:
            await publisher.open(self._render(view))
        except PublishError as exc:
            log.error(
                "cannot post in the thread",
                extra={"conversation": thread.id, "channel": thread.channel_id, "error": exc.error},
            )
            metrics.SLACK_ERRORS.labels(exc.error).inc()
        thread.run_id = run_id  # stored with the run's first transition (run_started or its end)

        if resume is not None:  # from here on the agent may receive the answers
            for key in resume.interrupt_keys:
                await self.store.cas_interrupt(key, "claimed", status="sending")
        recorder = RunRecorder()
        status = await self._typing_status(thread, publisher)
        try:
            result = await self._consume(
                thread, target, run_id, resume, view, publisher, recorder, status
            )
        except asyncio.CancelledError:  # the service is stopping: `close` ends the run
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CUT_RUN_TIMEOUT):
                    await publisher.abandon()
            raise
        finally:
            if status is not None:
                self._background(status.clear())
        await self._finish(thread, target, view, publisher, recorder, result, resume)

    async def _typing_status(self, thread: Thread, publisher: LivePublisher) -> TypingStatus | None:
        """With native streaming the message shows text only: the thread status shows progress.

        (In update mode the live message itself says "Thinking…" and shows tools and steps.)
        """
        if not isinstance(publisher, NativePublisher):
            return None
        status = TypingStatus(
            self.slack, thread.channel_id, thread.thread_ts, interval=self.settings.update_interval
        )
        await status.start()
        return status

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Housekeeping that must not hold a run up (nor count as the engine being busy)."""
        task = asyncio.create_task(coro)
        self._housekeeping.add(task)
        task.add_done_callback(self._housekeeping.discard)

    async def _consume(
        self,
        thread: Thread,
        target: AgentTarget,
        run_id: str,
        resume: approvals.Resume | None,
        view: ThreadView,
        publisher: LivePublisher,
        recorder: RunRecorder,
        status: TypingStatus | None = None,
    ) -> RunResult:
        run_input = await self._run_input(thread, target, run_id, resume)
        progress = _Progress(status=status)
        try:
            headers = await target.request_headers()
            stream = self.client.stream(target.url, run_input, headers=headers)
            async with contextlib.aclosing(stream):
                return await self._read(
                    thread, run_id, stream, view, publisher, recorder, resume, progress
                )
        except AgentError as exc:
            if isinstance(exc, AgentAuthError):
                target.credentials_refused()
            if resume is not None and not progress.delivered:
                return _resume_failure(exc, resume)
            return _agent_failure(exc, target)
        finally:
            if progress.delivered and target.history == "server":
                await self.store.mark_messages_sent(thread.id)  # the backend has them now

    async def _read(
        self,
        thread: Thread,
        run_id: str,
        stream: AsyncIterator[BaseEvent],
        view: ThreadView,
        publisher: LivePublisher,
        recorder: RunRecorder,
        resume: approvals.Resume | None,
        progress: _Progress,
    ) -> RunResult:
        render = lambda: self._render(view)  # noqa: E731 - the throttle calls it when due
        legacy: CustomEvent | None = None
        async for event in stream:
            if not progress.delivered:
                progress.delivered = True
                if resume is not None:  # the backend took the answers: they become final
                    await self._settle(thread, resume.interrupt_keys)
            kind = event.type
            if kind is _TEXT:  # most events: keep this path to two appends and a flag
                view.chunks.append(event.delta)  # type: ignore[attr-defined]
                recorder.text(event.message_id, event.delta)  # type: ignore[attr-defined]
                publisher.changed(render)
                if progress.status is not None:
                    progress.status.text_started()
                    progress.status = None
                continue
            apply = _DELTAS.get(kind)
            if apply is not None:
                apply(view, event)
                recorder.observe(event)
                publisher.changed(render)
                if progress.status is not None:
                    _show_activity(progress.status, event)
            elif kind == EventType.RUN_STARTED:
                await self.fire(
                    thread.id,
                    "run_started",
                    detail={"run_id": run_id},
                    fields={"run_id": run_id, "message_ts": list(publisher.ts)},
                    known=thread,
                )
            elif kind == EventType.MESSAGES_SNAPSHOT:
                recorder.observe(event)
            elif kind == EventType.CUSTOM:
                assert isinstance(event, CustomEvent)
                if approvals.is_legacy_interrupt(event):
                    legacy = event
            elif kind == EventType.RUN_ERROR:
                assert isinstance(event, RunErrorEvent)
                return _run_error(event)
            elif kind == EventType.RUN_FINISHED:
                assert isinstance(event, RunFinishedEvent)
                return self._finished(thread, run_id, event, legacy, recorder)
        raise StreamIncomplete("the stream ended without RUN_FINISHED or RUN_ERROR")

    def _finished(
        self,
        thread: Thread,
        run_id: str,
        event: RunFinishedEvent,
        legacy: CustomEvent | None,
        recorder: RunRecorder,
    ) -> RunResult:
        policy = self.policy(thread.channel_id)
        rows = approvals.interrupts_of_run(
            thread=thread,
            run_id=run_id,
            finished=event,
            legacy=legacy,
            recorder=recorder,
            approval_timeout=policy.approval_timeout,
        )
        reminder = policy.approval_reminder
        for row in rows:
            row.approvers = list(policy.approvers)
            if reminder and row.expires_at and row.expires_at - reminder > time.time():
                row.remind_at = row.expires_at - reminder
        if rows:
            return RunResult(
                "interrupt", {"interrupts": [r.interrupt_id for r in rows]}, None, rows
            )
        return RunResult("run_finished")

    async def _run_input(
        self,
        thread: Thread,
        target: AgentTarget,
        run_id: str,
        resume: approvals.Resume | None,
    ) -> RunAgentInput:
        if target.history == "server":
            messages = await self.store.unsent_messages(thread.id)
        else:
            messages = await self.store.messages(thread.id)
        forwarded: dict[str, Any] = {
            "source": "slack",
            "slack": {"channel": thread.channel_id, "threadTs": thread.thread_ts},
        }
        payload: dict[str, Any] = {
            "threadId": thread.id,
            "runId": run_id,
            "messages": messages,
            "tools": [],
            "context": [],
            "state": None,
            "forwardedProps": forwarded,
        }
        if resume is not None:
            resume.apply(payload)
        return RunAgentInput.model_validate(payload)

    async def _finish(
        self,
        thread: Thread,
        target: AgentTarget,
        view: ThreadView,
        publisher: LivePublisher,
        recorder: RunRecorder,
        result: RunResult,
        resume: approvals.Resume | None = None,
    ) -> None:
        for call in view.tool_calls.values():
            if call.status == "running" and result.trigger != "interrupt":
                call.status = "done"
        also: list[Also] = []
        if result.trigger in ("run_finished", "interrupt"):
            sent = target.history == "server"  # the backend keeps what it streamed and was sent
            if resume is not None and resume.tool_messages:
                also.append(append_op(thread.id, resume.tool_messages, sent=sent))
            also.append(self._history_write(thread, recorder, sent=sent))
        if result.trigger == "run_finished":
            also.append(self.answers.record(thread, view, publisher.ts))
        if result.trigger == "resume_failed" and resume is not None:
            await self._release(resume.interrupt_keys)
        if result.interrupts:
            also.append(approvals.insert_op(result.interrupts))
        fields: dict[str, Any] = {"run_id": thread.run_id, "message_ts": list(publisher.ts)}
        if result.error is not None:
            result.error.can_escalate = self._has_helpers(thread)
            fields |= {"error_kind": result.error.kind, "error_text": result.error.title}
            view.error = result.error
            if view.text:
                view.interrupted = result.error.title
        fired = await self.fire(
            thread.id,
            result.trigger,
            Context(actor="agent"),
            detail=result.detail,
            fields=fields,
            also=also,
            expect_state="streaming",
            known=thread,
        )
        metrics.RUNS.labels(result.trigger).inc()
        if result.error is not None:
            log.warning(
                "run failed",
                extra={
                    "conversation": thread.id,
                    "agent": target.name,
                    "kind": result.error.kind,
                    "detail": escape(result.error.detail),
                },
            )
        view.state = fired.dest if fired else (await self._state(thread.id))
        if result.trigger == "resume_failed":
            view.state = "errored"  # this run's message says why; the original form reopens
        messages = self._render(view)
        forms = await self._open_forms(thread) if result.trigger == "interrupt" else []
        undelivered: dict[str, Any] = {}
        try:
            await publisher.close(messages, [self._form_message(thread, r) for r in forms])
        except PublishError as exc:
            metrics.SLACK_ERRORS.labels(exc.error).inc()
            log.error(
                "final answer not delivered", extra={"conversation": thread.id, "error": exc.error}
            )
            undelivered = {
                "error_kind": "slack_delivery",
                "error_text": f"The answer could not be posted in Slack ({exc.error})",
            }
        if publisher.ts != fields["message_ts"] or undelivered:  # continuations, forms, failure
            await self.store.update_thread(thread.id, message_ts=publisher.ts, **undelivered)
        if publisher.ts != fields["message_ts"] or publisher.redraw_from != (0, 0):
            await self.answers.posted(view, publisher.ts, publisher.redraw_from)
        for row, ts in zip(forms, publisher.extra_ts, strict=False):
            await self.store.set_interrupt(row.id, form_ts=ts)
        if result.trigger == "resume_failed" and resume is not None:
            for key in resume.interrupt_keys:
                row = await self.store.get_interrupt(key)
                if row is not None:
                    await self._refresh_form(thread, row)

    def _has_helpers(self, thread: Thread) -> bool:
        return bool(self.policy(thread.channel_id).escalate_to)

    async def _open_forms(self, thread: Thread) -> list[Interrupt]:
        rows = await self.store.interrupts_of(thread.id, thread.run_id)
        return [r for r in rows if r.status in ("pending", "claimed", "sending")]

    def _history_write(self, thread: Thread, recorder: RunRecorder, *, sent: bool) -> Also:
        if recorder.snapshot is not None:
            return replace_op(thread.id, recorder.snapshot)
        return append_op(thread.id, recorder.messages(), sent=sent)

    async def _state(self, thread_id: str) -> str:
        thread = await self.store.get_thread(thread_id)
        return thread.state if thread else "errored"

    async def _fail_crashed(self, thread: Thread) -> None:
        # The store may be what failed: the thread is told either way, and a thread left in
        # `streaming` is ended by the recovery at the next start.
        with contextlib.suppress(Exception):
            await self.fire(
                thread.id,
                "stream_lost",
                Context(actor="engine"),
                detail={"reason": "internal error"},
                fields={"error_kind": "internal", "error_text": "Something went wrong in the bot"},
                expect_state="streaming",
            )
        await self._say(thread, "Something went wrong on my side while answering. Please retry.")

    # --- Slack helpers -----------------------------------------------------------------

    def _mode_publisher(self, thread: Thread, view: ThreadView) -> LivePublisher:
        return self.streaming.publisher(
            thread.channel_id,
            thread.thread_ts,
            view,
            requester=thread.requester,
            team_id=thread.team_id,
            final_only=thread.requester_is_bot,
        )

    def _render(self, view: ThreadView) -> list[Any]:
        return get_renderer(self.machine.definition.renderer_of(view.state))(view)

    async def _say(self, thread: Thread, text: str) -> None:
        try:
            await self.slack.chat_postMessage(
                channel=thread.channel_id, thread_ts=thread.thread_ts, text=text
            )
        except SlackApiError as exc:
            log.warning(
                "notice not delivered", extra={"conversation": thread.id, "error": str(exc)}
            )

    async def _finish_live_messages(self, thread: Thread) -> None:
        """The dead process's live messages keep their text but lose the writing cursor.

        The stored ts are the run's first message(s); continuations it posted after they were
        stored are the bot's own messages after them that still show the cursor.
        """
        owned = set(thread.message_ts or [])
        if not owned:
            return
        first = min(float(ts) for ts in owned)
        try:
            found = await thread_messages(self.slack, thread.channel_id, thread.thread_ts)
            me = await self._identity()
        except SlackApiError as exc:
            log.warning(
                "live messages not read", extra={"conversation": thread.id, "error": str(exc)}
            )
            return
        for message in found:
            ts = message.get("ts") or "0"
            ours = ts in owned or (me.wrote(message) and float(ts) > first)
            if not ours or not has_cursor(message.get("blocks") or []):
                continue
            with contextlib.suppress(SlackApiError):
                await self.slack.chat_update(
                    channel=thread.channel_id,
                    ts=message["ts"],
                    text=message.get("text") or "",
                    blocks=without_cursor(message["blocks"]),
                )

    async def _permalink(self, channel: str, ts: str | None) -> str | None:
        if not ts:
            return None
        try:
            response = await self.slack.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError:
            return None
        return response.get("permalink")


# --- deltas: the per-event hot path, no I/O -------------------------------------------


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


def _requester_fields(fired: Fired, context: Context) -> dict[str, Any]:
    """A message that starts a run makes its sender the run's requester."""
    if "start_run" not in fired.effects or context.inbound is None:
        return {}
    return {"requester": context.inbound.user, "requester_is_bot": context.inbound.is_bot}


def _show_activity(status: TypingStatus, event: BaseEvent) -> None:
    if isinstance(event, ToolCallStartEvent):
        status.tool(event.tool_call_name)
    elif isinstance(event, StepStartedEvent):
        status.step(event.step_name)


_DELTAS: dict[str, Callable[[ThreadView, BaseEvent], None]] = {
    EventType.TEXT_MESSAGE_START: _text_start,
    EventType.TOOL_CALL_START: _tool_start,
    EventType.TOOL_CALL_ARGS: _tool_args,
    EventType.TOOL_CALL_RESULT: _tool_result,
    EventType.STEP_STARTED: _step_start,
    EventType.STEP_FINISHED: _step_end,
}


# --- failures as people read them -----------------------------------------------------


def _run_error(event: RunErrorEvent) -> RunResult:
    code = f" ({event.code})" if event.code else ""
    error = ErrorView(
        kind="run_error",
        title="The agent reported an error",
        detail=f"{event.message}{code}",
        retryable=True,
    )
    return RunResult("run_error", {"message": event.message, "code": event.code}, error)


def _agent_failure(exc: AgentError, target: AgentTarget) -> RunResult:
    detail = exc.detail
    if exc.kind == "agent_not_found":
        detail = (
            f"The agent `{target.name}` is not known to the backend (HTTP 404). "
            f"An admin should check {_configured_at(target)}."
        )
    elif exc.kind in ("agent_auth_failed", "agent_credentials_unavailable") and not exc.retryable:
        detail = (
            f"{exc.detail} An admin should check the credentials of the agent `{target.name}` "
            f"({_configured_at(target)})."
        )
    elif isinstance(exc, AgentHTTPError) and exc.retry_after is not None:
        detail = f"{exc.detail} It asked to be retried {_when(exc.retry_after)}; use Retry then."
    elif exc.retryable:
        detail = f"{exc.detail} You can try again."
    error = ErrorView(kind=exc.kind, title=exc.title, detail=detail, retryable=exc.retryable)
    trigger = "stream_lost" if exc.kind in ("stream_lost", "agent_timeout") else "run_error"
    return RunResult(trigger, {"error": exc.kind, "detail": exc.detail}, error)


def _configured_at(target: AgentTarget) -> str:
    if target.origin is None:
        return "the agent configured for this channel"
    if target.origin == "AGENT_URL":
        return "`AGENT_URL`, the default agent"
    return f"`{target.origin}` in the channel configuration"


def _message_detail(inbound: Inbound) -> dict[str, Any]:
    """What the history keeps of a message; `bot` lets the loop guard count bot turns."""
    return {"ts": inbound.ts, "bot": True} if inbound.is_bot else {"ts": inbound.ts}


def _when(seconds: float) -> str:
    if seconds < 120:
        return f"in {math.ceil(seconds)} seconds"
    return "after " + time.strftime("%H:%M UTC", time.gmtime(time.time() + seconds))


def _resume_failure(exc: AgentError, resume: approvals.Resume) -> RunResult:
    error = ErrorView(
        kind=exc.kind,
        title="Your answer could not be delivered to the agent",
        detail=f"{exc.title}: {exc.detail} The form is open again; please answer once more.",
        retryable=False,
    )
    return RunResult("resume_failed", {"error": exc.kind, "detail": exc.detail}, error)


def _already(row: Interrupt) -> str:
    if row.status in ("expired", "cancelled"):
        return f"This request has {row.status}; the answer was not sent."
    who = f"<@{row.answered_by}>" if row.answered_by else "someone"
    return f"This request was already answered by {who}."


def _people(ids: set[str]) -> str:
    named = sorted(i for i in ids if i)
    return ", ".join(f"<@{i}>" for i in named) if named else "the configured approvers"
