"""What the emulated workspace records: messages, calls, injected faults, the targets of
response_url posts; and the Web API's error answer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

API_APP_ID = "A0SANDBOX"
VERIFICATION_TOKEN = "sandbox-verification-token"


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
    posted_at: float = field(default_factory=time.time)  # wall-clock seconds, for display
    metadata: dict[str, Any] | None = None  # chat.postMessage's `metadata` (event type, payload)


@dataclass
class RecordedCall:
    method: str
    params: dict[str, Any]
    response: dict[str, Any]
    status: int
    at: float
    peer: str | None = None  # the caller's "host:port": one per TCP connection it used


class SlackApiFailure(Exception):
    """A Web API error answered with HTTP 200 and `{"ok": false, "error": ...}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


@dataclass
class Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    applied: bool = False  # the call takes effect, and only its response is lost


@dataclass
class Slowness:
    """Answer a call late (after it took effect): `seconds`, for `times` calls whose parameters
    mention `containing` (any call when None)."""

    seconds: float
    times: int
    containing: str | None = None


@dataclass
class ResponseTarget:
    """Where a response_url post lands: the message a user clicked on."""

    channel: str
    user: str
    thread_ts: str | None
    message_ts: str
    ephemeral: bool
