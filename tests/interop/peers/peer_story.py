"""What every interop peer shares (standard library only, imported by each peer's server.py from
its own virtualenv): the story, the command line, and the wire log.

The story: the agent streams a sentence, calls `restart_pod` (which needs a person's approval),
and once someone decided, says what was decided and what the tool returned.

The wire log is a JSON-lines file: one `request` line per HTTP request (its JSON body), one
`event` line per SSE event sent back, one `tool` line each time the tool really runs.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

TOOL = "restart_pod"
TOOL_DESCRIPTION = "Restart a Kubernetes pod."
ARGS = {"pod": "web-7", "namespace": "prod"}
INTRO = "I will restart pod web-7 in prod to clear the stuck deploy. "
RESULT_PREFIX = "restarted "
APPROVED = "Decision: approved. restart_pod returned: {result}"
REJECTED = "Decision: rejected. restart_pod did not run ({why})."
HINT = "Restart pod web-7 in namespace prod?"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_lock = threading.Lock()
_log_path = ""


def options(description: str, *modes: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True, help="JSON-lines wire log to append to")
    if modes:
        parser.add_argument("--mode", choices=modes, default=modes[0])
    args = parser.parse_args()
    global _log_path
    _log_path = args.log
    return args


def record(kind: str, **data: Any) -> None:
    """Append one line to the wire log."""
    line = json.dumps({"kind": kind, **data}, default=str)
    with _lock, open(_log_path, "a", encoding="utf-8") as log:
        log.write(line + "\n")
        log.flush()
        os.fsync(log.fileno())


def restart_pod(pod: str, namespace: str) -> str:
    """The tool: records that it ran, with the arguments it ran with."""
    record("tool", name=TOOL, args={"pod": pod, "namespace": namespace})
    return f"{RESULT_PREFIX}{pod} in {namespace}"


def closing(tool_result: str | None) -> str:
    """The agent's last sentence, from what the tool call came back with."""
    if tool_result and tool_result.startswith(RESULT_PREFIX):
        return APPROVED.format(result=tool_result)
    return REJECTED.format(why=(tool_result or "no result").strip())


def wire_logged(app: App) -> App:
    """ASGI middleware writing each request body and each SSE event sent to the wire log."""

    async def logged(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            record("request", path=scope.get("path"), body=json.loads(body or b"null"))
        except json.JSONDecodeError:
            record("request", path=scope.get("path"), text=body.decode("utf-8", "replace"))
        replayed = False
        pending = b""

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def sending(message: MutableMapping[str, Any]) -> None:
            nonlocal pending
            if message["type"] == "http.response.body":
                pending += message.get("body", b"")
                *frames, pending = pending.replace(b"\r\n", b"\n").split(b"\n\n")
                for frame in frames:
                    _record_frame(frame)
            await send(message)

        await app(scope, replay, sending)
        if pending.strip():
            _record_frame(pending)

    return logged


def _record_frame(frame: bytes) -> None:
    data = [
        line[5:].strip()
        for line in frame.decode("utf-8", "replace").split("\n")
        if line.startswith("data:")
    ]
    if not data:
        return
    try:
        record("event", event=json.loads("\n".join(data)))
    except json.JSONDecodeError:
        record("event", text="\n".join(data))


def serve(app: App, port: int) -> None:
    import uvicorn

    uvicorn.run(wire_logged(app), host="127.0.0.1", port=port, log_level="warning")
