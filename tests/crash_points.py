"""Helpers for tests that kill the real service at a named step (`orchestrator.kill_points`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator
from tests.service_process import ServiceProcess


class Killable(ServiceProcess):
    """The real service, armed to SIGKILL itself at `kill_at` (until `disarm`)."""

    def __init__(
        self,
        slack: SlackEmulator,
        agent: ScriptedAgent,
        db_path: Path,
        scenario: str,
        kill_at: str,
        **env: str,
    ) -> None:
        super().__init__(
            slack, agent, db_path, scenario, ORCH_TEST_HOOKS="1", ORCH_TEST_KILL_AT=kill_at, **env
        )

    def disarm(self) -> None:
        self.env.pop("ORCH_TEST_KILL_AT", None)

    async def died(self, wait: float = 20) -> None:
        """Wait until the armed step killed the process."""
        assert self.proc is not None
        deadline = time.monotonic() + wait
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError("the service did not reach its kill point")
            await asyncio.sleep(0.02)
        self.proc = None

    async def restart(self) -> None:
        self.disarm()
        await self.start()


def text_of(slack: SlackEmulator, channel: str, thread_ts: str) -> str:
    from orchestrator.sandbox.slack_emulator import render_text

    return "\n".join(render_text(m) for m in slack.thread(channel, thread_ts) if m.bot_id)
