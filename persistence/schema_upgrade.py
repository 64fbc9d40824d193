"""The store's schema version: where a database stands, and the Alembic upgrade to this release.

Migrations live in `persistence/migrations` (shipped in the package). A database is at one
revision, recorded in Alembic's `alembic_version` table. Release 0.1.0 predates the migrations:
it created its tables itself and wrote `orchestrator_meta.schema_version = 1`; such a database
is recognised as revision 0001 and stamped so before it is upgraded.

`upgrade` runs in one transaction, so a failed migration leaves the database as it was. On
PostgreSQL it holds an advisory lock meanwhile: replicas started together upgrade one at a
time, and the later ones find nothing left to do. On SQLite the transaction begins with
`BEGIN IMMEDIATE`, which takes the write lock at once.

`orchestrator_meta.schema_version` is kept for the releases before the migrations: it stays `1`
while the schema is 0.1.0's, and names the revision once a later one is applied, so a 0.1.0
process started on an upgraded database refuses it with a clear message instead of failing on
its first write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    Column,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from persistence.errors import StoreError
from persistence.models import Base, Meta

if TYPE_CHECKING:
    from alembic.config import Config

# The shipped migrations, oldest first (a test checks them against Alembic's own walk). Named
# here so that a start on an up-to-date database reads where it stands without Alembic, which
# is imported (about 11 MB and 0.1 s) only to change the schema.
REVISIONS: Final = ("0001", "0002", "0003")
INITIAL_REVISION: Final = REVISIONS[0]  # the schema of release 0.1.0
LEGACY_VERSION: Final = "1"  # what 0.1.0 wrote in orchestrator_meta.schema_version
UPGRADE_COMMAND: Final = "orchestrator db upgrade"
# Alembic's version table as its `stamp` creates it (the name of its key included): read to
# learn a database's revision, written when a new database gets the whole schema.
_VERSIONS: Final = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
_UPGRADE_LOCK: Final = 0x6F726368  # "orch": the advisory lock held while the schema changes


class SchemaError(StoreError):
    """The database's schema cannot be used or upgraded; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database stands against this release's migrations."""

    where: str  # the database URL without its password
    revision: str | None  # None: no orchestrator tables yet
    head: str  # this release's revision
    known: bool  # the revision is one of this release's (False: a newer release wrote it)
    legacy: bool  # written by release 0.1.0, before the migrations

    @property
    def empty(self) -> bool:
        return self.revision is None

    @property
    def current(self) -> bool:
        return self.revision == self.head and not self.legacy

    @property
    def behind(self) -> bool:
        return self.known and not self.current and not self.empty

    def describe(self) -> str:
        if self.empty:
            return f"{self.where}: empty (no orchestrator tables); this release is at {self.head}"
        written = " (written by release 0.1.0, before migrations)" if self.legacy else ""
        if not self.known:
            return (
                f"{self.where}: revision {self.revision}, unknown to this release (at "
                f"{self.head}): a newer release upgraded it"
            )
        if self.current:
            return f"{self.where}: revision {self.revision}, this release's (up to date)"
        if self.legacy and self.revision == self.head:
            return (
                f"{self.where}: revision {self.revision}{written}; `{UPGRADE_COMMAND}` records "
                "it in the migration history"
            )
        return (
            f"{self.where}: revision {self.revision}{written}, behind this release's "
            f"{self.head}; `{UPGRADE_COMMAND}` upgrades it"
        )


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def alembic_config() -> Config:
    """The Alembic configuration of the shipped migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "persistence:migrations")
    return config


def head_revision() -> str:
    return REVISIONS[-1]


async def read_state(conn: AsyncConnection, where: str) -> SchemaState:
    """The schema state as seen on `conn` (reads only)."""
    return await conn.run_sync(_read_state, where)


def _read_state(conn: Connection, where: str) -> SchemaState:
    head = head_revision()
    tables = set(inspect(conn).get_table_names())
    ours = tables & set(Base.metadata.tables)
    if _VERSIONS.name in tables:
        recorded = conn.execute(select(_VERSIONS.c.version_num)).scalars()
        revisions = list(recorded)
        if len(revisions) > 1:
            raise SchemaError(
                f"the database {where} records several schema revisions at once "
                f"({', '.join(sorted(revisions))}): it was not written by the orchestrator."
            )
        revision = revisions[0] if revisions else None
        if revision is None and ours - {Meta.__tablename__}:
            raise SchemaError(
                f"the database {where} has orchestrator tables and an empty alembic_version "
                "table: it was not written by the orchestrator. Point ORCH_DATABASE_URL at the "
                "orchestrator's database."
            )
        return _state(where, revision, head, legacy=False)
    found = None
    if Meta.__tablename__ in tables:
        found = conn.execute(
            text("SELECT value FROM orchestrator_meta WHERE key = 'schema_version'")
        ).scalar()
    if found is None:
        if ours - {Meta.__tablename__}:
            raise SchemaError(
                f"the database {where} has orchestrator tables but no schema version: it was "
                "written by a build older than release 0.1.0, which cannot be upgraded. Point "
                "ORCH_DATABASE_URL at a new database."
            )
        return _state(where, None, head, legacy=False)
    if found.strip() != LEGACY_VERSION:
        raise SchemaError(
            f"the database {where} has schema version {found!r} and no migration history: "
            "it was not written by a release this one can upgrade. Point ORCH_DATABASE_URL at "
            "the orchestrator's database, or at a new one."
        )
    return _state(where, INITIAL_REVISION, head, legacy=True)


