"""The throughput bench's stream as model servers send it: one event per TCP write, each written
only after a pause, from a process of its own.

A model streams tokens far slower than a client reads them, so every read returns one event and
the reader's cost per read is paid per event. Served from another process (its CPU is not the
reader's) with TCP_NODELAY, one HTTP chunk per event, and a pause longer than a reader needs for
one event, so no read returns two. The bench measures the reader's CPU time, not the wall clock
(which the pauses set).

Run as `python -m bench.paced_stream DELTAS PAUSE`: prints the port, then serves until killed.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
HEADERS: Final = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"connection: close\r\ntransfer-encoding: chunked\r\n\r\n"
)


def event_chunks(deltas: int) -> list[bytes]:
    """Each event of the bench's stream as one HTTP chunk."""
    from bench.sse_workload import build_events, encode

    out = []
    for event in build_events(deltas):
        data = encode([event])
        out.append(b"%x\r\n%s\r\n" % (len(data), data))
    return out


def _read_request(conn: socket.socket) -> None:
    """Reads the request's head and body (Content-Length) and ignores them."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        more = conn.recv(65536)
        if not more:
            return
        body += more


def _answer(conn: socket.socket, chunks: list[bytes], pause: float) -> None:
    with conn, contextlib.suppress(OSError):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _read_request(conn)
        conn.sendall(HEADERS)
        for chunk in chunks:
            time.sleep(pause)
            conn.sendall(chunk)
        conn.sendall(b"0\r\n\r\n")


def serve(deltas: int, pause: float) -> None:
    chunks = event_chunks(deltas)
    with socket.create_server(("127.0.0.1", 0)) as server:
        print(server.getsockname()[1], flush=True)
        while True:
            conn, _ = server.accept()
            threading.Thread(target=_answer, args=(conn, chunks, pause), daemon=True).start()


class PacedStreamServer:
    """The paced stream served by a child process, at `url`, until `stop()`."""

    def __init__(self, deltas: int, pause: float) -> None:
        self.deltas = deltas
        self.pause = pause
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.paced_stream", str(self.deltas), str(self.pause)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        port = int(self._process.stdout.readline())
        self.url = f"http://127.0.0.1:{port}/agent"
        return self.url

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    serve(int(sys.argv[1]), float(sys.argv[2]))
