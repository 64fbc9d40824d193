"""Start-up recovery reads in a fixed number of statements whatever the number of threads waiting
on a form, and a click arriving while it runs is answered once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.startup import TABLES, rows_of
from orchestrator.engine import recovery_plan as plan
from orchestrator.sandbox.loopback import LoopbackServer
from orchestrator.sandbox.slack_emulator import render_text
from orchestrator.service.runtime import Runtime
from persistence.models import Interrupt, RunLease, Thread
from persistence.store import LeftClaim, Store, StreamingRun
from tests.harness import ALICE, CHANNEL, Harness
from tests.test_e2e_approvals import answers, approve, pause_for_approval


async def fill(url: str, waiting: int, broken: int, agent_url: str) -> None:
    """`waiting` threads waiting on a posted form, `broken` ones whose form was stored but
    never posted (its process died in between), and 20 finished ones, as the service writes
    them."""
    now = time.time() - 3600
    threads = [
        rows_of(i, i < waiting + broken, agent_url, now, CHANNEL)
        for i in range(waiting + broken + 20)
    ]
    for rows in threads[waiting : waiting + broken]:
        rows["interrupts"][0].update(form_ts=None, form_intent=None, form_intent_at=None)
    store = await Store.open(url)
    try:
        async with store.engine.begin() as conn:
            for name, model in TABLES.items():
                batch = [row for rows in threads for row in rows[name]]
                if batch:
                    await conn.execute(model.__table__.insert(), batch)
    finally:
        await store.close()


async def statements_of_recovery(
    harness: Harness, tmp_path: Path, waiting: int, broken: int
) -> list[str]:
    """The SQL statements start-up recovery runs on such a store."""
    harness.db_path = tmp_path / f"waiting-{waiting}-{broken}.db"
    settings = harness.settings("interrupt-outcome", ORCH_SCHEDULER_INTERVAL=3600)
    await fill(settings.database_url, waiting, broken, harness.agent.url("interrupt-outcome"))
    runtime = Runtime(settings)
    await runtime.start(recover=False)
    await runtime.scheduler.stop()  # its ticks would count too
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(runtime.store.engine.sync_engine, "before_cursor_execute", count)
    try:
        await runtime.recover()
    finally:
        event.remove(runtime.store.engine.sync_engine, "before_cursor_execute", count)
        await runtime.stop()
    store = await Store.open(settings.database_url)
    try:
        assert await store.forms_to_post() == []  # the forms never posted were posted
    finally:
        await store.close()
    return seen


async def test_recovery_statements_do_not_grow_with_the_threads_waiting(
    harness: Harness, tmp_path: Path
) -> None:
    few = await statements_of_recovery(harness, tmp_path, 10, 3)
    many = await statements_of_recovery(harness, tmp_path, 200, 3)
    assert len(few) == len(many)
    for i in (10, 200):  # the first form never posted of each store: posted once
        posted = harness.slack.thread(CHANNEL, f"{1700000000 + i}.000001")
        assert [render_text(m).count("Approve scaling") for m in posted] == [1]


async def test_forms_never_posted_are_read_at_once_and_written_once_each(
    harness: Harness, tmp_path: Path
) -> None:
    few = await statements_of_recovery(harness, tmp_path, 0, 5)
    many = await statements_of_recovery(harness, tmp_path, 0, 25)
    reads = [[s for s in run if s.lstrip().upper().startswith("SELECT")] for run in (few, many)]
    assert len(reads[0]) == len(reads[1])
    # each form: its posting claimed (one process posts it), then its message ts stored
    assert len(many) - len(few) == 2 * (25 - 5)


async def test_a_click_during_recovery_resumes_the_agent_once(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-outcome")
    waiting = await harness.row(thread_ts)
    assert waiting is not None
    settings = harness.settings("interrupt-outcome")
    await harness.stop()  # the process is gone; the form waits in Slack

    runtime = Runtime(settings)  # the next process: its port opens before recovery runs
    await runtime.start(recover=False)
    harness.runtime = runtime
    harness.server = LoopbackServer(runtime.asgi())
    harness.events_url = f"{await harness.server.start()}/slack/events"
    click = approve(harness, thread_ts, values=answers("8", "during recovery"))
    response, _ = await asyncio.gather(click, runtime.recover())
    assert response.status_code == 200
    done = await harness.settle(thread_ts, ("done",), min_version=waiting.version + 1)

    assert done.state == "done" and harness.agent.resumes == 1
    assert harness.agent.requests[-1].body["resume"][0]["payload"] == {
        "replicas": 8,
        "comment": "during recovery",
    }
    (row,) = await harness.interrupts(thread_ts)
    assert (row.status, row.answered_by) == ("approved", ALICE)
    form = next(m for m in harness.thread_messages(thread_ts) if m.ts == row.form_ts)
    assert f"Approved by <@{ALICE}>" in render_text(form)


def a_thread(thread_id: str, state: str, live_ts: list[str] | None = None) -> Thread:
    return Thread(id=thread_id, state=state, live_ts=live_ts or [])


def test_recovery_plan_sends_one_claim_per_thread_and_none_while_forms_wait() -> None:
    waiting, other = a_thread("t1", "awaiting_approval"), a_thread("t2", "awaiting_approval")
    claims = [
        LeftClaim(Interrupt(id="a", thread_id="t1"), waiting, 0),
        LeftClaim(Interrupt(id="b", thread_id="t1"), waiting, 0),
        LeftClaim(Interrupt(id="c", thread_id="t2"), other, 1),  # another form still waits
    ]
    assert [c.row.id for c in plan.claims_to_send(claims)] == ["a"]


def test_recovery_plan_groups_forms_and_runs_queues_of_closed_runs_only() -> None:
    one, two = a_thread("t1", "awaiting_approval"), a_thread("t2", "awaiting_approval")
    rows = [(Interrupt(id="a"), one), (Interrupt(id="b"), two), (Interrupt(id="c"), one)]
    grouped = plan.forms_by_thread(rows)
    assert [(t.id, [r.id for r in forms]) for t, forms in grouped] == [
        ("t1", ["a", "c"]),
        ("t2", ["b"]),
    ]
    threads = [a_thread("d", "done"), a_thread("l", "done", ["1.2"]), a_thread("s", "streaming")]
    assert [t.id for t in plan.queues_to_run(threads)] == ["d"]


def test_recovery_plan_leaves_runs_streaming_here_and_live_leases_alone() -> None:
    now = time.time()
    gone = StreamingRun(a_thread("gone", "streaming"), None, None)
    here = StreamingRun(a_thread("here", "streaming"), None, None)
    leased = StreamingRun(
        a_thread("leased", "streaming"),
        RunLease(thread_id="leased", owner="other-host/b/n/1/t", expires_at=now + 60),
        None,
    )
    assert plan.lost_runs([gone, here, leased], {"here"}, now) == [gone]
