"""Security, end to end: signed requests only, clicks bound to their thread, secrets kept out of
logs and reprs, log lines that user text cannot forge, user input passed through unchanged."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.logs import JsonFormatter, TextFormatter
from orchestrator.sandbox.slack_emulator import SlackEmulator
from renderers.common import ACTION_APPROVE, ACTION_RETRY
from tests.harness import ALICE, CHANNEL, SECRET, Harness, actions_of, find_with_action, until
from tests.test_e2e_approvals import answers, approve, pause_for_approval, text_input

BOT_TOKEN = "xoxb-0000-SECRET-bot-token"
AGENT_TOKEN = "agent-SECRET-bearer-token"
SECRETS = (BOT_TOKEN, SECRET, AGENT_TOKEN)
EVERY_LOGGER = (
    "",
    "orchestrator",
    "persistence",
    "httpx",
    "httpcore",
    "slack_sdk",
    "slack_bolt",
    "aiosqlite",
    "sqlalchemy",
    "transitions",
    "uvicorn",
)


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(channels=[CHANNEL, "C0OTHER"], token=BOT_TOKEN)
    await emulator.start()
    yield emulator
    await emulator.stop()


def everything_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Each record as both formatters write it, and its raw attributes."""
    text, json_ = TextFormatter(), JsonFormatter()
    return [
        out
        for record in caplog.records
        for out in (text.format(record), json_.format(record), repr(record.__dict__))
    ]


def debug_everything(caplog: pytest.LogCaptureFixture) -> None:
    for name in EVERY_LOGGER:
        caplog.set_level(logging.DEBUG, logger=name)


# --- signatures --------------------------------------------------------------------------


def _event(harness: Harness) -> dict[str, Any]:
    return harness.slack.post_user_message(CHANNEL, ALICE, "hello", mention=True)


@pytest.mark.parametrize(
    ("secret", "age", "signature"),
    [
        ("wrong-secret", 0, None),  # signed with another secret
        (SECRET, 6 * 60, None),  # a replay: correctly signed, six minutes old
        (SECRET, -6 * 60, None),  # stamped six minutes in the future
        (SECRET, 0, ""),  # no signature at all
        (SECRET, 0, "v0=" + "0" * 64),  # a made-up signature
    ],
)
@pytest.mark.parametrize("kind", ["event", "click"])
async def test_unsigned_forged_and_replayed_requests_are_refused(
    harness: Harness, secret: str, age: int, signature: str | None, kind: str
) -> None:
    await harness.start("answer")
    stamp = int(time.time()) - age
    if kind == "event":
        response = await harness.slack.deliver_event(
            harness.events_url, secret, _event(harness), timestamp=stamp, signature=signature
        )
    else:
        message = harness.slack.post_user_message(CHANNEL, ALICE, "anything")
        payload = harness.slack.block_actions_payload(
            user=ALICE,
            channel=CHANNEL,
            message_ts=message["ts"],
            action_id=ACTION_RETRY,
            value="x",
            block_id="retry",
        )
        response = await harness.slack.deliver_action(
            harness.events_url, secret, payload, timestamp=stamp, signature=signature
        )
    assert response.status_code == 401
    await harness.rt.engine.drain()
    assert harness.agent.requests == []
    assert [c for c in harness.slack.calls if c.method != "auth.test"] == []
    assert await harness.rt.store.list_threads() == []


async def test_a_request_four_minutes_old_is_still_accepted(harness: Harness) -> None:
    await harness.start("answer")
    event = _event(harness)
    stamp = int(time.time()) - 4 * 60
    response = await harness.slack.deliver_event(harness.events_url, SECRET, event, timestamp=stamp)
    assert response.status_code == 200
    await harness.settle(event["ts"], ("done",))


# --- clicks are bound to their thread ------------------------------------------------------


def _notes(harness: Harness) -> list[str]:
    return [m.text for m in harness.slack.ephemerals(user=ALICE)]


