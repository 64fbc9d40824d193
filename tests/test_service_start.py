"""`orchestrator run` says what it is doing: a line at start and at stop, refused requests, a
bot token Slack refuses, unknown variables; and it refuses a database that is behind."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator
from persistence import schema_upgrade
from persistence.schema_upgrade import head_revision
from tests.databases import fresh_postgres
from tests.harness import CHANNEL, SECRET
from tests.release_0_1_0 import create_schema
from tests.service_process import ServiceProcess

VERSION = version("slack-thread-orchestrator")


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


async def run_until_exit(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    """`orchestrator run ARGS` expected to stop on its own; (exit code, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orchestrator",
        "run",
        "--http",
        "--port",
        "0",
        *args,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SLACK_SIGNING_SECRET": SECRET,
            **env,
        },
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_start_and_stop_are_logged_with_what_the_service_is(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    service = ServiceProcess(
        slack, agent, tmp_path / "orchestrator.db", "answer", ORCH_LOG_FORMAT="json"
    )
    await service.start()
    assert await service.terminate() == 0
    lines = json_lines(service.log_path)
    [started] = [line for line in lines if line["msg"] == "started"]
    [stopped] = [line for line in lines if line["msg"] == "stopped"]
    assert started["version"] == VERSION == stopped["version"]
    assert started["mode"] == (
        f"HTTP, Slack's requests at http://127.0.0.1:{service.port}/slack/events"
    )
    assert started["database"] == f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}"
    assert started["machine"] == "thread.yaml (built in)"
    assert (started["config"], started["channels"]) == ("none", 0)
    assert started["agents"] == agent.url("answer")
    assert all(line["at"].endswith("+00:00") for line in lines)  # timestamps with a timezone


async def test_the_start_line_never_shows_the_database_password(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    async with fresh_postgres() as url:
        with_password = url.replace("://postgres@", "://postgres:s3cret@")
        service = ServiceProcess(
            slack,
            agent,
            tmp_path / "unused.db",
            "answer",
            ORCH_LOG_FORMAT="json",
            ORCH_DATABASE_URL=with_password,
        )
        await service.start()
        assert await service.terminate() == 0
    [started] = [line for line in json_lines(service.log_path) if line["msg"] == "started"]
    assert started["database"] == with_password.replace("s3cret", "***")
    assert "s3cret" not in service.log_path.read_text()


async def test_requests_with_a_bad_signature_are_logged_once_without_their_body(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    service = ServiceProcess(
        slack, agent, tmp_path / "orchestrator.db", "answer", ORCH_LOG_FORMAT="json"
    )
    await service.start()
    try:
        for _ in range(3):
            event = slack.post_user_message(CHANNEL, "U0ALICE", "private words", mention=True)
            response = await slack.deliver_event(service.events_url, "not-the-secret", event)
            assert response.status_code == 401
    finally:
        assert await service.terminate() == 0
    refused = [line for line in json_lines(service.log_path) if line["msg"] == "request refused"]
    assert len(refused) == 1  # then at most one line a minute
    assert refused[0]["level"] == "WARNING"
    assert refused[0]["status"] == 401 and refused[0]["path"] == "/slack/events"
    assert "SLACK_SIGNING_SECRET" in refused[0]["reason"]
    assert "private words" not in service.log_path.read_text()


async def test_a_bot_token_slack_refuses_stops_the_start(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    code, err = await run_until_exit(
        tmp_path,
        SLACK_BOT_TOKEN="xoxb-not-this-apps",
        SLACK_API_URL=slack.api_url,
        AGENT_URL=agent.url("answer"),
    )
    assert code == 2, err
    assert err.splitlines()[-1] == (
        "error: cannot start: Slack refused the bot token (invalid_auth): SLACK_BOT_TOKEN must "
        "be the app's Bot User OAuth Token (xoxb-…) from OAuth & Permissions, of an app "
        "installed in the workspace"
    )
    assert "Traceback" not in err


async def test_missing_scopes_and_unknown_variables_are_warned_at_start(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    slack.scopes.remove("mpim:history")
    service = ServiceProcess(
        slack,
        agent,
        tmp_path / "orchestrator.db",
        "answer",
        ORCH_LOG_FORMAT="json",
        ORCH_UPDATE_INTERVALS="2",
    )
    await service.start()
    assert await service.terminate() == 0
    warnings = [line["msg"] for line in json_lines(service.log_path) if line["level"] == "WARNING"]
    assert (
        "unknown setting ORCH_UPDATE_INTERVALS in the environment is ignored; did you mean "
        "ORCH_UPDATE_INTERVAL?"
    ) in warnings
    assert any(w.startswith("slack scopes: the bot token lacks mpim:history") for w in warnings)


async def test_a_database_of_release_0_1_0_is_refused_until_upgraded(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await create_schema(url)
    env = {
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_API_URL": slack.api_url,
        "AGENT_URL": agent.url("answer"),
        "ORCH_DATABASE_URL": url,
    }
    code, err = await run_until_exit(tmp_path, **env)
    assert code == 2, err
    assert err.splitlines()[-1] == (
        f"error: the database {url} is at schema revision 0001 (written by release 0.1.0) and "
        f"this release needs {head_revision()}. Back it up, then run "
        "`orchestrator db upgrade` (or start with `orchestrator run --upgrade`)."
    )
    assert (await schema_upgrade.current(url)).legacy  # left as it was

    service = ServiceProcess(slack, agent, tmp_path / "old.db", "answer", args=("--upgrade",))
    await service.start()
    assert await service.terminate() == 0
    assert (await schema_upgrade.current(url)).current


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (
            "sqlite:///./orchestrator.db",
            "ORCH_DATABASE_URL: Value error, ORCH_DATABASE_URL sqlite:///./orchestrator.db does "
            "not name the async driver the orchestrator needs (aiosqlite): write "
            "sqlite+aiosqlite:///./orchestrator.db",
        ),
        (
            "postgresql://bot:s3cret@db.example/orch",
            "ORCH_DATABASE_URL: Value error, ORCH_DATABASE_URL postgresql://bot:***@db.example/"
            "orch does not name the async driver the orchestrator needs (asyncpg): write "
            "postgresql+asyncpg://bot:***@db.example/orch",
        ),
    ],
)
async def test_a_database_url_without_the_async_driver_stops_the_start(
    tmp_path: Path, url: str, said: str
) -> None:
    code, err = await run_until_exit(tmp_path, SLACK_BOT_TOKEN="xoxb-x", ORCH_DATABASE_URL=url)
    assert code == 2
    assert err == f"error: invalid settings:\n  {said}\n"


async def test_a_database_directory_that_cannot_be_made_stops_the_start(
    slack: SlackEmulator, tmp_path: Path
) -> None:
    (tmp_path / "data").write_text("a file where the directory should be")
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'orchestrator.db'}"
    code, err = await run_until_exit(
        tmp_path, SLACK_BOT_TOKEN=slack.token, SLACK_API_URL=slack.api_url, ORCH_DATABASE_URL=url
    )
    assert code == 2
    assert err.splitlines()[-1].startswith(
        f"error: cannot create the directory {tmp_path / 'data'} of the database {url}: "
    )
    assert "Traceback" not in err
