"""The real service as a child process (`python -m orchestrator run --http`): started, killed
with SIGKILL and started again on the same database, its log lines kept for the page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

LOG_LINES_KEPT = 5000
READY_WAIT = 60.0  # seconds the service gets to answer /readyz
STOP_WAIT = 10.0  # seconds a SIGTERM gets before SIGKILL


class ServiceDidNotStart(RuntimeError):
    """The service exited, or never answered /readyz; the message carries its last log lines."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServiceChild:
    """`status` is `starting`, `running`, `restarting`, `exited` or `stopped`; `on_change` is
    told of every new status and log line."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        on_change: Callable[[], None],
        echo: Callable[[str], None],
    ) -> None:
        self.env = env
        self.port = free_port()
        self.status = "stopped"
        self.detail = ""
        self.restarts = 0
        self.logs: deque[dict[str, Any]] = deque(maxlen=LOG_LINES_KEPT)
        self._on_change = on_change
        self._echo = echo
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.base_url}/slack/events"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "detail": self.detail,
            "pid": self.pid,
            "restarts": self.restarts,
            "url": self.base_url,
        }

    async def start(self) -> None:
        self._set("starting" if self.restarts == 0 else "restarting")
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "orchestrator",
            "run",
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the sandbox, which stops it
        )
        self._spawn(self._read_logs(self._proc))
        await self._wait_ready(self._proc)
        self._spawn(self._watch_exit(self._proc))
        self._set("running", f"pid {self._proc.pid}")
        self._running.set()

    async def wait_running(self, within: float) -> bool:
        """Whether the service is running, or is within `within` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._running.wait()
        return self._running.is_set()

    async def restart(self) -> None:
        """SIGKILL, as a crash or an OOM kill would, then start again on the same database."""
        self.restarts += 1
        await self._end(signal.SIGKILL, wait=STOP_WAIT)
        self._log("sandbox", "the service was killed (SIGKILL) and is starting again")
        await self.start()

    async def stop(self) -> None:
        """SIGTERM (running answers get ORCH_SHUTDOWN_GRACE), then SIGKILL if it lingers."""
        await self._end(signal.SIGTERM, wait=STOP_WAIT)
        self._set("stopped")
        for task in list(self._tasks):
            task.cancel()

    async def _end(self, sig: signal.Signals, *, wait: float) -> None:
        proc, self._proc = self._proc, None
        self._running.clear()
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(sig)
        try:
            async with asyncio.timeout(wait):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def _wait_ready(self, proc: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + READY_WAIT
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if proc.returncode is not None:
                    break
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{self.base_url}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)  # its last lines
        tail = "\n".join(str(line.get("msg", "")) for line in list(self.logs)[-15:])
        self._set("exited", f"exit code {proc.returncode}" if proc.returncode is not None else "")
        raise ServiceDidNotStart(f"the service did not start:\n{tail}")

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self._proc is proc:  # not a kill or stop of ours
            self._running.clear()
            self._set("exited", f"exit code {code}")
            self._echo(f"the service exited (code {code}); the page's Restart starts it again")

    async def _read_logs(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            text = line.decode(errors="replace").rstrip("\n")
            if not text:
                continue
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                record = {"level": "OUTPUT", "logger": "stdout", "msg": text}
            record["pid"] = proc.pid
            self.logs.append(record)
            if record.get("level") in ("WARNING", "ERROR", "CRITICAL", "OUTPUT"):
                self._echo(f"service {record.get('level')}: {record.get('msg')}")
            self._on_change()

    def _log(self, logger: str, message: str) -> None:
        at = time.strftime("%Y-%m-%d %H:%M:%S")
        self.logs.append({"at": at, "level": "INFO", "logger": logger, "msg": message})
        self._on_change()

    def _set(self, status: str, detail: str = "") -> None:
        self.status, self.detail = status, detail
        self._on_change()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
