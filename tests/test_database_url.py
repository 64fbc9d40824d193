"""ORCH_DATABASE_URL mistakes are named, with the URL to write instead (never the password)."""

from __future__ import annotations

import pytest

from persistence.database_url import DatabaseUrlError, check_database_url


@pytest.mark.parametrize(
    ("given", "write"),
    [
        ("sqlite:///./orchestrator.db", "write sqlite+aiosqlite:///./orchestrator.db"),
        ("sqlite+pysqlite:////data/o.db", "write sqlite+aiosqlite:////data/o.db"),
        ("postgresql://bot:s3cret@db:5432/orch", "write postgresql+asyncpg://bot:***@db:5432/orch"),
        ("postgres://bot:s3cret@db/orch", "write postgresql+asyncpg://bot:***@db/orch"),
        ("postgresql+psycopg2://bot@db/orch", "write postgresql+asyncpg://bot@db/orch"),
    ],
)
def test_a_url_without_the_async_driver_names_the_one_to_use(given: str, write: str) -> None:
    with pytest.raises(DatabaseUrlError, match="does not name the async driver") as caught:
        check_database_url(given)
    assert str(caught.value).endswith(write)
    assert "s3cret" not in str(caught.value)


def test_other_databases_and_non_urls_are_refused_with_examples() -> None:
    with pytest.raises(DatabaseUrlError, match=r"does not support \(mysql\); write sqlite\+aio"):
        check_database_url("mysql+aiomysql://bot:s3cret@db/orch")
    with pytest.raises(DatabaseUrlError, match="is not a database URL; write sqlite"):
        check_database_url("orchestrator.db")


@pytest.mark.parametrize(
    "given", ["sqlite+aiosqlite:///./orchestrator.db", "postgresql+asyncpg://bot:pw@db:5432/orch"]
)
def test_async_urls_pass(given: str) -> None:
    assert check_database_url(given).drivername.split("+")[1] in ("aiosqlite", "asyncpg")
