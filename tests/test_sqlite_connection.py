"""The SQLite connections of the service's engines (persistence/sqlite_connection.py): what
SQLAlchemy reads back from them is what sqlite3 gives, a statement is one trip to the
connection's thread (none for the writer's), and the event loop never waits for a lock."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from persistence.models import Base, Thread, Transition
from persistence.sessions import session_maker
from persistence.sqlite_connection import CHECKPOINT_EVERY, OneTripConnection, connector


def engine_on(path: Path, **connect_args: Any) -> tuple[AsyncEngine, list[OneTripConnection]]:
    url = f"sqlite+aiosqlite:///{path}"
    opened: list[OneTripConnection] = []
    connect = connector(url, **connect_args)

    async def counted() -> OneTripConnection:
        opened.append(await connect())
        return opened[-1]

    return create_async_engine(url, async_creator=counted, pool_size=1, max_overflow=0), opened


async def make_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


def locked_by_another_process(path: Path) -> sqlite3.Connection:
    """A connection of its own holding the file's write lock until it rolls back."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


def a_thread(thread_id: str) -> dict[str, object]:
    return dict(
        id=thread_id,
        team_id="T",
        channel_id="C",
        thread_ts="1.0",
        state="idle",
        version=0,
        message_ts=[],
        live_ts=[],
        created_at=0.0,
        updated_at=0.0,
    )


@pytest.fixture(params=["in its thread", "the writer, in the event loop"])
async def engine(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[AsyncEngine, list[OneTripConnection]]]:
    inline = request.param != "in its thread"
    made = engine_on(tmp_path / "one.db", **({"wait_when_busy": 1.0} if inline else {}))
    await make_schema(made[0])
    yield made
    await made[0].dispose()


async def test_rows_counts_and_ids_are_what_sqlite_gives(
    engine: tuple[AsyncEngine, list[OneTripConnection]],
) -> None:
    maker = session_maker(engine[0])
    async with maker.begin() as s:
        await s.execute(insert(Thread).values(**a_thread("a")))
        s.add(Transition(thread_id="a", from_state="idle", to_state="x", trigger="t", at=1.0))
        s.add(Transition(thread_id="a", from_state="x", to_state="y", trigger="t", at=2.0))
    async with maker.begin() as s:
        changed = await s.execute(update(Thread).where(Thread.id == "a").values(state="done"))
        missed = await s.execute(update(Thread).where(Thread.id == "b").values(state="done"))
    assert (changed.rowcount, missed.rowcount) == (1, 0)
    async with maker() as s:
        ids = (await s.scalars(select(Transition.id).order_by(Transition.id))).all()
        thread = await s.get(Thread, "a")
        mapped = (await s.execute(text("SELECT id AS name, state FROM threads"))).mappings().all()
    assert ids == [1, 2]  # each flushed insert's lastrowid
    assert thread is not None and (thread.state, thread.message_ts) == ("done", [])
    assert [dict(m) for m in mapped] == [{"name": "a", "state": "done"}]


async def test_a_failed_transaction_leaves_nothing_and_the_connection_works_on(
    engine: tuple[AsyncEngine, list[OneTripConnection]],
) -> None:
    maker = session_maker(engine[0])
    async with maker.begin() as s:
        await s.execute(insert(Thread).values(**a_thread("a")))
    with pytest.raises(IntegrityError):
        async with maker.begin() as s:
            await s.execute(insert(Thread).values(**a_thread("b")))
            await s.execute(insert(Thread).values(**a_thread("a")))  # taken: the whole fails
    async with maker() as s:
        assert (await s.scalars(select(Thread.id))).all() == ["a"]
    assert len(engine[1]) == 1  # the same connection, still usable


async def test_a_statement_is_one_trip_and_a_read_closes_without_one(tmp_path: Path) -> None:
    async def trips_of(engine: AsyncEngine, opened: list[OneTripConnection]) -> list[int]:
        await make_schema(engine)
        maker = session_maker(engine)
        async with maker.begin() as s:
            await s.execute(insert(Thread).values(**a_thread("a")))
        (connection,) = opened
        trips = [connection.trips]
        async with maker() as s:  # a read: its statement, no commit, no rollback to reset it
            await s.get(Thread, "a")
        trips.append(connection.trips)
        async with maker.begin() as s:  # a write: two statements and the commit
            await s.execute(update(Thread).where(Thread.id == "a").values(state="x"))
            await s.execute(update(Thread).where(Thread.id == "a").values(version=1))
        trips.append(connection.trips)
        await engine.dispose()
        return [after - before for before, after in itertools.pairwise(trips)]

    assert await trips_of(*engine_on(tmp_path / "reads.db")) == [1, 3]
    # the writer: none (its checkpoints go to the thread, every so many commits)
    assert await trips_of(*engine_on(tmp_path / "writes.db", wait_when_busy=1.0)) == [0, 0]


