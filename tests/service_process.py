"""Run the real service (`orchestrator run`, over HTTP or in Socket Mode) as a subprocess, and
kill it with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator
from tests.harness import SECRET


def free_port() -> int:
    """A free port below the ephemeral range: a port the OS hands out for `bind(0)` can be taken
    by another program's server while a killed service is down, and answer in its place."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class ServiceProcess:
    def __init__(
        self,
        slack: SlackEmulator,
        agent: ScriptedAgent,
        db_path: Path,
        scenario: str,
        *,
        socket_mode: bool = False,
        args: tuple[str, ...] = (),
        **env: str,
    ) -> None:
        self.port = free_port()
        self.args = args
        self.socket_mode = socket_mode
        self.log_path = db_path.with_suffix(".log")
        self.env = {
            **os.environ,
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url,
            "AGENT_URL": agent.url(scenario),
            "ORCH_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
            "ORCH_UPDATE_INTERVAL": "0.05",
            "ORCH_SCHEDULER_INTERVAL": "0.2",
            "ORCH_SHUTDOWN_GRACE": "0",
            **({"SLACK_APP_TOKEN": slack.app_token} if socket_mode else {}),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "orchestrator",
                    "run",
                    *([] if self.socket_mode else ["--http"]),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=self.env,
                stdout=log,
                stderr=log,
            )

    async def start(self, wait: float = 60) -> None:
        self.proc = self._spawn()
        deadline = time.monotonic() + wait
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"service exited: {self.log_path.read_text()[-2000:]}")
                try:
                    ready = await client.get(f"http://127.0.0.1:{self.port}/readyz")
                    if ready.status_code == 200 and self.proc.poll() is None:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError("service did not become ready")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    async def terminate(self, wait: float = 30, *, signals: int = 1) -> int:
        """SIGTERM (`signals` times), as an orchestrator stops a service; the exit code once it
        is gone (the test's loop keeps serving the sandbox meanwhile)."""
        assert self.proc is not None
        proc, self.proc = self.proc, None
        for _ in range(signals):
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
        return await asyncio.to_thread(proc.wait, wait)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None
