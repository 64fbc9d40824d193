"""Schema migrations: a database of release 0.1.0 is upgraded and keeps working, on SQLite and
on the PostgreSQL server of this machine; the migrations match the models; replicas upgrade
one at a time; a database this release cannot handle is refused with a clear message."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from orchestrator.sandbox.agent_requests import last_user_text
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator, render_text
from persistence import schema_upgrade
from persistence.models import Base
from renderers.common import ACTION_APPROVE
from tests.databases import fresh_database
from tests.harness import ALICE, Harness, actions_of, until
from tests.release_0_1_0 import create_schema, database_of_release_0_1_0, fixture
from tests.test_e2e_approvals import answers

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(request.param, tmp_path) as database:
        yield database


async def execute(url: str, sql: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def scalar(url: str, sql: str) -> object:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql))
    finally:
        await engine.dispose()


async def test_a_database_of_release_0_1_0_is_upgraded_and_its_form_and_queue_still_work(
    url: str, slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    values = await database_of_release_0_1_0(url, slack)
    thread_ts, form_ts = values["TS1"], values["TS5"]
    before = await schema_upgrade.current(url)
    assert before.legacy and before.behind
    assert "written by release 0.1.0" in before.describe()

    await schema_upgrade.upgrade(url)

    after = await schema_upgrade.current(url)
    assert after.current and not after.legacy
    harness = Harness(slack, agent, tmp_path / "unused.db")
    try:
        await harness.start("auto", ORCH_DATABASE_URL=url)
        form = next(m for m in harness.thread_messages(thread_ts) if m.ts == form_ts)
        response = await harness.click(
            form, ACTION_APPROVE, actions_of(form)[ACTION_APPROVE], values=answers("8", "go")
        )
        assert response.status_code == 200
        await until(lambda: len(agent.requests) >= 2)  # the resume, then the queued message
        await harness.settle(thread_ts, ("done",))
        queued = await harness.rt.store.queued(values["THREAD_ID"])
    finally:
        await harness.stop()

    resume, follow_up = (request.body for request in agent.requests)
    stored = fixture()["rows"]["interrupts"][0]
    assert resume["threadId"] == values["THREAD_ID"]
    assert resume["resume"] == [
        {
            "interruptId": stored["interrupt_id"],
            "status": "resolved",
            "payload": {"replicas": "8", "comment": "go"},
        }
    ]
    calls = [m for m in resume["messages"] if m["role"] == "assistant" and m.get("toolCalls")]
    assert calls[0]["toolCalls"][0]["function"]["name"] == "scale_deployment"
    assert last_user_text(follow_up) == "and then tell me a joke"
    assert queued == []
    form_now = next(m for m in harness.thread_messages(thread_ts) if m.ts == form_ts)
    assert f"Approved by <@{ALICE}>" in render_text(form_now)
    assert actions_of(form_now) == {}
    answers_shown = [m for m in harness.thread_messages(thread_ts) if "test-agent" in m.text]
    assert answers_shown, harness.thread_text(thread_ts)


def migrate_from_scratch(conn: Connection) -> None:
    config = schema_upgrade.alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def schema_of(conn: Connection) -> dict[str, object]:
    """Every table as the database describes it: columns (type, null, default), keys, indexes."""
    seen = inspect(conn)
    return {
        table: (
            sorted(  # in any order: a migration adds its columns at the end
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in seen.get_columns(table)
            ),
            seen.get_pk_constraint(table)["constrained_columns"],
            sorted((i["name"], i["column_names"], i["unique"]) for i in seen.get_indexes(table)),
            sorted((u["name"], u["column_names"]) for u in seen.get_unique_constraints(table)),
            sorted(
                (f["name"], f["constrained_columns"], f["referred_table"], f["referred_columns"])
                for f in seen.get_foreign_keys(table)
            ),
        )
        for table in sorted(seen.get_table_names())
    }


async def test_the_migrations_from_scratch_give_the_schema_of_the_models(url: str) -> None:
    def differences(conn: Connection) -> list[object]:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrate_from_scratch)
        async with engine.connect() as conn:
            assert await conn.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_an_empty_database_gets_the_schema_the_migrations_make(url: str) -> None:
    """A new database gets the models' tables and the head revision, without Alembic: the
    same tables, columns, keys and indexes as the migrations make, and Alembic sees it at head."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrate_from_scratch)
        async with engine.connect() as conn:
            migrated = await conn.run_sync(schema_of)
        async with engine.begin() as conn:  # empty again
            cascade = " CASCADE" if conn.dialect.name == "postgresql" else ""
            for table in migrated:
                await conn.execute(text(f"DROP TABLE {table}{cascade}"))
    finally:
        await engine.dispose()

    before, after = await schema_upgrade.upgrade(url)
    assert before.empty and after.current

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(schema_of) == migrated
            context = await conn.run_sync(MigrationContext.configure)
            assert await conn.run_sync(lambda _: context.get_current_revision()) == (
                schema_upgrade.head_revision()
            )
    finally:
        await engine.dispose()
    # Release 0.1.0 checks this row: it refuses a schema newer than its own, rather than
    # failing on its first write.
    marked = await scalar(url, "SELECT value FROM orchestrator_meta")
    assert marked == schema_upgrade.head_revision() != schema_upgrade.LEGACY_VERSION


