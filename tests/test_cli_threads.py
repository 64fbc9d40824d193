"""`orchestrator threads list/show` read what a real run persisted."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

from tests.harness import ALICE, Harness
from tests.test_e2e_approvals import approve, pause_for_approval


def cli(
    harness: Harness, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ORCH_DATABASE_URL": f"sqlite+aiosqlite:///{harness.db_path}",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "threads", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_list_and_show_an_answered_approval(harness: Harness) -> None:
    thread_ts = await pause_for_approval(harness, "interrupt-outcome")
    waiting = await harness.row(thread_ts)
    listed = json.loads(cli(harness, "list", "--state", "awaiting_approval", "--json").stdout)
    assert [t["id"] for t in listed] == [waiting.id]

    await approve(harness, thread_ts)
    await harness.settle(thread_ts, ("done",), min_version=waiting.version + 1)
    assert (
        "no threads in state awaiting_approval"
        in cli(harness, "list", "--state", "awaiting_approval").stdout
    )
    table = cli(harness, "list").stdout
    assert waiting.id in table and "done" in table

    shown = cli(harness, "show", waiting.id[:8])
    assert shown.returncode == 0
    assert "approval_submitted" in shown.stdout and f"by {ALICE}" in shown.stdout
    assert "approved by U0ALICE" in shown.stdout and '"replicas": 5' in shown.stdout
    data = json.loads(cli(harness, "show", waiting.id, "--json").stdout)
    assert data["state"] == "done"
    assert [h["trigger"] for h in data["history"]][-2:] == ["run_started", "run_finished"]
    assert data["interrupts"][0]["answered_by"] == ALICE

    missing = cli(harness, "show", "ffffffff")
    assert missing.returncode == 1 and "no thread" in missing.stderr


async def test_threads_commands_answer_while_the_service_holds_the_write_lock(
    harness: Harness,
) -> None:
    await harness.start("answer")
    thread_ts = await harness.mention("hello")
    row = await harness.settle(thread_ts, ("done",))
    writer = sqlite3.connect(harness.db_path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # as a service in the middle of a write
        env = {"ORCH_DATABASE_BUSY_TIMEOUT": "2"}
        listed = cli(harness, "list", "--json", env=env)
        shown = cli(harness, "show", row.id[:8], env=env)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert listed.returncode == 0, listed.stderr
    assert [t["id"] for t in json.loads(listed.stdout)] == [row.id]
    assert shown.returncode == 0 and "done" in shown.stdout, shown.stderr


async def test_show_needs_a_prefix_naming_one_thread(harness: Harness) -> None:
    await harness.start("answer")
    for text in ("one", "two"):
        await harness.settle(await harness.mention(text), ("done",))

    for prefix, said in (("", "more than one thread"), ("%", "no thread"), ("zz", "no thread")):
        shown = cli(harness, "show", prefix)
        assert shown.returncode == 1
        assert f"error: {said} with an id starting {prefix!r}" in shown.stderr


async def test_list_says_when_it_shows_only_the_newest(harness: Harness) -> None:
    await harness.start("answer")
    for text in ("one", "two", "three"):
        await harness.settle(await harness.mention(text), ("done",))

    listed = cli(harness, "list", "--json", "--limit", "2")
    assert listed.returncode == 0
    assert len(json.loads(listed.stdout)) == 2
    assert "showing the newest 2 threads; --limit shows more" in listed.stderr
    everything = cli(harness, "list", "--json")
    assert len(json.loads(everything.stdout)) == 3 and everything.stderr == ""
    assert cli(harness, "list", "--limit", "0").returncode == 2
