"""The `orchestrator` command: run, check, demo, sandbox, threads, machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator import logs
from orchestrator.config.channels import ConfigFileError
from orchestrator.config.settings import DEFAULT_MACHINE, Settings, StartError
from orchestrator.core.machine import MachineDefinitionError, load_machine, mermaid
from persistence.store import Store, StoreError


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (MachineDefinitionError, StoreError, ConfigError, ConfigFileError, StartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"error: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class ConfigError(StartError):
    """Settings that cannot start the service; the message says which and why."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator", description="Put any AG-UI agent into Slack threads."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="serve Slack (Socket Mode, or HTTP with --http)")
    run.add_argument("--http", action="store_true", help="HTTP Events API mode at /slack/events")
    run.add_argument("--port", type=int, default=3000, help="HTTP port (also /healthz, /metrics)")
    run.add_argument("--host", default="0.0.0.0", help="HTTP bind address")
    run.set_defaults(func=_run)

    check = sub.add_parser(
        "check",
        help="validate settings, channel configuration and machine; probe agents and Slack",
    )
    check.set_defaults(func=_check)

    demo = sub.add_parser("demo", help="run the whole path locally: no Slack, no agent needed")
    demo.add_argument("--delay", type=float, default=0.01, help="seconds between agent tokens")
    demo.set_defaults(func=_demo)

    sandbox = sub.add_parser(
        "sandbox",
        help="try the bot in a browser: a page like a Slack channel, the service and an agent",
    )
    sandbox.add_argument(
        "--port", type=int, default=8080, help="the page's port on 127.0.0.1 (0: any free port)"
    )
    sandbox.add_argument(
        "--db", type=Path, help="SQLite file for the service's database (default: a temporary one)"
    )
    sandbox.set_defaults(func=_sandbox)

    threads = sub.add_parser("threads", help="inspect persisted threads")
    tsub = threads.add_subparsers(dest="threads_command", required=True)
    tlist = tsub.add_parser("list", help="list threads, newest first")
    tlist.add_argument("--state", help="only threads in this state")
    tlist.add_argument("--json", action="store_true", help="machine-readable output")
    tlist.add_argument(
        "--limit", type=_positive, default=500, help="at most this many (newest first)"
    )
    tlist.set_defaults(func=_threads_list)
    tshow = tsub.add_parser("show", help="one thread: history, pending approvals")
    tshow.add_argument("id", help="conversation id (a unique prefix is enough)")
    tshow.add_argument("--json", action="store_true", help="machine-readable output")
    tshow.set_defaults(func=_threads_show)

    machine = sub.add_parser("machine", help="check or draw a machine definition")
    msub = machine.add_subparsers(dest="machine_command", required=True)
    validate = msub.add_parser("validate", help="validate a machine YAML file")
    validate.add_argument("file", nargs="?", default=str(DEFAULT_MACHINE))
    validate.set_defaults(func=_machine_validate)
    graph = msub.add_parser("graph", help="print the machine as a Mermaid diagram")
    graph.add_argument("file", nargs="?", default=str(DEFAULT_MACHINE))
    graph.set_defaults(func=_machine_graph)
    return parser


# --- run -------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    settings = Settings()
    logs.setup(settings.log_level, settings.log_format)
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    if args.http and not settings.slack_signing_secret:
        raise ConfigError("HTTP mode needs SLACK_SIGNING_SECRET to verify Slack's requests")
    if not args.http and not settings.slack_app_token:
        raise ConfigError("Socket Mode needs SLACK_APP_TOKEN (or use --http with a signing secret)")
    from orchestrator.service.serving import serve

    asyncio.run(serve(settings, http=args.http, host=args.host, port=args.port))
    return 0


# --- check -----------------------------------------------------------------------------


def _check(_args: argparse.Namespace) -> int:
    from orchestrator.service.checks import run_checks

    results = asyncio.run(run_checks(report=lambda check: print(check.line(), flush=True)))
    failed = sum(1 for check in results if check.status == "FAIL")
    print(f"{failed} of {len(results)} checks failed" if failed else "all checks passed")
    return 1 if failed else 0


# --- demo ------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from orchestrator.service.demo import run_demo

    logs.setup("WARNING")
    return asyncio.run(run_demo(token_delay=args.delay))


# --- sandbox ---------------------------------------------------------------------------


def _sandbox(args: argparse.Namespace) -> int:
    from orchestrator.sandbox.browser import run_sandbox

    logs.setup("WARNING")
    database = args.db.resolve() if args.db else None
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    return asyncio.run(run_sandbox(port=args.port, database=database))


# --- threads ---------------------------------------------------------------------------


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _threads_list(args: argparse.Namespace) -> int:
    return asyncio.run(_list(args.state, args.json, args.limit))


async def _open_for_reading() -> Store:
    settings = Settings()
    return await Store.open(
        settings.database_url,
        busy_timeout=settings.database_busy_timeout,
        check_writable=False,
    )


