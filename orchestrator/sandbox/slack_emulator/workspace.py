"""The emulated workspace's state, what a test can read of it, and the helpers every Web API family
shares."""

from __future__ import annotations

import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.applications import Starlette

from orchestrator.sandbox import slack_delivery
from orchestrator.sandbox.loopback import LoopbackServer
from orchestrator.sandbox.slack_emulator.records import (
    API_APP_ID,
    Fault,
    RecordedCall,
    ResponseTarget,
    SlackApiFailure,
    Slowness,
    StoredMessage,
)
from orchestrator.sandbox.slack_emulator.stream_chunks import Stream, close_stream
from orchestrator.sandbox.socket_mode import SocketModeServer
from orchestrator.slack.manifest import required_scopes

Handler = Callable[[dict[str, Any]], dict[str, Any]]
CallWatcher = Callable[[RecordedCall], None]

TRIGGER_TTL = 3.0


class Workspace:
    """The workspace in memory (channels, messages, ephemerals, streams, views) and the
    helpers each Web API family uses; `SlackEmulator` puts the families together."""

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
        scopes: Iterable[str] | None = None,
        agent_sessions: bool = True,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.token = token
        self.app_token = app_token
        # The bot token's scopes: by default exactly the ones the app manifest asks for.
        self.scopes: list[str] = list(scopes if scopes is not None else required_scopes())
        self.socket_mode = SocketModeServer(API_APP_ID)
        self.strict_channels = strict_channels
        self.stream_ttl = stream_ttl
        self.stream_max_chars = stream_max_chars
        self.trigger_ttl = trigger_ttl
        self.agent_sessions = agent_sessions  # False: the app is not an agent (no sessions)
        self.session_stop_subscribed = True  # False: setStatus warns the app is not subscribed
        self.api_url = ""
        self.calls: list[RecordedCall] = []
        self.call_watchers: list[CallWatcher] = []  # told of each call once it is answered
        self._base_url = ""
        self._server: LoopbackServer | None = None
        self._channels: set[str] = set(channels)
        self._messages: dict[tuple[str, str], StoredMessage] = {}
        self._ephemerals: list[StoredMessage] = []
        self._streams: dict[tuple[str, str], Stream] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._statuses: list[dict[str, Any]] = []
        self._sessions: dict[tuple[str, str], Any] = {}  # (channel, thread_ts) -> AgentSession
        self._prompts: dict[str, dict[str, Any]] = {}  # channel -> its suggested prompts
        self.usergroups: dict[str, list[str]] = {}  # user-group id -> member user ids
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._slow: dict[str, list[Slowness]] = defaultdict(list)
        self._response_targets: dict[str, ResponseTarget] = {}
        self._triggers: dict[str, float | None] = {}  # issued at; None once exchanged
        self._ts_base = int(time.time())
        self._ts_seq = 0
        self._handlers: dict[str, Handler] = self._web_api()
        self.app = self._http_app()

    def _web_api(self) -> dict[str, Handler]:
        """The Web API methods answered, by name."""
        raise NotImplementedError

    def _http_app(self) -> Starlette:
        raise NotImplementedError

    # -- inspection -------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.method == method]

    def connections(self, calls: list[RecordedCall] | None = None) -> set[str]:
        """The TCP connections (the callers' "host:port") that `calls` (all when None) came on."""
        return {call.peer for call in (self.calls if calls is None else calls) if call.peer}

    def all_messages(self, channel: str) -> list[StoredMessage]:
        """Every message of the channel (threads included) in ts order."""
        found = [m for m in self._messages.values() if m.channel == channel]
        return sorted(found, key=lambda message: _ts_key(message.ts))

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

    def message(self, channel: str, ts: str) -> StoredMessage | None:
        """A stored (not ephemeral) message, as it reads now."""
        return self._messages.get((channel, ts))

    def channel_messages(self, channel: str) -> list[StoredMessage]:
        """The channel's top-level messages (threads' parents included) in ts order."""
        found = [m for m in self._messages.values() if m.channel == channel and not m.thread_ts]
        for message in found:
            self._live_stream(message)
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

    def _live_stream(self, message: StoredMessage) -> Stream | None:
        """The message's open stream; a stream past `stream_ttl` is closed on the way."""
        stream = self._streams.get((message.channel, message.ts))
        if stream is None or not stream.open:
            return None
        if time.monotonic() - stream.started_at >= self.stream_ttl:
            close_stream(message, stream)
            return None
        return stream

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
        if message.metadata:
            data["metadata"] = message.metadata
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
