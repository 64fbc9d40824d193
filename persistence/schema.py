"""Opening a database: the URL, the schema's revision, engine options, SQLite pragmas.

What `open_engine` does with the schema it finds (persistence/schema_upgrade.py has the
migrations):

- this release's revision: opened;
- no orchestrator tables yet: with `create`, the whole schema is made by the migrations (replicas
  starting together take turns); without it (read-only commands), refused: nothing is created;
- an older revision, or release 0.1.0's tables: with `upgrade`, brought up to date first;
  without it, refused with the command that upgrades it;
- a revision a newer release wrote, or tables of no known release: refused, saying why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from persistence import schema_upgrade
from persistence.database_url import check_database_url
from persistence.errors import StoreError
from persistence.schema_upgrade import UPGRADE_COMMAND, SchemaError, SchemaState, safe_url
from persistence.sqlite_connection import connector


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """The connection pool: `size` connections kept open, up to `overflow` more under load, and
    how long (seconds) a call waits for a free one before failing (SQLAlchemy's TimeoutError)."""

    size: int = 5
    overflow: int = 10
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class Engines:
    """Where reads and where write transactions go: the same engine on PostgreSQL; on SQLite a
    second engine of one connection, the process's only writer (persistence/sessions.py)."""

    read: AsyncEngine
    write: AsyncEngine
    write_slots: int = 1  # write transactions at once (persistence/write_turns.py)

    async def dispose(self) -> None:
        await self.read.dispose()
        if self.write is not self.read:
            await self.write.dispose()


async def open_engines(
    url: str,
    *,
    busy_timeout: float,
    check_writable: bool,
    create: bool = True,
    upgrade: bool = False,
    pool: PoolLimits | None = None,
) -> Engines:
    """Engines on a database at this release's schema revision (StoreError otherwise)."""
    check_database_url(url)
    where = safe_url(url)
    state = await schema_upgrade.current(url)
    if state.empty and not create:
        raise StoreError(
            f"there is no orchestrator database at {where} yet (ORCH_DATABASE_URL): "
            f"`orchestrator run` or `{UPGRADE_COMMAND}` creates it"
        )
    if state.empty or (state.behind and upgrade):
        await schema_upgrade.upgrade(
            url, busy_timeout=busy_timeout, allowed=_allowed(upgrade=upgrade, create=create)
        )
    elif not _usable(state, writing=check_writable):
        _refuse(state)
    engines = _create_engines(url, busy_timeout, pool or PoolLimits())
    try:
        if check_writable:  # a read-only database is refused now, not on the first message
            async with engines.write.begin() as conn:
                await conn.execute(
                    text("UPDATE orchestrator_meta SET value = value WHERE key = 'schema_version'")
                )
    except OperationalError as exc:
        await engines.dispose()
        raise StoreError(f"cannot open the database {where}: {exc.orig}{_hint(exc)}") from exc
    return engines


def _create_engines(url: str, busy_timeout: float, pool: PoolLimits) -> Engines:
    """SQLite has one write lock per file. Connections of a pool that write at once do not
    queue for it: each waits in SQLite's busy handler, sleeping in its aiosqlite thread and
    polling, and fails with `database is locked` once `busy_timeout` has passed; meanwhile the
    pool's connections are taken, so reads wait too (and past the pool timeout, fail). So the
    process has one writer: write transactions check out the write engine's single connection
    in turn (persistence/write_turns.py), while reads stay concurrent on the read engine (WAL:
    readers never wait for the writer).
    `busy_timeout` is then only how long a write waits for another process. PostgreSQL locks
    rows, not the database: one engine, its pool shared by reads and writes, two thirds of it
    at most for write transactions, so that reads always find a connection soon."""
    limits = {"pool_size": pool.size, "max_overflow": pool.overflow, "pool_timeout": pool.timeout}
    if make_url(url).get_backend_name() != "sqlite":
        engine = create_async_engine(url, pool_pre_ping=True, **limits)
        event.listen(engine.sync_engine, "do_connect", _connect_failure_as_driver_error)
        write_slots = max(1, (pool.size + pool.overflow) * 2 // 3)
        return Engines(read=engine, write=engine, write_slots=write_slots)
    read = create_async_engine(url, async_creator=connector(url, timeout=busy_timeout), **limits)
    # the one writer: its statements in the event loop, a wait for another process's lock in
    # its thread (persistence/sqlite_connection.py); its own busy timeout is 0
    write = create_async_engine(
        url,
        async_creator=connector(url, wait_when_busy=busy_timeout),
        pool_size=1,
        max_overflow=0,
        pool_timeout=pool.timeout,
    )
    event.listen(read.sync_engine, "connect", _sqlite_pragmas(busy_timeout))
    event.listen(write.sync_engine, "connect", _sqlite_pragmas(0.0))
    return Engines(read=read, write=write)


def _usable(state: SchemaState, *, writing: bool) -> bool:
    """Reading needs this release's tables; writing also needs the migration history."""
    if writing:
        return state.current
    return state.known and state.revision == state.head


def _allowed(*, upgrade: bool, create: bool) -> Callable[[SchemaState], None]:
    """What may be done to the schema found under the upgrade lock (another process may have
    changed it since it was first read)."""

    def check(found: SchemaState) -> None:
        if (found.empty and not create) or (found.behind and not upgrade):
            _refuse(found)

    return check


def _refuse(state: SchemaState) -> None:
    where = state.where
    if not state.known:
        raise SchemaError(
            f"the database {where} is at schema revision {state.revision}, which this release "
            f"does not know (its newest is {state.head}): a newer release upgraded it. Run that "
            "release, or restore the backup taken before its upgrade."
        )
    if state.empty:
        raise StoreError(f"there is no orchestrator database at {where} yet")
    written = " (written by release 0.1.0)" if state.legacy else ""
    raise SchemaError(
        f"the database {where} is at schema revision {state.revision}{written} and this "
        f"release needs {state.head}{_history(state)}. "
        f"Back it up, then run `{UPGRADE_COMMAND}` (or start with `orchestrator run --upgrade`)."
    )


def _history(state: SchemaState) -> str:
    return " with its migration history" if state.revision == state.head else ""


def _hint(exc: OperationalError) -> str:
    said = str(exc.orig).lower()
    if "readonly" in said or "read-only" in said:
        return " (the service needs write access to the file and to its directory)"
    if "locked" in said:
        return " (another process holds a write lock on it; stop it or wait)"
    if "full" in said:
        return " (the disk is full; free some space)"
    return ""


def _connect_failure_as_driver_error(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """asyncpg raises a refused or timed-out connection as OSError or TimeoutError, which
    SQLAlchemy passes on as they are; raised as the driver's OperationalError, a server that is
    gone is a database failure like any other (the message is answered "send it again")."""
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, TimeoutError) as exc:
        raise dialect.loaded_dbapi.OperationalError(
            f"cannot connect: {exc or type(exc).__name__}"
        ) from exc


def _sqlite_pragmas(busy_timeout: float) -> Callable[[Any, Any], None]:
    def apply(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.close()

    return apply
