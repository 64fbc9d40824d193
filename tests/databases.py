"""Fresh databases for tests: a SQLite file, or a PostgreSQL database created and dropped here.

PostgreSQL is the server on 127.0.0.1:5432 (`ORCH_TEST_PG_ADMIN` names another admin DSN); a
test that needs it is skipped, with the reason, when no server answers.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

ADMIN_DSN = os.environ.get("ORCH_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    """The SQLAlchemy URL of a new, empty PostgreSQL database, dropped on exit."""
    name = f"orch_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL at {ADMIN_DSN}: {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def fresh_database(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """`kind` is "sqlite" or "postgresql"."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}"
        return
    async with fresh_postgres() as url:
        yield url
