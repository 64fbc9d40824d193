"""Real A2A agent servers for tests, each in its own virtualenv (see tests/interop/peers/).

Virtualenvs are cached in `ORCH_PEERS_CACHE` (default `~/.cache/orchestrator-peers`), one per
peer and hash of its requirements, built under a file lock so parallel test processes share
them. `ORCH_SKIP_INTEROP=1` skips every test that needs a peer.

A running peer listens on a free 127.0.0.1 port, records each request it gets (and each tool
it runs) as JSON lines, and holds its "slow" answers until `release()` is called.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

PEERS = Path(__file__).parent / "peers"
START_LIMIT = 180.0  # seconds a peer may take to answer its card (Kagent imports a lot)
INSTALL_LIMIT = 1800.0


def cache_dir() -> Path:
    configured = os.environ.get("ORCH_PEERS_CACHE") or "~/.cache/orchestrator-peers"
    return Path(configured).expanduser()


def skip_if_disabled() -> None:
    if os.environ.get("ORCH_SKIP_INTEROP") == "1":
        pytest.skip("ORCH_SKIP_INTEROP=1: interop tests against real agent servers are skipped")


def venv_for(peer: str) -> Path:
    """The peer's virtualenv, built once per requirements hash (under a file lock)."""
    requirements = PEERS / peer / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes() + sys.version.encode()).hexdigest()[:16]
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"{peer}-{digest}"
    with (root / f"{peer}-{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".ready").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q"]
        done = subprocess.run(
            [*pip, "-r", str(requirements)],
            capture_output=True,
            text=True,
            timeout=INSTALL_LIMIT,
        )
        if done.returncode != 0:
            raise RuntimeError(f"Installing the {peer} peer failed:\n{done.stderr[-4000:]}")
        (venv / ".ready").write_text(requirements.read_text())
    return venv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Peer:
    name: str
    url: str
    record: Path
    gate: Path
    process: subprocess.Popen[bytes]
    seen: int = 0  # record lines from before `forget()`

    def lines(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        lines = self.record.read_text().splitlines()[self.seen :]
        return [json.loads(line) for line in lines if line]

    def forget(self) -> None:
        """What the peer recorded so far is left out from now on (a new test starts)."""
        self.seen += len(self.lines())

    def requests(self, context_id: str | None = None) -> list[dict[str, Any]]:
        """The JSON-RPC requests received (optionally only those about one contextId)."""
        found = [line for line in self.lines() if "body" in line]
        if context_id is None:
            return found
        return [r for r in found if context_id in json.dumps(r["body"])]

    def tool_runs(self, name: str | None = None) -> list[dict[str, Any]]:
        runs = [line for line in self.lines() if "tool_run" in line]
        return [r for r in runs if name is None or r["tool_run"] == name]

    def release(self) -> None:
        """Lets the "slow" answers finish."""
        (self.gate / "release").touch()

    def hold(self) -> None:
        """Makes the next "slow" answers wait again."""
        (self.gate / "release").unlink(missing_ok=True)


@contextlib.contextmanager
def running_peer(peer: str) -> Iterator[Peer]:
    skip_if_disabled()
    venv = venv_for(peer)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix=f"peer-{peer}-"))
    gate = workdir / "gate"
    gate.mkdir()
    record = workdir / "requests.jsonl"
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [
            str(venv / "bin/python"),
            str(PEERS / peer / "server.py"),
            "--port",
            str(port),
            "--record",
            str(record),
            "--gate",
            str(gate),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OTEL_SDK_DISABLED": "true"},
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_card(url, process, workdir / "server.log")
        yield Peer(peer, url, record, gate, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_card(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_LIMIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The peer at {url} exited:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}.well-known/agent-card.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"The peer at {url} did not start in {START_LIMIT:g} s")
