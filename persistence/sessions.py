"""What every table family of the store shares: its sessions, the `Also` write type, upserts."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, bindparam, event, inspect, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, make_transient_to_detached

from persistence.models import Base
from persistence.write_turns import WriteTurns

# Extra writes that must commit in the same transaction as a state change.
Also = Callable[[AsyncSession], Awaitable[None]]


class StoreSession(Session):
    """The store's sessions: short transactions that never read back, through an object they
    loaded, what one of their UPDATE or DELETE statements changed. So those statements skip
    the ORM's search of the session for the objects they change (`synchronize_session`), a
    tenth of the CPU a run spends in the store."""


@event.listens_for(StoreSession, "do_orm_execute")
def _unsynchronized(state: ORMExecuteState) -> None:
    if state.is_update or state.is_delete:
        state.update_execution_options(synchronize_session=False)


def session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=StoreSession)


class WriteSessions:
    """`begin()`: a write transaction, in its turn (persistence/write_turns.py)."""

    __slots__ = ("_maker", "turns")

    def __init__(self, engine: AsyncEngine, turns: WriteTurns) -> None:
        self._maker = session_maker(engine)
        self.turns = turns

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        async with self.turns.turn(), self._maker.begin() as s:
            yield s


class StorePart:
    """The engines and session factories each table family's methods run on: reads on
    `_session()`, every write transaction on `_writing.begin()`.

    Writes take turns, those answering Slack first (persistence/write_turns.py), `write_slots`
    at once. On SQLite the write engine is one connection, so the process's writes take turns
    at the file's one write lock instead of contending for it in SQLite's busy handler (which
    blocks the pool's threads and fails with `database is locked`): see persistence/schema.py.
    On PostgreSQL both are the same engine, and the turns leave part of its pool to the reads.
    """

    def __init__(
        self, engine: AsyncEngine, write_engine: AsyncEngine | None = None, write_slots: int = 1
    ) -> None:
        self.engine = engine
        self.write_engine = write_engine or engine
        self._session = session_maker(engine)
        timeout = self.write_engine.pool.timeout()  # type: ignore[attr-defined]
        turns = WriteTurns(urgent_timeout=timeout, slots=write_slots)
        self._writing = WriteSessions(self.write_engine, turns)


M = TypeVar("M", bound=Base)


@functools.cache
def _by_key(model: type[Base]) -> Select[Any]:
    (column,) = model.__table__.primary_key.columns
    return select(model.__table__).where(column == bindparam("key"))


async def row_by_key(s: AsyncSession, model: type[M], key: str) -> M | None:
    """The row of `model` whose one-column primary key is `key`, detached, as `s.get` gives it.

    A Core SELECT, built once per model, and the object made from its row (`Row._mapping` is
    SQLAlchemy's public view of it by column): the ORM's loading (identity map, loader states,
    result processing) was about a third of the CPU of each such read a run makes.
    """
    found = (await s.execute(_by_key(model), {"key": key})).first()
    if found is None:
        return None
    row = model(**found._mapping)
    make_transient_to_detached(row)
    return row


def column_values(row: Base) -> dict[str, Any]:
    """The column values set on `row` (the columns left unset get their defaults)."""
    keys = {c.key for c in inspect(type(row)).column_attrs}
    return {key: value for key, value in inspect(row).dict.items() if key in keys}


def upsert(
    s: AsyncSession,
    model: type[Base],
    key: dict[str, Any],
    where: ColumnElement[bool] | None = None,
    **values: Any,
) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE (of the row found, only `where` it matches), in the
    dialect of the session's database; a Core statement (the ORM's handling of DML skipped)."""
    if s.get_bind().dialect.name == "postgresql":
        # Imported here: the PostgreSQL dialect is 2 MB of memory a SQLite store never uses.
        from sqlalchemy.dialects.postgresql import insert as insert_of
    else:
        insert_of = sqlite_insert
    statement = insert_of(model.__table__).values(**key, **values)
    return statement.on_conflict_do_update(index_elements=list(key), set_=values, where=where)
