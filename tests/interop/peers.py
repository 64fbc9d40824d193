"""Real AG-UI servers as test peers: each in its own virtualenv, started on a free port.

A peer is a folder under `peers/` with a `server.py` (taking `--port`, `--log` and maybe
`--mode`) and a `requirements.txt` pinning every package. Its virtualenv is made once and kept
outside the repository, under `$ORCH_PEERS_CACHE` (default `~/.cache/orchestrator-peers`), in a
folder named after a hash of the requirements and the Python version, so a changed pin gets a
new one. A file lock makes concurrent test processes wait for one install instead of racing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PEERS_DIR = Path(__file__).parent / "peers"
INSTALLED_MARK = ".installed"
INSTALL_TIMEOUT = 1200.0
START_TIMEOUT = 90.0
# The peers talk to no one: tracing, telemetry and update checks off.
OFFLINE_ENV = {
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "OTEL_SDK_DISABLED": "true",
    "ENABLE_INSTRUMENTATION": "false",
    "GOOGLE_CLOUD_DISABLE_GRPC_TELEMETRY": "true",
    "ADK_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PYTHONUNBUFFERED": "1",
}


class PeerUnavailable(RuntimeError):
    """A peer could not be installed or started; the message says why."""


def skip_requested() -> bool:
    return os.environ.get("ORCH_SKIP_INTEROP") == "1"


def cache_root() -> Path:
    configured = os.environ.get("ORCH_PEERS_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "orchestrator-peers"
    root.mkdir(parents=True, exist_ok=True)
    return root


def requirements_of(name: str) -> Path:
    return PEERS_DIR / name / "requirements.txt"


def venv_key(name: str) -> str:
    digest = hashlib.sha256(requirements_of(name).read_bytes())
    digest.update(f"{sys.version_info.major}.{sys.version_info.minor}".encode())
    return f"{name}-{digest.hexdigest()[:16]}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def venv_python(name: str) -> Path:
    """The peer's interpreter, installing its virtualenv first when it is not cached yet."""
    root = cache_root()
    key = venv_key(name)
    venv = root / key
    python = venv / "bin" / "python"
    if (venv / INSTALLED_MARK).exists():
        return python
    with _locked(root / f"{key}.lock"):
        if (venv / INSTALLED_MARK).exists():  # another process installed it meanwhile
            return python
        shutil.rmtree(venv, ignore_errors=True)  # a half-made one from an interrupted install
        _run([sys.executable, "-m", "venv", str(venv)], name, "creating its virtualenv")
        _run(
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements_of(name))],
            name,
            "installing its requirements",
        )
        (venv / INSTALLED_MARK).write_text(requirements_of(name).read_text())
    return python


def _run(command: list[str], name: str, doing: str) -> None:
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            env={**os.environ, **OFFLINE_ENV},
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerUnavailable(f"peer {name!r}: {doing} took over {exc.timeout:.0f}s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-3000:]
        raise PeerUnavailable(
            f"peer {name!r}: {doing} failed (exit {done.returncode}); set ORCH_SKIP_INTEROP=1 "
            f"to skip the interop suite.\n{output}"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PeerServer:
    """One running peer, and what it wrote to its wire log."""

    name: str
    mode: str | None
    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    output_path: Path = field(init=False)

    def __post_init__(self) -> None:
        label = f"{self.name}-{self.mode}" if self.mode else self.name
        self.log_path = self.workdir / f"{label}.wire.jsonl"
        self.output_path = self.workdir / f"{label}.out"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        python = venv_python(self.name)
        self.port = free_port()
        command = [
            str(python),
            str(PEERS_DIR / self.name / "server.py"),
            "--port",
            str(self.port),
            "--log",
            str(self.log_path),
            *(["--mode", self.mode] if self.mode else []),
        ]
        env = {**os.environ, **OFFLINE_ENV}
        env.pop("PYTHONPATH", None)
        with self.output_path.open("ab") as output:
            self.process = subprocess.Popen(
                command, stdout=output, stderr=output, env=env, cwd=self.workdir
            )
        self._wait_listening()

    def _wait_listening(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PeerUnavailable(
                    f"peer {self.name!r} exited with {self.process.returncode}:\n"
                    + self.output_path.read_text(errors="replace")[-3000:]
                )
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        self.stop()
        raise PeerUnavailable(f"peer {self.name!r} did not listen within {START_TIMEOUT:.0f}s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def mark(self) -> int:
        """Where the wire log ends now: `entries(since=mark)` reads only what comes after."""
        return len(self.entries())

    def entries(self, since: int = 0, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        read = [json.loads(line) for line in lines[since:] if line.strip()]
        return [entry for entry in read if kind is None or entry["kind"] == kind]

    def output(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""
