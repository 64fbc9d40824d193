"""`orchestrator --version`, `manifest` and `db upgrade|current`, run as an operator runs them."""

from __future__ import annotations

import logging
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from orchestrator.sandbox.slack_emulator import SlackEmulator
from orchestrator.service.refused_requests import RefusedRequests
from persistence.schema_upgrade import head_revision
from tests.release_0_1_0 import database_of_release_0_1_0

HEAD = head_revision()


def orchestrator(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version(tmp_path: Path) -> None:
    done = orchestrator(tmp_path, "--version")
    assert done.returncode == 0
    assert done.stdout == f"orchestrator {version('slack-thread-orchestrator')}\n"


def test_manifest_for_socket_mode_and_for_http(tmp_path: Path) -> None:
    socket = orchestrator(tmp_path, "manifest", "--socket", "--name", "Ops helper")
    assert socket.returncode == 0, socket.stderr
    manifest = yaml.safe_load(socket.stdout)
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["features"]["bot_user"]["display_name"] == "Ops helper"
    assert orchestrator(tmp_path, "manifest").stdout == orchestrator(
        tmp_path, "manifest", "--socket"
    ).stdout.replace("Ops helper", "Agent")

    http = orchestrator(tmp_path, "manifest", "--http", "https://bot.example.com")
    settings = yaml.safe_load(http.stdout)["settings"]
    assert settings["event_subscriptions"]["request_url"] == "https://bot.example.com/slack/events"
    assert settings["interactivity"]["request_url"] == "https://bot.example.com/slack/events"

    refused = orchestrator(tmp_path, "manifest", "--http", "http://bot.example.com")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: 'http://bot.example.com' is not an https URL")
    both = orchestrator(tmp_path, "manifest", "--socket", "--http", "https://bot.example.com")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


async def test_db_current_and_upgrade_on_a_database_of_release_0_1_0(
    slack: SlackEmulator, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}"
    await database_of_release_0_1_0(url, slack)
    env = {"ORCH_DATABASE_URL": url}

    before = orchestrator(tmp_path, "db", "current", **env)
    assert before.returncode == 1
    assert before.stdout == (
        f"{url}: revision 0001 (written by release 0.1.0, before migrations), behind this "
        f"release's {HEAD}; `orchestrator db upgrade` upgrades it\n"
    )
    upgraded = orchestrator(tmp_path, "db", "upgrade", **env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == f"{url}: upgraded from revision 0001 (release 0.1.0) to {HEAD}\n"
    after = orchestrator(tmp_path, "db", "current", **env)
    assert (after.returncode, after.stdout) == (
        0,
        f"{url}: revision {HEAD}, this release's (up to date)\n",
    )
    again = orchestrator(tmp_path, "db", "upgrade", **env)
    assert again.stdout == f"{url}: already at revision {HEAD}; nothing to do\n"


def test_db_current_creates_nothing_and_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "new" / "orchestrator.db"
    env = {"ORCH_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
    current = orchestrator(tmp_path, "db", "current", **env)
    assert current.returncode == 1
    assert "empty (no orchestrator tables)" in current.stdout
    assert not path.parent.exists()
    created = orchestrator(tmp_path, "db", "upgrade", **env)
    assert created.returncode == 0
    assert created.stdout.endswith(f": created at revision {HEAD}\n")


def test_refused_requests_are_logged_at_most_once_an_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    refusals = RefusedRequests(interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="orchestrator.http"):
        for at in (100.0, 101.0, 130.0, 159.0, 161.0, 162.0):
            now[0] = at
            refusals.refused(401, "/slack/events", "10.0.0.7")
    counts = [record.__dict__["refused_since_last_line"] for record in caplog.records]
    assert counts == [1, 4]  # at 100 s; at 161 s, for the three held back and this one
    assert all(record.__dict__["client"] == "10.0.0.7" for record in caplog.records)
