"""The Slack Web API emulator, driven by the real slack_sdk client and a real slack_bolt app."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import pytest_asyncio
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_async_handlers
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orchestrator.sandbox.loopback import LoopbackServer
from orchestrator.sandbox.slack_emulator import SlackEmulator, StoredMessage, render_text

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHANNEL = "C0GENERAL"
SECRET = "sandbox-signing-secret"


def mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text), **extra}


def button(label: str, action_id: str = "go", **extra: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        **extra,
    }


def option(text: str, value: str = "v") -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text}, "value": value}


def select(options: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "static_select", "action_id": "pick", "options": options}


def input_block(element: dict[str, Any], label: str = "Reason", **extra: Any) -> dict[str, Any]:
    return {
        "type": "input",
        "label": {"type": "plain_text", "text": label},
        "element": element,
        **extra,
    }


async def api_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# -- fixtures ---------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def emulator() -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator(channels=(CHANNEL,))
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
def client(emulator: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=emulator.token, base_url=emulator.api_url)


class AppUnderTest:
    """A bolt app in HTTP mode next to an endpoint that only records and checks signatures."""

    def __init__(self, emulator: SlackEmulator) -> None:
        self.received: list[Request] = []
        self.bodies: list[str] = []
        self.bolt = AsyncApp(
            client=AsyncWebClient(token=emulator.token, base_url=emulator.api_url),
            signing_secret=SECRET,
            process_before_response=True,
        )
        self._register_listeners()
        handler = AsyncSlackRequestHandler(self.bolt)
        self.server = LoopbackServer(
            Starlette(
                routes=[
                    Route("/slack/events", handler.handle, methods=["POST"]),
                    Route("/verify", self._verify, methods=["POST"]),
                ]
            )
        )

    async def _verify(self, request: Request) -> Response:
        body = (await request.body()).decode()
        self.received.append(request)
        self.bodies.append(body)
        valid = SignatureVerifier(SECRET).is_valid(
            body,
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
        )
        return JSONResponse({"valid": valid}, status_code=200 if valid else 401)

    def _register_listeners(self) -> None:
        @self.bolt.event("app_mention")
        async def answer(event: dict[str, Any], say: Any) -> None:
            await say(text=f"echo: {event['text']}", thread_ts=event["ts"])

        @self.bolt.action("approve")
        async def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
            await ack()
            await respond(text=f"approved by <@{body['user']['id']}>", replace_original=False)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def app(emulator: SlackEmulator) -> AsyncIterator[tuple[AppUnderTest, str]]:
    under_test = AppUnderTest(emulator)
    base = await under_test.server.start()
    yield under_test, base
    await under_test.server.stop()


# -- messages ---------------------------------------------------------------------------------


async def test_auth_test_and_bad_tokens(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    auth = await client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == ("UBOT", "BBOT", "T0SANDBOX")
    assert auth["user"] == "sandbox-bot"

    wrong = AsyncWebClient(token="xoxb-wrong", base_url=emulator.api_url)
    assert (await api_error(wrong.auth_test())).response["error"] == "invalid_auth"
    anonymous = AsyncWebClient(base_url=emulator.api_url)
    assert (await api_error(anonymous.auth_test())).response["error"] == "not_authed"


async def test_post_update_and_replies_round_trip(
    emulator: SlackEmulator,
    client: AsyncWebClient,
) -> None:
    event = emulator.post_user_message(CHANNEL, "UALICE", "deploy please", mention=True)
    assert event["type"] == "app_mention"
    assert event["text"] == "<@UBOT> deploy please"
    assert "bot_id" not in event

    posted = await client.chat_postMessage(
        channel=CHANNEL,
        thread_ts=event["ts"],
        text="On it",
        blocks=[section("*On it*")],
    )
    assert re.fullmatch(r"\d{10}\.\d{6}", posted["ts"])
    assert float(posted["ts"]) > float(event["ts"])
    assert posted["message"]["blocks"] == [section("*On it*")]

    await client.chat_update(
        channel=CHANNEL,
        ts=posted["ts"],
        text="Done",
        blocks=[section("Done")],
    )
    replies = await client.conversations_replies(channel=CHANNEL, ts=event["ts"])

    parent, reply = replies["messages"]
    assert (parent["user"], parent["text"], parent["reply_count"]) == ("UALICE", event["text"], 1)
    assert (reply["bot_id"], reply["text"], reply["thread_ts"]) == ("BBOT", "Done", event["ts"])
    assert replies["has_more"] is False
    stored = emulator.thread(CHANNEL, event["ts"])
    assert [m.ts for m in stored] == [event["ts"], posted["ts"]]
    assert stored[1].edits == 1
    assert render_text(stored[1]) == "Done"


async def test_replies_paginate_and_reply_to_reply_lands_in_parent_thread(
    emulator: SlackEmulator,
    client: AsyncWebClient,
) -> None:
    parent = emulator.post_user_message(CHANNEL, "UALICE", "question")
    first = await client.chat_postMessage(channel=CHANNEL, thread_ts=parent["ts"], text="one")
    await client.chat_postMessage(channel=CHANNEL, thread_ts=first["ts"], text="two")

    page = await client.conversations_replies(channel=CHANNEL, ts=parent["ts"], limit=2)
    assert page["has_more"] is True
    rest = await client.conversations_replies(
        channel=CHANNEL,
        ts=parent["ts"],
        cursor=page["response_metadata"]["next_cursor"],
    )
    texts = [m["text"] for m in page["messages"] + rest["messages"]]
    assert texts == ["question", "one", "two"]


async def test_form_encoded_bodies_and_blocks_strings_are_decoded(
    emulator: SlackEmulator,
    client: AsyncWebClient,
) -> None:
    blocks = [section("from a form")]
    await client.api_call(
        "chat.postMessage",
        data={"channel": CHANNEL, "text": "form", "blocks": json.dumps(blocks)},
    )
    call = emulator.calls_to("chat.postMessage")[-1]
    assert call.params["blocks"] == blocks
    assert call.status == 200 and call.response["ok"] is True

    broken = client.api_call(
        "chat.postMessage",
        data={"channel": CHANNEL, "text": "form", "blocks": "[{"},
    )
    assert (await api_error(broken)).response["error"] == "invalid_blocks_format"


async def test_response_url_replaces_or_deletes_the_original(
    emulator: SlackEmulator,
    client: AsyncWebClient,
) -> None:
    parent = emulator.post_user_message(CHANNEL, "UALICE", "ask")
    posted = await client.chat_postMessage(channel=CHANNEL, thread_ts=parent["ts"], text="v1")
    payload = emulator.block_actions_payload(
        user="UALICE",
        channel=CHANNEL,
        message_ts=posted["ts"],
        action_id="a",
        value="1",
    )
    async with httpx.AsyncClient() as http:
        replaced = await http.post(
            payload["response_url"], json={"replace_original": True, "text": "v2"}
        )
        assert replaced.status_code == 200
        assert emulator.thread(CHANNEL, parent["ts"])[1].text == "v2"
        await http.post(payload["response_url"], json={"delete_original": True})
    assert len(emulator.thread(CHANNEL, parent["ts"])) == 1
    assert [call.status for call in emulator.calls_to("response_url")[-2:]] == [200, 200]


async def test_message_errors(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    async def error_of(call: Any) -> str:
        return (await api_error(call)).response["error"]

    unknown_channel = client.chat_postMessage(channel="C0NOPE", text="x")
    assert await error_of(unknown_channel) == "channel_not_found"
    empty = client.api_call("chat.postMessage", json={"channel": CHANNEL, "text": ""})
    assert await error_of(empty) == "no_text"
    too_long = client.chat_postMessage(channel=CHANNEL, text="x" * 40_001)
    assert await error_of(too_long) == "msg_too_long"
    missing = client.chat_update(channel=CHANNEL, ts="1.000001", text="x")
    assert await error_of(missing) == "message_not_found"
    no_thread = client.conversations_replies(channel=CHANNEL, ts="1.000001")
    assert await error_of(no_thread) == "thread_not_found"

    unknown = await api_error(client.api_call("chat.teleport"))
    assert (unknown.response.status_code, unknown.response["error"]) == (404, "unknown_method")


async def test_ephemerals_reactions_delete_and_status(
    emulator: SlackEmulator,
    client: AsyncWebClient,
) -> None:
    emulator.scopes.append("reactions:write")  # the bot does not ask for it; this test does
    parent = emulator.post_user_message(CHANNEL, "UALICE", "hi")
    eph = await client.chat_postEphemeral(
        channel=CHANNEL,
        user="UALICE",
        text="only you",
        thread_ts=parent["ts"],
    )
    assert [m.text for m in emulator.ephemerals(CHANNEL, "UALICE")][-1] == "only you"
    assert emulator.ephemerals(user="UALICE")[-1].ts == eph["message_ts"]

    await client.reactions_add(channel=CHANNEL, timestamp=parent["ts"], name="eyes")
    duplicate = await api_error(
        client.reactions_add(channel=CHANNEL, timestamp=parent["ts"], name="eyes")
    )
    assert duplicate.response["error"] == "already_reacted"
    assert emulator.thread(CHANNEL, parent["ts"])[0].reactions == ["eyes"]

    reply = await client.chat_postMessage(channel=CHANNEL, thread_ts=parent["ts"], text="bye")
    await client.chat_delete(channel=CHANNEL, ts=reply["ts"])
    assert [m.ts for m in emulator.thread(CHANNEL, parent["ts"])] == [parent["ts"]]

    await client.assistant_threads_setStatus(
        channel_id=CHANNEL,
        thread_ts=parent["ts"],
        status="is thinking...",
    )
    assert emulator.statuses()[-1] == {
        "channel_id": CHANNEL,
        "thread_ts": parent["ts"],
        "status": "is thinking...",
    }


# -- Block Kit rules --------------------------------------------------------------------------


BLOCK_RULES = [
    (
        "50 blocks",
        [{"type": "divider"}] * 51,
        "no more than 50 items allowed [json-pointer:/blocks]",
    ),
    (
        "block_id length",
        [{"type": "divider", "block_id": "b" * 256}],
        "must be less than 256 characters [json-pointer:/blocks/0/block_id]",
    ),
    (
        "block_id unique",
        [{"type": "divider", "block_id": "a"}] * 2,
        "block_id needs to be unique [json-pointer:/blocks/1/block_id]",
    ),
    (
        "section text",
        [section("x" * 3001)],
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
    ),
    (
        "section empty text",
        [section("")],
        "must be more than 0 characters [json-pointer:/blocks/0/text/text]",
    ),
    (
        "section text or fields",
        [{"type": "section"}],
        "must define either `text` or `fields` [json-pointer:/blocks/0/type]",
    ),
    (
        "section fields count",
        [{"type": "section", "fields": [mrkdwn("f")] * 11}],
        "no more than 10 items allowed [json-pointer:/blocks/0/fields]",
    ),
    (
        "section field length",
        [{"type": "section", "fields": [mrkdwn("f" * 2001)]}],
        "must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]",
    ),
    (
        "header length",
        [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
    ),
    (
        "header plain_text",
        [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
        'must be one of "plain_text" [json-pointer:/blocks/0/text/type]',
    ),
    (
        "context elements",
        [{"type": "context", "elements": [mrkdwn("c")] * 11}],
        "no more than 10 items allowed [json-pointer:/blocks/0/elements]",
    ),
    (
        "actions elements",
        [{"type": "actions", "elements": [button("b")] * 26}],
        "no more than 25 items allowed [json-pointer:/blocks/0/elements]",
    ),
    (
        "button text",
        [{"type": "actions", "elements": [button("b" * 76)]}],
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
    ),
    (
        "button value",
        [{"type": "actions", "elements": [button("b", value="v" * 2001)]}],
        "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
    ),
    (
        "action_id",
        [{"type": "actions", "elements": [button("b", action_id="a" * 256)]}],
        "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
    ),
    (
        "button url",
        [{"type": "actions", "elements": [button("b", url="u" * 3001)]}],
        "must be less than 3001 characters [json-pointer:/blocks/0/elements/0/url]",
    ),
    (
        "select options",
        [{"type": "actions", "elements": [select([option("o")] * 101)]}],
        "no more than 100 items allowed [json-pointer:/blocks/0/elements/0/options]",
    ),
    (
        "option text",
        [{"type": "actions", "elements": [select([option("o" * 76)])]}],
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/options/0/text/text]",
    ),
    (
        "option value",
        [{"type": "actions", "elements": [select([option("o", "v" * 151)])]}],
        "must be less than 151 characters [json-pointer:/blocks/0/elements/0/options/0/value]",
    ),
    (
        "input label",
        [input_block({"type": "plain_text_input"}, label="l" * 2001)],
        "must be less than 2001 characters [json-pointer:/blocks/0/label/text]",
    ),
    (
        "input element",
        [{"type": "input", "label": {"type": "plain_text", "text": "l"}}],
        "missing required field: element [json-pointer:/blocks/0]",
    ),
    (
        "input max_length",
        [input_block({"type": "plain_text_input", "max_length": 3001})],
        "must be less than 3001 [json-pointer:/blocks/0/element/max_length]",
    ),
    (
        "markdown total",
        [{"type": "markdown", "text": "m" * 6001}] * 2,
        "markdown blocks must total less than 12001 characters [json-pointer:/blocks]",
    ),
    (
        "unknown type",
        [{"type": "banner"}],
        "unsupported type: banner [json-pointer:/blocks/0/type]",
    ),
]


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [rule[1:] for rule in BLOCK_RULES],
    ids=[rule[0] for rule in BLOCK_RULES],
)
async def test_block_kit_rules_reject_like_slack(
    emulator: SlackEmulator,
    client: AsyncWebClient,
    blocks: list[dict[str, Any]],
    expected: str,
) -> None:
    parent = emulator.post_user_message(CHANNEL, "UALICE", "render this")
    error = await api_error(
        client.chat_postMessage(channel=CHANNEL, thread_ts=parent["ts"], text="x", blocks=blocks),
    )
    assert error.response["error"] == "invalid_blocks"
    assert expected in error.response["errors"]
    assert f"[ERROR] {expected}" in error.response["response_metadata"]["messages"]
    assert len(emulator.thread(CHANNEL, parent["ts"])) == 1


async def test_update_is_validated_and_opaque_blocks_pass(
    emulator: SlackEmulator,
    client: AsyncWebClient,
) -> None:
    opaque = [
        {"type": "divider"},
        {"type": "image", "image_url": "https://example.com/a.png", "alt_text": "a"},
        {"type": "rich_text", "elements": []},
        {"type": "table", "rows": [[{"type": "raw_text", "text": "a"}]]},
        section("ok", accessory=button("Go")),
    ]
    posted = await client.chat_postMessage(channel=CHANNEL, text="x", blocks=opaque)
    too_long = [section("y" * 3001)]
    error = await api_error(
        client.chat_update(channel=CHANNEL, ts=posted["ts"], text="x", blocks=too_long),
    )
    assert error.response["error"] == "invalid_blocks"


async def test_modal_views_allow_100_blocks_and_triggers_work_once(
    emulator: SlackEmulator,
    client: AsyncWebClient,
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="form", blocks=[section("form")])
    payload = emulator.block_actions_payload(
        user="UALICE",
        channel=CHANNEL,
        message_ts=posted["ts"],
        action_id="open",
        value="1",
    )
    view = {
        "type": "modal",
        "callback_id": "why",
        "title": {"type": "plain_text", "text": "Why"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [section(f"line {i}") for i in range(99)]
        + [input_block({"type": "plain_text_input"}, block_id="reason")],
    }
    opened = await client.views_open(trigger_id=payload["trigger_id"], view=view)
    assert emulator.views_opened()[-1]["id"] == opened["view"]["id"]

    again = await api_error(client.views_open(trigger_id=payload["trigger_id"], view=view))
    assert again.response["error"] == "exchanged_trigger_id"
    too_many = {**view, "blocks": [section("x")] * 101}
    rejected = await api_error(client.views_open(trigger_id="made-up", view=too_many))
    assert rejected.response["error"] == "invalid_arguments"
    assert (
        "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"
        in rejected.response["response_metadata"]["messages"]
    )

    submission = emulator.view_submission_payload(
        user="UALICE",
        callback_id="why",
        private_metadata="p",
        state_values={"reason": {"text": {"type": "plain_text_input", "value": "because"}}},
    )
    assert submission["view"]["id"] == opened["view"]["id"]
    assert submission["view"]["state"]["values"]["reason"]["text"]["value"] == "because"


# -- fault injection --------------------------------------------------------------------------


async def test_fail_injection_is_consumed_per_call(
    emulator: SlackEmulator,
    client: AsyncWebClient,
) -> None:
    emulator.fail("chat.postMessage", "is_archived", times=2)
    for _ in range(2):
        error = await api_error(client.chat_postMessage(channel=CHANNEL, text="x"))
        assert (error.response.status_code, error.response["error"]) == (200, "is_archived")
    assert (await client.chat_postMessage(channel=CHANNEL, text="x"))["ok"]


async def test_rate_limit_carries_retry_after(
    emulator: SlackEmulator,
    client: AsyncWebClient,
) -> None:
    emulator.rate_limit("chat.update", retry_after=7)
    error = await api_error(client.chat_update(channel=CHANNEL, ts="1.1", text="x"))
    assert error.response.status_code == 429
    assert error.response["error"] == "ratelimited"
    assert error.response.headers["Retry-After"] in ("7", ["7"])


async def test_rate_limit_retry_handler_succeeds_on_retry(
    emulator: SlackEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(builtin_async_handlers.random, "random", lambda: 0.0)
    retrying = AsyncWebClient(
        token=emulator.token,
        base_url=emulator.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    emulator.rate_limit("chat.postMessage", retry_after=0)
    posted = await retrying.chat_postMessage(channel=CHANNEL, text="eventually")
    assert posted["ok"]
    assert [call.status for call in emulator.calls_to("chat.postMessage")[-2:]] == [429, 200]


async def test_http_error_injection(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    emulator.http_error("auth.test", status=503)
    error = await api_error(client.auth_test())
    assert error.response.status_code == 503
    assert (await client.auth_test())["ok"]


# -- native streaming -------------------------------------------------------------------------


async def test_stream_start_append_stop(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    parent = emulator.post_user_message(CHANNEL, "UALICE", "explain")
    started = await client.chat_startStream(
        channel=CHANNEL,
        thread_ts=parent["ts"],
        markdown_text="Hello",
        recipient_team_id="T0SANDBOX",
        recipient_user_id="UALICE",
    )
    await client.chat_appendStream(channel=CHANNEL, ts=started["ts"], markdown_text=" world")
    streaming = emulator.thread(CHANNEL, parent["ts"])[1]
    assert (streaming.streaming, streaming.text) == (True, "Hello world")

    conflict = await api_error(client.chat_update(channel=CHANNEL, ts=started["ts"], text="x"))
    assert conflict.response["error"] == "streaming_state_conflict"

    await client.chat_stopStream(
        channel=CHANNEL,
        ts=started["ts"],
        markdown_text="!",
        blocks=[{"type": "context", "elements": [{"type": "mrkdwn", "text": "via agent"}]}],
    )
    final = emulator.thread(CHANNEL, parent["ts"])[1]
    assert final.streaming is False
    assert render_text(final) == "Hello world!\nvia agent"

    late = await api_error(
        client.chat_appendStream(channel=CHANNEL, ts=started["ts"], markdown_text="late")
    )
    assert late.response["error"] == "message_not_in_streaming_state"


async def test_sdk_chat_stream_helper_works(
    emulator: SlackEmulator,
    client: AsyncWebClient,
) -> None:
    parent = emulator.post_user_message(CHANNEL, "UALICE", "stream it")
    streamer = await client.chat_stream(channel=CHANNEL, thread_ts=parent["ts"], buffer_size=4)
    await streamer.append(markdown_text="chunk one, ")
    await streamer.append(markdown_text="two")
    await streamer.stop()
    assert emulator.thread(CHANNEL, parent["ts"])[1].text == "chunk one, two"


async def test_stream_expires_after_ttl(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    parent = emulator.post_user_message(CHANNEL, "UALICE", "slow")
    emulator.stream_ttl = 0.05
    try:
        started = await client.chat_startStream(channel=CHANNEL, thread_ts=parent["ts"])
        await asyncio.sleep(0.06)
        error = await api_error(
            client.chat_appendStream(channel=CHANNEL, ts=started["ts"], markdown_text="x"),
        )
    finally:
        emulator.stream_ttl = 240.0
    assert error.response["error"] == "message_not_in_streaming_state"
    assert emulator.thread(CHANNEL, parent["ts"])[1].streaming is False


async def test_stream_size_limit_and_user_stop(
    emulator: SlackEmulator,
    client: AsyncWebClient,
) -> None:
    parent = emulator.post_user_message(CHANNEL, "UALICE", "long")
    started = await client.chat_startStream(
        channel=CHANNEL,
        thread_ts=parent["ts"],
        markdown_text="x" * 11_990,
    )
    too_long = await api_error(
        client.chat_appendStream(channel=CHANNEL, ts=started["ts"], markdown_text="y" * 11),
    )
    assert too_long.response["error"] == "msg_too_long"
    await client.chat_appendStream(channel=CHANNEL, ts=started["ts"], markdown_text="y" * 10)

    emulator.stop_stream_by_user(CHANNEL, started["ts"])
    stopped = await api_error(
        client.chat_appendStream(channel=CHANNEL, ts=started["ts"], markdown_text="z"),
    )
    assert stopped.response["error"] == "stopped_by_user"
    stop = await api_error(client.chat_stopStream(channel=CHANNEL, ts=started["ts"]))
    assert stop.response["error"] == "stopped_by_user"
    assert emulator.thread(CHANNEL, parent["ts"])[1].text == "x" * 11_990 + "y" * 10
    unknown = await api_error(client.chat_startStream(channel="C0NOPE", thread_ts=parent["ts"]))
    assert unknown.response["error"] == "channel_not_found"


async def test_stream_task_and_plan_chunks(
    emulator: SlackEmulator,
    client: AsyncWebClient,
) -> None:
    parent = emulator.post_user_message(CHANNEL, "UALICE", "plan it")
    started = await client.chat_startStream(
        channel=CHANNEL,
        thread_ts=parent["ts"],
        task_display_mode="plan",
        chunks=[
            {"type": "plan_update", "title": "Checking the cluster"},
            {"type": "task_update", "id": "t1", "title": "kubectl", "status": "in_progress"},
        ],
    )
    await client.chat_appendStream(
        channel=CHANNEL,
        ts=started["ts"],
        chunks=[
            {"type": "task_update", "id": "t1", "title": "kubectl", "status": "complete"},
            {"type": "markdown_text", "text": "All pods run."},
        ],
    )
    message = emulator.thread(CHANNEL, parent["ts"])[1]
    assert render_text(message) == "Checking the cluster\n● kubectl\nAll pods run."
    assert message.text == "All pods run."

    for bad in (
        {"type": "task_update", "id": "t2", "title": "x", "status": "done"},
        {"type": "task_update", "title": "no id", "status": "pending"},
        {"type": "plan_update"},
        {"type": "sparkles"},
    ):
        error = await api_error(
            client.chat_appendStream(channel=CHANNEL, ts=started["ts"], chunks=[bad])
        )
        assert error.response["error"] == "invalid_chunks"
    assert render_text(emulator.thread(CHANNEL, parent["ts"])[1]) == render_text(message)


async def test_removed_method_is_unknown() -> None:
    emulator = SlackEmulator(channels=(CHANNEL,))  # its own: the shared one keeps the method
    await emulator.start()
    try:
        emulator.remove_method("chat.startStream")
        client = AsyncWebClient(token=emulator.token, base_url=emulator.api_url)
        parent = emulator.post_user_message(CHANNEL, "UALICE", "stream?")
        error = await api_error(client.chat_startStream(channel=CHANNEL, thread_ts=parent["ts"]))
    finally:
        await emulator.stop()
    assert (error.response.status_code, error.response["error"]) == (404, "unknown_method")


# -- delivery to the app ----------------------------------------------------------------------


async def test_signed_event_delivery_verifies(
    emulator: SlackEmulator,
    app: tuple[AppUnderTest, str],
) -> None:
    under_test, base = app
    event = emulator.post_user_message(CHANNEL, "UALICE", "hi")
    response = await emulator.deliver_event(
        f"{base}/verify",
        SECRET,
        event,
        event_id="Ev123",
        retry_num=1,
    )
    assert response.status_code == 200
    request, body = under_test.received[-1], json.loads(under_test.bodies[-1])
    assert request.headers["content-type"] == "application/json"
    assert (request.headers["X-Slack-Retry-Num"], request.headers["X-Slack-Retry-Reason"]) == (
        "1",
        "http_timeout",
    )
    assert (body["type"], body["event_id"], body["event"]) == ("event_callback", "Ev123", event)
    assert body["authorizations"][0]["user_id"] == "UBOT"

    forged = await emulator.deliver_event(f"{base}/verify", SECRET, event, signature="v0=bad")
    assert forged.status_code == 401
    stale = await emulator.deliver_event(f"{base}/slack/events", SECRET, event, timestamp=1)
    assert stale.status_code == 401


async def test_signed_action_delivery_is_form_encoded(
    emulator: SlackEmulator,
    client: AsyncWebClient,
    app: tuple[AppUnderTest, str],
) -> None:
    under_test, base = app
    posted = await client.chat_postMessage(
        channel=CHANNEL,
        text="approve?",
        blocks=[{"type": "actions", "block_id": "actions", "elements": [button("Approve", "ok")]}],
    )
    payload = emulator.block_actions_payload(
        user="UALICE",
        channel=CHANNEL,
        message_ts=posted["ts"],
        action_id="ok",
        value="yes",
    )
    response = await emulator.deliver_action(f"{base}/verify", SECRET, payload)
    assert response.status_code == 200
    sent = json.loads(parse_qs(under_test.bodies[-1])["payload"][0])
    assert sent == payload
    assert sent["message"]["blocks"][0]["elements"][0]["action_id"] == "ok"
    assert sent["actions"][0]["text"]["text"] == "Approve"
    assert sent["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }


async def test_bolt_app_answers_events_and_responds_to_clicks(
    emulator: SlackEmulator,
    client: AsyncWebClient,
    app: tuple[AppUnderTest, str],
) -> None:
    _, base = app
    mention = emulator.post_user_message(CHANNEL, "UALICE", "ping", mention=True)
    response = await emulator.deliver_event(f"{base}/slack/events", SECRET, mention)
    assert response.status_code == 200
    assert render_text(emulator.thread(CHANNEL, mention["ts"])[-1]) == "echo: <@UBOT> ping"

    posted = await client.chat_postMessage(
        channel=CHANNEL,
        thread_ts=mention["ts"],
        text="approve?",
        blocks=[{"type": "actions", "block_id": "actions", "elements": [button("OK", "approve")]}],
    )
    payload = emulator.block_actions_payload(
        user="UBOB",
        channel=CHANNEL,
        message_ts=posted["ts"],
        action_id="approve",
        value="1",
    )
    response = await emulator.deliver_action(f"{base}/slack/events", SECRET, payload)
    assert response.status_code == 200
    assert emulator.ephemerals(CHANNEL, "UBOB")[-1].text == "approved by <@UBOB>"
    assert emulator.ephemerals(CHANNEL, "UBOB")[-1].thread_ts == mention["ts"]
    assert emulator.calls_to("response_url")[-1].status == 200


# -- what a user sees -------------------------------------------------------------------------


async def test_render_text_draws_blocks_like_a_user_sees_them() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Approval needed"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "Deploy *api* to prod?"},
            "fields": [{"type": "mrkdwn", "text": "*By* <@UALICE>"}],
        },
        {"type": "image", "image_url": "https://example.com/a.png", "alt_text": "graph"},
        {
            "type": "context",
            "elements": [
                {"type": "image", "image_url": "https://example.com/i.png", "alt_text": "i"},
                {"type": "mrkdwn", "text": "expires in 1h"},
                {"type": "plain_text", "text": "run 7"},
            ],
        },
        {"type": "divider"},
        input_block({"type": "plain_text_input", "action_id": "reason"}),
        input_block(select([option("low"), option("high")]), label="Risk"),
        {"type": "actions", "elements": [button("Approve", "ok"), button("Reject", "no")]},
    ]
    message = StoredMessage(
        ts="1.000001",
        channel=CHANNEL,
        thread_ts=None,
        user="UBOT",
        bot_id="BBOT",
        text="fallback",
        blocks=blocks,
    )
    assert render_text(message) == "\n".join(
        [
            "Approval needed",
            "Deploy *api* to prod?",
            "*By* <@UALICE>",
            "expires in 1h · run 7",
            "---",
            "Reason: ____",
            "Risk: ____ (low | high)",
            "[Approve]  [Reject]",
        ]
    )
    plain = StoredMessage(
        ts="1.000002",
        channel=CHANNEL,
        thread_ts=None,
        user="UBOT",
        bot_id="BBOT",
        text="just text",
        blocks=[],
    )
    assert render_text(plain) == "just text"


async def test_answers_name_the_bot_tokens_scopes_and_refuse_a_method_without_its_scope(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    response = await client.auth_test()
    assert response.headers["x-oauth-scopes"] == ",".join(emulator.scopes)
    emulator.scopes.remove("mpim:history")
    emulator.scopes.remove("groups:history")
    with pytest.raises(SlackApiError) as refused:
        await client.conversations_replies(channel="G0PRIVATE", ts="1.000001")
    assert refused.value.response["error"] == "missing_scope"
    assert refused.value.response["needed"] == "groups:history"
