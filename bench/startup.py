"""Start-up with a large store: how long until `/readyz` answers, and until recovery finished.

    python bench/startup.py [--threads N] [--forms K] [--db sqlite|postgres]
    # defaults: N=100000 finished threads, K=10000 threads waiting on a posted approval form

The store is filled through the real schema (the migrations make it) with rows shaped as the
service writes them (a thread, its history, its conversation, its answer or its form, its
agent), inserted in bulk. Then the real service starts as a subprocess (`orchestrator run
--http`), with the sandbox Slack emulator as the Web API and the scripted agent, and the script
polls `/readyz` and reads the service's log for the `recovery finished` line. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch_databases import scratch_database
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator
from persistence.models import (
    AgentTask,
    Answer,
    Base,
    ConversationMessage,
    Interrupt,
    Thread,
    Transition,
)
from persistence.store import Store

CHANNEL = "C0BENCH"
USER = "U0BENCH"
SECRET = "bench-signing-secret"
CHUNK = 5000  # rows per INSERT batch
# The form's poster: a process that is gone (another boot of another host).
GONE = "bench-host/boot-gone/pid:[0]/4242/0123456789abcdef"
SCHEMA = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "enum": [3, 5, 8], "default": 5},
        "comment": {"type": "string", "format": "textarea"},
    },
    "required": ["replicas"],
}


def rows_of(
    i: int, waiting: bool, agent_url: str, now: float, channel: str = CHANNEL
) -> dict[str, list[dict[str, Any]]]:
    """One thread's rows, as a finished answer (or a run waiting on its form) leaves them."""
    thread_id, run_id = str(uuid.uuid4()), str(uuid.uuid4())
    ts = f"{1700000000 + i}.000001"
    reply_ts = f"{1700000000 + i}.000002"
    state = "awaiting_approval" if waiting else "done"
    ask = "please scale web" if waiting else "why is the build red?"
    said = (
        "Scaling deployment web from 3 to 5 replicas needs approval before I continue."
        if waiting
        else "The last build failed in the lint step: two files are not formatted."
    )
    history = [("idle", "streaming", "user_message", USER, {"ts": ts})]
    history.append(("streaming", "streaming", "run_started", None, {"run_id": run_id}))
    if waiting:
        interrupt_id = f"{run_id}-interrupt-1"
        history.append(("streaming", state, "interrupt", "agent", {"interrupts": [interrupt_id]}))
    else:
        history.append(("streaming", state, "run_finished", "agent", {}))
    rows: dict[str, list[dict[str, Any]]] = {
        "threads": [
            {
                "id": thread_id,
                "team_id": "T0SANDBOX",
                "channel_id": channel,
                "thread_ts": ts,
                "state": state,
                "version": len(history),
                "requester": USER,
                "run_id": run_id,
                "message_ts": [reply_ts],
                "live_ts": [],
                "run_sent": run_id,
                "created_at": now,
                "updated_at": now,
            }
        ],
        "transitions": [
            {
                "thread_id": thread_id,
                "from_state": a,
                "to_state": b,
                "trigger": trigger,
                "actor": actor,
                "detail": detail,
                "at": now,
            }
            for a, b, trigger, actor, detail in history
        ],
        "conversation_messages": [
            {
                "thread_id": thread_id,
                "seq": 1,
                "message": {"id": str(uuid.uuid4()), "role": "user", "content": ask, "name": USER},
                "sent": True,
            },
            {
                "thread_id": thread_id,
                "seq": 2,
                "message": {"id": f"{run_id}-text", "role": "assistant", "content": said},
                "sent": False,
            },
        ],
        "agent_tasks": [{"thread_id": thread_id, "agent": agent_url, "updated_at": now}],
        "answers": [],
        "interrupts": [],
    }
    if waiting:
        rows["interrupts"].append(
            {
                "id": str(uuid.uuid4()),
                "thread_id": thread_id,
                "interrupt_id": interrupt_id,
                "run_id": run_id,
                "wire_form": "outcome",
                "message": "Approve scaling deployment web to 5 replicas?",
                "reason": "confirmation",
                "tool_call_id": f"{run_id}-scale",
                "tool_name": "scale_deployment",
                "tool_args": json.dumps({"deployment": "web", "replicas": 5}),
                "response_schema": SCHEMA,
                "labels": {},
                "requester": USER,
                "approvers": ["requester"],
                "form_ts": f"{1700000000 + i}.000003",
                "form_intent": GONE,
                "form_intent_at": now,
                "status": "pending",
                "created_at": now,
            }
        )
    else:
        rows["answers"].append(
            {
                "run_id": run_id,
                "thread_id": thread_id,
                "view": {"text": said, "tools": [], "steps": []},
                "message_ts": [reply_ts],
                "created_at": now,
            }
        )
    return rows


TABLES: dict[str, type[Base]] = {
    "threads": Thread,
    "transitions": Transition,
    "conversation_messages": ConversationMessage,
    "agent_tasks": AgentTask,
    "answers": Answer,
    "interrupts": Interrupt,
}