async def _list(state: str | None, as_json: bool, limit: int) -> int:
    store = await _open_for_reading()
    try:
        rows = await store.list_threads(state, limit=limit + 1)
    finally:
        await store.close()
    if len(rows) > limit:
        rows = rows[:limit]
        print(f"showing the newest {limit} threads; --limit shows more", file=sys.stderr)
    items = [
        {
            "id": r.id,
            "state": r.state,
            "channel": r.channel_id,
            "thread_ts": r.thread_ts,
            "requester": r.requester,
            "updated_at": _when(r.updated_at),
        }
        for r in rows
    ]
    if as_json:
        print(json.dumps(items, indent=2))
        return 0
    if not items:
        print("no threads" + (f" in state {state}" if state else ""))
        return 0
    print(f"{'ID':36}  {'STATE':17}  {'CHANNEL':12}  {'THREAD':18}  {'REQUESTER':12}  UPDATED")
    for i in items:
        print(
            f"{i['id']:36}  {i['state']:17}  {i['channel']:12}  {i['thread_ts']:18}  "
            f"{i['requester'] or '-':12}  {i['updated_at']}"
        )
    return 0


def _threads_show(args: argparse.Namespace) -> int:
    return asyncio.run(_show(args.id, args.json))


async def _show(prefix: str, as_json: bool) -> int:
    store = await _open_for_reading()
    try:
        matches = await store.threads_starting_with(prefix, limit=2)
        if len(matches) != 1:
            found = "no thread" if not matches else "more than one thread"
            print(f"error: {found} with an id starting {prefix!r}", file=sys.stderr)
            return 1
        thread = matches[0]
        history = await store.history(thread.id)
        interrupts = await store.interrupts_of(thread.id)
        queued = await store.queued(thread.id)
        feedback = await store.feedback_of(thread.id)
        escalation = await store.get_escalation(thread.id)
    finally:
        await store.close()
    data = {
        "id": thread.id,
        "state": thread.state,
        "version": thread.version,
        "team": thread.team_id,
        "channel": thread.channel_id,
        "thread_ts": thread.thread_ts,
        "requester": thread.requester,
        "error": thread.error_text,
        "history": [
            {
                "at": _when(h.at),
                "trigger": h.trigger,
                "from": h.from_state,
                "to": h.to_state,
                "actor": h.actor,
                "detail": h.detail,
            }
            for h in history
        ],
        "interrupts": [
            {
                "id": i.id,
                "interrupt_id": i.interrupt_id,
                "form": i.wire_form,
                "status": i.status,
                "message": i.message,
                "answered_by": i.answered_by,
                "answered_at": _when(i.answered_at),
                "answer": i.answer,
                "expires_at": _when(i.expires_at),
            }
            for i in interrupts
        ],
        "queued": [{"ts": q.ts, "user": q.user} for q in queued],
        "feedback": [
            {
                "id": f.id,
                "run": f.run_id,
                "user": f.user,
                "rating": f.rating,
                "reasons": f.reasons,
                "comment": f.comment,
                "at": _when(f.updated_at),
                "forwarded": f.forward_state,
                "forward_error": f.forward_error,
            }
            for f in feedback
        ],
        "escalation": (
            {"by": escalation.user, "at": _when(escalation.at), "targets": escalation.targets}
            if escalation
            else None
        ),
    }
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"thread    {data['id']}")
    print(f"state     {data['state']}  (version {data['version']})")
    print(f"slack     {data['team']} / {data['channel']} / {data['thread_ts']}")
    print(f"requester {data['requester'] or '-'}")
    if data["error"]:
        print(f"error     {data['error']}")
    print("\nhistory")
    for h in data["history"]:
        moved = f"{h['from']} -> {h['to']}" if h["from"] != h["to"] else f"{h['from']} (stays)"
        print(f"  {h['at']}  {h['trigger']:20} {moved:34} by {h['actor'] or '-'}")
    if data["interrupts"]:
        print("\napprovals")
        for i in data["interrupts"]:
            who = f" by {i['answered_by']} at {i['answered_at']}" if i["answered_by"] else ""
            print(f"  {i['id']}  {i['status']}{who}  [{i['form']}] {i['message']}")
            if i["answer"]:
                print(f"      answer: {json.dumps(i['answer'])}")
    if data["queued"]:
        print(f"\nqueued messages: {len(data['queued'])}")
    _print_feedback(data)
    return 0


def _print_feedback(data: dict[str, Any]) -> None:
    if data["feedback"]:
        print("\nfeedback")
        for f in data["feedback"]:
            error = f["forward_error"]
            sent = f" (forward {f['forwarded']}: {error})" if error else ""
            print(f"  {f['at']}  {f['rating']} by {f['user']}  run {f['run']}{sent}")
            if f["reasons"] or f["comment"]:
                print(f"      reasons: {', '.join(f['reasons']) or '-'}  comment: {f['comment']!r}")
    if data["escalation"]:
        e = data["escalation"]
        print(f"\nescalated by {e['by']} at {e['at']} to {', '.join(e['targets'])}")


def _when(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- machine ---------------------------------------------------------------------------


def _machine_validate(args: argparse.Namespace) -> int:
    definition = load_machine(Path(args.file))
    print(
        f"{args.file}: ok ({len(definition.states)} states, "
        f"{len(definition.transitions)} transitions, initial {definition.initial})"
    )
    return 0


def _machine_graph(args: argparse.Namespace) -> int:
    print(mermaid(load_machine(Path(args.file))), end="")
    return 0
