"""Many writers at once on SQLite: the process takes turns at the file's one write lock, so no
write fails with `database is locked`, and every mention of a busy minute is answered."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from persistence.store import Store
from tests.harness import CHANNEL, SECRET, Harness

NOT_TAKEN = "I could not take this message"


async def test_concurrent_writes_take_turns_instead_of_failing(tmp_path: Path) -> None:
    # a busy timeout far shorter than a queue of 200 writers: only taking turns in the process
    # (not waiting in SQLite's busy handler) lets every one of them through
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}", busy_timeout=0.01)
    try:

        async def converse(n: int) -> None:
            thread = store.new_thread(
                f"T:C:{n}", team_id="T", channel_id="C", thread_ts=str(n), state="idle"
            )
            thread = await store.transition(thread, to_state="thinking", trigger="user_message")
            await store.update_thread(thread.id, live_ts=[str(n)], run_sent=f"run-{n}")
            thread = await store.transition(thread, to_state="streaming", trigger="run_started")
            await store.transition(thread, to_state="done", trigger="run_finished")

        await asyncio.gather(*(converse(n) for n in range(200)))
        threads = await store.list_threads(limit=1000)
        assert len(threads) == 200
        assert {(t.state, t.version) for t in threads} == {("done", 3)}
        assert {t.run_sent for t in threads} == {f"run-{n}" for n in range(200)}
    finally:
        await store.close()


async def test_a_hundred_mentions_at_once_are_all_answered(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # the busy timeout only covers other processes now: the service's own writers never wait
    # in SQLite's busy handler, so even a short one fails nothing
    await harness.start("answer", ORCH_DATABASE_BUSY_TIMEOUT=0.1, ORCH_UPDATE_INTERVAL=1.0)
    events = [
        harness.slack.post_user_message(CHANNEL, f"U0USER{n:03}", f"question {n}", mention=True)
        for n in range(100)
    ]
    with caplog.at_level(logging.WARNING):
        deliveries = await asyncio.gather(
            *(harness.slack.deliver_event(harness.events_url, SECRET, e, wait=300) for e in events)
        )
        assert [d.status_code for d in deliveries] == [200] * 100
        # each delivery was answered once its message was stored (or the sender told)
        assert all([await harness.row(e["ts"]) for e in events])
        rows = [await harness.settle(e["ts"], ("done", "errored"), wait=300) for e in events]
        await harness.rt.engine.drain()

    assert [row.state for row in rows] == ["done"] * 100
    assert sorted(r.body["messages"][-1]["content"] for r in harness.agent.requests) == sorted(
        f"question {n}" for n in range(100)
    )
    for e in events:
        text = harness.thread_text(e["ts"])
        assert "Hello from test-agent!" in text
        assert NOT_TAKEN not in text
    assert "database is locked" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
