"""End to end: channels routed to their agents, agent credentials, listen rules, bot senders."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from orchestrator.logs import TextFormatter
from orchestrator.sandbox.agent_requests import last_user_text
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import StoredMessage, render_text
from renderers.common import ACTION_RETRY
from tests.harness import ALICE, CHANNEL, SECRET, Harness, actions_of, find_with_action
from tests.token_endpoint import TokenEndpoint

OTHER = "C0OTHER"
OTHER_BOT, OTHER_BOT_USER = "B0PAGER", "U0PAGER"


@pytest.fixture
async def ops_agent() -> AsyncIterator[ScriptedAgent]:
    server = ScriptedAgent(name="ops-agent")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def token_endpoint() -> AsyncIterator[TokenEndpoint]:
    endpoint = TokenEndpoint()
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "channels.yaml"
    path.write_text(text)
    return str(path)


def ours(harness: Harness, thread_ts: str, channel: str = CHANNEL) -> list[StoredMessage]:
    """The messages our bot posted in the thread (other bots post there too)."""
    return [
        m for m in harness.slack.thread(channel, thread_ts) if m.user == harness.slack.bot_user_id
    ]


def answers(harness: Harness, thread_ts: str) -> list[StoredMessage]:
    return [m for m in ours(harness, thread_ts) if "Hello from" in render_text(m)]


async def wait_for(condition: Callable[[], bool], what: str, wait: float = 10) -> None:
    deadline = time.monotonic() + wait
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        await asyncio.sleep(0.02)


def inbound_count(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "orchestrator_inbound_total", {"kind": "message", "outcome": outcome}
    )
    return value or 0.0


async def from_other_bot(
    harness: Harness,
    text: str,
    thread_ts: str | None = None,
    *,
    channel: str = CHANNEL,
    mention: bool = False,
) -> dict:
    event = harness.slack.post_user_message(
        channel, OTHER_BOT_USER, text, thread_ts, bot_id=OTHER_BOT, mention=mention
    )
    response = await harness.slack.deliver_event(harness.events_url, SECRET, event)
    assert response.status_code == 200
    return event


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = TextFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)


# --- routing ---------------------------------------------------------------------------


async def test_channels_go_to_their_own_agents(
    harness: Harness, ops_agent: ScriptedAgent, tmp_path: Path
) -> None:
    harness.slack.add_channel("C0THIRD")
    config = write_config(
        tmp_path,
        f"""
agent_base: "{ops_agent.base_url}/agents/{{agent_id}}"
channels:
  {CHANNEL}: {{name: general, agent: "{harness.agent.url("answer")}"}}
  {OTHER}: {{name: ops, agent: answer}}
""",
    )
    await harness.start("echo", ORCH_CONFIG=config)
    general = await harness.mention("who are you?")
    ops = await harness.mention("who are you?", channel=OTHER)
    third = await harness.mention("who are you?", channel="C0THIRD")
    await harness.settle(general, ("done",))
    await harness.settle(ops, ("done",), channel=OTHER)
    await harness.settle(third, ("done",), channel="C0THIRD")

    assert "Hello from test-agent!" in harness.thread_text(general)
    assert "Hello from ops-agent!" in harness.thread_text(ops, OTHER)
    # a channel without an agent uses the default agent (AGENT_URL)
    assert '"last_user_message": "who are you?"' in harness.thread_text(third, "C0THIRD")
    assert [r.scenario for r in ops_agent.requests] == ["answer"]
    assert sorted(r.scenario for r in harness.agent.requests) == ["answer", "echo"]


async def test_keyword_routes_pick_the_agent_and_a_thread_keeps_it(
    harness: Harness, ops_agent: ScriptedAgent, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        f"""
agents:
  general: {{url: "{harness.agent.url("echo")}"}}
  dev: {{url: "{ops_agent.url("echo")}"}}
defaults:
  agent: general
  routes:
    - {{match: "\\\\bdev\\\\b", agent: dev}}
""",
    )
    await harness.start("echo", ORCH_CONFIG=config)
    dev = await harness.mention("check dev pods")
    first = await harness.settle(dev, ("done",))
    await harness.say("and now prod", dev)  # the thread stays with the agent that answered it
    await harness.settle(dev, ("done",), min_version=first.version + 1)
    prod = await harness.mention("check prod")
    await harness.settle(prod, ("done",))

    assert [last_user_text(r.body) for r in ops_agent.requests] == [
        "check dev pods",
        "and now prod",
    ]
    assert [last_user_text(r.body) for r in harness.agent.requests] == ["check prod"]


async def test_default_agent_from_the_configuration(
    harness: Harness, ops_agent: ScriptedAgent, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        f"""
