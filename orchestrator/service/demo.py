"""`orchestrator demo`: the whole path on this machine, with no Slack and no agent.

The sandbox Slack emulator and a scripted AG-UI agent start on 127.0.0.1; a user's mention is
delivered, signed, to the real Slack app over HTTP; the real engine streams the answer into the
thread; then the agent asks for an approval, the demo clicks Approve, and the run resumes. The
terminal shows the thread after each Slack call and the persisted thread at the end.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.config.settings import Settings
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.loopback import LoopbackServer
from orchestrator.sandbox.slack_emulator import SlackEmulator, StoredMessage, render_text
from orchestrator.service.runtime import Runtime
from renderers.common import ACTION_APPROVE

CHANNEL = "C0GENERAL"
USER = "U0ALICE"
SECRET = "demo-signing-secret"
SHOWN = ("chat.postMessage", "chat.update", "chat.postEphemeral")


class Demo:
    """The sandbox, a runtime on a throwaway SQLite file, and a way to watch the thread."""

    def __init__(self, workdir: Path, token_delay: float, out: Callable[[str], None]) -> None:
        self.workdir = workdir
        self.out = out
        self.slack = SlackEmulator(channels=[CHANNEL])
        self.agent = ScriptedAgent(name="demo-agent", token_delay=token_delay)
        self.runtime: Runtime
        self.server: LoopbackServer
        self.events_url = ""
        self._shown = 0

    async def __aenter__(self) -> Demo:
        api_url = await self.slack.start()
        await self.agent.start()
        settings = Settings(
            SLACK_BOT_TOKEN=self.slack.token,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=api_url,
            AGENT_URL=self.agent.url("auto"),
            ORCH_DATABASE_URL=f"sqlite+aiosqlite:///{self.workdir / 'demo.db'}",
            ORCH_UPDATE_INTERVAL=0.25,
        )
        self.runtime = Runtime(settings)
        await self.runtime.start()
        self.server = LoopbackServer(self.runtime.asgi())
        self.events_url = f"{await self.server.start()}/slack/events"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.runtime.stop()
        await self.server.stop()
        await self.agent.stop()
        await self.slack.stop()

    async def mention(self, text: str, thread_ts: str | None = None) -> str:
        self.out(f"\n@alice > {text}")
        event = self.slack.post_user_message(CHANNEL, USER, text, thread_ts, mention=True)
        await self.slack.deliver_event(self.events_url, SECRET, event)
        return event.get("thread_ts") or event["ts"]

    async def click(self, message: StoredMessage, action_id: str, value: str, values: dict) -> None:
        self.out(f"\n@alice clicks [{action_id}]")
        payload = self.slack.block_actions_payload(
            user=USER,
            channel=CHANNEL,
            message_ts=message.ts,
            action_id=action_id,
            value=value,
            thread_ts=message.thread_ts,
            state_values=values,
        )
        await self.slack.deliver_action(self.events_url, SECRET, payload)

    async def version(self, thread_ts: str) -> int:
        thread_id = self.runtime.engine.conversation_id(self.slack.team_id, CHANNEL, thread_ts)
        thread = await self.runtime.store.get_thread(thread_id)
        return thread.version if thread else 0

    async def settle(
        self, thread_ts: str, states: tuple[str, ...], after: int = 0, wait: float = 20
    ) -> str:
        """Wait until the thread moved past version `after` and rests in one of `states`."""
        thread_id = self.runtime.engine.conversation_id(self.slack.team_id, CHANNEL, thread_ts)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            self.show_calls()
            thread = await self.runtime.store.get_thread(thread_id)
            busy = self.runtime.engine.busy
            if thread and thread.version > after and thread.state in states and not busy:
                self.show_calls()
                return thread_id
            await asyncio.sleep(0.05)
        raise TimeoutError(f"the thread did not reach {states} in {wait}s")

    def show_calls(self) -> None:
        for call in self.slack.calls[self._shown :]:
            self._shown += 1
            if call.method not in SHOWN or not call.response.get("ok"):
                continue
            ts = call.response.get("ts") or call.params.get("ts")
            message = StoredMessage(
                ts=str(ts),
                channel=CHANNEL,
                thread_ts=None,
                user=None,
                bot_id="B",
                text=str(call.params.get("text") or ""),
                blocks=call.params.get("blocks") or [],
            )
            self.out(f"\n┌─ {call.method} (ts {ts})")
            for line in render_text(message).splitlines() or [""]:
                self.out(f"│ {line}")
            self.out("└─")

    def form(self, thread_ts: str) -> StoredMessage:
        return next(
            m for m in self.slack.thread(CHANNEL, thread_ts) if _has_action(m, ACTION_APPROVE)
        )

    async def print_thread(self, thread_id: str) -> None:
        store = self.runtime.store
        thread = await store.get_thread(thread_id)
        assert thread is not None
        self.out("\n=== persisted thread")
        self.out(f"conversation id  {thread.id}")
        self.out(f"state            {thread.state} (version {thread.version})")
        for h in await store.history(thread_id):
            moved = f"{h.from_state} -> {h.to_state}"
            self.out(f"  {h.trigger:20} {moved:34} by {h.actor or '-'}")
        for row in await store.interrupts_of(thread_id):
            self.out(f"approval         {row.status} by {row.answered_by}: {row.answer}")


def _has_action(message: StoredMessage, action_id: str) -> bool:
    return any(
        element.get("action_id") == action_id
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    )


async def run_demo(*, token_delay: float = 0.01, out: Callable[[str], None] = print) -> int:
    with tempfile.TemporaryDirectory(prefix="orchestrator-demo-") as tmp:
        async with Demo(Path(tmp), token_delay, out) as demo:
            out("== 1. A question: the answer streams into the thread (tools, steps, text)")
            thread_ts = await demo.mention(
                "Use your tools to search the docs for the release notes."
            )
            thread_id = await demo.settle(thread_ts, ("done", "errored"))

            out("\n== 2. A follow-up that needs approval: the agent pauses with a form")
            before = await demo.version(thread_ts)
            await demo.mention("Please scale web to 5 replicas, I approve.", thread_ts)
            await demo.settle(thread_ts, ("awaiting_approval", "errored", "done"), before)
            form = demo.form(thread_ts)
            interrupt_key = next(
                e["value"]
                for b in form.blocks
                if b.get("type") == "actions"
                for e in b["elements"]
                if e.get("action_id") == ACTION_APPROVE
            )
            values = {
                "field:replicas": {
                    "value": {
                        "type": "static_select",
                        "selected_option": {
                            "text": {"type": "plain_text", "text": "8"},
                            "value": "8",
                        },
                    }
                },
                "field:comment": {"value": {"type": "plain_text_input", "value": "go ahead"}},
            }
            before = await demo.version(thread_ts)
            await demo.click(form, ACTION_APPROVE, interrupt_key, values)
            await demo.settle(thread_ts, ("done", "errored"), before)
            await demo.print_thread(thread_id)
            thread = await demo.runtime.store.get_thread(thread_id)
            ok = thread is not None and thread.state == "done"
    out("\ndemo finished" + ("" if ok else " with an unexpected state"))
    return 0 if ok else 1
