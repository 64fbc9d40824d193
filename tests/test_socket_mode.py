"""`orchestrator run` in Socket Mode: the real service as a subprocess, Slack's WebSocket side
in the emulator (`apps.connections.open`, envelopes pushed, acks awaited)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator, StoredMessage, render_text
from renderers.common import ACTION_APPROVE
from tests.harness import ALICE, CHANNEL, actions_of, until
from tests.service_process import ServiceProcess
from tests.test_restart import approval_click


def answer_shown(slack: SlackEmulator, thread_ts: str) -> str:
    return "\n".join(render_text(m) for m in slack.thread(CHANNEL, thread_ts) if m.bot_id)


async def test_a_mention_over_the_socket_is_acked_and_answered_once(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    service = ServiceProcess(slack, agent, tmp_path / "o.db", "answer", socket_mode=True)
    await service.start()
    try:
        mention = slack.post_user_message(CHANNEL, ALICE, "hello over the socket", mention=True)
        ack = await slack.push_event(mention, event_id="EvSocket")
        await until(lambda: "Hello from test-agent!" in answer_shown(slack, mention["ts"]))
        retried = await slack.push_event(mention, event_id="EvSocket", retry_attempt=1)
        await until(lambda: len(slack.socket_mode.acks) == 2)
    finally:
        service.stop()

    assert ack["envelope_id"] and retried["envelope_id"] != ack["envelope_id"]
    assert slack.socket_mode.connections == 1
    assert len(agent.requests) == 1
    assert agent.requests[0].body["messages"][-1]["content"] == "hello over the socket"
    assert len([m for m in slack.thread(CHANNEL, mention["ts"]) if m.bot_id]) == 1


async def test_an_approval_clicked_over_the_socket_resumes_the_agent(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    service = ServiceProcess(slack, agent, tmp_path / "o.db", "interrupt-outcome", socket_mode=True)
    await service.start()
    try:
        mention = slack.post_user_message(CHANNEL, ALICE, "please scale web", mention=True)
        await slack.push_event(mention)
        await until(lambda: bool(forms(slack, mention["ts"])), wait=15)
        await slack.push_action(approval_click(slack, mention["ts"], "8", "over the socket"))
        await until(lambda: agent.resumes == 1, wait=15)
        await until(lambda: "Approved by" in answer_shown(slack, mention["ts"]), wait=15)
    finally:
        service.stop()

    assert agent.requests[-1].body["resume"][0]["payload"] == {
        "replicas": 8,
        "comment": "over the socket",
    }


def forms(slack: SlackEmulator, thread_ts: str) -> list[StoredMessage]:
    return [m for m in slack.thread(CHANNEL, thread_ts) if ACTION_APPROVE in actions_of(m)]


async def test_a_wrong_app_token_stops_the_start_with_what_to_fix(
    slack: SlackEmulator, tmp_path: Path
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": "xoxb-sandbox",
        "SLACK_APP_TOKEN": "xapp-1-not-the-right-one",
        "SLACK_API_URL": slack.api_url,
        "AGENT_URL": "http://127.0.0.1:9/agent",
        "ORCH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'o.db'}",
    }
    done = await asyncio.to_thread(  # the emulator answers on this test's loop meanwhile
        subprocess.run,
        [sys.executable, "-m", "orchestrator", "run", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert "Socket Mode" in done.stderr and "invalid_auth" in done.stderr
    assert "SLACK_APP_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr
    assert "not-the-right-one" not in done.stderr
