"""Opening a database: engine options, SQLite pragmas, the schema and its version check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from persistence.errors import StoreError
from persistence.models import SCHEMA_VERSION, Base, Meta

_SCHEMA_LOCK = 0x6F726368  # "orch": the advisory lock held while the schema is checked or made


async def open_engine(url: str, *, busy_timeout: float, check_writable: bool) -> AsyncEngine:
    """Connect, create the schema when new, refuse a schema from another version (StoreError)."""
    engine = create_async_engine(url, **_engine_options(url, busy_timeout))
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_timeout))
    try:
        await _prepare(engine, _safe_url(url), check_writable=check_writable)
    except OperationalError as exc:
        await engine.dispose()
        raise StoreError(
            f"cannot open the database {_safe_url(url)}: {exc.orig}{_hint(exc)}"
        ) from exc
    except StoreError:
        await engine.dispose()
        raise
    return engine


async def _prepare(engine: AsyncEngine, where: str, *, check_writable: bool) -> None:
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together on an empty database take turns creating it.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        found = None
        if Meta.__tablename__ in tables:
            found = await conn.scalar(select(Meta.value).where(Meta.key == "schema_version"))
        _check_schema(where, found, tables & set(Base.metadata.tables))
        await conn.run_sync(Base.metadata.create_all)
        if found is None:
            await conn.execute(insert(Meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
        elif check_writable:
            await conn.execute(update(Meta).where(Meta.key == "schema_version").values(value=found))


def _check_schema(where: str, found: str | None, ours: set[str]) -> None:
    """Refuses a database written by another release (or by one that predates the version row)."""
    upgrade = (
        "Back it up, then start the release that wrote it, or point ORCH_DATABASE_URL at a new "
        "database."
    )
    if found is None:
        if ours - {Meta.__tablename__}:
            raise StoreError(
                f"the database {where} has orchestrator tables but no schema version: it was "
                f"written by an older release. {upgrade}"
            )
        return
    if found.strip() != str(SCHEMA_VERSION):
        raise StoreError(
            f"the database {where} has schema version {found!r}, this release needs "
            f"{SCHEMA_VERSION}. {upgrade}"
        )


def _hint(exc: OperationalError) -> str:
    said = str(exc.orig).lower()
    if "readonly" in said or "read-only" in said:
        return " (the service needs write access to the file and to its directory)"
    if "locked" in said:
        return " (another process holds a write lock on it; stop it or wait)"
    if "full" in said:
        return " (the disk is full; free some space)"
    return ""


def _engine_options(url: str, busy_timeout: float) -> dict[str, Any]:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return {"pool_pre_ping": True}
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return {"connect_args": {"timeout": busy_timeout}}


def _sqlite_pragmas(busy_timeout: float) -> Callable[[Any, Any], None]:
    def apply(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.close()

    return apply


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
