"""What a chaos run saw, waiting for recovery to finish, and the six invariants checked against the
store, the Slack emulator's messages and the agent's requests."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.core.ids import conversation_id
from orchestrator.core.sentences import RESUME_UNCERTAIN
from orchestrator.engine.approvals_desk import FORM_EVENT
from orchestrator.sandbox.agent_requests import is_resume, last_user_text
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator, render_text
from persistence.models import Interrupt, Thread
from persistence.store import Store
from renderers.common import CURSOR, THINKING
from tests.harness import CHANNEL

LIVE_MARKS = (THINKING, CURSOR, "resuming…")


@dataclass
class Observed:
    threads: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # acked (ts, text)
    unacked: list[tuple[str, str]] = field(default_factory=list)
    clicks: dict[str, str] = field(default_factory=dict)  # interrupt key -> thread ts
    # Each run signs with its own secret: no other program's server can acknowledge for it.
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    ack_seconds: list[float] = field(default_factory=list)  # how long each acknowledgement took

    async def wait_quiet(self, store: Store, slack: SlackEmulator, deadline: float) -> bool:
        """Until recovery has nothing left to do (or `deadline` seconds passed)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if not await _busy(store, slack):
                return True
            await asyncio.sleep(0.5)
        return False


async def _busy(store: Store, slack: SlackEmulator) -> bool:
    threads = await store.list_threads(limit=100_000)
    if any(t.state == "streaming" or t.live_ts for t in threads):
        return True
    if await store.threads_with_queue() or await store.unposted_forms():
        return True
    for thread in threads:
        if any(r.status in ("claimed", "sending") for r in await store.interrupts_of(thread.id)):
            return True
    return bool(_live_messages(slack))


def _live_messages(slack: SlackEmulator) -> list[str]:
    shown = [render_text(m) for m in slack.all_messages(CHANNEL) if m.bot_id]
    return [text for text in shown if any(mark in text for mark in LIVE_MARKS)]


async def _left_live(store: Store, slack: SlackEmulator, kills: list[float]) -> list[str]:
    """Each live message left: its thread as stored and its transitions, its text's end, and
    when the calls that wrote it landed against the kills (seconds since the first call)."""
    start = slack.calls[0].at if slack.calls else 0.0
    left = []
    for message in slack.all_messages(CHANNEL):
        text = render_text(message)
        if not message.bot_id or not any(mark in text for mark in LIVE_MARKS):
            continue
        writes = [
            f"{c.method.removeprefix('chat.')}@{c.at - start:.2f}"
            for c in slack.calls
            if c.params.get("ts") == message.ts or c.response.get("ts") == message.ts
        ]
        kills_at = ", ".join(f"{k - start:.2f}" for k in kills)
        thread_ts = message.thread_ts or message.ts
        row = await store.get_thread(conversation_id(slack.team_id, CHANNEL, thread_ts))
        stored = "not stored"
        if row is not None:
            steps = [f"{t.trigger}:{t.actor}" for t in await store.history(row.id)]
            stored = (
                f"{row.state}, messages {row.message_ts}, live {row.live_ts}, "
                f"sent {bool(row.run_sent)}, history {' '.join(steps)}"
            )
        left.append(
            f"thread {thread_ts} message {message.ts}: {text[-60:]!r}; "
            f"written {' '.join(writes[-6:])}; kills at {kills_at}; stored: {stored}"
        )
    return left


def _plain(text: str) -> str:
    return re.sub(r"^\s*<@[^>]+>\s*", "", text)


async def check(
    store: Store,
    slack: SlackEmulator,
    agent: ScriptedAgent,
    seen: Observed,
    malformed: list[str],
    kills: list[float],
) -> dict[str, list[str]]:
    violations: dict[str, list[str]] = {}

    def fail(invariant: str, what: str) -> None:
        violations.setdefault(invariant, []).append(what)

    asked = [last_user_text(r.body) for r in agent.requests if not is_resume(r.body)]
    counts = Counter(asked)
    rows: dict[str, Thread] = {t.id: t for t in await store.list_threads(limit=100_000)}
    for thread_ts, messages in seen.threads.items():
        thread = rows.get(conversation_id(slack.team_id, CHANNEL, thread_ts))
        shown = "\n".join(render_text(m) for m in slack.thread(CHANNEL, thread_ts) if m.bot_id)
        if messages and thread is None:
            fail("1 acknowledged message answered", f"{thread_ts}: acknowledged, not stored")
            continue
        for _ts, text in messages:
            sent = counts[_plain(text)]
            if sent > 1:
                fail("1 acknowledged message answered", f"{_plain(text)!r} sent {sent} times")
            elif sent == 0 and "Interrupted by a restart" not in shown:
                fail("1 acknowledged message answered", f"{_plain(text)!r} lost")
        order = [q for q in asked if q in {_plain(t) for _, t in messages}]
        expected = [_plain(t) for _, t in sorted(messages, key=lambda m: float(m[0]))]
        if order != [q for q in expected if q in order]:
            fail("2 queued messages in order", f"{thread_ts}: asked {order}, written {expected}")
    if await store.threads_with_queue():
        fail("2 queued messages in order", "messages still queued after recovery")
    forms = _forms_shown(slack)
    for thread in rows.values():
        for row in await store.interrupts_of(thread.id):
            _check_interrupt(row, forms, agent, seen, thread, slack, fail)
    for what in await _left_live(store, slack, kills):
        fail("4 no live message left", what)
    for thread in rows.values():
        if thread.state == "streaming":
            fail("5 no streaming without owner", thread.id)
    for what in malformed:
        fail("6 malformed requests get 4xx", what)
    return violations


def _forms_shown(slack: SlackEmulator) -> Counter[str]:
    shown: Counter[str] = Counter()
    for message in slack.all_messages(CHANNEL):
        metadata = message.metadata or {}
        if metadata.get("event_type") == FORM_EVENT:
            shown[str((metadata.get("event_payload") or {}).get("interrupt"))] += 1
    return shown


def _check_interrupt(
    row: Interrupt,
    forms: Counter[str],
    agent: ScriptedAgent,
    seen: Observed,
    thread: Thread,
    slack: SlackEmulator,
    report: Callable[[str, str], None],
) -> None:
    invariant = "3 approvals once"
    if forms[row.id] != 1:
        report(invariant, f"{row.id}: form shown {forms[row.id]} times")
    if row.status in ("claimed", "sending"):
        report(invariant, f"{row.id}: left {row.status}")
    if row.status == "pending" and row.answered_by is not None:
        report(invariant, f"{row.id}: pending behind a recorded answer")
    if row.status in ("approved", "rejected") and not agent.acted_on(row.interrupt_id):
        report(invariant, f"{row.id}: {row.status} but the agent never got it")
    if agent.resumed[row.interrupt_id] and not agent.acted_on(row.interrupt_id):
        report(invariant, f"{row.id}: resumes refused, none acted on")
    if row.id in seen.clicks:
        shown = "\n".join(render_text(m) for m in slack.thread(CHANNEL, thread.thread_ts))
        told = RESUME_UNCERTAIN[:40] in shown and row.status == "pending"
        if not (agent.acted_on(row.interrupt_id) or told):
            report(invariant, f"{row.id}: click acknowledged, never reached the agent")
