"""`orchestrator db upgrade|current`: the schema of the database in ORCH_DATABASE_URL.

`upgrade` applies the migrations this release ships (creating the schema in an empty
database), in one transaction; several processes upgrading at once take turns. `current` only
reads, and exits 1 when the database is not at this release's revision, so scripts can run
`orchestrator db current || orchestrator db upgrade`.
"""

from __future__ import annotations

from orchestrator.config.settings import Settings
from persistence import schema_upgrade


async def upgrade_database(settings: Settings) -> int:
    before, after = await schema_upgrade.upgrade(
        settings.database_url, busy_timeout=settings.database_busy_timeout
    )
    if before.current:
        print(f"{after.where}: already at revision {after.revision}; nothing to do")
    elif before.empty:
        print(f"{after.where}: created at revision {after.revision}")
    else:
        release = " (release 0.1.0)" if before.legacy else ""
        print(
            f"{after.where}: upgraded from revision {before.revision}{release} to {after.revision}"
        )
    return 0


async def database_revision(settings: Settings) -> int:
    state = await schema_upgrade.current(settings.database_url)
    print(state.describe())
    return 0 if state.current else 1
