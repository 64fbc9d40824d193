"""ORCH_DATABASE_URL: the URLs the store can open, and what to write instead of the others.

The store is async: SQLite through aiosqlite, PostgreSQL through asyncpg. A URL without the
driver (`sqlite:///…`, `postgresql://…`, `postgres://…`) or with a blocking one (`psycopg2`)
is refused with the same URL written the right way. Passwords never appear in the messages.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from persistence.errors import StoreError

ASYNC_DRIVERS: Final = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_EXAMPLES: Final = (
    "sqlite+aiosqlite:///./orchestrator.db (one replica) or "
    "postgresql+asyncpg://USER:PASSWORD@HOST:5432/NAME (several)"
)


class DatabaseUrlError(StoreError, ValueError):
    """ORCH_DATABASE_URL names a database the store cannot open; the message says what to use."""


def check_database_url(url: str) -> URL:
    """The parsed URL, or DatabaseUrlError naming the async driver to use."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(
            f"ORCH_DATABASE_URL is not a database URL; write {_EXAMPLES}"
        ) from None
    backend = parsed.drivername.split("+", 1)[0]
    if backend == "postgres":  # Heroku-style spelling of postgresql
        backend = "postgresql"
    driver = ASYNC_DRIVERS.get(backend)
    if driver is None:
        raise DatabaseUrlError(
            f"ORCH_DATABASE_URL {_shown(parsed)} names a database the orchestrator does not "
            f"support ({backend}); write {_EXAMPLES}"
        )
    if parsed.drivername != f"{backend}+{driver}":
        fixed = parsed.set(drivername=f"{backend}+{driver}")
        raise DatabaseUrlError(
            f"ORCH_DATABASE_URL {_shown(parsed)} does not name the async driver the "
            f"orchestrator needs ({driver}): write {_shown(fixed)}"
        )
    return parsed


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)
