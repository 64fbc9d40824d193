"""The short chaos run of the suite: the real service killed with SIGKILL at random moments and at
named steps while threads, follow-ups and approvals go on, then the six invariants (see
`tests/chaos`; `python -m tests.chaos` runs the long version)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.databases import NoDatabase
from tests.chaos.report import print_run
from tests.chaos.run import Plan, one_run


async def test_a_short_chaos_run_on_sqlite_keeps_every_invariant(tmp_path: Path) -> None:
    figures = await one_run(0, Plan(threads=16, kills=3, spread=5.0), tmp_path)
    print_run(figures)
    assert figures.acked_messages > 0
    assert figures.kills_random + sum(figures.kills_named.values()) == 3
    assert figures.violations == {}


async def test_a_short_chaos_run_on_two_postgres_replicas_keeps_every_invariant(
    tmp_path: Path,
) -> None:
    plan = Plan(threads=12, kills=2, replicas=2, db="postgres", spread=5.0)
    try:
        figures = await one_run(0, plan, tmp_path)
    except NoDatabase as exc:
        pytest.skip(str(exc))
    print_run(figures)
    assert figures.acked_messages > 0
    assert figures.violations == {}
