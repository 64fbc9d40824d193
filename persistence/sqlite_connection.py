"""The SQLite connections of the service's engines: a statement costs one trip to the
connection's thread, or none.

SQLAlchemy's `sqlite+aiosqlite` dialect drives aiosqlite, which runs every DBAPI call in the
connection's own thread: making a cursor, executing, fetching the rows and closing the cursor
are four trips through the event loop per statement, and the commit and the pool's
reset-on-return two more per transaction. Each trip costs about 0.1 ms of CPU (a queue, a
thread switch, the GIL handed over and back, a wake-up of the event loop), where the statement
itself, on a WAL file, costs a few microseconds: a run's 22 statements paid ~10 ms in trips.

`connector(url)` gives the dialect (through `async_creator`, SQLAlchemy's hook for a
driver-level connection) a connection of the same shape as aiosqlite's, whose cursor executes a
statement, fetches its rows and closes itself in one trip, and whose commit and rollback make
no trip when no transaction is open (a read, the reset of a connection that committed). The
dialect, its types, its SQL and its errors (sqlite3's own) are unchanged.

With `wait_when_busy` (the process's one writer, persistence/schema.py), statements run in the
event loop's own thread and make no trip at all: a point read or write on a WAL file takes
microseconds, never waits on a reader, and the process has no other writer; so does a commit
(in WAL mode with `synchronous=NORMAL`, an append to the WAL and no fsync). Only what can wait
is left to the thread: a statement that finds the file's write lock taken by another process
(it fails at once, SQLITE_BUSY, having done nothing) runs again there, waiting up to
`wait_when_busy` seconds; and copying the WAL into the file (a checkpoint: writes and an
fsync), which SQLite would otherwise do inside a commit once the WAL holds 1,000 pages: this
connection's automatic checkpoints are off, and every `CHECKPOINT_EVERY` commits it runs one in
its thread. Reads, which can be long (listings, recovery), stay on the read engine, in threads.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, TypeVar

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)
T = TypeVar("T")
CHECKPOINT_EVERY: Final = 100  # commits of a few pages each: about SQLite's 1,000-page default
Rows = list[Any]
Outcome = tuple[Rows, Any, int, int | None]  # rows, description, rowcount, lastrowid


def connector(
    url: str, *, wait_when_busy: float | None = None, **connect_args: Any
) -> Callable[[], Awaitable[OneTripConnection]]:
    """An `async_creator` for `url` (a `sqlite+aiosqlite://` URL): the arguments its dialect
    would give `sqlite3.connect` (file name, `uri`), with `connect_args` over them. With
    `wait_when_busy`, statements run in the event loop's thread (the module's docstring); the
    connection's own busy timeout is then 0, whatever `connect_args` say."""
    parsed = make_url(url)
    args, kwargs = parsed.get_dialect()().create_connect_args(parsed)
    kwargs = {**kwargs, **connect_args, "check_same_thread": False}
    if wait_when_busy is not None:
        kwargs["timeout"] = 0.0

    async def connect() -> OneTripConnection:
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(
                worker, functools.partial(_connect, args, kwargs, inline=wait_when_busy is not None)
            )
        except BaseException:
            worker.shutdown(wait=False)
            raise
        return OneTripConnection(conn, worker, wait_when_busy=wait_when_busy)

    return connect


