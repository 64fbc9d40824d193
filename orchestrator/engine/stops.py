"""Stopping a run: Slack's Stop (`agent_session_stopped`) and the Stop button of a live answer.

A stop is stored before anything else (a `stop_requested` entry in the thread's history, with
the thread's version), so it holds whichever replica streams the run: the replica that takes the
request stops a run streaming in its own process at once, and every replica's scheduler tick
reads the stops stored for the runs it streams (`notice`). The run driver then closes the
agent's stream, tells the agent to cancel where its protocol can, and the `stop` trigger ends
the run: the partial answer stays, marked "Stopped by @x", and queued messages run next. Asking
twice, on two replicas, or once by event and once by button stops the run once.

Who may stop: the person who asked, and whoever the channel's approvers rule names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from orchestrator.config.channels import ChannelPolicy
from orchestrator.core import sentences
from orchestrator.engine.approvals_desk import ApprovalsDesk
from orchestrator.engine.firing import Firing
from orchestrator.engine.run_driver import RunDriver
from orchestrator.slack.notifier import Notifier
from persistence.models import Thread
from persistence.store import Store

log = logging.getLogger("orchestrator.engine")

STOP_REQUESTED = "stop_requested"  # the history entry a stop is stored as
# How far before the oldest live run's start the tick looks for stops (replicas' clocks differ;
# the thread's version says which run a stop is about).
LOOK_BACK = 300.0


class Stops:
    def __init__(
        self,
        *,
        store: Store,
        firing: Firing,
        runs: RunDriver,
        desk: ApprovalsDesk,
        notifier: Notifier,
        policy: Callable[[str], ChannelPolicy],
        conversation_id: Callable[[str, str, str], str],
    ) -> None:
        self.store = store
        self.firing = firing
        self.runs = runs
        self.desk = desk
        self.notifier = notifier
        self.policy = policy
        self.conversation_id = conversation_id

    async def click(self, *, thread_id: str, user: str, channel: str) -> str | None:
        """The Stop button of a live answer. Returns an ephemeral note for the clicker, if any."""
        thread = await self.store.get_thread(thread_id) if thread_id else None
        if thread is None:
            return sentences.UNKNOWN_CONVERSATION
        if channel and thread.channel_id != channel:
            log.warning("click on a button of another channel", extra={"conversation": thread.id})
            return sentences.NOT_HERE
        return await self._request(thread, user, via="button")

    async def session_stopped(
        self, *, team_id: str, channel: str, thread_ts: str, user: str
    ) -> bool:
        """Slack's Stop of the thread's agent session. False when the thread is not the bot's."""
        thread = await self.store.get_thread(self.conversation_id(team_id, channel, thread_ts))
        if thread is None:
            return False
        note = await self._request(thread, user, via="slack")
        if note:
            await self.notifier.whisper(channel, user, note, thread_ts=thread_ts, about=thread.id)
        return True

    async def notice(self) -> None:
        """The scheduler's tick: stops stored (by any replica) for runs streaming here."""
        live = dict(self.runs.live)
        if not live:
            return
        since = min(run.started_at for run in live.values()) - LOOK_BACK
        for row in await self.store.stop_requests(list(live), since):
            version = (row.detail or {}).get("version")
            if not isinstance(version, int):
                continue
            if self.runs.stop(row.thread_id, row.actor or "someone", version):
                log.info("stop noticed", extra={"conversation": row.thread_id, "by": row.actor})

    async def allowed(self, thread: Thread) -> set[str]:
        """Who may stop the thread's run: who asked, and the channel's approvers."""
        people = await self.desk.people(self.policy(thread.channel_id).approvers, thread.requester)
        if thread.requester:
            people.add(thread.requester)
        return people

    async def _request(self, thread: Thread, user: str, *, via: str) -> str | None:
        if thread.state != "streaming":
            # Nothing runs; Slack may still show the session as working: set it right.
            self.firing.show_session(thread)
            return sentences.NOTHING_TO_STOP
        allowed = await self.allowed(thread)
        if user not in allowed:
            await self.store.record(thread, "stop_refused", user, {"via": via})
            return sentences.only_stop(allowed)
        detail = {"version": thread.version, "via": via}
        await self.store.record(thread, STOP_REQUESTED, user, detail)
        if self.runs.stop(thread.id, user, thread.version):
            log.info("stop requested", extra={"conversation": thread.id, "by": user, "via": via})
        return None
