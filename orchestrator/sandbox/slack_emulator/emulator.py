"""`SlackEmulator`: the Web API families put together, served over HTTP on 127.0.0.1, with failures
injected on request."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from orchestrator.sandbox.loopback import LoopbackServer
from orchestrator.sandbox.slack_emulator.agent_sessions import AgentSessionMethods
from orchestrator.sandbox.slack_emulator.auth import APP_TOKEN_METHODS, AuthMethods
from orchestrator.sandbox.slack_emulator.chat import ChatMethods
from orchestrator.sandbox.slack_emulator.conversations import ConversationsMethods
from orchestrator.sandbox.slack_emulator.deliveries import Deliveries
from orchestrator.sandbox.slack_emulator.interactivity import Interactivity
from orchestrator.sandbox.slack_emulator.records import (
    Fault,
    RecordedCall,
    SlackApiFailure,
    Slowness,
)
from orchestrator.sandbox.slack_emulator.request_params import (
    bearer_token,
    decode_json_params,
    json_object,
    read_params,
)
from orchestrator.sandbox.slack_emulator.usergroups import UsergroupMethods
from orchestrator.sandbox.slack_emulator.views import ViewsMethods
from orchestrator.sandbox.slack_emulator.workspace import Handler


class SlackEmulator(
    AuthMethods,
    ChatMethods,
    ConversationsMethods,
    ViewsMethods,
    AgentSessionMethods,
    UsergroupMethods,
    Deliveries,
    Interactivity,
):
    def _web_api(self) -> dict[str, Handler]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.delete": self._delete,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "conversations.replies": self._replies,
            "views.open": self._views_open,
            "views.push": self._views_open,
            "views.update": self._views_update,
            "assistant.threads.setStatus": self._set_status,
            "assistant.threads.setSuggestedPrompts": self._set_suggested_prompts,
            "agents.sessions.setStatus": self._session_set_status,
            "chat.getPermalink": self._permalink,
            "usergroups.users.list": self._usergroup_users,
            "apps.connections.open": self._connections_open,
        }

    def _http_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route("/response/{response_id}", self._response_url, methods=["POST"]),
            ]
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> str:
        self._server = LoopbackServer(self.app)
        self._base_url = await self._server.start()
        self.api_url = f"{self._base_url}/api/"
        await self.socket_mode.start()
        return self.api_url

    async def stop(self) -> None:
        await self.socket_mode.stop()
        if self._server is not None:
            await self._server.stop()
            self._server = None

    # -- fault injection --------------------------------------------------------------------

    def fail(self, method: str, error: str, times: int = 1) -> None:
        self._add_fault(method, times, Fault(200, {"ok": False, "error": error}, {}))

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        body = {"ok": False, "error": "ratelimited"}
        self._add_fault(method, times, Fault(429, body, {"Retry-After": str(retry_after)}))

    def http_error(self, method: str, status: int = 500, times: int = 1) -> None:
        error = "service_unavailable" if status == 503 else "internal_error"
        self._add_fault(method, times, Fault(status, {"ok": False, "error": error}, {}))

    def lose_response(self, method: str, status: int = 500, times: int = 1) -> None:
        """The call takes effect but its answer is a 5xx, as when Slack's response is lost."""
        body = {"ok": False, "error": "internal_error"}
        self._add_fault(method, times, Fault(status, body, {}, applied=True))

    def slow(
        self, method: str, seconds: float, times: int = 1, containing: str | None = None
    ) -> None:
        """Answer `method` `seconds` late, after it took effect (the app sees the result only
        then: a posted message is visible to people before the app knows its ts)."""
        self._slow[method].append(Slowness(seconds, times, containing))

    def _slowness(self, method: str, params: dict[str, Any]) -> float:
        for rule in self._slow.get(method, []):
            if rule.times > 0 and (rule.containing is None or rule.containing in str(params)):
                rule.times -= 1
                return rule.seconds
        return 0.0

    def _add_fault(self, method: str, times: int, fault: Fault) -> None:
        self._faults[method].extend([fault] * times)

    def _take_fault(self, method: str) -> Fault | None:
        queue = self._faults.get(method)
        return queue.popleft() if queue else None

    def remove_method(self, method: str) -> None:
        """Answer `method` with `unknown_method`, as a workspace without the feature does."""
        self._handlers.pop(method, None)

    # -- HTTP -------------------------------------------------------------------------------

    async def _api(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        try:
            params = await read_params(request)
        except ValueError:
            return self._respond(method, {}, 200, {"ok": False, "error": "invalid_json"})
        body_token = params.pop("token", None)
        token = bearer_token(request.headers.get("authorization")) or body_token
        json_error = decode_json_params(params)
        status, body, headers = self._dispatch(method, params, token, json_error)
        delay = self._slowness(method, params) if body.get("ok") else 0.0
        if delay:
            await asyncio.sleep(delay)
        if token == self.token:  # Slack names the bot token's scopes in every answer
            headers = {**headers, "x-oauth-scopes": ",".join(self.scopes)}
        peer = f"{request.client.host}:{request.client.port}" if request.client else None
        return self._respond(method, params, status, body, headers, peer)

    def _dispatch(
        self,
        method: str,
        params: dict[str, Any],
        token: str | None,
        json_error: str | None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        handler = self._handlers.get(method)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method"}, {}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token not in (self.token, self.app_token):
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if (token == self.app_token) != (method in APP_TOKEN_METHODS):
            return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
        fault = self._take_fault(method)
        if fault is not None:
            if fault.applied and json_error is None:
                with contextlib.suppress(SlackApiFailure):
                    handler(params)
            return fault.status, dict(fault.body), fault.headers
        missing = self._missing_scope(method, params)
        if missing is not None:
            return 200, missing, {}
        if json_error is not None:
            return 200, {"ok": False, "error": json_error}, {}
        try:
            return 200, {"ok": True, **handler(params)}, {}
        except SlackApiFailure as failure:
            return 200, failure.body(), {}

    async def _response_url(self, request: Request) -> JSONResponse:
        body = json_object(await request.body())
        if body is None:
            return self._respond("response_url", {}, 400, {"ok": False, "error": "invalid_payload"})
        target = self._response_targets.get(request.path_params["response_id"])
        if target is None:
            return self._respond("response_url", body, 404, {"ok": False, "error": "expired_url"})
        json_error = decode_json_params(body)
        if json_error is not None:
            return self._respond("response_url", body, 400, {"ok": False, "error": json_error})
        try:
            self._apply_response(target, body)
        except SlackApiFailure as failure:
            return self._respond("response_url", body, 400, failure.body())
        return self._respond("response_url", body, 200, {"ok": True})

    def _respond(
        self,
        method: str,
        params: dict[str, Any],
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        peer: str | None = None,
    ) -> JSONResponse:
        call = RecordedCall(method, params, body, status, time.monotonic(), peer)
        self.calls.append(call)
        for watcher in self.call_watchers:
            watcher(call)
        return JSONResponse(body, status_code=status, headers=headers)
