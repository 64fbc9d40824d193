"""Many writers at once on SQLite: the process takes turns at the file's one write lock, so no
write fails with `database is locked`, and every mention of a busy minute is answered."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from persistence.errors import StaleThread
from persistence.store import Store
from tests.databases import fresh_database
from tests.harness import CHANNEL, SECRET, Harness

NOT_TAKEN = "I could not take this message"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_row_read_by_key_is_the_stored_one_and_a_stale_copy_changes_nothing(
    kind: str, tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as url:
        store = await Store.open(url)
        try:
            assert await store.get_thread("T:C:none") is None
            assert await store.agent_task("T:C:none") is None
            new = store.new_thread(
                "T:C:1", team_id="T", channel_id="C", thread_ts="1", state="idle"
            )
            stored = await store.transition(
                new, to_state="streaming", trigger="user_message", live_ts=["1.5"], run_id="r1"
            )
            await store.keep_agent("T:C:1", "research")
            read = await store.get_thread("T:C:1")
            assert read is not None
            (loaded,) = await store.list_threads()  # the ORM's own loading of the row
            columns = [c.key for c in read.__table__.columns]
            assert [getattr(read, c) for c in columns] == [getattr(loaded, c) for c in columns]
            assert (read.live_ts, read.message_ts, read.last_input) == (["1.5"], [], None)
            task = await store.agent_task("T:C:1")
            assert task is not None and (task.agent, task.task_id) == ("research", None)
            # the row read changes the thread; a copy read before that change is refused
            done = await store.transition(read, to_state="done", trigger="run_finished")
            assert done.version == 2
            with pytest.raises(StaleThread):
                await store.transition(stored, to_state="errored", trigger="run_error")
            after = await store.get_thread("T:C:1")
            assert after is not None and (after.state, after.version) == ("done", 2)
        finally:
            await store.close()


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


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_thread_starting_mention_sent_again_later_is_answered_once(
    kind: str, harness: Harness, tmp_path: Path
) -> None:
    """A message that starts a thread is stored without reading for its row first: sent again
    once its thread exists (a Slack retry after the acknowledgement was lost), the insert
    finds the row, the transition reads it, and the claim says it was taken."""
    async with fresh_database(kind, tmp_path) as url:
        await harness.start("answer", ORCH_DATABASE_URL=url)
        event = harness.slack.post_user_message(CHANNEL, "U0ALICE", "just once", mention=True)
        first = await harness.slack.deliver_event(harness.events_url, SECRET, event, event_id="E1")
        assert first.status_code == 200
        await harness.settle(event["ts"], ("done",))
        again = await harness.slack.deliver_event(
            harness.events_url, SECRET, event, event_id="E1", retry_num=1
        )
        assert again.status_code == 200
        await asyncio.sleep(0.3)
        row = await harness.row(event["ts"])
        assert row is not None and row.state == "done"
        assert [r.body["messages"][-1]["content"] for r in harness.agent.requests] == ["just once"]
        assert len(harness.thread_messages(event["ts"])) == 1
        await harness.stop()
