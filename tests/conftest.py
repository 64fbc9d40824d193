from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator
from tests.harness import CHANNEL, Harness

DATA = Path(__file__).parent / "data"


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(channels=[CHANNEL, "C0OTHER"])
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def agent() -> AsyncIterator[ScriptedAgent]:
    server = ScriptedAgent(name="test-agent", recordings_dir=DATA)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def harness(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path
) -> AsyncIterator[Harness]:
    h = Harness(slack, agent, tmp_path / "orchestrator.db")
    yield h
    await h.stop()
