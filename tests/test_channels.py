"""Channel configuration: validation errors name the channel and field; approvers come from it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.channels import ChannelDirectory, ConfigFileError, parse_config
from tests.harness import ALICE, BOB, Harness
from tests.test_e2e_approvals import approve, pause_for_approval

CONFIG = """
agent_base: "http://127.0.0.1:9/agents/{agent_id}"
defaults:
  approvers: [requester]
  approval_timeout: 3600
channels:
  C0OPS:
    name: ops
    agent: ops-agent
    approvers: [U0LEAD, S0ONCALL]
    approval_timeout: 60
"""


def test_channel_settings_over_defaults() -> None:
    directory = ChannelDirectory(
        parse_config(CONFIG, "cfg.yaml"), default_agent_url="http://127.0.0.1:9/", agent_headers={}
    )
    ops = directory.policy("C0OPS")
    assert ops.agent.url == "http://127.0.0.1:9/agents/ops-agent" and ops.agent.name == "ops-agent"
    assert ops.approvers == ("U0LEAD", "S0ONCALL") and ops.approval_timeout == 60
    other = directory.policy("C0ELSE")
    assert other.agent.url == "http://127.0.0.1:9/"  # the default agent
    assert other.approvers == ("requester",) and other.approval_timeout == 3600


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("channels:\n  C1:\n    approval_timeout: soon\n", "channels.C1.approval_timeout"),
        ("channels:\n  C1:\n    approvers: [alice]\n", "channels.C1.approvers"),
        ("channels:\n  C1:\n    colour: blue\n", "channels.C1.colour"),
        ("agent_base: http://x/agents\n", "agent_base: Value error, must contain {agent_id}"),
        ("channels: [C1\n", "YAML syntax error at line"),
    ],
)
def test_bad_config_names_channel_and_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigFileError) as err:
        parse_config(text, "cfg.yaml")
    assert str(err.value).startswith("cfg.yaml: ") and expected in str(err.value)


def test_bad_config_stops_the_service(tmp_path: Path) -> None:
    bad = tmp_path / "channels.yaml"
    bad.write_text("channels:\n  C0OPS:\n    approvers: [nobody]\n")
    env = {
        "SLACK_BOT_TOKEN": "xoxb-x",
        "SLACK_SIGNING_SECRET": "s",
        "ORCH_CONFIG": str(bad),
        "ORCH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", "--http", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "channels.C0OPS.approvers" in done.stderr and "'nobody'" in done.stderr


async def test_configured_user_group_may_approve(harness: Harness, tmp_path: Path) -> None:
    config = tmp_path / "channels.yaml"
    config.write_text("defaults:\n  approvers: [S0ONCALL]\n")
    harness.slack.usergroups["S0ONCALL"] = [BOB]
    thread_ts = await pause_for_approval(harness, "interrupt-outcome", ORCH_CONFIG=str(config))
    await approve(harness, thread_ts, user=ALICE)  # the requester is not in the group
    await harness.rt.engine.drain()
    await asyncio.sleep(0.2)
    assert harness.agent.resumes == 0
    notes = [c.params.get("text", "") for c in harness.slack.calls_to("response_url")]
    assert any(f"Only <@{BOB}> can answer" in n for n in notes)
    row = await harness.row(thread_ts)
    await approve(harness, thread_ts, user=BOB)
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    assert harness.agent.resumes == 1
    assert (await harness.interrupts(thread_ts))[0].answered_by == BOB
