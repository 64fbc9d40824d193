"""Serve an ASGI app on 127.0.0.1 inside the current event loop (for the sandbox and tests)."""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn


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
        self._server = uvicorn.Server(self._config)
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
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, timeout=5)
        self._task = None
