"""`orchestrator run`: the runtime behind uvicorn, and a stop that loses nothing.

HTTP mode serves `/slack/events` and the admin routes; Socket Mode serves the admin routes and
holds Slack's WebSocket. On SIGTERM or SIGINT, Slack deliveries stop coming in first (the HTTP
server closes, the Socket Mode connection is closed, so Slack retries or sends to another
replica), then running answers get `ORCH_SHUTDOWN_GRACE` seconds to finish, and the ones still
going after that end visibly at once. A second signal cuts them without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import uvicorn

from orchestrator.config.settings import Settings, StartError
from orchestrator.service.lifecycle_log import log_started, log_stopped, mode_of
from orchestrator.service.runtime import Runtime
from orchestrator.service.slack_checks import require_bot_token, socket_mode_check

if TYPE_CHECKING:
    from orchestrator.slack.socket_mode import GuardedSocketModeHandler

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PORT_POLL = 0.01  # seconds between looks at whether uvicorn has opened the port


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling, which raises a caught SIGTERM again once it has
    served: that would end the process before the runtime is stopped. `serve` takes the
    signals instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    settings: Settings,
    *,
    http: bool,
    host: str,
    port: int,
    upgrade: bool = False,
    version: str = "",
) -> None:
    """Serves until a stop signal. A bot token Slack refuses stops the start (StartError), as
    does a database this release cannot use (unless `upgrade` may bring it up to date)."""
    runtime = Runtime(settings)
    # With a refused bot token, Bolt would answer every mention with "Please reinstall this
    # app" while the service reports itself ready: refuse to start instead. Recovery starts
    # once the port is open, and runs while deliveries are already taken: a restart answers
    # Slack at once, and `/readyz` says ready as soon as the database does (a delivery is
    # acknowledged only once stored, and every answer is a compare-and-set, whatever recovery
    # is doing meanwhile).
    await runtime.start(upgrade=upgrade, slack_check=require_bot_token, recover=False)
    asgi = runtime.asgi() if http else runtime.admin_asgi()
    server = _Server(uvicorn.Config(asgi, host=host, port=port, log_level="warning"))
    runtime.engine.tasks.spawn(_recover_once_open(server, runtime))
    _take_stop_signals(lambda: _stop_requested(server, runtime))
    socket_mode: GuardedSocketModeHandler | None = None
    started: float | None = None
    try:
        if not http:
            socket_mode = await _connect_socket_mode(runtime, settings)
        started = log_started(
            runtime, version=version, mode=mode_of(http=http, host=host, port=port)
        )
        await server.serve()
    finally:
        if socket_mode is not None:
            await socket_mode.close_async()
        await runtime.stop()
        log_stopped(version=version, since=started)


async def _recover_once_open(server: uvicorn.Server, runtime: Runtime) -> None:
    """Recovery, once the port is open (it would otherwise hold the event loop meanwhile)."""
    while not server.started:
        if server.should_exit or runtime.engine.tasks.closing:  # stopping (or never bound)
            return
        await asyncio.sleep(PORT_POLL)
    await runtime.recover()


async def _connect_socket_mode(runtime: Runtime, settings: Settings) -> GuardedSocketModeHandler:
    from orchestrator.slack.socket_mode import GuardedSocketModeHandler

    assert settings.slack_app_token is not None
    app_token = settings.slack_app_token.get_secret_value()
    # Socket Mode retries a refused token forever with only a log line: refuse to start instead.
    connection = await socket_mode_check(runtime.app.client, app_token)
    if connection.status == "FAIL":
        raise StartError(f"Socket Mode cannot start: {connection.detail}")
    handler = GuardedSocketModeHandler(runtime.app, app_token)
    await handler.connect_async()
    return handler


def _take_stop_signals(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError):  # platforms without loop signal handlers
            loop.add_signal_handler(sig, stop)


def _stop_requested(server: uvicorn.Server, runtime: Runtime) -> None:
    if server.should_exit:  # the second signal: cut the running answers now
        runtime.engine.stop_waiting()
        server.force_exit = True
    server.should_exit = True
