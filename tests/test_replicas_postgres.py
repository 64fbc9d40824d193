"""Several replicas on the real PostgreSQL of this machine: one schema, one answer, no lost runs.

Each test gets a fresh database (created and dropped here). Skipped when no PostgreSQL answers
on 127.0.0.1:5432, with the reason shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import func, select

from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator, render_text
from persistence.models import Meta
from persistence.store import Store
from renderers.common import ACTION_APPROVE
from tests.harness import SECRET, Harness, actions_of, find_with_action, until
from tests.service_process import ServiceProcess
from tests.test_e2e_approvals import answers

ADMIN_DSN = os.environ.get("ORCH_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    name = f"orch_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL at {ADMIN_DSN}: {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_replicas_starting_together_on_an_empty_database_make_one_schema(
    pg_url: str,
) -> None:
    stores = await asyncio.gather(*(Store.open(pg_url) for _ in range(4)))
    try:
        async with stores[0].engine.connect() as conn:
            versions = await conn.scalar(
                select(func.count()).select_from(Meta).where(Meta.key == "schema_version")
            )
        assert versions == 1
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def streaming(replica: Harness, thread_ts: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        row = await replica.row(thread_ts)
        if row is not None and row.state == "streaming" and row.run_id:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the run never started")


async def replicas(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path, pg_url: str, scenario: str
) -> tuple[Harness, Harness]:
    first = Harness(slack, agent, tmp_path / "unused-a.db")
    second = Harness(slack, agent, tmp_path / "unused-b.db")
    await first.start(scenario, ORCH_DATABASE_URL=pg_url, ORCH_RUN_LEASE=2)
    return first, second


@contextlib.asynccontextmanager
async def both_running(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path, pg_url: str, scenario: str
) -> AsyncIterator[tuple[Harness, Harness]]:
    """Two replicas on the same PostgreSQL database, both serving, stopped at the end."""
    first, second = await replicas(slack, agent, tmp_path, pg_url, scenario)
    try:
        await second.start(scenario, ORCH_DATABASE_URL=pg_url, ORCH_RUN_LEASE=2)
        yield first, second
    finally:
        await second.stop()
        await first.stop()


async def test_a_starting_replica_leaves_another_replicas_live_run_alone(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path, pg_url: str
) -> None:
    agent.token_delay = 0.1  # a run of a few seconds
    first, second = await replicas(slack, agent, tmp_path, pg_url, "answer")
    try:
        thread_ts = await first.mention("a long answer please")
        await streaming(first, thread_ts)
        await second.start("answer", ORCH_DATABASE_URL=pg_url, ORCH_RUN_LEASE=2)
        row = await first.settle(thread_ts, ("done", "errored"), wait=30)
    finally:
        await second.stop()
        await first.stop()
    assert row.state == "done"
    assert agent.requests and len(agent.requests) == 1


async def test_a_replica_ends_the_run_of_one_that_was_killed(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path, pg_url: str
) -> None:
    agent.token_delay = 0.2
    survivor = Harness(slack, agent, tmp_path / "unused.db")
    doomed = ServiceProcess(
        slack, agent, tmp_path / "doomed.db", "answer", ORCH_DATABASE_URL=pg_url, ORCH_RUN_LEASE="2"
    )
    try:
        await survivor.start("answer", ORCH_DATABASE_URL=pg_url, ORCH_RUN_LEASE=2)
        await doomed.start()
        event = slack.post_user_message(
            "C0GENERAL", "U0ALICE", "a long answer please", mention=True
        )
        await slack.deliver_event(doomed.events_url, SECRET, event)
        thread_ts = event["ts"]
        await streaming(survivor, thread_ts)
        doomed.kill()  # the replica's process dies mid-answer
        row = await survivor.settle(thread_ts, ("errored",), wait=20)
        history = await survivor.history(thread_ts)
    finally:
        doomed.stop()
        await survivor.stop()
    assert row.error_kind == "restart"
    assert (history[-1].trigger, history[-1].actor) == ("stream_lost", "recovery")
    shown = "\n".join(render_text(m) for m in slack.thread("C0GENERAL", thread_ts) if m.bot_id)
    assert "Interrupted by a restart" in shown
    assert "▌" not in shown


async def test_a_form_posted_by_one_replica_is_answered_once_through_another(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path, pg_url: str
) -> None:
    async with both_running(slack, agent, tmp_path, pg_url, "interrupt-outcome") as (
        first,
        second,
    ):
        thread_ts = await first.mention("please scale web")
        waiting = await first.settle(thread_ts, ("awaiting_approval",))
        form = find_with_action(slack.thread("C0GENERAL", thread_ts), ACTION_APPROVE)
        value = actions_of(form)[ACTION_APPROVE]
        clicks = [
            replica.click(form, ACTION_APPROVE, value, values=answers("8", "either replica"))
            for replica in (first, second, first, second)
        ]
        await asyncio.gather(*clicks)
        done = await second.settle(thread_ts, ("done",), min_version=waiting.version + 1)
        await first.rt.engine.drain()
    assert done.state == "done" and agent.resumes == 1
    assert agent.requests[-1].body["resume"][0]["payload"] == {
        "replicas": 8,
        "comment": "either replica",
    }
    notes = [c.params.get("text", "") for c in slack.calls_to("response_url")]
    assert sum("already answered" in n for n in notes) == 3


async def test_two_replicas_taking_a_new_threads_first_messages_at_once_make_one_thread(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path, pg_url: str
) -> None:
    async with both_running(slack, agent, tmp_path, pg_url, "answer") as (first, second):
        thread_ts = slack.post_user_message("C0GENERAL", "U0BOB", "prod is slow")["ts"]
        asks = [
            slack.post_user_message("C0GENERAL", user, text, thread_ts, mention=True)
            for user, text in (("U0ALICE", "what do you think?"), ("U0BOB", "and the cache?"))
        ]
        await asyncio.gather(
            *(
                slack.deliver_event(replica.events_url, SECRET, ask)
                for replica, ask in zip((first, second), asks, strict=True)
            )
        )
        await until(lambda: len(agent.requests) == 2, wait=20)
        await first.rt.engine.drain()
        await second.rt.engine.drain()
        row = await first.settle(thread_ts, ("done",))
        history = await first.history(thread_ts)
    assert row.state == "done"
    assert sum(h.from_state == "idle" for h in history) == 1
    asked = [r.body["messages"][-1]["content"] for r in agent.requests]
    assert sorted(asked) == ["and the cache?", "what do you think?"]
    last = [m["content"] for m in agent.requests[-1].body["messages"]]
    assert last.count("prod is slow") == 1


async def test_a_delivery_and_its_retry_on_two_replicas_are_answered_once(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path, pg_url: str
) -> None:
    async with both_running(slack, agent, tmp_path, pg_url, "answer") as (first, second):
        mention = slack.post_user_message("C0GENERAL", "U0ALICE", "once, please", mention=True)
        await asyncio.gather(
            slack.deliver_event(first.events_url, SECRET, mention, event_id="EvOnce"),
            slack.deliver_event(second.events_url, SECRET, mention, event_id="EvOnce", retry_num=1),
        )
        await first.rt.engine.drain()
        await second.rt.engine.drain()
        row = await first.settle(mention["ts"], ("done",))
        history = await first.history(mention["ts"])
    assert row.state == "done" and len(agent.requests) == 1
    assert [h.trigger for h in history].count("user_message") == 1
    assert len(first.thread_messages(mention["ts"])) == 1
