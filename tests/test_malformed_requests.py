"""Hostile or malformed requests on `/slack/events` get a 4xx, never a 500 or a traceback, and the
service keeps answering legitimate traffic. Fuzzed with Hypothesis over real HTTP."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.sandbox import slack_delivery
from renderers.common import ACTION_APPROVE
from tests.harness import ALICE, CHANNEL, SECRET, Harness

DEEP = "[" * 100_000 + "]" * 100_000


def signed(body: str, content_type: str = "application/json") -> dict[str, str]:
    return slack_delivery.signed_headers(SECRET, body, content_type)


def as_form(payload: Any) -> str:
    return urlencode({"payload": json.dumps(payload)})


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


async def post(url: str, body: str | bytes, headers: dict[str, Any]) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(url, content=content, headers=headers)


def click(value: str = "nothing", **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": ALICE},
        "team": {"id": "T0SANDBOX"},
        "channel": {"id": CHANNEL},
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": CHANNEL},
        "actions": [{"action_id": ACTION_APPROVE, "value": value, "type": "button"}],
        "response_url": "http://127.0.0.1:9/response/x",
        "trigger_id": "1.2.3",
    }
    payload.update(changes)
    return payload


def shortcut(**changes: Any) -> dict[str, Any]:
    payload = {"type": "shortcut", "callback_id": "x", "user": {"id": ALICE}, "team": {"id": "T0"}}
    return {**payload, **changes}


# (name, body, content type, signed?)
CASES: list[tuple[str, str, str, bool]] = [
    ("unsigned deep JSON", DEEP, "application/json", False),
    ("signed deep JSON", DEEP, "application/json", True),
    ("signed malformed JSON", '{"type": "event_callback", ', "application/json", True),
    ("signed JSON array", "[1, 2, 3]", "application/json", True),
    ("signed JSON string", '"hello"', "application/json", True),
    ("signed JSON number", "42", "application/json", True),
    ("signed event without event", '{"type": "event_callback"}', "application/json", True),
    ("signed event that is a list", '{"type":"event_callback","event":[]}', JSON, True),
    ("signed click without actions", as_form(click(actions=None)), FORM, True),
    ("signed click with empty actions", as_form(click(actions=[])), FORM, True),
    ("signed click actions as string", as_form(click(actions="approve")), FORM, True),
    ("signed click as a list", as_form([click()]), FORM, True),
    ("signed click without user", as_form(click(user=None)), FORM, True),
    ("signed click with garbage action", as_form(click(actions=[["x"]])), FORM, True),
    ("signed payload not JSON", urlencode({"payload": "{nope"}), FORM, True),
    ("signed deep payload", urlencode({"payload": DEEP}), FORM, True),
    ("signed garbage view_submission", as_form({"type": "view_submission", "view": 7}), FORM, True),
    (
        "signed view_submission without user",
        as_form({"type": "view_submission", "view": {"callback_id": "feedback"}}),
        FORM,
        True,
    ),
    ("signed form without payload", "hello=world", FORM, True),
    # bolt's log line for a request no listener takes reads `view` and `event` as objects
    ("signed unhandled kind with a null view", as_form(shortcut(view=None)), FORM, True),
    ("signed unhandled kind with a null event", as_form(shortcut(event=None)), FORM, True),
    ("signed binary", "\udcff", "application/json", True),
]


@pytest.mark.parametrize(("name", "body", "content_type", "sign"), CASES, ids=[c[0] for c in CASES])
async def test_malformed_request_gets_a_4xx_and_no_traceback(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    name: str,
    body: str,
    content_type: str,
    sign: bool,
) -> None:
    await harness.start()
    raw = body.encode("utf-8", "surrogateescape")
    headers = {"Content-Type": content_type}
    if sign:
        headers = slack_delivery.signed_headers(
            SECRET, raw.decode("utf-8", "replace"), content_type
        )
        if raw != raw.decode("utf-8", "replace").encode():  # sign the bytes as sent
            headers = sign_bytes(raw, content_type)
    response = await post(harness.events_url, raw, headers)
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
    assert "Traceback" not in response.text
    assert tracebacks(caplog) == []
    ts = await harness.mention("still there?")  # legitimate traffic is still answered
    assert (await harness.settle(ts)).state == "done"


def sign_bytes(raw: bytes, content_type: str, secret: str = SECRET) -> dict[str, str]:
    import hashlib
    import hmac

    stamp = str(int(time.time()))
    base = f"v0:{stamp}:".encode() + raw
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
    }


@pytest.mark.parametrize("stamp", ["not-a-number", "", "1e9", "١٢٣", "-5", "9" * 400])
async def test_unsigned_request_with_a_bad_timestamp_gets_401(
    harness: Harness, caplog: pytest.LogCaptureFixture, stamp: str
) -> None:
    await harness.start()
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp.encode(),  # as sent: bytes, whatever they are
        "X-Slack-Signature": "v0=deadbeef",
    }
    response = await post(harness.events_url, '{"type": "event_callback"}', headers)
    assert response.status_code == 401
    assert tracebacks(caplog) == []


async def test_a_lone_surrogate_in_a_message_is_replaced_and_answered(harness: Harness) -> None:
    await harness.start()
    event = harness.slack.post_user_message(CHANNEL, ALICE, "hello \ud800 there", mention=True)
    envelope = harness.slack._envelope(event, None)
    body = json.dumps(envelope)  # ensure_ascii: the surrogate travels as "\ud800", as from Slack
    response = await post(harness.events_url, body, signed(body))
    assert response.status_code == 200
    row = await harness.settle(event["ts"])
    assert row.state == "done"
    sent = harness.agent.requests[-1].body["messages"][-1]["content"]
    assert sent == "hello \ufffd there"
    assert "Something went wrong" not in harness.thread_text(event["ts"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
KINDS = ["event_callback", "block_actions", "view_submission", "view_closed", "url_verification"]
shapes = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(KINDS) | st.text(max_size=10),
        "event": json_values,
        "actions": json_values,
        "user": json_values,
        "view": json_values,
        "channel": json_values,
        "container": json_values,
        "state": json_values,
        "team": json_values,
        "challenge": json_values,
    },
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=shapes, as_interaction=st.booleans())
async def test_fuzzed_signed_bodies_never_get_a_5xx(
    started: Harness, body: dict[str, Any], as_interaction: bool
) -> None:
    if as_interaction:
        text, content_type = as_form(body), FORM
    else:
        text, content_type = json.dumps(body), "application/json"
    response = await post(started.events_url, text, signed(text, content_type))
    assert response.status_code < 500, (body, response.status_code)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    raw=st.binary(max_size=300),
    stamp=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12),
    sign=st.booleans(),
)
async def test_fuzzed_raw_bodies_never_get_a_5xx(
    started: Harness, raw: bytes, stamp: str, sign: bool
) -> None:
    headers = (
        sign_bytes(raw, "application/json")
        if sign
        else {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp or "0",
            "X-Slack-Signature": "v0=00",
        }
    )
    response = await post(started.events_url, raw, headers)
    assert 400 <= response.status_code < 500 or response.status_code == 200


@pytest.fixture
async def started(harness: Harness) -> Harness:
    await harness.start()
    return harness
