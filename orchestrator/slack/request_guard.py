"""What a request must be before the bolt app reads it: signed by Slack (HTTP mode), JSON of a
sane size and depth, and shaped like a delivery this app handles. Anything else is refused with
a 4xx, before it can reach the store, the agent, or a listener that would trip on it."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context

MAX_BODY = 1_000_000  # bytes; Slack's deliveries are a few kilobytes
MAX_DEPTH = 64  # nesting of JSON arrays and objects; Slack's payloads stay under 15
MAX_AGE = 300  # seconds a signature stays valid (Slack's own rule)
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    reason: str


def check(
    secret: str | None, headers: Mapping[str, str], body: bytes, now: float
) -> Refusal | None:
    """None when the request may go to the bolt app; otherwise the status and why not."""
    if len(body) > MAX_BODY:
        return Refusal(413, "request too large")
    if secret is not None and not signed(secret, headers, body, now):
        return Refusal(401, "invalid signature")
    payload = parse(body, headers.get("content-type", ""))
    if isinstance(payload, Refusal):
        return payload
    problem = shape_error(payload)
    return Refusal(400, problem) if problem else None


def signed(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """Slack's v0 signature over `v0:{timestamp}:{body}`, no more than five minutes old."""
    stamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        return False
    if abs(now - int(stamp)) > MAX_AGE:
        return False
    base = b"v0:" + stamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("latin-1", "replace"))


def parse(body: bytes, content_type: str) -> dict[str, Any] | Refusal:
    """The delivery as Slack sends it: a JSON object, or a form whose `payload` is one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(400, "body is not UTF-8")
    if content_type.split(";")[0].strip().lower() == FORM:
        fields = parse_qs(text, keep_blank_values=True)
        if "payload" not in fields:
            return Refusal(400, "form without payload")
        text = fields["payload"][0]
    if too_deep(text):
        return Refusal(400, "JSON nested too deeply")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return Refusal(400, "body is not JSON")
    if not isinstance(data, dict):
        return Refusal(400, "body is not a JSON object")
    return data


def too_deep(text: str) -> bool:
    """Nesting deeper than MAX_DEPTH, found without parsing (brackets in strings ignored)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


_OPTIONAL_STRINGS = ("team_id", "api_app_id", "event_id", "enterprise_id", "token", "trigger_id")
_OPTIONAL_OBJECTS = ("team", "channel", "container", "enterprise", "message", "state", "user")


def shape_error(body: Mapping[str, Any]) -> str | None:
    """Why `body` is not a delivery the app can read (None when it is)."""
    kind = body.get("type")
    if not isinstance(kind, str):
        return "no type"
    for key in _OPTIONAL_STRINGS:
        if body.get(key) is not None and not isinstance(body[key], str):
            return f"{key} is not a string"
    for key in _OPTIONAL_OBJECTS:
        if body.get(key) is not None and not isinstance(body[key], dict):
            return f"{key} is not an object"
    for key in ("event", "view"):  # bolt reads these as objects wherever they are present
        if key in body and not isinstance(body[key], dict):
            return f"{key} is not an object"
    actions = body.get("actions")
    if actions is not None and not _objects(actions):
        return "actions is not a list of objects"
    authorizations = body.get("authorizations")
    if authorizations is not None and not _objects(authorizations):
        return "authorizations is not a list of objects"
    if kind == "url_verification":
        return None if isinstance(body.get("challenge"), str) else "no challenge"
    if kind == "event_callback":
        return _event_error(body.get("event"))
    if kind in ("block_actions", "view_submission", "view_closed"):
        problem = _interaction_error(kind, body)
        if problem:
            return problem
    return _context_error(body)  # other kinds are acknowledged and ignored by the app


def _context_error(body: Mapping[str, Any]) -> str | None:
    """Why bolt could not build its request context from `body`. Bolt reads the team, user
    and channel ids along paths that differ between its versions (before 1.29 a `user` without
    `team_id` raised KeyError); asking bolt's own builder keeps the guard right for every
    version the package allows, where a copy of its rules would drift."""
    try:
        build_async_context(AsyncBoltContext({}), dict(body))
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        return f"ids unreadable ({type(exc).__name__})"
    return None


def _event_error(event: Any) -> str | None:
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "event without a type"
    for key in ("channel", "ts", "text", "user", "thread_ts", "bot_id", "subtype", "username"):
        if event.get(key) is not None and not isinstance(event[key], str):
            return f"event.{key} is not a string"
    located = isinstance(event.get("channel"), str) and isinstance(event.get("ts"), str)
    if event["type"] in ("app_mention", "message") and not located:
        return "message without channel or ts"
    return None


def _interaction_error(kind: str, body: Mapping[str, Any]) -> str | None:
    user = body.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        return "interaction without a user"
    state = body.get("state")
    if state is not None and not isinstance(state.get("values", {}), dict):
        return "state.values is not an object"
    container = body.get("container") or {}
    for key in ("message_ts", "channel_id", "thread_ts"):
        if container.get(key) is not None and not isinstance(container[key], str):
            return f"container.{key} is not a string"
    if kind == "block_actions":
        actions = body.get("actions")
        if not actions or not _objects(actions):
            return "block_actions without actions"
        for action in actions:
            if not isinstance(action.get("action_id"), str):
                return "action without action_id"
            if action.get("value") is not None and not isinstance(action["value"], str):
                return "action value is not a string"
        return None
    view = body.get("view")
    if not isinstance(view, dict):
        return "view is not an object"
    for key in ("callback_id", "private_metadata", "id"):
        if view.get(key) is not None and not isinstance(view[key], str):
            return f"view.{key} is not a string"
    view_state = view.get("state")
    if view_state is not None and (
        not isinstance(view_state, dict) or not isinstance(view_state.get("values", {}), dict)
    ):
        return "view.state is not an object"
    return None


def _objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)
