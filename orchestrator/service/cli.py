"""The `orchestrator` command: run, check, demo, sandbox, manifest, db, threads, machine,
--version."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator import logs
from orchestrator.config.channels import ConfigFileError
from orchestrator.config.machine_source import BUILT_IN, machine_definition
from orchestrator.config.settings import Settings, StartError
from orchestrator.config.unknown_variables import setting_names, unknown_variables
from orchestrator.core.machine import (
    MachineDefinition,
    MachineDefinitionError,
    load_machine,
    mermaid,
)
from orchestrator.service import database_commands, thread_commands
from orchestrator.slack.manifest import manifest_yaml
from persistence.store import StoreError

DISTRIBUTION = "slack-thread-orchestrator"
log = logging.getLogger("orchestrator.service")


def version() -> str:
    return package_version(DISTRIBUTION)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (MachineDefinitionError, StoreError, ConfigFileError, StartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except thread_commands.UnknownState as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print("error: invalid settings:", file=sys.stderr)
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            print(f"  {where}: {error['msg']}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class ConfigError(StartError):
    """Settings that cannot start the service; the message says which and why."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator", description="Put any AG-UI agent into Slack threads."
    )
    parser.add_argument("--version", action="version", version=f"orchestrator {version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="serve Slack (Socket Mode, or HTTP with --http)")
    run.add_argument("--http", action="store_true", help="HTTP Events API mode at /slack/events")
    run.add_argument("--port", type=int, default=3000, help="HTTP port (also /healthz, /metrics)")
    run.add_argument("--host", default="0.0.0.0", help="HTTP bind address")
    run.add_argument(
        "--upgrade",
        action="store_true",
        help="upgrade a database an older release wrote, instead of refusing it",
    )
    run.set_defaults(func=_run)

    check = sub.add_parser(
        "check",
        help="validate settings, channel configuration and machine; probe agents and Slack",
    )
    check.set_defaults(func=_check)

    demo = sub.add_parser("demo", help="run the whole path locally: no Slack, no agent needed")
    demo.add_argument("--delay", type=float, default=0.01, help="seconds between agent tokens")
    demo.set_defaults(func=_demo)

    manifest = sub.add_parser("manifest", help="print the Slack app manifest (YAML) to paste")
    mode = manifest.add_mutually_exclusive_group()
    mode.add_argument(
        "--http",
        metavar="URL",
        help="HTTP mode: the service's public https URL (Slack calls URL/slack/events)",
    )
    mode.add_argument("--socket", action="store_true", help="Socket Mode (the default)")
    manifest.add_argument("--name", default="Agent", help="the app's and bot's name in Slack")
    manifest.set_defaults(func=_manifest)

    db = sub.add_parser("db", help="the database schema (ORCH_DATABASE_URL)")
    dsub = db.add_subparsers(dest="db_command", required=True)
    upgrade = dsub.add_parser("upgrade", help="apply this release's migrations")
    upgrade.set_defaults(func=_with_settings(database_commands.upgrade_database))
    current = dsub.add_parser("current", help="the database's revision (exit 1: not current)")
    current.set_defaults(func=_with_settings(database_commands.database_revision))

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
    tshow.add_argument(
        "id", help="conversation id (a unique prefix is enough), Slack link, or thread ts"
    )
    tshow.add_argument("--json", action="store_true", help="machine-readable output")
    tshow.set_defaults(func=_threads_show)

    machine = sub.add_parser("machine", help="check or draw a machine definition")
    msub = machine.add_subparsers(dest="machine_command", required=True)
    validate = msub.add_parser("validate", help="validate a machine YAML file")
    validate.add_argument("file", nargs="?", help="default: the built-in machine")
    validate.set_defaults(func=_machine_validate)
    graph = msub.add_parser("graph", help="print the machine as a Mermaid diagram")
    graph.add_argument("file", nargs="?", help="default: the built-in machine")
    graph.set_defaults(func=_machine_graph)
    return parser


# --- run -------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    settings = Settings()
    logs.setup(settings.log_level, settings.log_format)
    for unknown in unknown_variables(setting_names(Settings), os.environ):
        log.warning(unknown.sentence())
    if not settings.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    if args.http and not settings.slack_signing_secret:
        raise ConfigError("HTTP mode needs SLACK_SIGNING_SECRET to verify Slack's requests")
    if not args.http and not settings.slack_app_token:
        raise ConfigError("Socket Mode needs SLACK_APP_TOKEN (or use --http with a signing secret)")
    from orchestrator.service.serving import serve

    asyncio.run(
        serve(
            settings,
            http=args.http,
            host=args.host,
            port=args.port,
            upgrade=args.upgrade,
            version=version(),
        )
    )
    return 0


# --- check, demo, manifest ---------------------------------------------------------------


def _check(_args: argparse.Namespace) -> int:
    from orchestrator.service.checks import run_checks

    results = asyncio.run(run_checks(report=lambda check: print(check.line(), flush=True)))
    failed = sum(1 for check in results if check.status == "FAIL")
    print(f"{failed} of {len(results)} checks failed" if failed else "all checks passed")
    return 1 if failed else 0


def _demo(args: argparse.Namespace) -> int:
    from orchestrator.service.demo import run_demo

    logs.setup("WARNING")
    return asyncio.run(run_demo(token_delay=args.delay))


def _manifest(args: argparse.Namespace) -> int:
    try:
        print(manifest_yaml(http_url=args.http, name=args.name), end="")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


# --- sandbox ---------------------------------------------------------------------------


def _sandbox(args: argparse.Namespace) -> int:
    from orchestrator.sandbox.browser import run_sandbox

    logs.setup("WARNING")
    database = args.db.resolve() if args.db else None
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    return asyncio.run(run_sandbox(port=args.port, database=database))


# --- db, threads -------------------------------------------------------------------------


def _with_settings(
    command: Callable[[Settings], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    def run(_args: argparse.Namespace) -> int:
        return asyncio.run(command(Settings()))

    return run


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _threads_list(args: argparse.Namespace) -> int:
    settings = Settings()
    return asyncio.run(thread_commands.list_threads(settings, args.state, args.json, args.limit))


def _threads_show(args: argparse.Namespace) -> int:
    return asyncio.run(thread_commands.show_thread(Settings(), args.id, args.json))


# --- machine ---------------------------------------------------------------------------


def _machine_of(file: str | None) -> MachineDefinition:
    return load_machine(Path(file)) if file else machine_definition(None)


def _machine_validate(args: argparse.Namespace) -> int:
    definition = _machine_of(args.file)
    print(
        f"{args.file or BUILT_IN}: ok ({len(definition.states)} states, "
        f"{len(definition.transitions)} transitions, initial {definition.initial})"
    )
    return 0


def _machine_graph(args: argparse.Namespace) -> int:
    print(mermaid(_machine_of(args.file)), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