@pytest.mark.parametrize(
    "waits", [{"timeout": 0.5}, {"wait_when_busy": 0.5}], ids=["read", "write"]
)
async def test_a_locked_file_fails_the_write_while_the_event_loop_runs_on(
    tmp_path: Path, waits: dict[str, float]
) -> None:
    path = tmp_path / "locked.db"
    engine, _ = engine_on(path, **waits)
    try:
        await make_schema(engine)
        other = locked_by_another_process(path)
        ran_meanwhile = asyncio.Event()
        write_failed_at: list[bool] = []

        async def elsewhere() -> None:
            await asyncio.sleep(0.05)
            ran_meanwhile.set()

        async def write() -> None:
            try:
                async with session_maker(engine).begin() as s:
                    await s.execute(insert(Thread).values(**a_thread("a")))
            except OperationalError as exc:
                write_failed_at.append(ran_meanwhile.is_set())
                assert "database is locked" in str(exc)

        await asyncio.gather(write(), elsewhere())
        assert write_failed_at == [True]  # the loop ran other work while the write waited
        other.execute("ROLLBACK")
        other.close()
        async with session_maker(engine).begin() as s:  # the lock is gone: it writes
            await s.execute(insert(Thread).values(**a_thread("a")))
    finally:
        await engine.dispose()


async def test_disposing_the_engine_ends_its_connection_threads(tmp_path: Path) -> None:
    def sqlite_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("sqlite")}

    before = sqlite_threads()
    engine, opened = engine_on(tmp_path / "threads.db")
    pragmas: list[str] = []

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        pragmas.append(cursor.fetchone()[0])
        cursor.close()

    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    started = sqlite_threads() - before
    assert pragmas == ["wal"] and len(started) == 1
    await engine.dispose()
    for _ in range(200):
        if not any(t.is_alive() for t in started):
            break
        await asyncio.sleep(0.01)
    assert not any(t.is_alive() for t in started)
    with pytest.raises(ValueError, match="no active connection"):
        await opened[0].execute("SELECT 1")


async def test_the_writer_waits_out_a_short_lock_in_its_thread(tmp_path: Path) -> None:
    path = tmp_path / "short.db"
    engine, opened = engine_on(path, wait_when_busy=5.0)
    try:
        await make_schema(engine)
        other = locked_by_another_process(path)
        released = asyncio.get_running_loop().call_later(0.3, other.execute, "ROLLBACK")
        before = opened[0].trips
        async with session_maker(engine).begin() as s:
            await s.execute(insert(Thread).values(**a_thread("a")))  # waits in the thread
            await s.execute(update(Thread).values(state="x"))  # the lock held now: here
        released.cancel()
        assert opened[0].trips - before == 1  # the insert that waited
        other.close()
        async with session_maker(engine)() as s:
            assert (await s.get(Thread, "a")).state == "x"  # type: ignore[union-attr]
    finally:
        await engine.dispose()


async def test_the_writer_checkpoints_the_wal_in_its_thread(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    engine, opened = engine_on(path, wait_when_busy=1.0)

    @event.listens_for(engine.sync_engine, "connect")
    def wal(dbapi_connection: Any, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    try:
        await make_schema(engine)
        (connection,) = opened
        before, commits = connection.trips, connection.commits
        rounds = 4 * CHECKPOINT_EVERY - commits % CHECKPOINT_EVERY
        for n in range(rounds):  # each commit a few pages (a 4 KB detail, its index)
            async with session_maker(engine).begin() as s:
                s.add(
                    Transition(
                        thread_id=str(n),
                        from_state="a",
                        to_state="b",
                        trigger="t",
                        detail={"x": "y" * 4096},
                        at=float(n),
                    )
                )
        assert connection.trips - before == 4  # only the checkpoints left the event loop
        # the WAL was copied into the file as it went: it never held the 2,000-odd pages written
        wal_pages = (path.parent / "wal.db-wal").stat().st_size // 4096
        assert wal_pages < 2 * CHECKPOINT_EVERY * 4
    finally:
        await engine.dispose()


async def test_a_write_cancelled_while_it_waits_for_the_lock_is_undone_and_the_next_goes_after(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cancelled.db"
    engine, _ = engine_on(path, wait_when_busy=5.0)
    try:
        await make_schema(engine)
        other = locked_by_another_process(path)

        async def write(thread_id: str) -> None:
            async with session_maker(engine).begin() as s:
                await s.execute(insert(Thread).values(**a_thread(thread_id)))

        first = asyncio.create_task(write("cancelled"))
        await asyncio.sleep(0.2)  # waiting for the lock in the writer's thread
        first.cancel()  # its wait goes on there: the rollback, and the next write, queue after
        ticks = 0

        async def ticking() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(ticking())
        second = asyncio.create_task(write("next"))
        await asyncio.sleep(0.3)
        other.execute("ROLLBACK")
        await second
        with pytest.raises(asyncio.CancelledError):
            await first
        ticker.cancel()
        assert ticks >= 10  # the event loop ran on while both waited
        other.close()
        async with session_maker(engine)() as s:
            assert (await s.scalars(select(Thread.id))).all() == ["next"]
    finally:
        await engine.dispose()
