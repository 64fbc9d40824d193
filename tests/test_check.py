"""`orchestrator check` as an operator runs it: a subprocess, one line per check, an exit code."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator
from tests.token_endpoint import TokenEndpoint


@pytest.fixture
async def token_endpoint() -> AsyncIterator[TokenEndpoint]:
    endpoint = TokenEndpoint()
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def check(tmp_path: Path, **env: str) -> tuple[int, list[str]]:
    """Runs `orchestrator check` while this event loop keeps serving the sandbox servers."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orchestrator",
        "check",
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    assert err.decode() == "", err.decode()
    return process.returncode, out.decode().splitlines()


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "channels.yaml"
    path.write_text(text)
    return str(path)


async def test_good_configuration_passes_every_check(
    slack: SlackEmulator, agent: ScriptedAgent, token_endpoint: TokenEndpoint, tmp_path: Path
) -> None:
    config = config_file(
        tmp_path,
        f"""
agent_base: "{agent.base_url}/agents/{{agent_id}}"
agents:
  secured:
    url: "{agent.url("answer")}"
    auth:
      oauth2:
        token_url: "{token_endpoint.url}"
        client_id: {token_endpoint.client_id}
        client_secret: ${{CLIENT_SECRET}}
defaults: {{agent: answer}}
channels:
  C0OPS: {{name: ops, agent: secured}}
  C0DEV: {{agent: tools}}
""",
    )
    code, lines = await check(
        tmp_path,
        ORCH_CONFIG=config,
        CLIENT_SECRET=token_endpoint.client_secret,
        SLACK_BOT_TOKEN=slack.token,
        SLACK_API_URL=slack.api_url,
    )
    assert code == 0, lines
    assert lines[-1] == "all checks passed"
    checks = lines[:-1]
    assert [line.split(":")[0] for line in checks] == [
        "ok    settings",
        "ok    config",
        "ok    machine",
        "ok    database",
        "ok    agent answer (defaults.agent)",
        "ok    agent secured (agents.secured)",
        "ok    agent tools (channels.C0DEV.agent)",
        "ok    slack auth.test",
    ]
    assert f"{config}: 2 channels, 1 agents" in checks[1]
    assert checks[3].endswith("orchestrator.db: schema version 2, writable")
    assert "answered HTTP 405 to a GET (no run started), credentials obtained" in checks[5]
    assert "bot sandbox-bot (UBOT) in Sandbox (T0SANDBOX)" in checks[7]
    assert agent.requests == []  # no run was started
    assert token_endpoint.issued == ["access-1"]
    assert token_endpoint.client_secret not in "\n".join(lines)


async def test_down_agent_and_refused_credentials_fail_and_say_which(
    agent: ScriptedAgent, token_endpoint: TokenEndpoint, tmp_path: Path
) -> None:
    down = f"http://127.0.0.1:{closed_port()}/agents/ops"
    config = config_file(
        tmp_path,
        f"""
agents:
  secured:
    url: "{agent.url("answer")}"
    auth:
      oauth2: {{token_url: "{token_endpoint.url}", client_id: x, client_secret: wrong}}
defaults: {{agent: "{agent.url("answer")}"}}
channels:
  C0OPS: {{name: ops, agent: "{down}"}}
  C0SEC: {{agent: secured}}
""",
    )
    code, lines = await check(tmp_path, ORCH_CONFIG=config)
    assert code == 1, lines
    failed = [line for line in lines if line.startswith("FAIL")]
    assert failed == [
        f"FAIL  agent secured (agents.secured): The agent's credentials could not be obtained: "
        f"The token endpoint {token_endpoint.url} answered HTTP 401 "
        "(invalid_client: Client authentication failed).",
        f"FAIL  agent {down} (channels.C0OPS.agent): {down} did not answer (ConnectError)",
    ]
    assert "skip  slack auth.test: SLACK_BOT_TOKEN is not set" in lines
    assert lines[-1] == "2 of 8 checks failed"


async def test_bad_configuration_fails_the_check_and_names_the_field(tmp_path: Path) -> None:
    config = config_file(tmp_path, "channels:\n  C0OPS:\n    name: ops\n    listen: {bots: all}\n")
    code, lines = await check(tmp_path, ORCH_CONFIG=config, ORCH_MACHINE=str(tmp_path / "no.yaml"))
    assert code == 1
    assert lines[1].startswith("FAIL  config: ")
    assert (
        "channels.C0OPS (ops).listen.bots: Input should be 'mention', 'message' or 'off'"
        in (lines[1])
    )
    assert lines[2].startswith("FAIL  machine: ")


async def test_the_socket_mode_token_is_checked_when_given(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    base = {
        "AGENT_URL": agent.url("answer"),
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_API_URL": slack.api_url,
    }
    code, lines = await check(tmp_path, **base, SLACK_APP_TOKEN=slack.app_token)
    assert code == 0, lines
    assert "ok    slack socket mode: the app-level token opens a connection" in lines

    code, lines = await check(tmp_path, **base, SLACK_APP_TOKEN=slack.token)  # the bot token
    assert code == 1, lines
    [failed] = [line for line in lines if line.startswith("FAIL")]
    assert failed.startswith("FAIL  slack socket mode: Slack answered 'not_allowed_token_type'")
    assert "xapp-" in failed and slack.token not in failed


async def test_a_database_of_another_release_fails_the_check(
    agent: ScriptedAgent, tmp_path: Path
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE orchestrator_meta (key TEXT PRIMARY KEY, value TEXT)")
        old.execute("INSERT INTO orchestrator_meta VALUES ('schema_version', '0')")
    code, lines = await check(
        tmp_path, AGENT_URL=agent.url("answer"), ORCH_DATABASE_URL=f"sqlite+aiosqlite:///{path}"
    )
    assert code == 1, lines
    [failed] = [line for line in lines if line.startswith("FAIL")]
    assert failed.startswith("FAIL  database: the database")
    assert "schema version '0'" in failed and "Back it up" in failed