async def test_a_button_of_one_thread_cannot_answer_another_threads_interrupt(
    harness: Harness,
) -> None:
    thread_a = await pause_for_approval(harness, "interrupt-outcome")
    thread_b = await harness.mention("please scale web too")
    await harness.settle(thread_b, ("awaiting_approval",))
    form_a = find_with_action(harness.thread_messages(thread_a), ACTION_APPROVE)
    form_b = find_with_action(harness.thread_messages(thread_b), ACTION_APPROVE)
    key_b = actions_of(form_b)[ACTION_APPROVE]

    # a click on thread A's form whose value names thread B's interrupt
    await harness.click(form_a, ACTION_APPROVE, key_b, values=answers())
    # and thread B's interrupt from a message of another channel
    harness.slack.add_channel("C0OTHER")
    elsewhere = harness.slack.post_user_message("C0OTHER", ALICE, "a message with a button")
    other = harness.slack.block_actions_payload(
        user=ALICE,
        channel="C0OTHER",
        message_ts=elsewhere["ts"],
        action_id=ACTION_APPROVE,
        value=key_b,
        block_id="any",
    )
    await harness.slack.deliver_action(harness.events_url, SECRET, other)
    # and a click on thread B's own form that does not say which message it came from
    bare = harness.slack.block_actions_payload(
        user=ALICE, channel=CHANNEL, message_ts=form_b.ts, action_id=ACTION_APPROVE, value=key_b
    )
    del bare["container"]["message_ts"]
    await harness.slack.deliver_action(harness.events_url, SECRET, bare)
    await harness.rt.engine.drain()

    refusal = "This button does not belong to this conversation."
    # clicks are handled after Slack has its acknowledgement: wait for all three answers
    await until(lambda: _notes(harness).count(refusal) >= 3)
    assert _notes(harness).count(refusal) == 3
    assert harness.agent.resumes == 0
    assert {i.status for i in await harness.interrupts(thread_b)} == {"pending"}
    assert {i.status for i in await harness.interrupts(thread_a)} == {"pending"}
    assert (await harness.row(thread_b)).state == "awaiting_approval"

    # the right button still works
    await approve(harness, thread_b)
    await harness.settle(thread_b, ("done",))
    assert harness.agent.resumes == 1


async def test_a_retry_button_cannot_retry_a_thread_of_another_channel(
    harness: Harness,
) -> None:
    harness.slack.add_channel("C0OTHER")
    await harness.start("run-error")
    mine = await harness.mention("hello")
    await harness.settle(mine, ("errored",))
    theirs = await harness.mention("hello", channel="C0OTHER")
    errored = await harness.settle(theirs, ("errored",), channel="C0OTHER")
    button = find_with_action(harness.thread_messages(mine), ACTION_RETRY)

    await harness.click(button, ACTION_RETRY, errored.id)  # thread in C0OTHER, clicked in C0GENERAL
    await until(lambda: any("does not belong" in note for note in _notes(harness)))
    await harness.rt.engine.drain()

    assert len(harness.agent.requests) == 2
    assert (await harness.row(theirs, "C0OTHER")).version == errored.version


# --- secrets -------------------------------------------------------------------------------


