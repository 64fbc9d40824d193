"""`orchestrator sandbox`: the Slack emulator, an agent (the scripted one, or yours) and the real
service as a child process, all on 127.0.0.1, with a page that looks and acts like Slack."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from orchestrator.config.settings import Settings
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.browser.activity import SlackCallLog
from orchestrator.sandbox.browser.changes import Changes
from orchestrator.sandbox.browser.page_actions import PageActions
from orchestrator.sandbox.browser.page_app import page_app
from orchestrator.sandbox.browser.page_data import PageData
from orchestrator.sandbox.browser.service_child import ServiceChild, ServiceDidNotStart
from orchestrator.sandbox.browser.thread_inspector import ThreadInspector
from orchestrator.sandbox.browser.workspace_setup import (
    WorkspaceSetup,
    scripted_setup,
    service_environment,
    your_agent_given,
    your_agent_setup,
)
from orchestrator.sandbox.loopback import LoopbackServer
from orchestrator.sandbox.slack_emulator import SlackEmulator

TOKEN_DELAY = 0.04  # seconds between the scripted agent's words, so the answer visibly streams


class SandboxError(RuntimeError):
    """The sandbox cannot start; the message says what to do."""


class Sandbox:
    def __init__(self, settings: Settings, database: Path, say: Callable[[str], None]) -> None:
        self.settings = settings
        self.database = database
        self.say = say
        self.changes = Changes()
        self.agent: ScriptedAgent | None = None
        self.setup: WorkspaceSetup
        self.slack: SlackEmulator
        self.service: ServiceChild
        self.calls: SlackCallLog
        self.data: PageData
        self.actions: PageActions
        self.inspector: ThreadInspector
        self.streaming = settings.slack_streaming
        self._page: LoopbackServer | None = None
        self._started: list[Callable[[], object]] = []

    async def start(self, port: int) -> str:
        """Start everything; the page's URL."""
        _check_port_free(port)
        settings = self.settings
        scripted_url = None
        if your_agent_given(settings):
            self.setup = your_agent_setup(settings)
        else:
            self.agent = ScriptedAgent(name="sandbox-agent", token_delay=TOKEN_DELAY)
            self.agent.record_exchanges = True
            self.agent.exchange_watchers.append(lambda _exchange: self.changes.bump())
            await self.agent.start()
            self._started.append(self.agent.stop)
            self.setup = scripted_setup(self.agent.base_url)
            scripted_url = self.agent.url("auto")
        self.slack = SlackEmulator(channels=[channel.id for channel in self.setup.channels])
        self.calls = SlackCallLog(self.slack)
        self.slack.call_watchers += [self.calls.record, lambda _call: self.changes.bump()]
        await self.slack.start()
        self._started.append(self.slack.stop)
        database_url = f"sqlite+aiosqlite:///{self.database}"
        secret = secrets.token_hex(16)
        env = service_environment(
            os.environ,
            settings,
            setup=self.setup,
            slack_token=self.slack.token,
            slack_api_url=self.slack.api_url,
            signing_secret=secret,
            database_url=database_url,
            scripted_agent_url=scripted_url,
        )
        self.streaming = env.get("ORCH_SLACK_STREAMING", settings.slack_streaming)
        self.service = ServiceChild(env, on_change=self.changes.bump, echo=self._echo)
        self.inspector = ThreadInspector(settings, database_url)
        self._started += [self.service.stop, self.inspector.close]
        await self.service.start()
        self.data = PageData(self.slack, self.setup.people, self.calls)
        self.actions = PageActions(
            self.slack, self.service, secret, self.setup.people, self.calls, self.data, self.changes
        )
        self._started.append(self.actions.close)
        self._page = LoopbackServer(page_app(self), port)
        url = await self._page.start()
        return f"{url}/"

    async def stop(self) -> None:
        self.changes.close()  # ends the pages' live streams, so the page server stops at once
        if self._page is not None:
            await self._page.stop()
        for stop in reversed(self._started):
            result = stop()
            if asyncio.iscoroutine(result):
                await result
        self._started.clear()

    def _echo(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def describe(self, url: str, kept: bool) -> list[str]:
        agent = self.setup.agent
        if self.agent is not None:
            agent = f"the scripted agent ({self.agent.base_url}/agents/…)"
        database = f"{self.database} (kept)" if kept else "a temporary file (--db FILE keeps it)"
        return [
            f"Sandbox: {url}",
            f"  agent     {agent}",
            f"  service   orchestrator run --http on {self.service.base_url} "
            f"(pid {self.service.pid}), {self.streaming} streaming",
            f"  slack     the emulator at {self.slack.api_url}",
            f"  database  {database}",
            "Open the page in a browser; Ctrl-C stops everything.",
        ]


def _check_port_free(port: int) -> None:
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds it
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SandboxError(
                f"port {port} on 127.0.0.1 is taken ({exc.strerror}); choose another with --port"
            ) from exc


async def run_sandbox(
    *, port: int, database: Path | None, say: Callable[[str], None] | None = None
) -> int:
    """Run until SIGINT or SIGTERM; 0 when stopped, 1 when it could not start. `database` is an
    absolute path whose directory exists; without one, a temporary file is used."""
    say = say or (lambda line: print(line, flush=True))
    settings = Settings()
    with contextlib.ExitStack() as stack:
        if database is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="orch-sandbox-"))
            path = Path(workdir) / "sandbox.db"
        else:
            path = database
        sandbox = Sandbox(settings, path, say)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        try:
            url = await sandbox.start(port)
            for line in sandbox.describe(url, kept=database is not None):
                say(line)
            await stopping.wait()
            say("stopping the sandbox …")
        except (SandboxError, ServiceDidNotStart) as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            await sandbox.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    return 0
