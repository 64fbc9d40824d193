"""Faults of the database: a missing file, another release's schema, a read-only file, a lock held
by another connection, a full disk. Start-up refuses what it cannot use with a message that says
what to do; at run time a message the store could not take is answered, never silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from orchestrator.config.settings import Settings
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator
from orchestrator.service.runtime import Runtime
from persistence.schema_upgrade import head_revision
from persistence.store import Store, StoreError
from renderers.common import ACTION_THUMBS_UP
from tests.harness import ALICE, CHANNEL, SECRET, Harness, actions_of

NOT_TAKEN = "I could not take this message"


async def wait_for(condition: Callable[[], bool], wait: float = 10) -> None:
    deadline = time.monotonic() + wait
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def replies(harness: Harness, thread_ts: str) -> list[str]:
    return [m.text for m in harness.thread_messages(thread_ts)]


@asynccontextmanager
async def write_lock(db_path: Path) -> AsyncIterator[sqlite3.Connection]:
    """Another connection holding the write lock on the file, as a second process would. It
    waits for the lock off the event loop: a write of the service in flight (the scheduler's)
    needs the loop to commit."""
    other = sqlite3.connect(db_path, isolation_level=None, timeout=60, check_same_thread=False)
    await asyncio.to_thread(other.execute, "BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.execute("ROLLBACK")
        other.close()


async def make_database(path: Path, **meta: str | None) -> None:
    """A database of this release; with `meta`, as a release before the migrations left it
    (no migration history), with those values in orchestrator_meta."""
    store = await Store.open(f"sqlite+aiosqlite:///{path}")
    await store.close()
    with sqlite3.connect(path) as db:
        if meta:
            db.execute("DROP TABLE alembic_version")
        for key, value in meta.items():
            if value is None:
                db.execute("DELETE FROM orchestrator_meta WHERE key = ?", (key,))
            else:
                db.execute("UPDATE orchestrator_meta SET value = ? WHERE key = ?", (value, key))


# --- start-up ---------------------------------------------------------------------------


async def test_missing_file_and_directories_are_created(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    db_path = tmp_path / "not" / "yet" / "there.db"
    harness = Harness(slack, agent, db_path)
    try:
        await harness.start("answer")
        thread_ts = await harness.mention("hello")
        await harness.settle(thread_ts, ("done",))
    finally:
        await harness.stop()
    assert db_path.is_file()
    with sqlite3.connect(db_path) as db:
        # the revision: a release from before the migrations refuses the database
        assert db.execute("SELECT value FROM orchestrator_meta").fetchall() == [(head_revision(),)]
        assert db.execute("SELECT * FROM alembic_version").fetchall() == [(head_revision(),)]


@pytest.mark.parametrize(
    ("meta", "said"),
    [
        ({"schema_version": "0"}, "has schema version '0' and no migration history"),
        ({"schema_version": "99"}, "has schema version '99' and no migration history"),
        ({"schema_version": "one"}, "has schema version 'one' and no migration history"),
        ({"schema_version": None}, "has orchestrator tables but no schema version"),
    ],
)
async def test_other_schema_stops_start_up_saying_what_to_do(
    harness: Harness, tmp_path: Path, meta: dict[str, Any], said: str
) -> None:
    await make_database(harness.db_path, **meta)
    with pytest.raises(StoreError) as refused:
        await Runtime(harness.settings()).start()
    message = str(refused.value)
    assert said in message
    assert "ORCH_DATABASE_URL" in message
    with sqlite3.connect(harness.db_path) as db:  # the database was left as it was
        kept = dict(db.execute("SELECT key, value FROM orchestrator_meta").fetchall())
    assert kept.get("schema_version") == meta["schema_version"]


def test_service_refuses_an_old_schema_at_start(tmp_path: Path) -> None:
    db_path = tmp_path / "old.db"
    asyncio.run(make_database(db_path, schema_version="0"))
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-unused",
        "SLACK_SIGNING_SECRET": SECRET,
        "ORCH_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "--http", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "schema version '0' and no migration history" in done.stderr
    assert "Traceback" not in done.stderr


async def test_read_only_database_stops_start_up(harness: Harness) -> None:
    await make_database(harness.db_path)
    read_only = f"sqlite+aiosqlite:///file:{harness.db_path}?mode=ro&uri=true"
    with pytest.raises(StoreError) as refused:
        await Runtime(harness.settings(ORCH_DATABASE_URL=read_only)).start()
    assert "readonly" in str(refused.value)
    assert "needs write access to the file and to its directory" in str(refused.value)


async def test_locked_database_at_start_is_reported(harness: Harness) -> None:
    await make_database(harness.db_path)
    async with write_lock(harness.db_path):
        with pytest.raises(StoreError) as refused:
            await Runtime(harness.settings(ORCH_DATABASE_BUSY_TIMEOUT=0.2)).start()
    assert "database is locked" in str(refused.value)
    assert "another process holds a write lock" in str(refused.value)


# --- at run time ------------------------------------------------------------------------


async def test_a_short_lock_is_waited_out(harness: Harness) -> None:
    await harness.start("answer", ORCH_DATABASE_BUSY_TIMEOUT=10)
    async with write_lock(harness.db_path):
        event = harness.slack.post_user_message(
            CHANNEL, ALICE, "hello while another writer holds the lock", mention=True
        )
        delivery = asyncio.create_task(
            harness.slack.deliver_event(harness.events_url, SECRET, event)
        )
        await asyncio.sleep(0.3)
        assert not delivery.done()  # not acknowledged before it is stored
        assert harness.agent.requests == []  # the claim is waiting for the lock
    assert (await delivery).status_code == 200
    thread_ts = event["ts"]
    row = await harness.settle(thread_ts, ("done",))
    assert row.error_kind is None
    assert "Hello from test-agent!" in harness.thread_text(thread_ts)
    assert not any(NOT_TAKEN in text for text in replies(harness, thread_ts))


async def test_a_lasting_lock_is_answered_and_the_redelivery_is_taken(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.start("answer", ORCH_DATABASE_BUSY_TIMEOUT=0.2)
    event_ = harness.slack.post_user_message(CHANNEL, "U0ALICE", "take this", mention=True)
    with caplog.at_level(logging.ERROR, logger="orchestrator.slack"):
        async with write_lock(harness.db_path):
            await harness.slack.deliver_event(harness.events_url, SECRET, event_, event_id="EvL")
            await wait_for(lambda: bool(harness.thread_messages(event_["ts"])))

    assert NOT_TAKEN in replies(harness, event_["ts"])[0]
    assert "send it again" in replies(harness, event_["ts"])[0]
    assert harness.agent.requests == []
    [record] = [r for r in caplog.records if r.getMessage().startswith("message not taken")]
    assert record.__dict__["error"] == "database is locked"
    assert (record.__dict__["channel"], record.__dict__["ts"]) == (CHANNEL, event_["ts"])

    # nothing was marked as taken: the same delivery, sent again, is answered
    await harness.slack.deliver_event(
        harness.events_url, SECRET, event_, event_id="EvL", retry_num=1
    )
    row = await harness.settle(event_["ts"], ("done",))
    assert [r.body["messages"][-1]["content"] for r in harness.agent.requests] == ["take this"]
    assert row.state == "done"


async def test_a_full_disk_is_answered_and_nothing_half_written(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    rt = await harness.start("echo")
    thread_ts = await harness.mention("first, while there is room")
    first = await harness.settle(thread_ts, ("done",))

    def cap_size(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA max_page_count=1")  # SQLite raises it to the current size
        cursor.close()

    engines = (rt.store.engine, rt.store.write_engine)  # reads, and the one writer
    for engine in engines:
        event.listen(engine.sync_engine, "connect", cap_size)
        await engine.dispose()  # every connection from now on sees a full disk
    big = "a long paste " * 4000  # needs new pages wherever it is stored
    pasted = harness.slack.post_user_message(CHANNEL, "U0ALICE", big, thread_ts)
    with caplog.at_level(logging.ERROR, logger="orchestrator.slack"):
        await harness.slack.deliver_event(harness.events_url, SECRET, pasted, event_id="EvBig")
        await wait_for(lambda: any(NOT_TAKEN in t for t in replies(harness, thread_ts)))
    await harness.rt.engine.drain()

    [record] = [r for r in caplog.records if r.getMessage().startswith("message not taken")]
    assert "full" in record.__dict__["error"]
    row = await harness.row(thread_ts)
    assert (row.state, row.version) == ("done", first.version)  # no half-made transition
    assert len(harness.agent.requests) == 1
    assert [m["content"] for m in await rt.store.messages(row.id) if m["role"] == "user"] == [
        "first, while there is room"
    ]

    for engine in engines:
        event.remove(engine.sync_engine, "connect", cap_size)
        await engine.dispose()  # space again: Slack delivers the same event once more
    await harness.slack.deliver_event(
        harness.events_url, SECRET, pasted, event_id="EvBig", retry_num=1
    )
    await harness.settle(thread_ts, ("done",), min_version=first.version + 1)
    assert harness.agent.requests[-1].body["messages"][-1]["content"] == big


@pytest.mark.parametrize("busy", ["reads", "writes"])
async def test_no_free_connection_is_answered_and_the_redelivery_is_taken(
    harness: Harness, caplog: pytest.LogCaptureFixture, busy: str
) -> None:
    """Every connection of the pool taken (`reads`: a follow-up in a thread, which is read
    first), or the one writer busy past the pool timeout (`writes`: a mention starting a
    thread): the sender is told to send it again, nothing is half done, and the same delivery
    sent again is answered."""
    rt = await harness.start(
        "answer",
        ORCH_DATABASE_POOL_SIZE=1,
        ORCH_DATABASE_MAX_OVERFLOW=0,
        ORCH_DATABASE_POOL_TIMEOUT=0.2,
    )
    thread_ts, asked = None, []
    if busy == "reads":
        thread_ts = await harness.mention("hello")
        await harness.settle(thread_ts, ("done",))
        asked = ["hello"]
    # The scheduler's housekeeping stopped: a tick taking the write turn while the connection is
    # held would make the delivery wait for the turn rather than for the pool (the same refusal,
    # said differently), and this test is about the pool.
    await rt.scheduler.stop()
    taken = rt.store.engine if busy == "reads" else rt.store.write_engine
    event_ = harness.slack.post_user_message(CHANNEL, ALICE, "take this", thread_ts, mention=True)
    where = thread_ts or event_["ts"]
    before = len(harness.thread_messages(where))
    stored = await harness.row(where)
    with caplog.at_level(logging.ERROR, logger="orchestrator.slack"):
        async with taken.connect():  # held by someone else for longer than the pool timeout
            response = await harness.slack.deliver_event(
                harness.events_url, SECRET, event_, event_id="EvP"
            )
            await wait_for(lambda: len(harness.thread_messages(where)) > before)

    assert response.status_code == 200
    notice = replies(harness, where)[before]
    assert NOT_TAKEN in notice and "send it again" in notice
    assert [r.body["messages"][-1]["content"] for r in harness.agent.requests] == asked
    row = await harness.row(where)
    if stored is None:
        assert row is None
    else:
        assert row is not None and (row.state, row.version) == (stored.state, stored.version)
    [record] = [r for r in caplog.records if r.getMessage().startswith("message not taken")]
    assert "QueuePool limit of size 1 overflow 0 reached" in record.__dict__["error"]

    await harness.slack.deliver_event(
        harness.events_url, SECRET, event_, event_id="EvP", retry_num=1
    )
    await harness.settle(where, ("done",), min_version=(stored.version + 1) if stored else 0)
    assert [r.body["messages"][-1]["content"] for r in harness.agent.requests] == [
        *asked,
        "take this",
    ]
    assert "Hello from test-agent!" in harness.thread_text(where)


async def test_a_new_mention_with_no_free_read_connection_is_taken_and_answered_after(
    harness: Harness,
) -> None:
    """A mention that starts a thread is stored without a read, so it is taken while every
    read connection is busy. Its run, which must read, crashes and says so; once a connection
    is free again and its lease (not renewed: the run is no longer live here) has lapsed, the
    scheduler finds a run that never reached the agent and starts it again. The message is
    answered, neither lost nor sent twice."""
    rt = await harness.start(
        "answer",
        ORCH_DATABASE_POOL_SIZE=1,
        ORCH_DATABASE_MAX_OVERFLOW=0,
        ORCH_DATABASE_POOL_TIMEOUT=0.2,
        ORCH_RUN_LEASE=0.5,
    )
    async with rt.store.engine.connect():  # every read connection taken
        thread_ts = await harness.mention("take this anyway")
        await wait_for(lambda: "Please retry" in harness.thread_text(thread_ts))
        assert harness.agent.requests == []
    await harness.settle(thread_ts, ("done",))
    assert [r.body["messages"][-1]["content"] for r in harness.agent.requests] == [
        "take this anyway"
    ]
    assert "Hello from test-agent!" in harness.thread_text(thread_ts)


async def test_a_click_with_no_free_connection_is_told_to_click_again(harness: Harness) -> None:
    rt = await harness.start("answer", ORCH_DATABASE_MAX_OVERFLOW=0, ORCH_DATABASE_POOL_TIMEOUT=0.2)
    thread_ts = await harness.mention("rate this")
    await harness.settle(thread_ts, ("done",))
    [answer] = [m for m in harness.thread_messages(thread_ts) if ACTION_THUMBS_UP in actions_of(m)]

    def notes() -> list[str]:
        return [c.params.get("text", "") for c in harness.slack.calls_to("response_url")]

    async with rt.store.write_engine.connect():  # the writer busy past the pool timeout
        await harness.click(answer, ACTION_THUMBS_UP, actions_of(answer)[ACTION_THUMBS_UP])
        await wait_for(lambda: bool(notes()))
    assert "please click again" in notes()[0]
    assert await rt.store.feedback_of(harness.thread_id(thread_ts)) == []

    await harness.click(answer, ACTION_THUMBS_UP, actions_of(answer)[ACTION_THUMBS_UP])
    await wait_for(lambda: any("Thanks for the feedback" in note for note in notes()))
    [stored] = await rt.store.feedback_of(harness.thread_id(thread_ts))
    assert (stored.user, stored.rating) == (ALICE, "up")


def test_busy_timeout_and_pool_are_settings() -> None:
    assert Settings(ORCH_DATABASE_BUSY_TIMEOUT=2.5).database_busy_timeout == 2.5
    pool = Settings(
        ORCH_DATABASE_POOL_SIZE=20, ORCH_DATABASE_MAX_OVERFLOW=0, ORCH_DATABASE_POOL_TIMEOUT=4
    )
    assert (pool.database_pool_size, pool.database_max_overflow) == (20, 0)
    assert pool.database_pool_timeout == 4.0
    defaults = Settings()
    assert (defaults.database_pool_size, defaults.database_max_overflow) == (5, 10)
    assert defaults.database_pool_timeout == 30.0
