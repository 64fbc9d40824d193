"""Socket Mode acknowledges a delivery only once it is stored, and malformed envelopes never take
the service down (fuzzed with Hypothesis)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.ids import conversation_id
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator
from persistence.store import Store
from tests.harness import ALICE, CHANNEL, until
from tests.service_process import ServiceProcess
from tests.test_malformed_requests import shapes
from tests.test_socket_mode import answer_shown


async def test_a_mention_is_acked_over_the_socket_only_once_stored(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    agent.token_delay = 0.05
    db = tmp_path / "o.db"
    service = ServiceProcess(slack, agent, db, "answer", socket_mode=True)
    await service.start()
    store = await Store.open(f"sqlite+aiosqlite:///{db}", check_writable=False)
    try:
        for n in range(3):
            mention = slack.post_user_message(CHANNEL, ALICE, f"hello {n}", mention=True)
            await slack.push_event(mention)
            thread_id = conversation_id(slack.team_id, CHANNEL, mention["ts"])
            stored = await store.get_thread(thread_id)  # read the moment the ack arrived
            assert stored is not None and stored.state in ("streaming", "done")
        await until(lambda: "Hello from test-agent!" in answer_shown(slack, mention["ts"]))
    finally:
        await store.close()
        service.stop()


async def test_fuzzed_envelopes_over_the_socket_leave_the_service_answering(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> None:
    service = ServiceProcess(slack, agent, tmp_path / "o.db", "answer", socket_mode=True)
    await service.start()
    try:
        await _fuzz(slack)
        mention = slack.post_user_message(CHANNEL, ALICE, "still there?", mention=True)
        await slack.push_event(mention)
        await until(lambda: "Hello from test-agent!" in answer_shown(slack, mention["ts"]))
        assert service.proc is not None and service.proc.poll() is None
        logged = service.log_path.read_text()
        assert "Traceback" not in logged, logged[logged.find("Traceback") - 300 :][:3000]
    finally:
        service.stop()


async def _fuzz(slack: SlackEmulator) -> None:
    """Hypothesis draws the envelopes (its runner is synchronous); each is pushed in turn."""
    drawn: list[tuple[dict[str, Any], bool]] = []

    @settings(max_examples=60, deadline=None, database=None)
    @given(body=shapes, interactive=st.booleans())
    def draw(body: dict[str, Any], interactive: bool) -> None:
        drawn.append((body, interactive))

    draw()
    for body, interactive in drawn:
        with contextlib.suppress(TimeoutError):  # a refused envelope is not acked
            kind = "interactive" if interactive else "events_api"
            await slack.socket_mode.push(kind, body, wait=0.5)