def _state(where: str, revision: str | None, head: str, *, legacy: bool) -> SchemaState:
    known = revision is None or revision in REVISIONS
    return SchemaState(where, revision, head, known=known, legacy=legacy)


async def current(url: str) -> SchemaState:
    """Where the database at `url` stands. Reads only: a missing SQLite file is not created."""
    where = safe_url(url)
    if not database_exists(url):
        return SchemaState(where, None, head_revision(), known=True, legacy=False)
    engine = create_async_engine(url, **_connect_args(url))
    try:
        async with engine.connect() as conn:
            return await read_state(conn, where)
    except (DBAPIError, OSError) as exc:
        raise _unreachable(where, exc) from exc
    finally:
        await engine.dispose()


async def upgrade(
    url: str,
    *,
    busy_timeout: float = 30.0,
    allowed: Callable[[SchemaState], None] | None = None,
) -> tuple[SchemaState, SchemaState]:
    """Brings the database at `url` to this release's schema; returns (before, after).

    An empty database gets the whole schema. `allowed`, when given, sees the state found
    (under the lock) before anything changes and may raise to refuse the upgrade.
    """
    where = safe_url(url)
    path = sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SchemaError(
                f"cannot create the directory {path.parent} of the database {where}: "
                f"{exc.strerror or exc}"
            ) from exc
    engine = create_async_engine(url, **_connect_args(url, busy_timeout))
    if engine.dialect.name == "sqlite":
        _transactional_sqlite(engine.sync_engine, busy_timeout)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK}
                )
            before = await read_state(conn, where)
            if not before.known:
                raise SchemaError(
                    f"the database {where} is at revision {before.revision}, which this release "
                    f"does not know (its newest is {before.head}): a newer release upgraded it. "
                    "Run that release, or restore the backup taken before its upgrade."
                )
            if allowed is not None:
                allowed(before)
            if not before.current:
                await conn.run_sync(_apply, before)
            after = await read_state(conn, where)
    except (DBAPIError, OSError) as exc:
        raise _unreachable(where, exc) from exc
    finally:
        await engine.dispose()
    return before, after


def _unreachable(where: str, exc: Exception) -> StoreError:
    detail = exc.orig if isinstance(exc, DBAPIError) else exc
    return StoreError(f"cannot open the database {where}: {detail}{_hint(str(detail))}")


def _hint(said: str) -> str:
    said = said.lower()
    if "readonly" in said or "read-only" in said:
        return " (the service needs write access to the file and to its directory)"
    if "locked" in said:
        return " (another process holds a write lock on it; stop it or wait)"
    if "unable to open" in said:
        return " (check that the directory exists and can be written)"
    return ""


def _apply(conn: Connection, before: SchemaState) -> None:
    if before.empty:
        _create(conn)
    else:
        from alembic import command

        config = alembic_config()
        config.attributes["connection"] = conn
        if before.legacy:
            command.stamp(config, INITIAL_REVISION)
        command.upgrade(config, "head")
    mark = LEGACY_VERSION if before.head == INITIAL_REVISION else before.head
    table = Base.metadata.tables[Meta.__tablename__]
    conn.execute(table.delete().where(table.c.key == "schema_version"))
    conn.execute(table.insert().values(key="schema_version", value=mark))


def _create(conn: Connection) -> None:
    """A new database: the models' tables and the head revision recorded, as Alembic's recipe
    for building an up-to-date database from scratch does (`create_all`, then `stamp head`).
    The row is written here rather than by `command.stamp`, which would import Alembic (about
    11 MB that the process keeps, and 0.1 s) on every first start: of a deployment, of the
    demo, of each test. A test holds the tables made so to those the migrations make; the
    releases after this one upgrade them with their migrations as any other."""
    Base.metadata.create_all(conn)
    _VERSIONS.create(conn, checkfirst=True)
    conn.execute(_VERSIONS.insert().values(version_num=head_revision()))


def database_exists(url: str) -> bool:
    """False only for a SQLite file that is not there (other databases are assumed to be)."""
    path = sqlite_path(url)
    return path is None or path.exists()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _connect_args(url: str, busy_timeout: float = 30.0) -> dict[str, Any]:
    if make_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": busy_timeout}}
    return {}


def _transactional_sqlite(engine: Any, busy_timeout: float) -> None:
    """SQLite DDL inside the transaction (pysqlite would run it outside), the write lock taken
    at BEGIN, and foreign keys left off: copying a table in batch mode must not cascade."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
