"""The database a benchmark runs its service on: a new SQLite file, or a new PostgreSQL database
on the server `ORCH_BENCH_PG_ADMIN` names (else `ORCH_TEST_PG_ADMIN`, else the local one),
dropped after."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import asyncpg

PG_ADMIN: Final = os.environ.get(
    "ORCH_BENCH_PG_ADMIN",
    os.environ.get("ORCH_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"),
)


@contextlib.asynccontextmanager
async def scratch_database(kind: str, folder: Path, prefix: str) -> AsyncIterator[str]:
    """The service's database URL: `folder`/orchestrator.db for "sqlite", else a PostgreSQL
    database named `prefix` and a random suffix."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'orchestrator.db'}"
        return
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
