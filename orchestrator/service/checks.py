"""`orchestrator check`: validate everything the service needs, without starting it.

One line per check: the settings (and variables that look like settings but are none), the
channel configuration, the machine, the database (its schema revision and write access; nothing
is created or upgraded), every configured agent (credentials obtained, and an HTTP probe),
Slack's `auth.test` and the scopes granted to the bot token when one is set, and a Socket Mode
connection when an app-level token is set.

The agent probe is a plain `GET` of the agent's URL with its headers. AG-UI runs are `POST`s, so
a `GET` starts no run and costs nothing; any answer that is not an error about the agent itself
(typically `405 Method Not Allowed`) shows that the server is up and the path is routed. A
refused connection, a timeout, 404, 401/403, a redirect (e.g. to a login page) and 5xx fail.
An A2A agent's card is read instead (name, version, protocol version, streaming, extensions):
no card where the URL says, a card without streaming or without a JSON-RPC interface fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from orchestrator.agent.a2a import A2AClient
from orchestrator.agent.errors import AgentError
from orchestrator.agent.targets import AgentTarget
from orchestrator.agent.urls import redact_url
from orchestrator.config.channels import ChannelDirectory, ConfigFileError
from orchestrator.config.machine_source import machine_definition, machine_label
from orchestrator.config.settings import Settings
from orchestrator.config.unknown_variables import setting_names, unknown_variables
from orchestrator.core.machine import MachineDefinitionError
from orchestrator.service.check_results import Check
from orchestrator.service.runtime import slack_session
from orchestrator.service.slack_checks import auth_test_checks, socket_mode_check
from persistence import schema_upgrade
from persistence.database_url import check_database_url
from persistence.store import Store, StoreError

PROBE_TIMEOUT = 10.0
DATABASE_CHECK_WAIT = 5.0  # seconds the check waits for a write lock held elsewhere


async def run_checks(
    make_settings: Callable[[], Settings] = Settings,
    report: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Every check, in order; `report` sees each one as soon as it is known."""
    results: list[Check] = []

    def add(check: Check) -> None:
        results.append(check)
        if report is not None:
            report(check)

    try:
        settings = make_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        add(Check("FAIL", "settings", problems))
        return results
    add(Check("ok", "settings", "read from the environment"))
    for unknown in unknown_variables(setting_names(Settings), os.environ):
        add(Check("warn", "settings", unknown.sentence()))

    from orchestrator.service.runtime import channel_directory

    directory: ChannelDirectory | None = None
    source = settings.config_file or (
        "SLACK_INTEGRATION_BOT_CONFIG" if settings.inline_config else None
    )
    try:
        directory = channel_directory(settings)
    except ConfigFileError as exc:
        add(Check("FAIL", "config", str(exc)))
    else:
        config = directory.config
        if source is None:
            add(Check("ok", "config", "none given: every channel uses AGENT_URL"))
        else:
            add(
                Check(
                    "ok",
                    "config",
                    f"{source}: {len(config.channels)} channels, {len(config.agents)} agents",
                )
            )

    try:
        machine = machine_definition(settings.machine_file)
    except MachineDefinitionError as exc:
        add(Check("FAIL", "machine", str(exc)))
    else:
        add(
            Check(
                "ok",
                "machine",
                f"{machine_label(settings.machine_file)}: {len(machine.states)} states, "
                f"{len(machine.transitions)} transitions",
            )
        )

    add(await _database(settings))

    targets = directory.targets() if directory is not None else []
    for target in targets:
        if target.protocol == "a2a":
            add(await _read_card(target, settings.agent_connect_timeout))
        else:
            add(await _probe_agent(target, settings.agent_connect_timeout))

    if settings.slack_bot_token is None:
        add(Check("skip", "slack auth.test", "SLACK_BOT_TOKEN is not set"))
    else:
        async with slack_session() as session:
            client = AsyncWebClient(
                token=settings.slack_bot_token.get_secret_value(),
                base_url=settings.slack_api_url,
                session=session,
            )
            for check in await auth_test_checks(client):
                add(check)
            if settings.slack_app_token is not None:
                app_token = settings.slack_app_token.get_secret_value()
                add(await socket_mode_check(client, app_token))
    return results


async def _database(settings: Settings) -> Check:
    """The database as the service would find it; nothing is created or upgraded."""
    url = settings.database_url
    try:
        where = check_database_url(url).render_as_string(hide_password=True)
        state = await schema_upgrade.current(url)
    except StoreError as exc:
        return Check("FAIL", "database", str(exc))
    if state.empty:
        path = schema_upgrade.sqlite_path(url)
        problem = _uncreatable(path) if path is not None else None
        if problem:
            return Check("FAIL", "database", f"{where}: {problem}")
        return Check("ok", "database", f"{where}: no database yet; `orchestrator run` creates it")
    if not state.current:
        return Check("FAIL", "database", state.describe())
    try:
        store = await Store.open(
            url,
            busy_timeout=min(settings.database_busy_timeout, DATABASE_CHECK_WAIT),
            create=False,
        )
    except StoreError as exc:
        return Check("FAIL", "database", str(exc))
    await store.close()
    return Check("ok", "database", f"{where}: schema revision {state.revision}, writable")


def _uncreatable(path: Path) -> str | None:
    """Why the SQLite file `path` could not be created, or None."""
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {path}: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create {path}: {parent} is not writable"
    return None


async def _probe_agent(target: AgentTarget, connect_timeout: float) -> Check:
    where = f" ({target.origin})" if target.origin else ""
    what = f"agent {target.name}{where}"
    url = redact_url(target.url)
    try:
        headers = await target.request_headers()
    except AgentError as exc:
        return Check("FAIL", what, f"{exc.title}: {exc.detail}")
    timeout = httpx.Timeout(PROBE_TIMEOUT, connect=connect_timeout)
    try:
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            status = response.status_code
            location = response.headers.get("location", "")
    except httpx.HTTPError as exc:
        return Check("FAIL", what, f"{url} did not answer ({type(exc).__name__})")
    problem = _probe_problem(status, location)
    if problem:
        return Check("FAIL", what, f"{url} answered HTTP {status}: {problem}")
    token = ", credentials obtained" if target.credentials is not None else ""
    return Check("ok", what, f"{url} answered HTTP {status} to a GET (no run started){token}")


async def _read_card(target: AgentTarget, connect_timeout: float) -> Check:
    """An A2A agent's card, read without starting a task."""
    where = f" ({target.origin})" if target.origin else ""
    what = f"agent {target.name}{where}"
    client = A2AClient(connect_timeout=connect_timeout, first_event_timeout=PROBE_TIMEOUT)
    try:
        facts, problems = await client.describe(target)
    except AgentError as exc:
        return Check("FAIL", what, f"{exc.title}: {exc.detail}")
    finally:
        await client.aclose()
    said = f"A2A card of {redact_url(target.url)}: {facts.summary()}"
    if problems:
        return Check("FAIL", what, f"{said}. {' '.join(problems)}")
    return Check("ok", what, f"{said} (no task started)")


def _probe_problem(status: int, location: str) -> str | None:
    if status == 404:
        return "the backend does not know this agent (check the URL or the agent id)"
    if status in (401, 403):
        return "the credentials were refused"
    if 300 <= status < 400:
        shown = redact_url(location) if location else "elsewhere"
        return f"redirected to {shown} (a login page? check the access headers)"
    if status >= 500:
        return "the server failed"
    return None