agent_base: "{ops_agent.base_url}/agents/{{agent_id}}"
defaults: {{agent: answer}}
channels:
  {OTHER}: {{name: ops}}
""",
    )
    await harness.start("echo", ORCH_CONFIG=config)
    thread_ts = await harness.mention("hello", channel=OTHER)
    await harness.settle(thread_ts, ("done",), channel=OTHER)
    assert "Hello from ops-agent!" in harness.thread_text(thread_ts, OTHER)
    assert harness.agent.requests == []


async def test_unknown_agent_names_the_agent_and_the_setting(
    harness: Harness, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        f"""
agent_base: "{harness.agent.base_url}/agents/{{agent_id}}"
channels:
  {CHANNEL}: {{name: general, agent: no-such-agent}}
""",
    )
    await harness.start(ORCH_CONFIG=config)
    thread_ts = await harness.mention("hello")
    row = await harness.settle(thread_ts, ("errored",))
    text = harness.thread_text(thread_ts)
    assert "no-such-agent" in text and "not known to the backend (HTTP 404)" in text
    assert f"channels.{CHANNEL}.agent" in text
    assert row.error_kind == "agent_not_found"


# --- credentials -----------------------------------------------------------------------


async def test_bearer_and_extra_headers_reach_the_agent_and_never_the_logs(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setenv("OPS_TOKEN", "bearer-s3cret-1")
    monkeypatch.setenv("CF_SECRET", "cf-s3cret-2")
    config = write_config(
        tmp_path,
        f"""
agents:
  ops:
    url: "{harness.agent.url("answer")}"
    auth:
      bearer: ${{OPS_TOKEN}}
    headers:
      CF-Access-Client-Id: cf-id.access
      CF-Access-Client-Secret: ${{CF_SECRET}}
defaults: {{agent: ops}}
""",
    )
    caplog.set_level(logging.DEBUG)
    runtime = await harness.start(ORCH_CONFIG=config)
    thread_ts = await harness.mention("hello")
    await harness.settle(thread_ts, ("done",))

    headers = harness.agent.requests[-1].headers
    assert headers["authorization"] == "Bearer bearer-s3cret-1"
    assert headers["cf-access-client-id"] == "cf-id.access"
    assert headers["cf-access-client-secret"] == "cf-s3cret-2"
    policy = runtime.engine.policy(CHANNEL)
    shown = log_text(caplog) + repr(policy) + repr(runtime.settings)
    assert "s3cret" not in shown


async def test_oauth2_token_is_cached_then_refreshed(
    harness: Harness, token_endpoint: TokenEndpoint, tmp_path: Path, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("OAUTH_SECRET", token_endpoint.client_secret)
    config = write_config(
        tmp_path,
        f"""
agents:
  ops:
    url: "{harness.agent.url("answer")}"
    auth:
      oauth2:
        token_url: "{token_endpoint.url}"
        client_id: {token_endpoint.client_id}
        client_secret: ${{OAUTH_SECRET}}
        scope: agents.run
defaults: {{agent: ops}}
""",
    )
    caplog.set_level(logging.DEBUG)
    await harness.start(ORCH_CONFIG=config)
    thread_ts = await harness.mention("first")
    row = await harness.settle(thread_ts, ("done",))
    await harness.say("second", thread_ts)
    row = await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    # one token for both runs
    assert token_endpoint.issued == ["access-1"]
    assert [r.headers["authorization"] for r in harness.agent.requests] == [
        "Bearer access-1",
        "Bearer access-1",
    ]
    assert token_endpoint.forms[0] == {"grant_type": "client_credentials", "scope": "agents.run"}

    # a token that expires is fetched again
    token_endpoint.expires_in = 1
    await harness.start(ORCH_CONFIG=config)  # a new process: no token cached yet
    await harness.say("third", thread_ts)
    row = await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    await asyncio.sleep(1.1)  # past the token's lifetime
    await harness.say("fourth", thread_ts)
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    assert token_endpoint.issued == ["access-1", "access-2", "access-3"]
    assert harness.agent.requests[-2].headers["authorization"] == "Bearer access-2"
    assert harness.agent.requests[-1].headers["authorization"] == "Bearer access-3"
    assert token_endpoint.client_secret not in log_text(caplog)
    assert "access-" not in log_text(caplog)


def oauth_config(harness: Harness, token_endpoint: TokenEndpoint, tmp_path: Path) -> str:
    """The general channel's agent, with OAuth2 client credentials (secret in $OAUTH_SECRET)."""
    return write_config(
        tmp_path,
        f"""
agents:
  ops:
    url: "{harness.agent.url("answer")}"
    auth:
      oauth2: {{token_url: "{token_endpoint.url}", client_id: orchestrator,
               client_secret: "${{OAUTH_SECRET}}"}}
channels:
  {CHANNEL}: {{name: general, agent: ops}}
""",
    )


