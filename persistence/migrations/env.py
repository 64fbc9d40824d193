"""Alembic environment for the store's schema, on SQLite (aiosqlite) and PostgreSQL (asyncpg).

`persistence.schema_upgrade` runs the migrations itself: it hands the connection it holds
(inside its transaction and, on PostgreSQL, its advisory lock) in
`config.attributes["connection"]`. Run from the `alembic` command (to write a new revision), the
database is the one in `ORCH_DATABASE_URL`, or `sqlalchemy.url` of the configuration.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from persistence.models import Base

DEFAULT_URL = "sqlite+aiosqlite:///./orchestrator.db"


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot alter most of a table: batch mode copies it into a new one instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_url(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
            await connection.commit()
    finally:
        await engine.dispose()


def _url() -> str:
    return (
        os.environ.get("ORCH_DATABASE_URL")
        or context.config.get_main_option("sqlalchemy.url")
        or DEFAULT_URL
    )


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    given = context.config.attributes.get("connection")
    if given is not None:
        _migrate(given)
    else:
        asyncio.run(_migrate_url(_url()))
