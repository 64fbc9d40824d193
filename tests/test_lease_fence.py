"""The lease fence: a process whose run lease another process took writes nothing more for that
run, neither in the store nor in Slack, and the new owner leaves every message finished.

Two replicas in this process on the real PostgreSQL of this machine (skipped without it), and
the fenced writes of the store on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.engine.live_runs import LiveRun
from orchestrator.sandbox.agent_requests import is_resume
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator, render_text
from persistence.store import LeaseLost, Store, fence_op, lease_op
from tests.databases import fresh_database, fresh_postgres
from tests.harness import ALICE, Harness, until
from tests.test_e2e_approvals import approve
from tests.test_replicas_postgres import both_running, streaming

CHANNEL = "C0GENERAL"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_postgres() as url:
        yield url


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_write_fenced_by_a_lease_another_process_took_is_refused_and_rolled_back(
    kind: str, tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as url:
        store = await Store.open(url)
        try:
            thread = store.new_thread(
                "T1", team_id="T", channel_id="C", thread_ts="1.0", state="idle"
            )
            expires = time.time() + 30
            await store.transition(
                thread,
                to_state="streaming",
                trigger="message_received",
                also=[lease_op("T1", "a", expires)],
            )
            await store.update_thread("T1", also=[fence_op("T1", "a", expires)], live_ts=["1.1"])
            # b found a's lease lapsed at `expires - 1`, but a renewed it since: b leaves it
            assert not await store.take_lease("T1", "a", "b", expires, seen_expires=expires - 1)
            assert await store.take_lease("T1", "a", "b", expires, seen_expires=expires)
            with pytest.raises(LeaseLost):
                await store.update_thread(
                    "T1", also=[fence_op("T1", "a", expires)], run_sent="run-of-a"
                )
            with pytest.raises(LeaseLost):
                await store.transition(
                    thread,
                    to_state="done",
                    trigger="run_finished",
                    also=[fence_op("T1", "a", release=True)],
                )
            row = await store.get_thread("T1")
            assert row is not None
            assert (row.state, row.run_sent, row.live_ts) == ("streaming", None, ["1.1"])
            assert [h.trigger for h in await store.history("T1")] == ["message_received"]
            assert await store.renew_leases("a", ["T1"], time.time() + 30) == ["T1"]  # lost
            assert await store.renew_leases("b", ["T1"], time.time() + 30) == []
        finally:
            await store.close()


def _shown(slack: SlackEmulator, thread_ts: str) -> str:
    return "\n".join(render_text(m) for m in slack.thread(CHANNEL, thread_ts) if m.bot_id)


def _updates_of(slack: SlackEmulator, ts: set[str], after: float) -> int:
    return sum(
        1 for c in slack.calls_to("chat.update") if c.at > after and c.params.get("ts") in ts
    )


async def _taken_over(
    slack: SlackEmulator, agent: ScriptedAgent, first: Harness, second: Harness, thread_ts: str
) -> tuple[set[str], float]:
    """The second replica ends the first one's run; the live ts of that run, and when."""
    row = await second.settle(thread_ts, ("errored",), wait=20)
    taken_at = time.monotonic()
    assert row.error_kind == "restart"
    return {*(row.message_ts or [])}, taken_at


async def test_a_replica_whose_lease_was_taken_mid_stream_writes_nothing_more(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path, pg_url: str
) -> None:
    """The first replica stops renewing (its event loop lags): the second takes the run over;
    the first one's stream goes on, but neither its Slack updates nor its end are written."""
    agent.token_delay = 0.25
    async with both_running(slack, agent, tmp_path, pg_url, "answer") as (first, second):
        thread_ts = await first.mention("a long answer please")
        await streaming(first, thread_ts)
        await first.rt.scheduler.stop()  # no more renewals from the first replica
        live_ts, taken_at = await _taken_over(slack, agent, first, second, thread_ts)
        await until(lambda: not first.rt.engine.runs.live, wait=60)
        await asyncio.sleep(0.5)  # anything still on its way lands
        history = await second.history(thread_ts)
    assert [h.trigger for h in history].count("stream_lost") == 1
    assert "run_finished" not in [h.trigger for h in history]
    assert _updates_of(slack, live_ts, taken_at) == 0
    shown = _shown(slack, thread_ts)
    assert shown.count("The bot restarted while this answer was being written") == 1
    assert "▌" not in shown and "Thinking" not in shown
    assert len(agent.requests) == 1