def batches(threads: int, forms: int, agent_url: str) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """The rows of `threads` finished threads and `forms` waiting ones, CHUNK threads a batch;
    the waiting ones are spread among the others."""
    now = time.time() - 3600
    total = threads + forms
    every = max(1, total // max(1, forms))
    batch: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    waiting = 0
    for i in range(total):
        wait = waiting < forms and (i % every == 0 or total - i <= forms - waiting)
        waiting += wait
        for name, rows in rows_of(i, wait, agent_url, now).items():
            batch[name].extend(rows)
        if len(batch["threads"]) >= CHUNK:
            yield batch
            batch = {name: [] for name in TABLES}
    if batch["threads"]:
        yield batch


async def fill(url: str, threads: int, forms: int, agent_url: str) -> float:
    """Seconds spent filling the store (made by the migrations, as `orchestrator run` would)."""
    began = time.perf_counter()
    store = await Store.open(url)
    try:
        for batch in batches(threads, forms, agent_url):
            async with store.engine.begin() as conn:
                for name, model in TABLES.items():
                    if batch[name]:
                        # Core inserts (executemany): the ORM's bulk path is ~2x slower here
                        await conn.execute(model.__table__.insert(), batch[name])
    finally:
        await store.close()
    return time.perf_counter() - began


@contextlib.asynccontextmanager
async def database(kind: str, folder: Path) -> AsyncIterator[str]:
    if kind.startswith("sqlite:"):  # a kept file (--keep)
        yield f"sqlite+aiosqlite:///{kind.removeprefix('sqlite:')}"
        return
    async with scratch_database(kind, folder, "orch_bench") as url:
        yield url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(url: str, slack: SlackEmulator, agent_url: str, log_path: Path) -> dict[str, Any]:
    """Start the service; seconds until the port answers, `/readyz` says ready, and recovery
    logged that it finished (with what it logged)."""
    port = free_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "AGENT_URL": agent_url,
        "ORCH_DATABASE_URL": url,
        "ORCH_LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "orchestrator", "run", "--http"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    figures: dict[str, Any] = {}
    with log_path.open("wb") as log:
        began, wall = time.perf_counter(), time.time()
        proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=log, stderr=log)
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                while "ready" not in figures or "recovered" not in figures:
                    text = await asyncio.to_thread(log_path.read_text, errors="replace")
                    if proc.returncode is not None:
                        raise RuntimeError(f"service exited: {text[-2000:]}")
                    if time.perf_counter() - began > 600:
                        raise TimeoutError(f"not ready/recovered in 600 s: {figures}")
                    if "ready" not in figures:
                        await poll_ready(client, port, began, figures)
                    if "started" not in figures:
                        at = line_of(text, "started")
                        if at is not None:
                            figures["started"] = datetime.fromisoformat(at["at"]).timestamp() - wall
                    if "recovered" not in figures:
                        recovered = line_of(text, "recovery finished")
                        if recovered is not None:
                            figures["recovered"] = time.perf_counter() - began
                            figures["recovery"] = recovered
                    await asyncio.sleep(0.01)
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
    return figures


async def poll_ready(
    client: httpx.AsyncClient, port: int, began: float, figures: dict[str, Any]
) -> None:
    try:
        answer = await client.get(f"http://127.0.0.1:{port}/readyz")
    except httpx.TransportError:
        return
    figures.setdefault("port", time.perf_counter() - began)
    if answer.status_code == 200:
        figures["ready"] = time.perf_counter() - began


def line_of(text: str, message: str) -> dict[str, Any] | None:
    """The service's JSON log line with this message, if logged yet."""
    for line in text.splitlines():
        if f'"msg": "{message}"' in line:
            return dict(json.loads(line))
    return None


async def run(args: argparse.Namespace) -> None:
    slack = SlackEmulator(channels=[CHANNEL])
    agent = ScriptedAgent(name="bench-agent")
    await slack.start()
    await agent.start()
    agent_url = agent.url("interrupt-outcome")
    try:
        with tempfile.TemporaryDirectory(prefix="orch-startup-") as tmp:
            kind = f"sqlite:{args.keep}" if args.keep else args.db
            async with database(kind, Path(tmp)) as url:
                filled = 0.0
                if not args.keep or not args.kept:
                    filled = await fill(url, args.threads, args.forms, agent_url)
                figures = await measure(url, slack, agent_url, Path(tmp) / "service.log")
    finally:
        await agent.stop()
        await slack.stop()
    recovery = figures["recovery"]
    print(f"database            {args.db}")
    print(f"finished threads    {args.threads}")
    print(f"waiting on a form   {args.forms}")
    print(f"store filled in     {filled:.1f} s")
    print(
        f"start line after    {figures['started']:.2f} s   (imports, store opened, Slack checked)"
    )
    print(f"port open after     {figures['port']:.2f} s")
    print(f"/readyz 200 after   {figures['ready']:.2f} s   (target <= 2 s)")
    print(f"  of which after the start line {figures['ready'] - figures['started']:.2f} s")
    print(f"recovery done after {figures['recovered']:.2f} s")
    for key in ("seconds", "statements", "waiting", "threads"):
        if key in recovery:
            print(f"  recovery {key:<10} {recovery[key]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=100_000, help="finished threads")
    parser.add_argument("--forms", type=int, default=10_000, help="threads waiting on a form")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--keep",
        metavar="FILE",
        help="SQLite only: fill this file if it does not exist, else start on it as it is "
        "(to measure again without filling again; a run changes the store: copy it first)",
    )
    args = parser.parse_args(argv)
    if args.keep:
        keep = Path(args.keep).resolve()
        args.keep, args.kept = str(keep), keep.exists()
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
