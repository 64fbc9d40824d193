"""The engine: a small façade over one part per concern.

A mention reads top to bottom: `handle_message` (messages) → `Firing.fire` (lock, row, machine,
versioned write) → the `start_run` action → `RunDriver` (agent seam, pure reducer, publisher)
→ `Finisher` (outcome table, one transition) → `post_forms` or the closing render. A click:
`answer` (approvals desk: checks, compare-and-set claim) → `Firing.fire` → `resume_run` → the
same run driver. A Stop: `stops` (who may, the stop stored) → the run driver of whichever
replica streams the run → `Finisher` with the `stop` trigger. Every transition that changes a
thread's Slack agent session status sets it (`slack/sessions.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from orchestrator.agent.agui.client import AgentClient
from orchestrator.agent.contract import AgentClients, AguiClient, ProtocolClient
from orchestrator.agent.targets import AgentResolver
from orchestrator.config.channels import ChannelPolicy
from orchestrator.config.settings import Settings
from orchestrator.core.ids import NAMESPACE, conversation_id
from orchestrator.core.machine import Fired, ThreadMachine
from orchestrator.engine import leases
from orchestrator.engine.actions import Actions
from orchestrator.engine.answer_actions import AnswerActions
from orchestrator.engine.approvals_desk import ApprovalsDesk
from orchestrator.engine.context import Context, Inbound, renderer_for
from orchestrator.engine.feedback_forwarder import FeedbackForwarder
from orchestrator.engine.finishing import Finisher
from orchestrator.engine.firing import Firing
from orchestrator.engine.messages import Messages
from orchestrator.engine.recovery import Recovery
from orchestrator.engine.run_driver import RunDriver
from orchestrator.engine.stops import Stops
from orchestrator.engine.tasks import Tasks
from orchestrator.slack.notifier import Notifier
from orchestrator.slack.publisher import LivePublisher, PublisherFactory
from orchestrator.slack.sessions import AgentSessions
from orchestrator.slack.streaming_mode import StreamingMode
from persistence.models import Interrupt, Thread
from persistence.store import Store
from renderers.view import ThreadView


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
        protocols: dict[str, ProtocolClient] | None = None,
    ) -> None:
        self.store = store
        self.machine = machine
        self.agents = agents
        self.settings = settings
        self._policies = policies
        self.notifier = Notifier(slack)
        self.streaming = StreamingMode(
            settings.slack_streaming, slack, interval=settings.update_interval
        )
        self.sessions = AgentSessions(
            slack, settings.slack_sessions, interval=settings.update_interval
        )
        self.owner = leases.new_owner()  # names this process in the leases of its runs
        self.tasks = Tasks()
        self.firing = Firing(store, machine, settings, self.owner, self.sessions)
        self.firing.spawn = self.tasks.spawn
        render = renderer_for(machine)
        self.desk = ApprovalsDesk(
            store=store,
            firing=self.firing,
            notifier=self.notifier,
            render=render,
            policy=self.policy,
        )
        self.answers = AnswerActions(
            store=store,
            firing=self.firing,
            tasks=self.tasks,
            notifier=self.notifier,
            render=render,
            policy=self.policy,
            forwarder=FeedbackForwarder(store, settings.feedback_url),
        )
        finisher = Finisher(
            store=store,
            firing=self.firing,
            desk=self.desk,
            answers=self.answers,
            render=render,
            policy=self.policy,
        )
        clients = AgentClients({"ag-ui": AguiClient(agent_client), **(protocols or {})})
        self.runs = RunDriver(
            store=store,
            firing=self.firing,
            tasks=self.tasks,
            desk=self.desk,
            finisher=finisher,
            notifier=self.notifier,
            clients=clients,
            agents=agents,
            publishers=publishers or self._mode_publisher,
            render=render,
            settings=settings,
            policy=self.policy,
            sessions=self.sessions,
        )
        self.recovery = Recovery(
            store=store,
            firing=self.firing,
            desk=self.desk,
            notifier=self.notifier,
            render=render,
            settings=settings,
            policy=self.policy,
            owner=self.owner,
            live=self.runs.live,
            follow=self.runs.follow_task,
            later=self.tasks.background,
            restart=self._restart,
            redraw_answer=self.answers.refresh,
            closing=lambda: self.tasks.closing,
        )
        self.messages = Messages(
            store=store,
            machine=machine,
            firing=self.firing,
            notifier=self.notifier,
            settings=settings,
            policy=self.policy,
            conversation_id=self.conversation_id,
        )
        self.stops = Stops(
            store=store,
            firing=self.firing,
            runs=self.runs,
            desk=self.desk,
            notifier=self.notifier,
            policy=self.policy,
            conversation_id=self.conversation_id,
        )
        self.firing.actions = Actions(
            firing=self.firing,
            tasks=self.tasks,
            runs=self.runs,
            desk=self.desk,
            notifier=self.notifier,
        ).table()

    # --- who and where -----------------------------------------------------------------

    def conversation_id(self, team_id: str, channel_id: str, thread_ts: str) -> str:
        ns = self.settings.conversation_namespace
        namespace = uuid.UUID(ns) if ns else NAMESPACE
        key = self.settings.conversation_key
        return conversation_id(team_id, channel_id, thread_ts, key, namespace)

    def policy(self, channel_id: str) -> ChannelPolicy:
        """Approvers and deadlines of a channel (its configuration, else the settings)."""
        if self._policies is not None:
            return self._policies(channel_id)
        return ChannelPolicy(
            agent=self.agents(channel_id),
            approval_timeout=self.settings.approval_timeout,
            approval_reminder=self.settings.approval_reminder,
        )

    async def known_thread(self, team_id: str, channel_id: str, thread_ts: str) -> bool:
        """Whether the bot is part of this Slack thread."""
        thread = await self.store.get_thread(self.conversation_id(team_id, channel_id, thread_ts))
        return thread is not None

    # --- what people do ----------------------------------------------------------------

    async def handle_message(self, inbound: Inbound) -> bool:
        return await self.messages.handle(inbound)

    async def retry(self, thread_id: str, actor: str, channel: str | None = None) -> str | None:
        return await self.messages.retry(thread_id, actor, channel)

    async def answer(self, **click: Any) -> str | None:
        """A click on Approve or Reject (see `ApprovalsDesk.answer`)."""
        return await self.desk.answer(**click)

    async def fire(
        self, thread_id: str, trigger: str, context: Context | None = None, **kw: Any
    ) -> Fired | None:
        return await self.firing.fire(thread_id, trigger, context, **kw)

    # --- time and restarts ---------------------------------------------------------------

    async def recover(self) -> int:
        return await self.recovery.recover()

    async def reconcile_runs(self, now: float | None = None) -> None:
        await self.recovery.reconcile_runs(now)

    async def expire(self, row: Interrupt) -> None:
        await self.desk.expire(row)

    async def remind(self, row: Interrupt) -> None:
        await self.desk.remind(row)

    async def tick(self, now: float) -> None:
        """What is due: leases renewed, lost runs ended, stops stored elsewhere for runs here,
        reminders, expiries, feedback sends."""
        await self.recovery.tick(now)
        await self.stops.notice()
        for row in await self.store.due_reminders(now):
            await self.desk.remind(row)
        for row in await self.store.due_interrupts(now):
            await self.desk.expire(row)
        await self.answers.forwarder.send_due(now)

    async def prune_deliveries(self, before: float) -> int:
        """Delivery claims older than `before` are forgotten (Slack stopped retrying them)."""
        return await self.store.prune_inbound(before)

    # --- running and stopping ------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while a run or an action started here is still going."""
        return self.tasks.busy

    async def drain(self) -> None:
        """Wait until every run and action started by this engine has finished."""
        await self.tasks.drain()

    async def finish_runs(self, grace: float) -> None:
        """The service is stopping: runs still going get `grace` seconds to finish (or until
        `stop_waiting`), and no queued message starts a new one here (the next process runs
        it)."""
        await self.tasks.let_finish(grace, len(self.runs.live))

    def stop_waiting(self) -> None:
        """Cut the runs `finish_runs` is waiting for now."""
        self.tasks.cut()

    async def close(self) -> None:
        """Stop. The runs cut here end visibly at once ("Interrupted by a restart", Retry), as
        another process would end them."""
        cut = list(self.runs.live)
        leases.retire(self.owner)  # what this process still streams is lost from now on
        await self.tasks.cancel()
        await self.recovery.end_cut_runs(cut)
        await self.sessions.close()  # the session statuses of those ends go out first
        await self.answers.close()

    def _restart(self, thread: Thread) -> None:
        self.tasks.spawn(self.runs.run(thread))

    def _mode_publisher(self, thread: Thread, view: ThreadView) -> LivePublisher:
        return self.streaming.publisher(
            thread.channel_id,
            thread.thread_ts,
            view,
            requester=thread.requester,
            team_id=thread.team_id,
            final_only=thread.requester_is_bot,
        )