async def test_a_replica_that_finds_its_lease_gone_at_renewal_stops_its_run_at_once(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path, pg_url: str
) -> None:
    """The second replica's clock says the first one's lease lapsed; the first replica's next
    renewal finds its lease gone and closes the stream, without telling the agent to cancel."""
    agent.token_delay = 0.25
    async with both_running(slack, agent, tmp_path, pg_url, "answer") as (first, second):
        thread_ts = await first.mention("a long answer please")
        await streaming(first, thread_ts)
        for _ in range(100):  # until its takeover is not beaten by one of the first's renewals
            await second.rt.engine.reconcile_runs(time.time() + 60)
            row = await second.row(thread_ts)
            if row is not None and row.state == "errored":
                break
        await second.settle(thread_ts, ("errored",), wait=1)
        await until(lambda: not first.rt.engine.runs.live, wait=5)  # long before the answer ends
        # What the first replica drew after the takeover (its clock said it held the lease) is
        # finished again by the new owner once that lease is over by any clock (2 s here).
        await asyncio.sleep(3)
        history = await second.history(thread_ts)
    assert agent.closed_by_client()
    assert "run_finished" not in [h.trigger for h in history]
    shown = _shown(slack, thread_ts)
    assert shown.count("The bot restarted while this answer was being written") == 1
    assert "▌" not in shown and "Thinking" not in shown
    assert len(agent.requests) == 1


async def test_a_renewal_that_saw_a_run_end_leaves_the_threads_next_run_alone(
    harness: Harness,
) -> None:
    """A renewal sent while a thread's run gave its lease up with its ending finds no lease for
    that thread; the run that took its place meanwhile (the next queued message) goes on."""
    await harness.start("answer")
    thread_ts = await harness.mention("hello")
    row = await harness.settle(thread_ts, ("done",))
    runs, recovery = harness.rt.engine.runs, harness.rt.engine.recovery
    ended = runs.live[row.id] = LiveRun(row.version, ending=True)  # its lease is gone
    lock = sqlite3.connect(harness.db_path, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")  # the renewal waits for the database
        renewal = asyncio.create_task(recovery.renew(time.time()))
        await asyncio.sleep(0.3)
        following = runs.live[row.id] = LiveRun(row.version + 1)
        lock.execute("COMMIT")
        await renewal
    finally:
        lock.close()
        runs.live.pop(row.id, None)
    assert not ended.lost
    assert not following.lost and not following.stop.is_set()


async def test_a_resumed_run_taken_over_sends_its_answers_again_never_the_question(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path, pg_url: str
) -> None:
    """The agent took the approval (its first event is slow to come) when the second replica
    finds the first one's lease lapsed: the second sends the same answers again, which the
    agent refuses as already resolved; the first replica, its lease gone, stores nothing when
    the agent's events come. The person's question is never sent as a new run."""
    agent.resume_delay = 3
    async with both_running(slack, agent, tmp_path, pg_url, "interrupt-outcome") as (
        first,
        second,
    ):
        thread_ts = await first.mention("please scale web")
        await first.settle(thread_ts, ("awaiting_approval",))
        assert (await approve(first, thread_ts)).status_code == 200
        await until(lambda: len(agent.requests) == 2)  # the resume reached the agent
        for _ in range(100):  # until its takeover is not beaten by one of the first's renewals
            await second.rt.engine.reconcile_runs(time.time() + 60)
            if "resume_failed" in [h.trigger for h in await second.history(thread_ts)]:
                break
        await until(lambda: len(agent.requests) == 3, wait=15)
        await until(lambda: not first.rt.engine.runs.live, wait=15)
        row = await second.settle(thread_ts, ("done", "errored"), wait=15)
        rows = await second.rt.store.interrupts_of(row.id)
        history = [h.trigger for h in await second.history(thread_ts)]
    assert [is_resume(r.body) for r in agent.requests] == [False, True, True]
    assert agent.duplicate_resumes == 1
    assert history[-3:] == ["resume_failed", "approval_submitted", "stream_lost"]
    assert row.state == "errored" and [r.status for r in rows] == ["approved"]
    shown = _shown(slack, thread_ts)
    assert f"Approved by <@{ALICE}>" in shown and "resuming" not in shown
    assert "the agent has the answer, but its reply was lost" in shown and "[Retry]" in shown
    assert "already resolved" not in shown
