"""End-to-end harness: the real service in HTTP mode between the Slack emulator and the agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from orchestrator.agent.contract import ProtocolClient
from orchestrator.agent.targets import AgentResolver
from orchestrator.config.settings import Settings
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.loopback import LoopbackServer
from orchestrator.sandbox.slack_emulator import SlackEmulator, StoredMessage, render_text
from orchestrator.service.runtime import Runtime
from persistence.models import Interrupt, Thread, Transition

CHANNEL = "C0GENERAL"
ALICE = "U0ALICE"
BOB = "U0BOB"
SECRET = "test-signing-secret"
SETTLED = ("done", "errored", "awaiting_approval")


class Harness:
    def __init__(self, slack: SlackEmulator, agent: ScriptedAgent, db_path: Path) -> None:
        self.slack = slack
        self.agent = agent
        self.db_path = db_path
        self.runtime: Runtime | None = None
        self.server: LoopbackServer | None = None
        self.events_url = ""

    def settings(self, scenario: str = "answer", **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "SLACK_BOT_TOKEN": self.slack.token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.slack.api_url,
            "AGENT_URL": self.agent.url(scenario),
            "ORCH_DATABASE_URL": f"sqlite+aiosqlite:///{self.db_path}",
            "ORCH_UPDATE_INTERVAL": 0.05,
            "ORCH_AGENT_FIRST_EVENT_TIMEOUT": 5,
            "ORCH_AGENT_IDLE_TIMEOUT": 5,
            "ORCH_SCHEDULER_INTERVAL": 0.1,
            "ORCH_SHUTDOWN_GRACE": 0,  # a test's stop cuts what still runs
        }
        values.update(overrides)
        return Settings(**values)

    async def start(
        self,
        scenario: str = "answer",
        *,
        agents: AgentResolver | None = None,
        protocols: dict[str, ProtocolClient] | None = None,
        **overrides: Any,
    ) -> Runtime:
        await self.stop()
        settings = self.settings(scenario, **overrides)
        self.runtime = Runtime(settings, agents=agents, protocols=protocols)
        await self.runtime.start()
        self.server = LoopbackServer(self.runtime.asgi())
        self.events_url = f"{await self.server.start()}/slack/events"
        return self.runtime

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
        if self.runtime is not None:
            await self.runtime.stop()
            self.runtime = None

    @property
    def rt(self) -> Runtime:
        assert self.runtime is not None, "start() the harness first"
        return self.runtime

    # --- Slack side --------------------------------------------------------------------

    async def mention(
        self, text: str, thread_ts: str | None = None, *, user: str = ALICE, channel: str = CHANNEL
    ) -> str:
        event = self.slack.post_user_message(channel, user, text, thread_ts, mention=True)
        response = await self.slack.deliver_event(self.events_url, SECRET, event)
        assert response.status_code == 200, response.text
        return event.get("thread_ts") or event["ts"]

    async def say(
        self, text: str, thread_ts: str | None = None, *, user: str = ALICE, channel: str = CHANNEL
    ) -> dict[str, Any]:
        event = self.slack.post_user_message(channel, user, text, thread_ts)
        response = await self.slack.deliver_event(self.events_url, SECRET, event)
        assert response.status_code == 200, response.text
        return event

    async def click(
        self,
        message: StoredMessage,
        action_id: str,
        value: str,
        *,
        user: str = ALICE,
        values: dict[str, Any] | None = None,
        channel: str = CHANNEL,
    ) -> Any:
        payload = self.slack.block_actions_payload(
            user=user,
            channel=channel,
            message_ts=message.ts,
            action_id=action_id,
            value=value,
            thread_ts=message.thread_ts,
            state_values=values or {},
        )
        return await self.slack.deliver_action(self.events_url, SECRET, payload)

    def thread_messages(self, thread_ts: str, channel: str = CHANNEL) -> list[StoredMessage]:
        return [m for m in self.slack.thread(channel, thread_ts) if m.bot_id]

    def thread_text(self, thread_ts: str, channel: str = CHANNEL) -> str:
        return "\n".join(render_text(m) for m in self.thread_messages(thread_ts, channel))

    # --- store side --------------------------------------------------------------------

    def thread_id(self, thread_ts: str, channel: str = CHANNEL) -> str:
        return self.rt.engine.conversation_id(self.slack.team_id, channel, thread_ts)

    async def row(self, thread_ts: str, channel: str = CHANNEL) -> Thread | None:
        return await self.rt.store.get_thread(self.thread_id(thread_ts, channel))

    async def settle(
        self,
        thread_ts: str,
        states: tuple[str, ...] = SETTLED,
        *,
        channel: str = CHANNEL,
        wait: float = 15,
        min_version: int = 0,
    ) -> Thread:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not self.rt.engine.busy:  # read only when idle: the row is then the run's last write
                row = await self.row(thread_ts, channel)
                if (
                    row is not None
                    and row.state in states
                    and row.version >= min_version
                    and not self.rt.engine.busy
                ):
                    return row
            await asyncio.sleep(0.02)
        row = await self.row(thread_ts, channel)
        raise AssertionError(f"thread not in {states} after {wait}s: {row and row.state}")

    async def history(self, thread_ts: str, channel: str = CHANNEL) -> list[Transition]:
        return await self.rt.store.history(self.thread_id(thread_ts, channel))

    async def interrupts(self, thread_ts: str, channel: str = CHANNEL) -> list[Interrupt]:
        return await self.rt.store.interrupts_of(self.thread_id(thread_ts, channel))


async def until(check: Callable[[], bool | Awaitable[bool]], wait: float = 10) -> None:
    """Wait for a condition (clicks and housekeeping finish after Slack is answered)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def actions_of(message: StoredMessage) -> dict[str, str]:
    """action_id -> value of every button in the message."""
    return {
        element["action_id"]: element.get("value", "")
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("type") == "button"
    }


def find_with_action(messages: list[StoredMessage], action_id: str) -> StoredMessage:
    for message in messages:
        if action_id in actions_of(message):
            return message
    raise AssertionError(f"no message with a {action_id!r} button")