class OneTripConnection:
    """What SQLAlchemy's aiosqlite adapter calls on an aiosqlite connection."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        worker: ThreadPoolExecutor,
        *,
        wait_when_busy: float | None = None,
    ) -> None:
        self._connection: sqlite3.Connection | None = conn  # the adapter's test of "open"
        self._worker = worker
        self._wait_ms = None if wait_when_busy is None else int(wait_when_busy * 1000)
        self._last_trip: Future[Any] | None = None
        self.trips = 0  # calls run in the thread so far
        self.commits = 0

    @property
    def conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")  # what aiosqlite says; the adapter maps it
        return self._connection

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the connection's thread (after what it runs already)."""
        self.trips += 1
        self._last_trip = self._worker.submit(fn, *args)
        return await asyncio.wrap_future(self._last_trip)

    async def statement(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`: in the thread; or, with `wait_when_busy`, here unless the file's write
        lock is taken (then in the thread, waiting for it)."""
        if self._wait_ms is None:
            return await self.run(fn, *args)
        # a wait whose caller was cancelled may still run in the thread: go after it, not beside
        if self._last_trip is None or self._last_trip.done():
            try:
                return fn(*args)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
        return await self.run(_waiting, self.conn, self._wait_ms, fn, *args)

    def cursor(self) -> OneTripCursor:
        return OneTripCursor(self)

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> OneTripCursor:
        cursor = self.cursor()
        await cursor.execute(sql, parameters)
        return cursor

    async def commit(self) -> None:
        if not self.conn.in_transaction:
            return
        await self.statement(self.conn.commit)
        self.commits += 1
        if self._wait_ms is not None and self.commits % CHECKPOINT_EVERY == 0:
            try:  # the commit is done: a checkpoint that fails must not look like its failure
                await self.run(_checkpoint, self.conn)
            except sqlite3.Error as exc:
                log.warning("SQLite checkpoint failed, the next one retries: %s", exc)

    async def rollback(self) -> None:
        if self.conn.in_transaction:
            await self.run(self.conn.rollback)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        await self.run(functools.partial(self.conn.create_function, *args, **kwargs))

    async def close(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            try:
                await self.run(conn.close)
            finally:
                self._worker.shutdown(wait=False)

    def stop(self) -> None:
        """Close without waiting (SQLAlchemy's terminate of a connection it invalidated)."""
        conn, self._connection = self._connection, None
        if conn is not None:
            self._worker.submit(conn.close)
            self._worker.shutdown(wait=False)


class OneTripCursor:
    """A cursor whose `execute` runs the statement, fetches every row and closes the sqlite3
    cursor in one trip; the rows are then read from memory."""

    arraysize = 1

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self._rows: Rows = []
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    def __await__(self) -> Any:  # `await conn.cursor()`, as aiosqlite allows
        return self._itself().__await__()

    async def _itself(self) -> OneTripCursor:
        return self

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._rows = []

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> OneTripCursor:
        conn = self._connection.conn
        self._take(await self._connection.statement(_execute, conn, sql, parameters))
        return self

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> OneTripCursor:
        conn = self._connection.conn
        self._take(await self._connection.statement(_executemany, conn, sql, list(rows)))
        return self

    def _take(self, outcome: Outcome) -> None:
        self._rows, self.description, self.rowcount, self.lastrowid = outcome

    async def fetchall(self) -> Rows:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Rows:
        count = self.arraysize if size is None else size
        rows, self._rows = self._rows[:count], self._rows[count:]
        return rows

    async def close(self) -> None:
        self._rows = []


def _connect(args: Sequence[Any], kwargs: dict[str, Any], *, inline: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(*args, **kwargs)
    if inline:  # checkpoints in the thread, not inside a commit in the event loop
        conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Copy what it can of the WAL into the file, waiting for no one (PASSIVE)."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _waiting(conn: sqlite3.Connection, wait_ms: int, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` waiting up to `wait_ms` for the file's lock (SQLite's busy handler)."""
    conn.execute(f"PRAGMA busy_timeout={wait_ms}")
    try:
        return fn(*args)
    finally:
        conn.execute("PRAGMA busy_timeout=0")


def _execute(conn: sqlite3.Connection, sql: str, parameters: Sequence[Any] | None) -> Outcome:
    cursor = conn.execute(sql, parameters) if parameters is not None else conn.execute(sql)
    return _outcome(cursor)


def _executemany(conn: sqlite3.Connection, sql: str, rows: list[Sequence[Any]]) -> Outcome:
    return _outcome(conn.executemany(sql, rows))


def _outcome(cursor: sqlite3.Cursor) -> Outcome:
    try:
        rows = cursor.fetchall() if cursor.description is not None else []
        return rows, cursor.description, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()