async def test_oauth2_failure_is_explained_in_the_thread(
    harness: Harness, token_endpoint: TokenEndpoint, tmp_path: Path, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("OAUTH_SECRET", "wrong-s3cret")
    config = oauth_config(harness, token_endpoint, tmp_path)
    caplog.set_level(logging.DEBUG)
    await harness.start(ORCH_CONFIG=config)
    thread_ts = await harness.mention("hello")
    row = await harness.settle(thread_ts, ("errored",))

    text = harness.thread_text(thread_ts)
    assert "credentials could not be obtained" in text
    assert "HTTP 401 (invalid_client: Client authentication failed)" in text
    assert f"channels.{CHANNEL}.agent" in text
    assert row.error_kind == "agent_credentials_unavailable"
    assert harness.agent.requests == []  # no run without credentials
    assert "wrong-s3cret" not in log_text(caplog)
    assert "run failed" in log_text(caplog)


async def test_a_token_endpoint_in_trouble_offers_retry_which_then_answers(
    harness: Harness, token_endpoint: TokenEndpoint, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("OAUTH_SECRET", token_endpoint.client_secret)
    token_endpoint.unavailable = 1
    config = oauth_config(harness, token_endpoint, tmp_path)
    await harness.start(ORCH_CONFIG=config)
    thread_ts = await harness.mention("hello")
    failed = await harness.settle(thread_ts, ("errored",))
    assert "HTTP 503 (temporarily_unavailable)" in harness.thread_text(thread_ts)
    assert "You can try again" in harness.thread_text(thread_ts)
    assert "An admin should check" not in harness.thread_text(thread_ts)

    error = find_with_action(harness.thread_messages(thread_ts), ACTION_RETRY)
    await harness.click(error, ACTION_RETRY, actions_of(error)[ACTION_RETRY])
    row = await harness.settle(thread_ts, ("done",), min_version=failed.version + 1)
    assert row.state == "done"
    assert harness.agent.requests[-1].headers["authorization"] == "Bearer access-1"


# --- listen rules ----------------------------------------------------------------------


async def test_listen_message_answers_every_message(harness: Harness, tmp_path: Path) -> None:
    config = write_config(tmp_path, f"channels:\n  {CHANNEL}:\n    listen: {{humans: message}}\n")
    await harness.start("answer", ORCH_CONFIG=config)
    event = await harness.say("no mention, just a message")
    await harness.settle(event["ts"], ("done",))
    assert "Hello from test-agent!" in harness.thread_text(event["ts"])


async def test_listen_off_ignores_even_mentions(harness: Harness, tmp_path: Path) -> None:
    config = write_config(tmp_path, f"channels:\n  {OTHER}:\n    listen: {{humans: off}}\n")
    await harness.start("answer", ORCH_CONFIG=config)
    before = inbound_count("not_listening")
    thread_ts = await harness.mention("anyone?", channel=OTHER)
    await wait_for(lambda: inbound_count("not_listening") > before, "the mention to be ignored")
    await harness.rt.engine.drain()
    assert harness.agent.requests == [] and await harness.row(thread_ts, OTHER) is None
    # other channels keep the default (mentions)
    answered = await harness.mention("anyone?")
    await harness.settle(answered, ("done",))


async def test_bots_are_ignored_by_default(harness: Harness) -> None:
    await harness.start("answer")
    before = inbound_count("ignored_bot")
    event = await from_other_bot(harness, "deploy status?", mention=True)
    await wait_for(lambda: inbound_count("ignored_bot") > before, "the bot to be ignored")
    await harness.rt.engine.drain()
    assert harness.agent.requests == [] and await harness.row(event["ts"]) is None


# --- bot senders -----------------------------------------------------------------------


BOTS_WELCOME = "channels:\n  {channel}:\n    listen: {{bots: message}}\n    max_bot_runs: 3\n"


async def test_bot_sender_gets_one_complete_message(harness: Harness, tmp_path: Path) -> None:
    config = write_config(tmp_path, BOTS_WELCOME.format(channel=CHANNEL))
    await harness.start("answer", ORCH_CONFIG=config)
    event = await from_other_bot(harness, "alert: error rate above 5%")
    row = await harness.settle(event["ts"], ("done",))

    mine = ours(harness, event["ts"])
    assert len(mine) == 1 and mine[0].edits == 0
    assert render_text(mine[0]).count("Hello from test-agent!") == 1
    assert "Nothing here calls a real model." in render_text(mine[0])
    assert harness.slack.calls_to("chat.update") == []
    assert len(harness.slack.calls_to("chat.postMessage")) == 1
    assert row.requester == OTHER_BOT_USER and row.requester_is_bot
    assert harness.agent.requests[-1].body["messages"][-1]["content"] == (
        "alert: error rate above 5%"
    )


async def test_bot_sender_failure_posts_one_error(harness: Harness, tmp_path: Path, caplog) -> None:
    config = write_config(tmp_path, BOTS_WELCOME.format(channel=CHANNEL))
    await harness.start("500", ORCH_CONFIG=config)
    with caplog.at_level(logging.WARNING, logger="orchestrator.engine"):
        event = await from_other_bot(harness, "alert: disk full")
        await harness.settle(event["ts"], ("errored",))
    mine = ours(harness, event["ts"])
    assert len(mine) == 1 and "The agent returned an error" in render_text(mine[0])
    assert harness.slack.calls_to("chat.update") == []
    assert any(r.getMessage() == "run failed" for r in caplog.records)


async def test_two_bots_cannot_loop(harness: Harness, tmp_path: Path, caplog) -> None:
    """Another bot answers everything we post; we stop after max_bot_runs until a person
    writes, and we never answer our own messages."""
    config = write_config(tmp_path, BOTS_WELCOME.format(channel=CHANNEL))
    caplog.set_level(logging.INFO, logger="orchestrator.engine")
    await harness.start("answer", ORCH_CONFIG=config)
    slack = harness.slack
    root = await from_other_bot(harness, "ping")
    thread_ts = root["ts"]
    version = 0
    for turn in range(3):
        row = await harness.settle(thread_ts, ("done",), min_version=version + 1)
        version = row.version
        assert len(answers(harness, thread_ts)) == turn + 1
        # Slack tells us about our own messages too: never answered
        own = slack.post_user_message(
            CHANNEL, slack.bot_user_id, f"our message {turn}", thread_ts, bot_id=slack.bot_id
        )
        await slack.deliver_event(harness.events_url, SECRET, own)
        # the other bot answers us
        await from_other_bot(harness, f"pong {turn}", thread_ts)

    stopped = "too many bot-started runs in a row"
    await wait_for(lambda: stopped in log_text(caplog), "the loop guard")
    await from_other_bot(harness, "pong again", thread_ts)
    await wait_for(lambda: log_text(caplog).count(stopped) == 2, "the second refusal")
    await harness.rt.engine.drain()

    assert len(harness.agent.requests) == 3
    mine = [render_text(m) for m in ours(harness, thread_ts)]
    notices = [m for m in mine if "stop answering bots here until a person writes" in m]
    assert len(notices) == 1 and len(answers(harness, thread_ts)) == 3
    history = [h.trigger for h in await harness.history(thread_ts)]
    assert history.count("bot_loop_stopped") == 1

    # a person writing starts the count again
    await harness.say("what is going on here?", thread_ts, user=ALICE)
    row = await harness.settle(thread_ts, ("done",), min_version=version + 1)
    assert len(harness.agent.requests) == 4
    await from_other_bot(harness, "pong after a person", thread_ts)
    await harness.settle(thread_ts, ("done",), min_version=row.version + 1)
    assert len(harness.agent.requests) == 5


async def test_refused_token_is_replaced_on_the_next_run(
    harness: Harness, token_endpoint: TokenEndpoint, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("OAUTH_SECRET", token_endpoint.client_secret)
    config = write_config(
        tmp_path,
        f"""
agents:
  ops:
    url: "{harness.agent.url("401")}"
    auth:
      oauth2:
        token_url: "{token_endpoint.url}"
        client_id: {token_endpoint.client_id}
        client_secret: ${{OAUTH_SECRET}}
defaults: {{agent: ops}}
""",
    )
    await harness.start(ORCH_CONFIG=config)
    thread_ts = await harness.mention("first")
    row = await harness.settle(thread_ts, ("errored",))
    assert "refused our credentials" in harness.thread_text(thread_ts)
    assert "`defaults.agent` in the channel configuration" in harness.thread_text(thread_ts)
    await harness.say("second", thread_ts)
    await harness.settle(thread_ts, ("errored",), min_version=row.version + 1)
    assert [r.headers["authorization"] for r in harness.agent.requests] == [
        "Bearer access-1",
        "Bearer access-2",
    ]
