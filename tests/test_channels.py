"""Channel configuration: validation errors name the channel and field; approvers come from it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.config.channels import ChannelDirectory, ConfigFileError, parse_config
from orchestrator.config.settings import Settings
from orchestrator.service.runtime import channel_directory
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
        (
            "channels:\n  C1:\n    name: ops\n    colour: blue\n",
            "channels.C1 (ops).colour: unknown key; expected one of: name, agent, approvers",
        ),
        ("colour: blue\n", "colour: unknown key; expected one of: agent_base, agents"),
        (
            "agents:\n  a:\n    url: http://x/a\n    auth: {token: t}\n",
            "agents.a.auth.token: unknown key; expected one of: bearer, oauth2",
        ),
        (
            "channels:\n  C1:\n    name: ops\n    listen: {bots: always}\n",
            "channels.C1 (ops).listen.bots: Input should be 'mention', 'message' or 'off'",
        ),
        (
            "channels:\n  C1:\n    agent: ops-agent\n",
            "channels.C1.agent: 'ops-agent' is an agent id, but there is no agent_base",
        ),
        ("defaults:\n  agent: helper\n", "defaults.agent: 'helper' is an agent id"),
        ("agents:\n  ops: {history: server}\n", "agents.ops.url: missing, and there is no"),
        ("agents:\n  ops: {url: ftp://x}\n", "agents.ops.url: must be an http:// or https://"),
        ("agents:\n  ops: {url: http://x, history: both}\n", "agents.ops.history: Input should"),
        (
            "agents:\n  ops:\n    url: http://x\n    auth:\n      bearer: ${NOPE_TOKEN}\n",
            "agents.ops.auth.bearer: environment variable NOPE_TOKEN is not set",
        ),
        (
            "agents:\n  ops:\n    url: http://x\n    auth: {bearer: b, oauth2: {token_url: "
            "http://t, client_id: i, client_secret: s}}\n",
            "agents.ops.auth: give exactly one of bearer or oauth2",
        ),
        (
            "agents:\n  ops:\n    url: http://x\n    auth:\n      oauth2: {client_id: i}\n",
            "agents.ops.auth.oauth2.token_url: Field required",
        ),
        ("channels:\n  ops:\n    agent: http://x\n", "channels.ops: not a channel id"),
        ("channels:\n  C1:\n    max_bot_runs: 0\n", "channels.C1.max_bot_runs: Input should"),
        ("agent_base: http://x/agents\n", "agent_base: must contain {agent_id}"),
        (
            "defaults:\n  suggested_prompts:\n" + "    - {title: t, message: m}\n" * 5,
            "defaults.suggested_prompts: List should have at most 4 items",
        ),
        (
            "defaults:\n  suggested_prompts: [{title: t}]\n",
            "defaults.suggested_prompts.0.message: Field required",
        ),
        ("channels: [C1\n", "YAML syntax error at line"),
        ("- just a list\n", "expected a mapping of settings at the top level"),
    ],
)
def test_bad_config_names_channel_and_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigFileError) as err:
        parse_config(text, "cfg.yaml", env={})
    assert str(err.value).startswith("cfg.yaml: ") and expected in str(err.value)


def test_suggested_prompts_come_from_the_channel_else_the_defaults() -> None:
    text = (
        "defaults:\n  suggested_prompts: [{title: Status, message: 'How are things?'}]\n"
        "channels:\n  D0ALICE:\n    suggested_prompts: [{title: Mine, message: My own}]\n"
    )
    directory = ChannelDirectory(
        parse_config(text, "cfg.yaml"), default_agent_url="http://127.0.0.1:9/", agent_headers={}
    )
    assert directory.policy("D0ALICE").suggested_prompts == (("Mine", "My own"),)
    assert directory.policy("D0BOB").suggested_prompts == (("Status", "How are things?"),)


def test_every_problem_is_reported_at_once() -> None:
    text = "channels:\n  C1:\n    colour: blue\n  C2:\n    listen: {humans: loud}\n"
    with pytest.raises(ConfigFileError) as err:
        parse_config(text, "cfg.yaml", env={})
    assert "channels.C1.colour" in str(err.value) and "channels.C2.listen.humans" in str(err.value)


def test_listen_rules_and_bot_limit_over_defaults() -> None:
    text = """
defaults:
  listen: {bots: mention}
  max_bot_runs: 2
channels:
  C0ALL:
    listen: {humans: message, bots: off}
  C0QUIET:
    listen: {humans: off}
    max_bot_runs: 7
