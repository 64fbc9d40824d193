"""What Slack sends to an app: Events API envelopes and interactivity posts, signed like Slack."""

from __future__ import annotations

import functools
import json
import secrets
import ssl
import time
from typing import Any
from urllib.parse import urlencode

import certifi
import httpx
from slack_sdk.signature import SignatureVerifier

DELIVERY_TIMEOUT = 10.0


def signed_headers(
    signing_secret: str,
    body: str,
    content_type: str,
    *,
    timestamp: int | None = None,
    signature: str | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
) -> dict[str, str]:
    """Headers Slack puts on a delivery; `signature` replaces the computed one when given."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    if signature is None:
        signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature or "",
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason
    return headers


def new_event_id() -> str:
    return "Ev" + secrets.token_hex(5).upper()


def new_trigger_id() -> str:
    return f"{secrets.randbelow(10**11)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"


def event_envelope(
    event: dict[str, Any],
    *,
    team_id: str,
    api_app_id: str,
    bot_user_id: str,
    event_id: str,
    verification_token: str,
) -> dict[str, Any]:
    return {
        "token": verification_token,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{secrets.token_hex(12)}",
    }


def user_object(user: str, team_id: str) -> dict[str, str]:
    name = user.lower()
    return {"id": user, "username": name, "name": name, "team_id": team_id}


def json_body(envelope: dict[str, Any]) -> tuple[str, str]:
    return json.dumps(envelope), "application/json"


def interactivity_body(payload: dict[str, Any]) -> tuple[str, str]:
    return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every delivery: httpx builds a new one per client otherwise, loading
    the CA bundle each time (about 25 ms of CPU, which a burst of deliveries waits on)."""
    return ssl.create_default_context(cafile=certifi.where())


async def post(
    url: str, body: str, headers: dict[str, str], wait: float = DELIVERY_TIMEOUT
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=wait, verify=_tls()) as client:
        return await client.post(url, content=body.encode(), headers=headers)


async def signed_post(
    url: str,
    secret: str,
    body: str,
    content_type: str,
    timestamp: int | None = None,
    signature: str | None = None,
    retry_num: int | None = None,
    wait: float = DELIVERY_TIMEOUT,
) -> httpx.Response:
    """`body` posted to `url` as Slack delivers it: signed with `secret` (or with the
    `timestamp` and `signature` given, to deliver a stale or forged request)."""
    headers = signed_headers(
        secret, body, content_type, timestamp=timestamp, signature=signature, retry_num=retry_num
    )
    return await post(url, body, headers, wait)