async def test_secrets_never_reach_logs_errors_messages_or_reprs(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    debug_everything(caplog)
    rt = await harness.start("auto", SLACK_BOT_TOKEN=BOT_TOKEN, AGENT_BEARER_TOKEN=AGENT_TOKEN)
    answered = await harness.mention("hello there")
    failed = await harness.mention("please fail")
    approval = await harness.mention("approve the deploy")
    await harness.settle(answered, ("done",))
    await harness.settle(failed, ("errored",))
    await harness.settle(approval, ("awaiting_approval",))
    await approve(harness, approval)
    await harness.settle(approval, ("done",), min_version=3)
    # a wrong signature and an unknown agent produce errors too
    await harness.slack.deliver_event(harness.events_url, "nope", _event(harness))

    assert all(
        r.headers["authorization"] == f"Bearer {AGENT_TOKEN}" for r in harness.agent.requests
    )
    assert len(caplog.records) > 20  # DEBUG was on
    seen = everything_logged(caplog)
    seen += [repr(rt.settings), str(rt.settings), repr(rt.settings.model_dump())]
    seen += [repr(rt.engine.agents(CHANNEL)), repr(rt.engine.runs.clients)]
    seen += [f"{t.error_kind} {t.error_text}" for t in await rt.store.list_threads()]
    seen += [m.text + repr(m.blocks) for m in harness.slack._messages.values()]
    for secret in SECRETS:
        leaks = [line for line in seen if secret in line]
        assert leaks == [], f"{secret!r} leaked: {leaks[:2]}"


# --- log lines ----------------------------------------------------------------------------


async def test_user_text_cannot_forge_log_lines(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    debug_everything(caplog)
    forged = "hi\n2030-01-01 00:00:00 ERROR orchestrator: FORGED\r\x1b[31mred\x1b[0m\x00\u2028end"
    await harness.start("run-error")
    harness.agent.answer_text = forged
    thread_ts = await harness.mention(forged)
    await harness.settle(thread_ts, ("errored",))
    # the agent's own error text is user-controlled too
    await harness.start("answer")
    await harness.say(forged, thread_ts)
    await harness.settle(thread_ts, ("done",), min_version=4)

    lines = [
        (formatter.format(r), r)
        for r in caplog.records
        for formatter in (TextFormatter(), JsonFormatter())
    ]
    assert any("FORGED" in line for line, _ in lines)  # user text did reach the log
    for line, record in lines:
        assert "\n" not in line and "\r" not in line, record.getMessage()
        assert "\x1b" not in line and "\x00" not in line and "\u2028" not in line


# --- user input passed through unchanged ---------------------------------------------------

EXOTIC = (
    "<@U0BOB> and <!here> and <#C0OTHER|ops>: *bold* _it_ ~del~ `code` > quote\n"
    "```py\nprint('x')\n```\n"
    "\U0001f469\u200d\U0001f469\u200d\U0001f467 e\u0301 \u210c\U0001d522\U0001d529\U0001d52c "
    "\u202eevil\u202c שלום 你好 &amp; <b>not html</b> \\n literal"
)


async def test_user_text_and_form_values_reach_the_backend_unchanged(harness: Harness) -> None:
    await harness.start("interrupt-outcome")
    thread_ts = await harness.mention(EXOTIC)
    await harness.settle(thread_ts, ("awaiting_approval",))
    assert harness.agent.requests[-1].body["messages"][-1]["content"] == EXOTIC

    comment = "  " + EXOTIC + "\n\t "
    values = answers()
    values["field:comment"] = {"value": text_input(comment)}
    await approve(harness, thread_ts, values=values)
    await harness.settle(thread_ts, ("done",), min_version=4)
    [entry] = harness.agent.requests[-1].body["resume"]
    assert entry["payload"] == {"replicas": 5, "comment": comment}

    # a follow-up without a mention keeps its surrounding whitespace
    spaced = "\n  " + EXOTIC + "  \n"
    await harness.start("echo")
    await harness.say(spaced, thread_ts)
    await harness.settle(thread_ts, ("done",), min_version=7)
    sent = harness.agent.requests[-1].body["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == [EXOTIC, spaced]


def test_settings_repr_hides_every_secret(tmp_path: Path) -> None:
    from orchestrator.config.settings import Settings

    settings = Settings(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN="xapp-SECRET-app-token",
        SLACK_SIGNING_SECRET=SECRET,
        AGENT_BEARER_TOKEN=AGENT_TOKEN,
        ORCH_DATABASE_URL=f"postgresql+asyncpg://orch:db-SECRET-pw@db/orch?x={tmp_path}",
    )
    shown = repr(settings) + str(settings)
    for secret in (*SECRETS, "xapp-SECRET-app-token", "db-SECRET-pw"):
        assert secret not in shown