"""
    directory = ChannelDirectory(
        parse_config(text, "cfg.yaml"), default_agent_url="http://127.0.0.1:9/", agent_headers={}
    )
    every = directory.policy("C0ALL")
    assert (every.listen_humans, every.listen_bots, every.max_bot_runs) == ("message", "off", 2)
    quiet = directory.policy("C0QUIET")
    assert (quiet.listen_humans, quiet.listen_bots, quiet.max_bot_runs) == ("off", "mention", 7)
    plain = ChannelDirectory(
        parse_config("", "cfg.yaml"), default_agent_url="http://127.0.0.1:9/", agent_headers={}
    ).policy("C0ANY")
    assert (plain.listen_humans, plain.listen_bots, plain.max_bot_runs) == ("mention", "off", 5)


async def test_agents_with_auth_and_env_references() -> None:
    text = """
agent_base: "http://127.0.0.1:9/agents/{agent_id}"
agents:
  ops-agent:
    history: server
    auth: {bearer: "${OPS_TOKEN}"}
    headers: {CF-Access-Client-Id: "${CF_ID}", CF-Access-Client-Secret: "${CF_SECRET}"}
  direct:
    url: http://127.0.0.1:9/direct
defaults:
  agent: direct
channels:
  C0OPS: {name: ops, agent: ops-agent}
  C0URL: {agent: "http://127.0.0.1:9/by-url"}
"""
    env = {"OPS_TOKEN": "tok-s3cret", "CF_ID": "cf-id", "CF_SECRET": "cf-s3cret"}
    config = parse_config(text, "cfg.yaml", env=env)
    directory = ChannelDirectory(
        config, default_agent_url="http://127.0.0.1:9/", agent_headers={"X-Default": "d"}
    )
    ops = directory.agent("C0OPS")
    assert ops.url == "http://127.0.0.1:9/agents/ops-agent" and ops.history == "server"
    assert ops.origin == "channels.C0OPS.agent"
    assert await ops.request_headers() == {
        "Authorization": "Bearer tok-s3cret",
        "CF-Access-Client-Id": "cf-id",
        "CF-Access-Client-Secret": "cf-s3cret",
    }
    fallback = directory.agent("C0ELSE")
    assert fallback.name == "direct" and fallback.origin == "defaults.agent"
    assert await fallback.request_headers() == {}
    by_url = directory.agent("C0URL")
    assert by_url.url == "http://127.0.0.1:9/by-url"
    assert await by_url.request_headers() == {"X-Default": "d"}
    assert {t.url for t in directory.targets()} == {
        "http://127.0.0.1:9/direct",
        "http://127.0.0.1:9/agents/ops-agent",
        "http://127.0.0.1:9/by-url",
    }
    shown = " ".join(repr(x) for x in (config, directory.policy("C0OPS"), ops, *config.agents))
    assert "s3cret" not in shown and "tok-" not in shown


def test_a_doubled_dollar_keeps_a_literal_reference() -> None:
    text = """
agents:
  ops:
    url: http://127.0.0.1:9/ops
    headers: {X-Template: "$${NOT_A_VAR}-${CF_ID}", X-Price: "$5"}
channels:
  C0OPS: {agent: ops}
"""
    config = parse_config(text, "cfg.yaml", env={"CF_ID": "cf-id"})
    headers = {k: v.get_secret_value() for k, v in config.agents["ops"].headers.items()}
    assert headers == {"X-Template": "${NOT_A_VAR}-cf-id", "X-Price": "$5"}


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
        [sys.executable, "-m", "orchestrator", "run", "--http", "--port", "0"],
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


def test_errors_and_reprs_never_show_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigFileError) as err:
        parse_config("agents:\n  a:\n    auth: {bearer: s3cret-tok]\n", "cfg.yaml", env={})
    assert "YAML syntax error at line 3" in str(err.value) and "s3cret" not in str(err.value)
    with pytest.raises(ConfigFileError) as err:
        parse_config("agents:\n  a:\n    auth:\n      bearer: [s3cret-tok]\n", "cfg.yaml", env={})
    assert "agents.a.auth.bearer" in str(err.value) and "s3cret" not in str(err.value)
    inline = "agents:\n  a:\n    url: http://x\n    auth: {bearer: s3cret-tok}\n"
    monkeypatch.setenv("SLACK_INTEGRATION_BOT_CONFIG", inline)
    settings = Settings(AGENT_BEARER_TOKEN="s3cret-default")
    assert "s3cret" not in repr(settings)
    directory = channel_directory(settings)
    assert directory.config.agents["a"].auth is not None
    assert "s3cret" not in repr(directory.config) + repr(directory.targets())
