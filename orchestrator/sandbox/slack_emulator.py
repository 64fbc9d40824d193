"""A local stand-in for the Slack Web API, served over real HTTP on 127.0.0.1.

`slack_sdk`'s `AsyncWebClient(token=..., base_url=emulator.api_url)` works against it unchanged.
It keeps a small workspace in memory (channels, threads, ephemerals, modals, native streams),
rejects what Slack rejects (Block Kit limits, stream state, auth), records every call, injects
failures on request, and delivers signed events and interactivity payloads to an app under test,
over HTTP or, to an app in Socket Mode (`apps.connections.open`), over its WebSocket.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from orchestrator.sandbox import slack_delivery
from orchestrator.sandbox.block_kit_rules import validate_blocks, validate_view
from orchestrator.sandbox.loopback import LoopbackServer
from orchestrator.sandbox.socket_mode import SocketModeServer

API_APP_ID = "A0SANDBOX"
VERIFICATION_TOKEN = "sandbox-verification-token"
TEXT_MAX = 40_000
MARKDOWN_TEXT_MAX = 12_000
REPLIES_LIMIT_MAX = 1000
TRIGGER_TTL = 3.0
# Parameters slack_sdk may send as JSON strings inside form bodies.
JSON_ENCODED_PARAMS = (
    "blocks",
    "attachments",
    "view",
    "metadata",
    "chunks",
    "prompts",
    "loading_messages",
)
STREAM_CHUNK_TYPES = frozenset({"markdown_text", "task_update", "plan_update", "blocks"})
TASK_STATUSES = frozenset({"pending", "in_progress", "complete", "error"})
TASK_DISPLAY_MODES = frozenset({"timeline", "plan"})
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})  # the only ones an xapp- token may call


@dataclass
class StoredMessage:
    ts: str
    channel: str
    thread_ts: str | None
    user: str | None
    bot_id: str | None
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    edits: int = 0
    streaming: bool = False
    ephemeral_user: str | None = None
    reactions: list[str] = field(default_factory=list)


@dataclass
class RecordedCall:
    method: str
    params: dict[str, Any]
    response: dict[str, Any]
    status: int
    at: float


class SlackApiFailure(Exception):
    """A Web API error answered with HTTP 200 and `{"ok": false, "error": ...}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


@dataclass
class _Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class _Stream:
    started_at: float
    display_mode: str = "timeline"
    markdown: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id -> latest update
    plan_title: str = ""
    open: bool = True
    stopped_by_user: bool = False


@dataclass
class _ResponseTarget:
    """Where a response_url post lands: the message a user clicked on."""

    channel: str
    user: str
    thread_ts: str | None
    message_ts: str
    ephemeral: bool


Handler = Callable[[dict[str, Any]], dict[str, Any]]


class SlackEmulator:
    def __init__(
        self,
        *,
        team_id: str = "T0SANDBOX",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        token: str = "xoxb-sandbox",
        app_token: str = "xapp-1-sandbox",
        channels: Iterable[str] = ("C0GENERAL",),
        strict_channels: bool = True,
        stream_ttl: float = 240.0,
        stream_max_chars: int = 12000,
        trigger_ttl: float = TRIGGER_TTL,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.token = token
        self.app_token = app_token
        self.socket_mode = SocketModeServer(API_APP_ID)
        self.strict_channels = strict_channels
        self.stream_ttl = stream_ttl
        self.stream_max_chars = stream_max_chars
        self.trigger_ttl = trigger_ttl
        self.api_url = ""
        self.calls: list[RecordedCall] = []
        self._base_url = ""
        self._server: LoopbackServer | None = None
        self._channels: set[str] = set(channels)
        self._messages: dict[tuple[str, str], StoredMessage] = {}
        self._ephemerals: list[StoredMessage] = []
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._statuses: list[dict[str, Any]] = []
        self.usergroups: dict[str, list[str]] = {}  # user-group id -> member user ids
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._response_targets: dict[str, _ResponseTarget] = {}
        self._triggers: dict[str, float | None] = {}  # issued at; None once exchanged
        self._ts_base = int(time.time())
        self._ts_seq = 0
        self._handlers: dict[str, Handler] = {
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
            "chat.getPermalink": self._permalink,
            "usergroups.users.list": self._usergroup_users,
            "apps.connections.open": self._connections_open,
        }
        self.app = Starlette(
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

    # -- inspection -------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.method == method]

    def thread(self, channel: str, thread_ts: str) -> list[StoredMessage]:
        """Parent and replies in ts order, as they read now."""
        found = [
            message
            for message in self._messages.values()
            if message.channel == channel and thread_ts in (message.ts, message.thread_ts)
        ]
        for message in found:
            self._live_stream(message)  # so an expired stream no longer reads as streaming
        return sorted(found, key=lambda message: _ts_key(message.ts))

    def ephemerals(
        self,
        channel: str | None = None,
        user: str | None = None,
    ) -> list[StoredMessage]:
        return [
            message
            for message in self._ephemerals
            if channel in (None, message.channel) and user in (None, message.ephemeral_user)
        ]

    def views_opened(self) -> list[dict[str, Any]]:
        return list(self._views.values())

    def statuses(self) -> list[dict[str, Any]]:
        return list(self._statuses)

    # -- fault injection --------------------------------------------------------------------

    def fail(self, method: str, error: str, times: int = 1) -> None:
        self._add_fault(method, times, _Fault(200, {"ok": False, "error": error}, {}))

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        body = {"ok": False, "error": "ratelimited"}
        self._add_fault(method, times, _Fault(429, body, {"Retry-After": str(retry_after)}))

    def http_error(self, method: str, status: int = 500, times: int = 1) -> None:
        error = "service_unavailable" if status == 503 else "internal_error"
        self._add_fault(method, times, _Fault(status, {"ok": False, "error": error}, {}))

    def _add_fault(self, method: str, times: int, fault: _Fault) -> None:
        self._faults[method].extend([fault] * times)

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        return queue.popleft() if queue else None

    # -- the workspace ----------------------------------------------------------------------

    def add_channel(self, channel_id: str) -> None:
        self._channels.add(channel_id)

    def post_user_message(
        self,
        channel: str,
        user: str,
        text: str,
        thread_ts: str | None = None,
        *,
        bot_id: str | None = None,
        mention: bool = False,
    ) -> dict[str, Any]:
        """Store a message from someone else and return the Slack event announcing it."""
        if self.strict_channels and channel not in self._channels:
            raise ValueError(f"unknown channel {channel!r}: call add_channel() first")
        self._channels.add(channel)
        body = f"<@{self.bot_user_id}> {text}" if mention else text
        message = StoredMessage(
            ts=self._next_ts(),
            channel=channel,
            thread_ts=self._thread_root(channel, thread_ts),
            user=user,
            bot_id=bot_id,
            text=body,
            blocks=[_user_rich_text(text, self.bot_user_id if mention else None)],
        )
        self._store(message)
        return self._event_for(message, mention=mention)

    def stop_stream_by_user(self, channel: str, ts: str) -> None:
        """What the Stop button in Slack's client does: later stream calls get `stopped_by_user`."""
        message = self._messages[(channel, ts)]
        stream = self._streams.get((channel, ts))
        if stream is not None and self._live_stream(message) is not None:
            stream.stopped_by_user = True
            _close_stream(message, stream)

    def remove_method(self, method: str) -> None:
        """Answer `method` with `unknown_method`, as a workspace without the feature does."""
        self._handlers.pop(method, None)

    # -- delivery to the app under test ----------------------------------------------------

    async def deliver_event(
        self,
        app_url: str,
        signing_secret: str,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        envelope = self._envelope(event, event_id)
        body, content_type = slack_delivery.json_body(envelope)
        headers = slack_delivery.signed_headers(
            signing_secret,
            body,
            content_type,
            timestamp=timestamp,
            signature=signature,
            retry_num=retry_num,
        )
        return await slack_delivery.post(app_url, body, headers)

    async def deliver_action(
        self,
        app_url: str,
        signing_secret: str,
        payload: dict[str, Any],
        *,
        retry_num: int | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        body, content_type = slack_delivery.interactivity_body(payload)
        headers = slack_delivery.signed_headers(
            signing_secret,
            body,
            content_type,
            timestamp=timestamp,
            signature=signature,
            retry_num=retry_num,
        )
        return await slack_delivery.post(app_url, body, headers)

    async def push_event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_attempt: int = 0
    ) -> dict[str, Any]:
        """The Socket Mode delivery of `event`: an `events_api` envelope; returns the app's ack."""
        envelope = self._envelope(event, event_id)
        return await self.socket_mode.push("events_api", envelope, retry_attempt=retry_attempt)

    def _envelope(self, event: dict[str, Any], event_id: str | None) -> dict[str, Any]:
        """The Events API envelope Slack wraps `event` in, over HTTP and Socket Mode alike."""
        return slack_delivery.event_envelope(
            event,
            team_id=self.team_id,
            api_app_id=API_APP_ID,
            bot_user_id=self.bot_user_id,
            event_id=event_id or slack_delivery.new_event_id(),
            verification_token=VERIFICATION_TOKEN,
        )

    async def push_action(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The Socket Mode delivery of an interactivity payload; returns the app's ack."""
        return await self.socket_mode.push("interactive", payload)

    def block_actions_payload(
        self,
        *,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: str,
        block_id: str = "actions",
        thread_ts: str | None = None,
        state_values: dict[str, Any] | None = None,
        trigger_id: str | None = None,
    ) -> dict[str, Any]:
        """A button click on a stored message (or ephemeral), shaped like Slack's payload."""
        message = self._messages.get((channel, message_ts))
        source = message or self._find_ephemeral(channel, message_ts)
        if source is None:
            raise KeyError(f"no message {message_ts} in {channel}")
        thread = thread_ts or source.thread_ts
        is_ephemeral = message is None
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": is_ephemeral,
        }
        if thread:
            container["thread_ts"] = thread
        target = _ResponseTarget(channel, user, thread, message_ts, is_ephemeral)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": slack_delivery.user_object(user, self.team_id),
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": trigger_id or self._issue_trigger(),
            "team": {"id": self.team_id, "domain": "sandbox"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": channel.lower()},
            "state": {"values": state_values or {}},
            "response_url": self._issue_response_url(target),
            "actions": [_action(source.blocks, action_id, block_id, value)],
        }
        if message is not None:
            payload["message"] = self._message_json(message)
            if thread:
                payload["message"]["thread_ts"] = thread
        return payload

    def view_submission_payload(
        self,
        *,
        user: str,
        callback_id: str,
        private_metadata: str,
        state_values: dict[str, Any],
    ) -> dict[str, Any]:
        """A modal submitted by `user`; the view is the latest opened with `callback_id`."""
        view = dict(self._latest_view(callback_id) or self._blank_view())
        view.update(
            callback_id=callback_id,
            private_metadata=private_metadata,
            state={"values": state_values},
        )
        return {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": "sandbox"},
            "user": slack_delivery.user_object(user, self.team_id),
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self._issue_trigger(),
            "view": view,
            "response_urls": [],
            "enterprise": None,
            "is_enterprise_install": False,
        }

    # -- HTTP -------------------------------------------------------------------------------

    async def _api(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        try:
            params = await _read_params(request)
        except ValueError:
            return self._respond(method, {}, 200, {"ok": False, "error": "invalid_json"})
        body_token = params.pop("token", None)
        token = _bearer_token(request.headers.get("authorization")) or body_token
        json_error = _decode_json_params(params)
        status, body, headers = self._dispatch(method, params, token, json_error)
        return self._respond(method, params, status, body, headers)

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
            return fault.status, dict(fault.body), fault.headers
        if json_error is not None:
            return 200, {"ok": False, "error": json_error}, {}
        try:
            return 200, {"ok": True, **handler(params)}, {}
        except SlackApiFailure as failure:
            return 200, failure.body(), {}

    async def _response_url(self, request: Request) -> JSONResponse:
        body = _json_object(await request.body())
        if body is None:
            return self._respond("response_url", {}, 400, {"ok": False, "error": "invalid_payload"})
        target = self._response_targets.get(request.path_params["response_id"])
        if target is None:
            return self._respond("response_url", body, 404, {"ok": False, "error": "expired_url"})
        json_error = _decode_json_params(body)
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
    ) -> JSONResponse:
        self.calls.append(RecordedCall(method, params, body, status, time.monotonic()))
        return JSONResponse(body, status_code=status, headers=headers)

    # -- methods: auth and messages ---------------------------------------------------------

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://sandbox.slack.com/",
            "team": "Sandbox",
            "user": "sandbox-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        text, blocks = _content(params)
        if not text and not blocks and not params.get("attachments"):
            raise SlackApiFailure("no_text")
        message = self._bot_message(channel, params.get("thread_ts"), text or "", blocks or [])
        self._store(message)
        return {"channel": channel, "ts": message.ts, "message": self._message_json(message)}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._find(channel, params.get("ts"))
        if self._live_stream(message) is not None:
            raise SlackApiFailure("streaming_state_conflict")
        if message.user != self.bot_user_id:
            raise SlackApiFailure("cant_update_message")
        text, blocks = _content(params)
        new_text = message.text if text is None else text
        new_blocks = message.blocks if blocks is None else blocks
        if not new_text and not new_blocks:
            raise SlackApiFailure("no_text")
        message.text, message.blocks = new_text, new_blocks
        message.edits += 1
        return {
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_json(message),
        }

    def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        user = params.get("user")
        if not user:
            raise SlackApiFailure("user_not_found")
        text, blocks = _content(params)
        if not text and not blocks and not params.get("attachments"):
            raise SlackApiFailure("no_text")
        message = self._bot_message(channel, params.get("thread_ts"), text or "", blocks or [])
        message.ephemeral_user = str(user)
        self._ephemerals.append(message)
        return {"message_ts": message.ts}

    def _delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._find(channel, params.get("ts"))
        if self._live_stream(message) is not None or message.user != self.bot_user_id:
            raise SlackApiFailure("cant_delete_message")
        del self._messages[(channel, message.ts)]
        self._streams.pop((channel, message.ts), None)
        return {"channel": channel, "ts": message.ts}

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        message, name = self._reaction_target(params)
        if name in message.reactions:
            raise SlackApiFailure("already_reacted")
        message.reactions.append(name)
        return {}

    def _reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        message, name = self._reaction_target(params)
        if name not in message.reactions:
            raise SlackApiFailure("no_reaction")
        message.reactions.remove(name)
        return {}

    def _reaction_target(self, params: dict[str, Any]) -> tuple[StoredMessage, str]:
        channel = self._channel(params)
        message = self._find(channel, params.get("timestamp"))
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise SlackApiFailure("invalid_name")
        return message, name

    def _replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        anchor = self._messages.get((channel, str(params.get("ts"))))
        if anchor is None:
            raise SlackApiFailure("thread_not_found")
        messages = self.thread(channel, anchor.thread_ts or anchor.ts)
        offset = _cursor_offset(params.get("cursor"))
        limit = _replies_limit(params.get("limit"))
        page = messages[offset : offset + limit]
        has_more = offset + limit < len(messages)
        result: dict[str, Any] = {
            "messages": [self._message_json(message) for message in page],
            "has_more": has_more,
        }
        if has_more:
            result["response_metadata"] = {"next_cursor": _cursor(offset + limit)}
        return result

    # -- methods: native streaming ----------------------------------------------------------

    def _start_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        if not params.get("thread_ts"):
            raise _missing_field("thread_ts")
        mode = params.get("task_display_mode") or "timeline"
        if mode not in TASK_DISPLAY_MODES:
            raise SlackApiFailure("invalid_arguments")
        stream = _Stream(started_at=time.monotonic(), display_mode=mode)
        text, blocks, tasks = self._stream_input(stream, params, required=False)
        _check_blocks(blocks)
        message = self._bot_message(channel, params["thread_ts"], "", [])
        message.streaming = True
        self._streams[(channel, message.ts)] = stream
        _extend_stream(message, stream, text, blocks, tasks)
        self._store(message)
        return {"channel": channel, "ts": message.ts}

    def _append_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        message, stream = self._streaming_message(params)
        text, blocks, tasks = self._stream_input(stream, params, required=True)
        _check_blocks(blocks)
        _extend_stream(message, stream, text, blocks, tasks)
        return {"channel": message.channel, "ts": message.ts}

    def _stop_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        message, stream = self._streaming_message(params)
        text, blocks, tasks = self._stream_input(stream, params, required=False)
        _check_blocks(blocks)
        final_blocks = params.get("blocks")
        if final_blocks is not None:
            _check_blocks(final_blocks)  # its own 50-block limit, apart from the chunks' blocks
            if isinstance(final_blocks, list):
                blocks = blocks + final_blocks
        _extend_stream(message, stream, text, blocks, tasks)
        _close_stream(message, stream)
        return {
            "channel": message.channel,
            "ts": message.ts,
            "message": self._message_json(message),
        }

    def _streaming_message(self, params: dict[str, Any]) -> tuple[StoredMessage, _Stream]:
        channel = self._channel(params)
        message = self._find(channel, params.get("ts"))
        stream = self._live_stream(message)
        if stream is None:
            ended = self._streams.get((channel, message.ts))
            if ended is not None and ended.stopped_by_user:
                raise SlackApiFailure("stopped_by_user")
            raise SlackApiFailure("message_not_in_streaming_state")
        return message, stream

    def _stream_input(
        self,
        stream: _Stream,
        params: dict[str, Any],
        *,
        required: bool,
    ) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        """The text, blocks and task chunks a stream call adds; raises before applying any."""
        markdown, chunks = params.get("markdown_text"), params.get("chunks")
        if required and markdown is None and not chunks:
            raise SlackApiFailure("no_text")
        text = "" if markdown is None else str(markdown)
        if len(text) > MARKDOWN_TEXT_MAX:
            raise SlackApiFailure("msg_too_long")
        chunk_text, blocks, tasks = _read_chunks(chunks)
        text += chunk_text
        if len(stream.markdown) + len(text) > self.stream_max_chars:
            raise SlackApiFailure("msg_too_long")
        return text, blocks, tasks

    def _live_stream(self, message: StoredMessage) -> _Stream | None:
        """The message's open stream; a stream past `stream_ttl` is closed on the way."""
        stream = self._streams.get((message.channel, message.ts))
        if stream is None or not stream.open:
            return None
        if time.monotonic() - stream.started_at >= self.stream_ttl:
            _close_stream(message, stream)
            return None
        return stream

    # -- methods: views and assistant status ------------------------------------------------

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = _checked_view(params.get("view"))
        self._exchange_trigger(params.get("trigger_id"))
        view_id = "V" + secrets.token_hex(5).upper()
        record = {
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "app_id": API_APP_ID,
            "bot_id": self.bot_id,
            "callback_id": view.get("callback_id", ""),
            "private_metadata": view.get("private_metadata", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "root_view_id": view_id,
            "previous_view_id": None,
        }
        self._views[view_id] = record
        return {"view": record}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._find_view(params.get("view_id"), params.get("external_id"))
        view = _checked_view(params.get("view"))
        record.update(view)
        record["hash"] = f"{int(time.time())}.{secrets.token_hex(4)}"
        return {"view": record}

    def _find_view(self, view_id: Any, external_id: Any) -> dict[str, Any]:
        for record in self._views.values():
            if view_id and record["id"] == view_id:
                return record
            if external_id and record.get("external_id") == external_id:
                return record
        raise SlackApiFailure("not_found")

    def _set_status(self, params: dict[str, Any]) -> dict[str, Any]:
        self._channel(params, "channel_id")
        for name in ("thread_ts", "status"):
            if params.get(name) is None:
                raise _missing_field(name)
        self._statuses.append(dict(params))
        return {}

    def _permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._find(channel, params.get("message_ts"))
        archive = f"{self._base_url}/archives/{channel}/p{message.ts.replace('.', '')}"
        return {"channel": channel, "permalink": archive}

    def _connections_open(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.socket_mode.url}

    def _usergroup_users(self, params: dict[str, Any]) -> dict[str, Any]:
        group = params.get("usergroup")
        if group not in self.usergroups:
            raise SlackApiFailure("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    # -- response_url -----------------------------------------------------------------------

    def _apply_response(self, target: _ResponseTarget, body: dict[str, Any]) -> None:
        if _flag(body.get("delete_original")):
            self._delete_original(target)
            return
        text, blocks = _content(body)
        if not text and not blocks:
            raise SlackApiFailure("no_text")
        if _flag(body.get("replace_original")):
            original = self._original(target)
            original.text, original.blocks = text or "", blocks or []
            original.edits += 1
            return
        thread_ts = body.get("thread_ts") or target.thread_ts
        message = self._bot_message(target.channel, thread_ts, text or "", blocks or [])
        if body.get("response_type") == "in_channel":
            self._store(message)
        else:
            message.ephemeral_user = target.user
            self._ephemerals.append(message)

    def _original(self, target: _ResponseTarget) -> StoredMessage:
        if target.ephemeral:
            found = self._find_ephemeral(target.channel, target.message_ts)
        else:
            found = self._messages.get((target.channel, target.message_ts))
        if found is None:
            raise SlackApiFailure("message_not_found")
        return found

    def _delete_original(self, target: _ResponseTarget) -> None:
        original = self._original(target)
        if target.ephemeral:
            self._ephemerals.remove(original)
        else:
            del self._messages[(original.channel, original.ts)]

    def _issue_response_url(self, target: _ResponseTarget) -> str:
        if not self._base_url:
            raise RuntimeError("start() the emulator before building interactivity payloads")
        response_id = secrets.token_hex(8)
        self._response_targets[response_id] = target
        return f"{self._base_url}/response/{response_id}"

    # -- helpers ----------------------------------------------------------------------------

    def _channel(self, params: dict[str, Any], key: str = "channel") -> str:
        channel = params.get(key)
        if not isinstance(channel, str) or not channel:
            raise SlackApiFailure("channel_not_found")
        if channel not in self._channels:
            if self.strict_channels:
                raise SlackApiFailure("channel_not_found")
            self._channels.add(channel)
        return channel

    def _find(self, channel: str, ts: Any) -> StoredMessage:
        message = self._messages.get((channel, str(ts)))
        if message is None:
            raise SlackApiFailure("message_not_found")
        return message

    def _find_ephemeral(self, channel: str, ts: str) -> StoredMessage | None:
        return next((m for m in self._ephemerals if m.channel == channel and m.ts == ts), None)

    def _bot_message(
        self,
        channel: str,
        thread_ts: Any,
        text: str,
        blocks: list[dict[str, Any]],
    ) -> StoredMessage:
        return StoredMessage(
            ts=self._next_ts(),
            channel=channel,
            thread_ts=self._thread_root(channel, thread_ts),
            user=self.bot_user_id,
            bot_id=self.bot_id,
            text=text,
            blocks=blocks,
        )

    def _store(self, message: StoredMessage) -> None:
        self._messages[(message.channel, message.ts)] = message

    def _next_ts(self) -> str:
        self._ts_seq += 1
        seconds, micros = divmod(self._ts_seq, 1_000_000)
        return f"{self._ts_base + seconds}.{micros:06d}"

    def _thread_root(self, channel: str, thread_ts: Any) -> str | None:
        """Slack files a reply to a reply under the thread's parent."""
        if not thread_ts:
            return None
        parent = self._messages.get((channel, str(thread_ts)))
        if parent is not None and parent.thread_ts:
            return parent.thread_ts
        return str(thread_ts)

    def _issue_trigger(self) -> str:
        trigger_id = slack_delivery.new_trigger_id()
        self._triggers[trigger_id] = time.monotonic()
        return trigger_id

    def _exchange_trigger(self, trigger_id: Any) -> None:
        """Triggers issued here expire and work once; ids made up by a test are accepted."""
        if not trigger_id:
            raise SlackApiFailure("invalid_trigger_id")
        if trigger_id not in self._triggers:
            return
        issued_at = self._triggers[trigger_id]
        if issued_at is None:
            raise SlackApiFailure("exchanged_trigger_id")
        if time.monotonic() - issued_at > self.trigger_ttl:
            raise SlackApiFailure("expired_trigger_id")
        self._triggers[trigger_id] = None

    def _latest_view(self, callback_id: str) -> dict[str, Any] | None:
        matches = [view for view in self._views.values() if view.get("callback_id") == callback_id]
        return matches[-1] if matches else None

    def _blank_view(self) -> dict[str, Any]:
        view_id = "V" + secrets.token_hex(5).upper()
        return {
            "id": view_id,
            "type": "modal",
            "blocks": [],
            "team_id": self.team_id,
            "app_id": API_APP_ID,
            "bot_id": self.bot_id,
            "root_view_id": view_id,
            "title": {"type": "plain_text", "text": "Sandbox"},
        }

    def _message_json(self, message: StoredMessage) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "message",
            "ts": message.ts,
            "text": message.text,
            "team": self.team_id,
        }
        if message.user:
            data["user"] = message.user
        if message.bot_id:
            data["bot_id"] = message.bot_id
            if message.user == self.bot_user_id:
                data["app_id"] = API_APP_ID
            else:
                data["subtype"] = "bot_message"
        if message.blocks:
            data["blocks"] = message.blocks
        if message.reactions:
            data["reactions"] = [
                {"name": name, "users": [self.bot_user_id], "count": 1}
                for name in message.reactions
            ]
        data.update(self._thread_fields(message))
        return data

    def _thread_fields(self, message: StoredMessage) -> dict[str, Any]:
        if message.thread_ts:
            parent = self._messages.get((message.channel, message.thread_ts))
            fields: dict[str, Any] = {"thread_ts": message.thread_ts}
            if parent is not None and parent.user:
                fields["parent_user_id"] = parent.user
            return fields
        replies = [
            m
            for m in self._messages.values()
            if m.channel == message.channel and m.thread_ts == message.ts
        ]
        if not replies:
            return {}
        latest = max(replies, key=lambda m: _ts_key(m.ts))
        return {"thread_ts": message.ts, "reply_count": len(replies), "latest_reply": latest.ts}

    def _event_for(self, message: StoredMessage, *, mention: bool) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "app_mention" if mention else "message",
            "channel": message.channel,
            "user": message.user,
            "text": message.text,
            "ts": message.ts,
            "event_ts": message.ts,
            "team": self.team_id,
            "blocks": message.blocks,
        }
        if not mention:
            event["channel_type"] = _channel_type(message.channel)
        if message.thread_ts:
            event.update(self._thread_fields(message))
        if message.bot_id:
            event["bot_id"] = message.bot_id
            event["subtype"] = "bot_message"
        else:
            event["client_msg_id"] = _uuid_like()
        return event


# -- request parsing --------------------------------------------------------------------------


async def _read_params(request: Request) -> dict[str, Any]:
    """Query string plus body, whichever way slack_sdk encoded it (JSON, form or multipart)."""
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if not body:
        return params
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ValueError("a JSON body must be an object")
        params.update(decoded)
    elif content_type.startswith("multipart/form-data"):
        form = await request.form()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    else:
        params.update(dict(parse_qsl(body.decode(), keep_blank_values=True)))
    return params


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        decoded = json.loads(raw or b"{}")
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def _bearer_token(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[len("bearer ") :].strip() or None
    return None


def _decode_json_params(params: dict[str, Any]) -> str | None:
    """Decode JSON-string parameters in place; Slack's error for the first that is not JSON."""
    for key in JSON_ENCODED_PARAMS:
        value = params.get(key)
        if not isinstance(value, str):
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            return "invalid_blocks_format" if key == "blocks" else "invalid_arguments"
    return None


def _flag(value: Any) -> bool:
    return value in (True, 1, "true", "1")


# -- message content --------------------------------------------------------------------------


def _content(params: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]] | None]:
    """The (text, blocks) a post or update carries, validated like Slack validates them."""
    text, blocks, markdown = params.get("text"), params.get("blocks"), params.get("markdown_text")
    if markdown is not None:
        if text is not None or blocks is not None:
            raise SlackApiFailure("markdown_text_conflict")
        markdown = str(markdown)
        if len(markdown) > MARKDOWN_TEXT_MAX:
            raise SlackApiFailure("msg_too_long")
        return markdown, [{"type": "markdown", "text": markdown}]
    if text is not None:
        text = str(text)
        if len(text) > TEXT_MAX:
            raise SlackApiFailure("msg_too_long")
    if blocks is not None:
        _check_blocks(blocks)
    return text, blocks


def _check_blocks(blocks: Any) -> None:
    errors = validate_blocks(blocks)
    if errors:
        raise SlackApiFailure(
            "invalid_blocks",
            errors=errors,
            response_metadata={"messages": [f"[ERROR] {error}" for error in errors]},
        )


def _checked_view(view: Any) -> dict[str, Any]:
    if view is None:
        raise _missing_field("view")
    errors = validate_view(view)
    if errors:
        raise SlackApiFailure(
            "invalid_arguments",
            response_metadata={"messages": [f"[ERROR] {error}" for error in errors]},
        )
    return dict(view)


def _missing_field(name: str) -> SlackApiFailure:
    return SlackApiFailure(
        "invalid_arguments",
        response_metadata={"messages": [f"[ERROR] missing required field: {name}"]},
    )


def _read_chunks(chunks: Any) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """Markdown text, blocks, and the task and plan updates carried by stream chunks."""
    if chunks is None:
        return "", [], []
    if not isinstance(chunks, list):
        raise SlackApiFailure("invalid_chunks")
    text, blocks, tasks = "", [], []
    for chunk in chunks:
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if kind not in STREAM_CHUNK_TYPES:
            raise SlackApiFailure("invalid_chunks")
        if kind == "markdown_text":
            piece = str(chunk.get("text", ""))
            if len(piece) > MARKDOWN_TEXT_MAX:
                raise SlackApiFailure("msg_too_long")
            text += piece
        elif kind == "blocks":
            blocks.extend(chunk.get("blocks") or [])
        else:
            tasks.append(_checked_task_chunk(chunk))
    return text, blocks, tasks


def _checked_task_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """A task update needs an id, a title and a known status; a plan update needs a title."""
    title = chunk.get("title")
    if not isinstance(title, str) or not title:
        raise SlackApiFailure("invalid_chunks")
    is_task = chunk["type"] == "task_update"
    if is_task and (not chunk.get("id") or chunk.get("status") not in TASK_STATUSES):
        raise SlackApiFailure("invalid_chunks")
    return chunk


def _extend_stream(
    message: StoredMessage,
    stream: _Stream,
    text: str,
    blocks: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
) -> None:
    """A streamed message reads as its tasks (a plan, or task cards), one markdown block, and
    any blocks it was given. A task update replaces the title and status of the task with its
    id; its details are appended."""
    stream.markdown += text
    stream.blocks.extend(blocks)
    for chunk in tasks:
        if chunk["type"] == "plan_update":
            stream.plan_title = chunk["title"]
            continue
        task = stream.tasks.setdefault(str(chunk["id"]), {"details": ""})
        task.update(title=chunk["title"], status=chunk["status"])
        task["details"] += str(chunk.get("details") or "")
        if chunk.get("output"):
            task["output"] = str(chunk["output"])
    message.text = stream.markdown
    markdown_block = [{"type": "markdown", "text": stream.markdown}] if stream.markdown else []
    message.blocks = _task_blocks(stream) + markdown_block + stream.blocks


def _task_blocks(stream: _Stream) -> list[dict[str, Any]]:
    cards = [
        {"type": "task_card", "task_id": task_id, **task} for task_id, task in stream.tasks.items()
    ]
    if stream.display_mode == "plan" and (cards or stream.plan_title):
        return [{"type": "plan", "title": stream.plan_title, "tasks": cards}]
    return cards


def _close_stream(message: StoredMessage, stream: _Stream) -> None:
    stream.open = False
    message.streaming = False


def _action(
    blocks: list[dict[str, Any]],
    action_id: str,
    block_id: str,
    value: str,
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    element = _find_element(blocks, block_id, action_id)
    if element is not None and "text" in element:
        action["text"] = element["text"]
    return action


def _find_element(
    blocks: list[dict[str, Any]],
    block_id: str,
    action_id: str,
) -> dict[str, Any] | None:
    for block in blocks:
        if block.get("block_id") != block_id:
            continue
        candidates = [*(block.get("elements") or []), block.get("accessory"), block.get("element")]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element
    return None


def _user_rich_text(text: str, mentioned: str | None) -> dict[str, Any]:
    elements: list[dict[str, Any]] = []
    if mentioned:
        elements.append({"type": "user", "user_id": mentioned})
        text = f" {text}"
    elements.append({"type": "text", "text": text})
    return {
        "type": "rich_text",
        "block_id": secrets.token_hex(2),
        "elements": [{"type": "rich_text_section", "elements": elements}],
    }


def _channel_type(channel: str) -> str:
    return {"D": "im", "G": "group"}.get(channel[:1], "channel")


def _uuid_like() -> str:
    raw = secrets.token_hex(16)
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _ts_key(ts: str) -> Decimal:
    try:
        return Decimal(ts)
    except InvalidOperation:
        return Decimal(0)


def _cursor(offset: int) -> str:
    return f"offset_{offset}"


def _cursor_offset(cursor: Any) -> int:
    if isinstance(cursor, str) and cursor.startswith("offset_") and cursor[7:].isdigit():
        return int(cursor[7:])
    return 0


def _replies_limit(limit: Any) -> int:
    try:
        value = int(limit)
    except (TypeError, ValueError):
        return REPLIES_LIMIT_MAX
    return max(1, min(value, REPLIES_LIMIT_MAX))


# -- what a user sees -------------------------------------------------------------------------


def render_text(message: StoredMessage) -> str:
    """A plain-text picture of a message: its blocks as Slack would draw them, or its text."""
    if not message.blocks:
        return message.text
    lines = [_render_block(block) for block in message.blocks]
    return "\n".join(line for line in lines if line)


def _render_block(block: dict[str, Any]) -> str:
    renderer = _BLOCK_RENDERERS.get(block.get("type", ""))
    return renderer(block) if renderer is not None else ""


def _render_section(block: dict[str, Any]) -> str:
    parts = [_text_of(block.get("text"))]
    parts.extend(_text_of(field) for field in block.get("fields") or [])
    accessory = block.get("accessory")
    if isinstance(accessory, dict):
        parts.append(_render_element(accessory))
    return "\n".join(part for part in parts if part)


def _render_context(block: dict[str, Any]) -> str:
    texts = [_text_of(element) for element in block.get("elements") or []]
    return " · ".join(text for text in texts if text)


def _render_actions(block: dict[str, Any]) -> str:
    rendered = [_render_element(element) for element in block.get("elements") or []]
    return "  ".join(text for text in rendered if text)


def _render_input(block: dict[str, Any]) -> str:
    element = block.get("element")
    if not isinstance(element, dict):
        return ""
    return _render_element(element, label=_text_of(block.get("label")))


def _render_element(element: dict[str, Any], label: str = "") -> str:
    kind = element.get("type")
    if kind == "button":
        return f"[{_text_of(element.get('text'))}]"
    if kind == "overflow":
        return "[...]"
    if kind == "image":
        return ""
    label = label or _text_of(element.get("placeholder")) or "Select"
    options = _option_texts(element)
    if options:
        return f"{label}: ____ ({' | '.join(options)})"
    return f"{label}: ____"


def _option_texts(element: dict[str, Any]) -> list[str]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return [_text_of(option.get("text")) for option in options if isinstance(option, dict)]


def _render_rich_text(block: dict[str, Any]) -> str:
    return "\n".join(_rich_text(element) for element in block.get("elements") or [])


def _rich_text(element: dict[str, Any]) -> str:
    kind = element.get("type")
    if kind == "text":
        return str(element.get("text", ""))
    if kind == "link":
        return str(element.get("text") or element.get("url", ""))
    if kind == "user":
        return f"<@{element.get('user_id')}>"
    if kind == "channel":
        return f"<#{element.get('channel_id')}>"
    if kind == "emoji":
        return f":{element.get('name')}:"
    children = element.get("elements") or []
    if kind == "rich_text_list":
        return "\n".join(f"• {_rich_text(child)}" for child in children)
    return "".join(_rich_text(child) for child in children)


def _render_table(block: dict[str, Any]) -> str:
    rows = block.get("rows") or []
    return "\n".join(" | ".join(_table_cell(cell) for cell in row) for row in rows)


def _table_cell(cell: Any) -> str:
    if not isinstance(cell, dict):
        return str(cell)
    if cell.get("type") == "raw_text":
        return str(cell.get("text", ""))
    return _rich_text(cell)


_TASK_MARKS = {"pending": "○", "in_progress": "◐", "complete": "●", "error": "✖"}


def _render_task_card(card: dict[str, Any]) -> str:
    return f"{_TASK_MARKS.get(card.get('status', ''), '?')} {card.get('title', '')}"


def _render_plan(block: dict[str, Any]) -> str:
    lines = [str(block.get("title") or "")]
    lines.extend(_render_task_card(card) for card in block.get("tasks") or [])
    return "\n".join(line for line in lines if line)


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict) and obj.get("type") != "image":
        return str(obj.get("text", ""))
    return ""


_BLOCK_RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "header": lambda block: _text_of(block.get("text")),
    "section": _render_section,
    "markdown": lambda block: str(block.get("text", "")),
    "context": _render_context,
    "actions": _render_actions,
    "input": _render_input,
    "divider": lambda block: "---",
    "rich_text": _render_rich_text,
    "table": _render_table,
    "plan": _render_plan,
    "task_card": _render_task_card,
}
