"""A bot under test as a child process: started, waited for, measured from /proc, stopped."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import time
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SETTLE_STEP = 1.0
SETTLE_CPU = 0.02  # CPU seconds per step under which the process counts as idle
SETTLE_MAX = 30.0


def free_port() -> int:
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class BotProcess:
    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        port: int,
        workdir: Path,
        *,
        ready_path: str,
    ) -> None:
        self.name = name
        self.command = command
        # The working directory is the bot's own, so no `.env` of the caller's is read.
        self.env = {**os.environ, **env}
        self.port = port
        self.workdir = workdir
        self.ready_path = ready_path
        self.log_path = workdir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def token(self) -> str:
        return self.env["SLACK_BOT_TOKEN"]

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    async def start(self, wait: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command, env=self.env, cwd=self.workdir, stdout=log, stderr=log
            )
        deadline = time.monotonic() + wait
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
                try:
                    answer = await client.get(f"http://127.0.0.1:{self.port}{self.ready_path}")
                    if answer.status_code < 500:  # the plain bot answers GETs with 405
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.name} did not become ready: {self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def _proc_file(self, name: str) -> str:
        assert self.proc is not None
        return Path(f"/proc/{self.proc.pid}/{name}").read_text()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process (its threads included)."""
        fields = self._proc_file("stat").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def peak_rss_mb(self) -> float:
        for line in self._proc_file("status").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    async def idle(self) -> bool:
        """Whether the process used (almost) no CPU over the next SETTLE_STEP."""
        before = self.cpu_seconds()
        await asyncio.sleep(SETTLE_STEP)
        return self.cpu_seconds() - before < SETTLE_CPU

    async def settle(self) -> None:
        """Wait until the process is idle (what it does after the last Slack write counts)."""
        deadline = time.monotonic() + SETTLE_MAX
        before = self.cpu_seconds()
        while time.monotonic() < deadline:
            await asyncio.sleep(SETTLE_STEP)
            now = self.cpu_seconds()
            if now - before < SETTLE_CPU:
                return
            before = now

    async def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
