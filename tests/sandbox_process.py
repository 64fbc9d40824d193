"""`orchestrator sandbox` as a user runs it: a subprocess on a free port, its printed URL, and
Ctrl-C (SIGINT) to stop it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

START_WAIT = 90.0  # seconds the sandbox gets to print its URL on a busy machine
STOP_WAIT = 30.0
# Settings a developer's shell may carry that would change what the sandbox starts.
_CLEARED = ("AGENT_URL", "ORCH_CONFIG", "SLACK_INTEGRATION_BOT_CONFIG", "ORCH_DATABASE_URL")


class RunningSandbox:
    def __init__(self, proc: asyncio.subprocess.Process, lines: list[str], log: Path) -> None:
        self.proc = proc
        self.lines = lines
        self.log = log
        self.url = ""
        self.service_pid = 0

    def output(self) -> str:
        return "\n".join(self.lines) + "\n" + self.log.read_text(errors="replace")

    async def read_until_started(self) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(START_WAIT):
            while not self.lines or not self.lines[-1].startswith("Open the page"):
                line = await self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"the sandbox exited:\n{self.output()}")
                self.lines.append(line.decode().rstrip())
        text = "\n".join(self.lines)
        url = re.search(r"Sandbox: (http://127\.0\.0\.1:\d+/)", text)
        pid = re.search(r"\(pid (\d+)\)", text)
        assert url and pid, text
        self.url, self.service_pid = url.group(1), int(pid.group(1))

    async def interrupt(self) -> int:
        """Ctrl-C: the exit code once the sandbox is gone."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(STOP_WAIT):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode


@asynccontextmanager
async def sandbox_running(workdir: Path, *args: str, **env: str) -> AsyncIterator[RunningSandbox]:
    """`orchestrator sandbox --port 0 --db workdir/sandbox.db ARGS` with `env` over a clean one."""
    clean = {key: value for key, value in os.environ.items() if key not in _CLEARED}
    log = workdir / "sandbox-stderr.log"
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "orchestrator",
            "sandbox",
            "--port",
            "0",
            "--db",
            str(workdir / "sandbox.db"),
            *args,
            cwd=workdir,  # no .env of the developer's is read
            env={**clean, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    running = RunningSandbox(proc, [], log)
    try:
        await running.read_until_started()
        yield running
    finally:
        await running.interrupt()
