"""An agent silent mid-stream for longer than the first-event timeout, but less than the idle
timeout, is waited for: the whole answer arrives (through the real service, whose shared agent
HTTP client must not cut the read first)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator
from tests.harness import ALICE, CHANNEL, SECRET, until
from tests.service_process import ServiceProcess
from tests.test_socket_mode import answer_shown


async def test_a_pause_longer_than_the_first_event_timeout_is_waited_for(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    agent.stall_seconds = 3.0
    service = ServiceProcess(
        slack,
        agent,
        tmp_path / "o.db",
        "stall",
        ORCH_AGENT_FIRST_EVENT_TIMEOUT="1",
        ORCH_AGENT_IDLE_TIMEOUT="30",
    )
    await service.start()
    try:
        mention = slack.post_user_message(CHANNEL, ALICE, "take your time", mention=True)
        response = await slack.deliver_event(service.events_url, SECRET, mention)
        assert response.status_code == 200
        await until(lambda: "Thinking very hard... done." in answer_shown(slack, mention["ts"]))
        assert "took too long" not in answer_shown(slack, mention["ts"])
        assert "went silent" not in answer_shown(slack, mention["ts"])
    finally:
        service.stop()