async def test_replicas_upgrading_together_take_turns(url: str, slack: SlackEmulator) -> None:
    await database_of_release_0_1_0(url, slack)
    results = await asyncio.gather(*(schema_upgrade.upgrade(url) for _ in range(4)))
    upgraded = [before for before, _after in results if not before.current]
    assert len(upgraded) == 1  # the others found it done when their turn came
    assert all(after.current for _before, after in results)
    assert await scalar(url, "SELECT count(*) FROM alembic_version") == 1
    assert await scalar(url, "SELECT count(*) FROM queued_messages") == 1


async def test_a_database_upgraded_by_a_newer_release_is_refused(url: str) -> None:
    await schema_upgrade.upgrade(url)
    await execute(url, "UPDATE alembic_version SET version_num = '9999'")
    state = await schema_upgrade.current(url)
    assert not state.known and not state.behind
    assert "a newer release upgraded it" in state.describe()
    with pytest.raises(schema_upgrade.SchemaError, match="a newer release upgraded it"):
        await schema_upgrade.upgrade(url)


async def test_tables_without_a_schema_version_are_refused(url: str) -> None:
    await create_schema(url)
    await execute(url, "DELETE FROM orchestrator_meta")
    with pytest.raises(schema_upgrade.SchemaError, match="older than release 0.1.0"):
        await schema_upgrade.current(url)
    with pytest.raises(schema_upgrade.SchemaError, match="older than release 0.1.0"):
        await schema_upgrade.upgrade(url)


async def test_reading_the_state_of_a_missing_sqlite_file_does_not_create_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nowhere" / "orchestrator.db"
    state = await schema_upgrade.current(f"sqlite+aiosqlite:///{path}")
    assert state.empty
    assert not path.parent.exists()


async def test_an_uncreatable_database_directory_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(schema_upgrade.SchemaError, match=f"cannot create the directory {blocker}"):
        await schema_upgrade.upgrade(f"sqlite+aiosqlite:///{blocker}/sub/orchestrator.db")


def test_the_revisions_named_in_the_code_are_the_shipped_migrations_in_order() -> None:
    """`schema_upgrade.REVISIONS` lets a start read where a database stands without Alembic;
    a new migration must be named there too."""
    scripts = ScriptDirectory.from_config(schema_upgrade.alembic_config())
    walked = [script.revision for script in scripts.walk_revisions()]  # newest first
    assert tuple(reversed(walked)) == schema_upgrade.REVISIONS
    assert scripts.get_current_head() == schema_upgrade.head_revision()


async def test_a_database_recording_two_revisions_is_refused(url: str) -> None:
    await schema_upgrade.upgrade(url)
    await execute(url, "INSERT INTO alembic_version VALUES ('0002')")
    with pytest.raises(schema_upgrade.SchemaError, match="several schema revisions"):
        await schema_upgrade.current(url)


@pytest.mark.parametrize("database", ["new", "up to date"])
async def test_a_sqlite_start_imports_no_alembic_unless_the_schema_must_change(
    tmp_path: Path, database: str
) -> None:
    """Nor PostgreSQL's dialect and driver, a SQLite store's writes included."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}"
    if database == "up to date":
        await schema_upgrade.upgrade(url)
    script = (
        "import asyncio, sys\n"
        "from persistence.store import Store\n"
        "async def start():\n"
        f"    store = await Store.open({url!r})\n"
        "    row = store.new_thread('t', team_id='T', channel_id='C', thread_ts='1', state='')\n"
        "    await store.transition(row, to_state='streaming', trigger='message')\n"
        "    await store.set_open_task('t', None)\n"  # an upsert
        "    await store.close()\n"
        "asyncio.run(start())\n"
        "unused = ('alembic', 'mako', 'asyncpg', 'sqlalchemy.dialects.postgresql')\n"
        "print(sorted(m for m in sys.modules if m.startswith(unused)))\n"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0
    assert out.decode().strip() == "[]"
