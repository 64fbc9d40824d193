"""The page's HTTP side: the page itself and its static files, server-sent events when anything
changes, the JSON it draws from, and what a person does (write, click, submit, stop, restart)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.browser.activity import SlackCallLog, exchanges_of, log_lines_of
from orchestrator.sandbox.browser.changes import Changes
from orchestrator.sandbox.browser.page_actions import ActionRefused, PageActions
from orchestrator.sandbox.browser.page_data import PageData
from orchestrator.sandbox.browser.people import BOT_NAME
from orchestrator.sandbox.browser.service_child import ServiceChild
from orchestrator.sandbox.browser.thread_inspector import ThreadInspector
from orchestrator.sandbox.browser.workspace_setup import WorkspaceSetup
from orchestrator.sandbox.slack_emulator import SlackEmulator

STATIC = Path(__file__).parent / "static"


class Sandbox(Protocol):
    """What the page reads and acts on (`orchestrator.sandbox.browser.sandbox` puts it together)."""

    setup: WorkspaceSetup
    slack: SlackEmulator
    agent: ScriptedAgent | None
    service: ServiceChild
    changes: Changes
    calls: SlackCallLog
    data: PageData
    actions: PageActions
    inspector: ThreadInspector
    streaming: str


def page_app(sandbox: Sandbox) -> Starlette:
    routes = PageRoutes(sandbox)
    return Starlette(
        routes=[
            Route("/", routes.index),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            Route("/sandbox/setup", routes.setup),
            Route("/sandbox/live", routes.live),
            Route("/sandbox/snapshot", routes.snapshot),
            Route("/sandbox/inspect", routes.inspect),
            Route("/sandbox/messages", routes.write, methods=["POST"]),
            Route("/sandbox/actions", routes.click, methods=["POST"]),
            Route("/sandbox/modals/{view_id}/submit", routes.submit, methods=["POST"]),
            Route("/sandbox/modals/{view_id}/close", routes.close_modal, methods=["POST"]),
            Route("/sandbox/stop", routes.stop, methods=["POST"]),
            Route("/sandbox/restart", routes.restart, methods=["POST"]),
        ]
    )


class PageRoutes:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def index(self, _request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def setup(self, _request: Request) -> Response:
        sandbox = self.sandbox
        setup = sandbox.setup
        return JSONResponse(
            {
                "workspace": "Sandbox",
                "team_id": sandbox.slack.team_id,
                "bot": {"id": sandbox.slack.bot_user_id, "name": BOT_NAME},
                "people": [person.json() for person in setup.people],
                "channels": [channel.json() for channel in setup.channels],
                "names": sandbox.data.names(),
                "agent": setup.agent,
                "scripted": setup.scripted,
                "streaming": sandbox.streaming,
            }
        )

    async def live(self, _request: Request) -> Response:
        return StreamingResponse(
            self.sandbox.changes.stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def snapshot(self, request: Request) -> Response:
        query = request.query_params
        channel, user, thread = query.get("channel", ""), query.get("user", ""), query.get("thread")
        data = self.sandbox.data
        return JSONResponse(
            {
                "version": self.sandbox.changes.version,
                "service": self.sandbox.service.json(),
                "channel": data.channel(channel, user) if channel else [],
                "thread": data.thread(channel, thread, user) if channel and thread else [],
                "thread_status": data.thread_status(channel, thread) if thread else "",
                "modals": data.modals(user),
            }
        )

    async def inspect(self, request: Request) -> Response:
        """The side panel: the thread as stored, its Slack calls, its agent traffic, its logs."""
        sandbox = self.sandbox
        channel, thread_ts = request.query_params.get("channel"), request.query_params.get("thread")
        service_logs = list(sandbox.service.logs)
        if not channel or not thread_ts:
            return JSONResponse(
                {
                    "thread": None,
                    "slack_calls": sandbox.calls.latest(),
                    "agent": [],
                    "logs": log_lines_of(service_logs, None),
                }
            )
        conversation = sandbox.inspector.conversation_id(sandbox.slack.team_id, channel, thread_ts)
        try:
            stored = await sandbox.inspector.details(conversation)
        except Exception as exc:  # the database is the service's: say what went wrong, go on
            stored = {"unreadable": f"{type(exc).__name__}: {exc}"}
        agent = exchanges_of(sandbox.agent.exchanges, conversation) if sandbox.agent else []
        return JSONResponse(
            {
                "conversation": conversation,
                "thread": stored,
                "slack_calls": sandbox.calls.of_thread(channel, thread_ts),
                "agent": agent,
                "logs": log_lines_of(service_logs, conversation),
            }
        )

    async def write(self, request: Request) -> Response:
        body = await _body(request)
        return await self._act(
            lambda: {
                "ts": self.sandbox.actions.write(
                    str(body.get("channel", "")),
                    str(body.get("user", "")),
                    str(body.get("text", "")),
                    body.get("thread_ts") or None,
                )
            }
        )

    async def click(self, request: Request) -> Response:
        body = await _body(request)
        try:
            await self.sandbox.actions.click(
                channel=str(body.get("channel", "")),
                user=str(body.get("user", "")),
                message_ts=str(body.get("message_ts", "")),
                action_id=str(body.get("action_id", "")),
                block_id=str(body.get("block_id", "")),
                value=str(body.get("value", "")),
                state_values=_object(body.get("state_values")),
                selection=_object(body.get("selection")) or None,
            )
        except ActionRefused as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=409)
        return JSONResponse({"ok": True})

    async def submit(self, request: Request) -> Response:
        body = await _body(request)
        try:
            errors = await self.sandbox.actions.submit_modal(
                request.path_params["view_id"],
                str(body.get("user", "")),
                _object(body.get("state_values")),
            )
        except ActionRefused as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=409)
        return JSONResponse({"ok": True, "errors": errors})

    async def close_modal(self, request: Request) -> Response:
        self.sandbox.actions.close_modal(request.path_params["view_id"])
        return JSONResponse({"ok": True})

    async def stop(self, request: Request) -> Response:
        body = await _body(request)
        return await self._act(
            lambda: self.sandbox.actions.stop_stream(
                str(body.get("channel", "")), str(body.get("ts", ""))
            )
        )

    async def restart(self, _request: Request) -> Response:
        return await self._act(self.sandbox.actions.restart_service)

    async def _act(self, action: Any) -> Response:
        try:
            result = action()
        except ActionRefused as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=409)
        return JSONResponse({"ok": True, **(result or {})})


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
