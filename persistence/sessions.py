"""What every table family of the store shares: its sessions, the `Also` write type, upserts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from persistence.models import Base

# Extra writes that must commit in the same transaction as a state change.
Also = Callable[[AsyncSession], Awaitable[None]]


class StorePart:
    """The engine and session factory each table family's methods run on."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._session = async_sessionmaker(engine, expire_on_commit=False)


def upsert(s: AsyncSession, model: type[Base], key: dict[str, Any], **values: Any) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE, in the dialect of the session's database."""
    dialect = s.get_bind().dialect.name
    insert_of = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_of(model).values(**key, **values)
    return statement.on_conflict_do_update(index_elements=list(key), set_=values)
