"""Serve an ASGI app on 127.0.0.1 inside the current event loop (for the sandbox and tests)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn

_GRACE = 5.0  # seconds in-flight requests get to finish when a server stops
_POLL = 0.005


class _Server(uvicorn.Server):
    """uvicorn's server, stopping as soon as it is told to instead of on its next 0.1 s tick."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_requested = asyncio.Event()

    async def main_loop(self) -> None:
        await self.exit_requested.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own shutdown sleeps a fixed 0.1 s and polls every 0.1 s; the sandbox and the
        # tests start and stop hundreds of servers, so this one polls finely instead.
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for _ in range(int(_GRACE / _POLL)):
            if not (self.server_state.connections or self.server_state.tasks):
                break
            await asyncio.sleep(_POLL)
        for task in self.server_state.tasks:
            task.cancel()
        for server in self.servers:
            await server.wait_closed()


class LoopbackServer:
    """Runs `app` with uvicorn on 127.0.0.1 and an OS-chosen port unless one is given."""

    def __init__(self, app, port: int = 0) -> None:
        self._config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = _Server(self._config)
        self._task: asyncio.Task[None] | None = None
        self.port: int = port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise the start-up error
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self.base_url

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        self._server.exit_requested.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, timeout=5)
        self._task = None
