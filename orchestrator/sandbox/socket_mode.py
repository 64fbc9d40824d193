"""Slack's side of Socket Mode, on 127.0.0.1: a WebSocket that pushes envelopes and takes acks.

`apps.connections.open` (in the emulator) hands out `url`. An app connects, is greeted with
`hello`, and is pushed `events_api` and `interactive` envelopes; each is answered by an ack
carrying its `envelope_id`, which `push` waits for, as Slack does before it retries.

Served with aiohttp, which slack_sdk's Socket Mode client already needs: the emulator's HTTP
server (uvicorn) would need a WebSocket library of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

from aiohttp import WSMsgType, web

ACK_TIMEOUT = 10.0


class SocketModeServer:
    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.url = ""
        self.connections = 0  # how many times an app connected
        self.acks: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._connected = asyncio.Event()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"ws://127.0.0.1:{port}/link"
        return self.url

    async def stop(self) -> None:
        for socket in list(self._sockets):
            with contextlib.suppress(Exception):
                await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def push(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        wait: float = ACK_TIMEOUT,
    ) -> dict[str, Any]:
        """Send one envelope (`events_api` or `interactive`) and return the app's ack."""
        async with asyncio.timeout(wait):
            await self._connected.wait()
            envelope_id = str(uuid.uuid4())
            envelope = {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind == "interactive",
                "retry_attempt": retry_attempt,
                "retry_reason": "timeout" if retry_attempt else "",
            }
            acked = self._waiting[envelope_id] = asyncio.get_running_loop().create_future()
            try:
                await self._sockets[-1].send_str(json.dumps(envelope))
                return await acked
            finally:
                self._waiting.pop(envelope_id, None)

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self.connections += 1
        self._sockets.append(socket)
        await socket.send_str(json.dumps(self._hello()))
        self._connected.set()
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self._ack(message.data)
        finally:
            self._sockets.remove(socket)
            if not self._sockets:
                self._connected.clear()
        return socket

    def _ack(self, raw: str) -> None:
        with contextlib.suppress(ValueError):
            ack = json.loads(raw)
            if isinstance(ack, dict):
                self.acks.append(ack)
                waiting = self._waiting.get(str(ack.get("envelope_id")))
                if waiting is not None and not waiting.done():
                    waiting.set_result(ack)

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": len(self._sockets),
            "debug_info": {"host": "sandbox-socket-mode", "approximate_connection_time": 3600},
            "connection_info": {"app_id": self.app_id},
        }
