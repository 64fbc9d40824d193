"""Path (b) of the throughput bench: a real `Runtime` between the Slack emulator and the stream
server, its publisher recording the Slack calls in memory; one run is a signed `app_mention`
timed until the engine has drained it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Final

import httpx

from orchestrator.config.settings import Settings
from orchestrator.sandbox import slack_delivery
from orchestrator.sandbox.loopback import LoopbackServer
from orchestrator.sandbox.slack_emulator import API_APP_ID, VERIFICATION_TOKEN, SlackEmulator
from orchestrator.service.runtime import Runtime
from orchestrator.slack.publisher import Publisher
from persistence.models import Thread
from renderers.view import ThreadView

CHANNEL: Final = "C0BENCH"
USER: Final = "U0BENCH"
SECRET: Final = "bench-signing-secret"
UPDATE_INTERVAL: Final = 1.0
PICKUP_POLL: Final = 0.0005
SETTLE_TIMEOUT: Final = 600.0
START_WAIT: Final = 5.0  # how long the engine may take to pick up the delivered mention


class RecordingSlack:
    """The two Web API methods the publisher calls, kept in memory with their payloads."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("chat.postMessage", kwargs))
        return {"ok": True, "ts": f"{len(self.calls)}.000000"}

    async def chat_update(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("chat.update", kwargs))
        return {"ok": True, "ts": kwargs["ts"]}


class EngineBench:
    """A Runtime between the Slack emulator and the stream server, served over HTTP."""

    def __init__(self, slack: SlackEmulator, agent_url: str, db_path: Path) -> None:
        self.slack = slack
        self.recorded = RecordingSlack()
        self.runtime = Runtime(
            Settings(
                SLACK_BOT_TOKEN=slack.token,
                SLACK_SIGNING_SECRET=SECRET,
                SLACK_API_URL=slack.api_url,
                AGENT_URL=agent_url,
                ORCH_DATABASE_URL=f"sqlite+aiosqlite:///{db_path}",
                ORCH_UPDATE_INTERVAL=UPDATE_INTERVAL,
            ),
            publishers=self._recording_publisher,
        )
        self._server: LoopbackServer | None = None
        # One client for every delivery: a new one per request (as `deliver_event` makes) would
        # put the building of its TLS context, ~20 ms, inside the timed window.
        self._delivery = httpx.AsyncClient(timeout=slack_delivery.DELIVERY_TIMEOUT)
        self.events_url = ""
        self.settled_at = 0.0
        self.cpu_seconds = 0.0

    def _recording_publisher(self, thread: Thread, _view: ThreadView) -> Publisher:
        return Publisher(
            self.recorded,  # type: ignore[arg-type]
            thread.channel_id,
            thread.thread_ts,
            interval=UPDATE_INTERVAL,
        )

    async def start(self) -> None:
        await self.runtime.start()
        self._server = LoopbackServer(self.runtime.asgi())
        self.events_url = f"{await self._server.start()}/slack/events"

    async def stop(self) -> None:
        await self._delivery.aclose()
        if self._server is not None:
            await self._server.stop()
        await self.runtime.stop()

    async def deliver(self, event: dict[str, Any]) -> httpx.Response:
        """The same signed Events API request as `SlackEmulator.deliver_event`."""
        envelope = slack_delivery.event_envelope(
            event,
            team_id=self.slack.team_id,
            api_app_id=API_APP_ID,
            bot_user_id=self.slack.bot_user_id,
            event_id=slack_delivery.new_event_id(),
            verification_token=VERIFICATION_TOKEN,
        )
        body, content_type = slack_delivery.json_body(envelope)
        headers = slack_delivery.signed_headers(SECRET, body, content_type)
        return await self._delivery.post(self.events_url, content=body.encode(), headers=headers)

    async def run(self, text: str) -> tuple[float, int]:
        """Seconds from the mention's delivery to the settled thread, and the Slack calls made
        (`cpu_seconds`: the process's CPU time over the same span)."""
        event = self.slack.post_user_message(CHANNEL, USER, "go", mention=True)
        thread_ts = event.get("thread_ts") or event["ts"]
        thread_id = self.runtime.engine.conversation_id(self.slack.team_id, CHANNEL, thread_ts)
        calls_before = len(self.recorded.calls)
        started, cpu_started = time.perf_counter(), time.process_time()
        response = await self.deliver(event)
        if response.status_code != 200:
            raise RuntimeError(f"the mention was refused: HTTP {response.status_code}")
        await self._settled(thread_id)
        self.cpu_seconds = time.process_time() - cpu_started
        elapsed = self.settled_at - started
        await self._check_history(thread_id, text)
        return elapsed, len(self.recorded.calls) - calls_before

    async def _settled(self, thread_id: str) -> None:
        # The run is spawned while the delivery is handled: once the engine is seen busy, its
        # own drain() says when the run (and what it started) ended, with no polling; the row is
        # read after that, so the bench's queries never compete with the run's.
        engine, store = self.runtime.engine, self.runtime.store
        picked_up_by = time.monotonic() + START_WAIT
        while not engine.busy:
            if time.monotonic() > picked_up_by:
                break  # handled without a task of its own, or refused: the row says which
            await asyncio.sleep(PICKUP_POLL)
        await asyncio.wait_for(engine.drain(), SETTLE_TIMEOUT)
        self.settled_at = time.perf_counter()
        row = await store.get_thread(thread_id)
        if row is None or row.state != "done":
            state = row.state if row is not None else "no thread"
            raise RuntimeError(f"the run ended in {state}: {row.error_text if row else ''}")

    async def _check_history(self, thread_id: str, text: str) -> None:
        messages = await self.runtime.store.messages(thread_id)
        answers = [m for m in messages if m.get("role") == "assistant"]
        if not answers or answers[-1].get("content") != text:
            raise RuntimeError("the stored answer is not the streamed text")
