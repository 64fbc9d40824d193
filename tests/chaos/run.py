"""One chaos run: replicas of the real service on one store, threads driven over signed HTTP with
Slack-style retries, SIGKILLs at random moments and at named steps, then the invariants."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from orchestrator.kill_points import POINTS
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator
from persistence.store import Store
from renderers.common import ACTION_APPROVE
from tests.chaos.checks import Observed, check
from tests.chaos.databases import database
from tests.chaos.malformed import send_malformed
from tests.harness import ALICE, CHANNEL, actions_of
from tests.service_process import ServiceProcess
from tests.test_e2e_approvals import answers

# The steps a replica may be armed to die at (`after_ack` is the one most likely to lose a
# message; the others are where approvals, forms, closes and queues can be left half done).
NAMED = [p for p in POINTS if p != "after_ack"] + ["after_ack"] * 2


@dataclass
class Plan:
    threads: int = 150
    kills: int = 5
    replicas: int = 1
    db: str = "sqlite"
    approvals: float = 0.25  # share of threads that end in an approval form
    follow_ups: float = 0.3  # share of threads with a message sent while the answer streams
    spread: float = 12.0  # seconds over which the threads start
    seed: int | None = None


@dataclass
class Figures:
    run: int
    threads: int = 0
    acked_messages: int = 0
    unacked_messages: int = 0
    acked_clicks: int = 0
    kills_random: int = 0
    kills_named: dict[str, int] = field(default_factory=dict)  # replicas armed, by step
    kills_reached: int = 0  # armed replicas that died at their step
    recovery_seconds: float = 0.0
    malformed_sent: int = 0
    ack_seconds: list[float] = field(default_factory=list)  # each acknowledged delivery's wait
    violations: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return sum(len(v) for v in self.violations.values())


class Replicas:
    """The service processes, killed and started again (sometimes armed to die at a step)."""

    def __init__(
        self,
        slack: SlackEmulator,
        agent: ScriptedAgent,
        folder: Path,
        url: str,
        count: int,
        secret: str,
    ) -> None:
        env = {
            "SLACK_SIGNING_SECRET": secret,
            "ORCH_DATABASE_URL": url,
            "ORCH_TEST_HOOKS": "1",
            "ORCH_RUN_LEASE": "3",
            "ORCH_SCHEDULER_INTERVAL": "0.5",
            "ORCH_UPDATE_INTERVAL": "0.2",
            "ORCH_AGENT_FIRST_EVENT_TIMEOUT": "15",
            "ORCH_AGENT_IDLE_TIMEOUT": "15",
        }
        self.services = [
            ServiceProcess(slack, agent, folder / f"replica-{n}.db", "auto", **env)
            for n in range(count)
        ]
        self.armed: dict[int, str] = {}
        # When each replica died: the monkey's SIGKILLs, and armed ones once seen dead (monotonic,
        # as the Slack emulator stamps its calls).
        self.kill_times: list[float] = []

    def live(self) -> list[ServiceProcess]:
        return [s for s in self.services if s.proc is not None and s.proc.poll() is None]

    async def start(self, index: int, kill_at: str | None = None) -> None:
        service = self.services[index]
        service.env.pop("ORCH_TEST_KILL_AT", None)
        if kill_at:
            service.env["ORCH_TEST_KILL_AT"] = kill_at
            self.armed[index] = kill_at
        try:
            await service.start(wait=60)
        except RuntimeError:
            if not kill_at:
                raise
            service.proc = None  # it reached its step before it looked ready: it comes back

    def dead(self) -> list[int]:
        return [
            n for n, s in enumerate(self.services) if s.proc is None or s.proc.poll() is not None
        ]

    def kill(self, index: int) -> None:
        service = self.services[index]
        if service.proc is not None and service.proc.poll() is None:
            service.kill()
            self.kill_times.append(time.monotonic())
        service.proc = None

    def stop(self) -> None:
        for service in self.services:
            with contextlib.suppress(Exception):
                service.stop()

    def tracebacks(self) -> int:
        return sum(
            s.log_path.read_text(errors="replace").count("Traceback")
            for s in self.services
            if s.log_path.exists()
        )


async def deliver(replicas: Replicas, send: Any, waits: list[float], attempts: int = 15) -> bool:
    """Deliver like Slack: to a live replica, retried (with `retry_num`) until acknowledged;
    how long the acknowledgement took goes to `waits`."""
    for attempt in range(attempts):
        live = replicas.live()
        if live:
            service = random.choice(live)
            with contextlib.suppress(httpx.HTTPError):
                sent = time.monotonic()
                response = await send(service.events_url, attempt or None)
                if response.status_code == 200:
                    waits.append(time.monotonic() - sent)
                    return True
        await asyncio.sleep(min(0.5 * (attempt + 1), 2.0))
    return False


async def drive_thread(
    n: int, run: int, plan: Plan, slack: SlackEmulator, replicas: Replicas, seen: Observed
) -> None:
    await asyncio.sleep(random.uniform(0, plan.spread))
    approval = random.random() < plan.approvals
    text = f"r{run}t{n} " + ("please scale web" if approval else "hello there")
    event = slack.post_user_message(CHANNEL, ALICE, text, mention=True)
    thread_ts = event["ts"]
    seen.threads[thread_ts] = []

    async def send(event: dict[str, Any]) -> None:
        event_id = f"Ev{run}x{event['ts'].replace('.', '')}"
        acked = await deliver(
            replicas,
            lambda url, retry: slack.deliver_event(
                url, seen.secret, event, event_id=event_id, retry_num=retry
            ),
            seen.ack_seconds,
        )
        (seen.threads[thread_ts] if acked else seen.unacked).append((event["ts"], event["text"]))

    await send(event)
    if not approval and random.random() < plan.follow_ups:
        await asyncio.sleep(random.uniform(0.1, 0.6))
        follow = slack.post_user_message(CHANNEL, ALICE, f"r{run}t{n} and then?", thread_ts)
        await send(follow)
    if approval:
        await click_when_shown(slack, replicas, thread_ts, seen)


async def click_when_shown(
    slack: SlackEmulator, replicas: Replicas, thread_ts: str, seen: Observed
) -> None:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        forms = [m for m in slack.thread(CHANNEL, thread_ts) if ACTION_APPROVE in actions_of(m)]
        if forms:
            form = forms[-1]
            key = actions_of(form)[ACTION_APPROVE]
            await asyncio.sleep(random.uniform(0, 0.3))
            payload = slack.block_actions_payload(
                user=ALICE, channel=CHANNEL, message_ts=form.ts, action_id=ACTION_APPROVE,
                value=key, thread_ts=thread_ts,
                state_values=answers("8", "chaos"),
            )  # fmt: skip
            acked = await deliver(
                replicas,
                lambda url, _retry, body=payload: slack.deliver_action(url, seen.secret, body),
                seen.ack_seconds,
                attempts=1,  # Slack does not retry clicks; the person would click again
            )
            if acked:
                seen.clicks[key] = thread_ts
                return
        await asyncio.sleep(0.3)


async def chaos_monkey(
    plan: Plan, replicas: Replicas, figures: Figures, stop: asyncio.Event
) -> None:
    """`plan.kills` kills, about half at random moments and half by arming a replica to die at a
    named step; a replica that died is started again at once (as an orchestrator would)."""
    budget = plan.kills
    gap = max(1.5, plan.spread / max(plan.kills, 1))
    next_kill = time.monotonic() + random.uniform(1.0, gap)
    while budget > 0 or not stop.is_set():
        for index in replicas.dead():
            if replicas.armed.pop(index, None):
                figures.kills_reached += 1  # it died at its named step
                replicas.kill_times.append(time.monotonic())
            await replicas.start(index)
        if budget > 0 and time.monotonic() >= next_kill:
            index = random.randrange(len(replicas.services))
            replicas.kill(index)
            replicas.armed.pop(index, None)
            if random.random() < 0.5:
                figures.kills_random += 1
                await asyncio.sleep(random.uniform(0.2, 1.0))
                await replicas.start(index)
            else:
                point = random.choice(NAMED)
                await replicas.start(index, kill_at=f"{point}:{random.randint(1, 3)}")
                figures.kills_named[point] = figures.kills_named.get(point, 0) + 1
            budget -= 1
            next_kill = time.monotonic() + random.uniform(1.0, gap)
        if budget == 0 and stop.is_set():
            return
        await asyncio.sleep(0.25)


async def one_run(run: int, plan: Plan, folder: Path) -> Figures:
    random.seed(None if plan.seed is None else plan.seed + run)
    figures = Figures(run=run, threads=plan.threads)
    started = time.monotonic()
    slack = SlackEmulator(channels=[CHANNEL])
    agent = ScriptedAgent(name="chaos-agent")
    agent.token_delay = 0.02
    await slack.start()
    await agent.start()
    slack.rate_limit("chat.update", retry_after=1, times=3)  # faults Slack really returns
    slack.lose_response("chat.update", times=5)
    slack.http_error("conversations.replies", 503, times=2)
    slack.slow("chat.postMessage", 1.0, times=10, containing=ACTION_APPROVE)
    seen = Observed()
    replicas: Replicas | None = None
    try:
        async with database(plan.db, folder) as url:
            replicas = Replicas(slack, agent, folder, url, plan.replicas, seen.secret)
            for index in range(plan.replicas):
                await replicas.start(index)
            stop = asyncio.Event()
            monkey = asyncio.create_task(chaos_monkey(plan, replicas, figures, stop))
            drivers = [
                drive_thread(n, run, plan, slack, replicas, seen) for n in range(plan.threads)
            ]
            _, (figures.malformed_sent, bad) = await asyncio.gather(
                asyncio.gather(*drivers), send_malformed(replicas.live, plan.spread, seen.secret)
            )
            stop.set()
            await monkey
            quiet_from = time.monotonic()
            for index in replicas.dead():
                if replicas.armed.pop(index, None):
                    figures.kills_reached += 1
                await replicas.start(index)
            store = await Store.open(url, check_writable=False)
            try:
                await seen.wait_quiet(store, slack, deadline=90)
                figures.recovery_seconds = time.monotonic() - quiet_from
                figures.violations = await check(
                    store, slack, agent, seen, bad, replicas.kill_times
                )
            finally:
                await store.close()
            figures.acked_messages = sum(len(v) for v in seen.threads.values())
            figures.unacked_messages = len(seen.unacked)
            figures.acked_clicks = len(seen.clicks)
            figures.ack_seconds = seen.ack_seconds
            tracebacks = replicas.tracebacks()
            if tracebacks:
                figures.violations.setdefault("6 no traceback", []).append(
                    f"{tracebacks} tracebacks in the service logs"
                )
    finally:
        if replicas is not None:
            replicas.stop()
        await agent.stop()
        await slack.stop()
    figures.seconds = time.monotonic() - started
    return figures
