"""A2A agents in Slack threads, through the whole service: a Kagent runtime (A2A 0.3) and an
`a2a-sdk` 1.x agent (A2A 1.0), each a real server with a scripted model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.ids import conversation_id
from orchestrator.sandbox.agent_server import ScriptedAgent
from orchestrator.sandbox.slack_emulator import SlackEmulator, render_text
from persistence.models import AgentTask
from persistence.store import Store
from renderers.common import ACTION_APPROVE, ACTION_REJECT, ACTION_RETRY
from tests.harness import ALICE, CHANNEL, SECRET, Harness, actions_of, find_with_action, until
from tests.interop.a2a_peers import Peer
from tests.service_process import ServiceProcess
from tests.test_check import check
from tests.test_restart import until_true, wait_for, wait_for_form

HITL = "https://kagent.dev/extensions/hitl/v1"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}")
    yield opened
    await opened.close()


def a2a(peer: Peer) -> dict[str, Any]:
    return {"AGENT_URL": peer.url, "AGENT_PROTOCOL": "a2a"}


def sent_messages(peer: Peer, thread_id: str) -> list[dict[str, Any]]:
    return [r["body"]["params"]["message"] for r in peer.requests(thread_id) if "message" in str(r)]


async def click(harness: Harness, thread_ts: str, action: str) -> None:
    form = find_with_action(harness.thread_messages(thread_ts), action)
    await harness.click(form, action, actions_of(form)[action])


async def test_kagent_answer_streams_into_the_thread(harness: Harness, kagent_peer: Peer):
    await harness.start(**a2a(kagent_peer))
    thread_ts = await harness.mention("check dev")
    await harness.settle(thread_ts, ("done",))

    shown = harness.thread_text(thread_ts)
    assert "dev has 3 pods ready." in shown
    assert "get_pods" in shown
    [message] = sent_messages(kagent_peer, harness.thread_id(thread_ts))
    assert message["contextId"] == harness.thread_id(thread_ts)


async def test_a2a_sdk_answer_streams_into_the_thread(harness: Harness, a2a_sdk_peer: Peer):
    await harness.start(**a2a(a2a_sdk_peer))
    thread_ts = await harness.mention("how is the cluster?")
    await harness.settle(thread_ts, ("done",))

    shown = harness.thread_text(thread_ts)
    assert "Checking the cluster." in shown
    assert "The cluster is healthy: 3 pods ready." in shown


async def test_kagent_approve_runs_the_tool_once(harness: Harness, kagent_peer: Peer):
    before = len(kagent_peer.tool_runs("restart_deployment"))
    await harness.start(**a2a(kagent_peer))
    thread_ts = await harness.mention("restart api")
    waiting = await harness.settle(thread_ts, ("awaiting_approval",))
    form = render_text(find_with_action(harness.thread_messages(thread_ts), ACTION_APPROVE))
    assert "restart_deployment" in form and '"name": "api"' in form

    await click(harness, thread_ts, ACTION_APPROVE)
    await harness.settle(thread_ts, ("done",), min_version=waiting.version + 1)

    assert "Restarted deployment api." in harness.thread_text(thread_ts)
    assert len(kagent_peer.tool_runs("restart_deployment")) == before + 1
    answer = sent_messages(kagent_peer, harness.thread_id(thread_ts))[-1]
    assert answer["parts"] == [{"kind": "data", "data": {"decision_type": "approve"}}]


async def test_kagent_reject_keeps_the_tool_from_running(harness: Harness, kagent_peer: Peer):
    before = len(kagent_peer.tool_runs("restart_deployment"))
    await harness.start(**a2a(kagent_peer))
    thread_ts = await harness.mention("restart api")
    waiting = await harness.settle(thread_ts, ("awaiting_approval",))

    await click(harness, thread_ts, ACTION_REJECT)
    await harness.settle(thread_ts, ("done",), min_version=waiting.version + 1)

    assert "Nothing restarted: Tool call was rejected by user." in harness.thread_text(thread_ts)
    assert len(kagent_peer.tool_runs("restart_deployment")) == before
    answer = sent_messages(kagent_peer, harness.thread_id(thread_ts))[-1]
    assert answer["parts"][0]["data"] == {"decision_type": "reject"}


async def test_kagent_several_calls_answered_in_one_batch(harness: Harness, kagent_peer: Peer):
    await harness.start(**a2a(kagent_peer))
    thread_ts = await harness.mention("restart all")
    waiting = await harness.settle(thread_ts, ("awaiting_approval",))
    assert len(await harness.interrupts(thread_ts)) == 2

    await click(harness, thread_ts, ACTION_APPROVE)
    await until(lambda: len(forms(harness, thread_ts)) == 1)  # the first form shows its answer
    await click(harness, thread_ts, ACTION_REJECT)
    await harness.settle(thread_ts, ("done",), min_version=waiting.version + 1)

    assert "Restarted deployment api. Nothing restarted: Tool call was rejected by user." in (
        harness.thread_text(thread_ts)
    )
    [answer] = [
        m for m in sent_messages(kagent_peer, harness.thread_id(thread_ts)) if m.get("taskId")
    ]
    data = answer["parts"][0]["data"]
    assert data["decision_type"] == "batch"
    assert sorted(data["decisions"].values()) == ["approve", "reject"]


def forms(harness: Harness, thread_ts: str) -> list[Any]:
    """The thread's messages that still offer Approve."""
    return [m for m in harness.thread_messages(thread_ts) if ACTION_APPROVE in actions_of(m)]


async def test_a2a_sdk_approval_through_the_extension(harness: Harness, a2a_sdk_peer: Peer):
    await harness.start(**a2a(a2a_sdk_peer))
    thread_ts = await harness.mention("restart api")
    waiting = await harness.settle(thread_ts, ("awaiting_approval",))

    await click(harness, thread_ts, ACTION_APPROVE)
    await harness.settle(thread_ts, ("done",), min_version=waiting.version + 1)

    assert "Decision for api: approved. Restarted deployment api." in harness.thread_text(thread_ts)


async def test_follow_up_continues_the_same_context(harness: Harness, kagent_peer: Peer):
    await harness.start(**a2a(kagent_peer))
    thread_ts = await harness.mention("first question")
    first = await harness.settle(thread_ts, ("done",))
    await harness.say("second question", thread_ts)
    await harness.settle(thread_ts, ("done",), min_version=first.version + 1)

    thread_id = harness.thread_id(thread_ts)
    sent = sent_messages(kagent_peer, thread_id)
    assert [m["contextId"] for m in sent] == [thread_id, thread_id]
    assert [m["parts"][-1]["text"] for m in sent] == ["first question", "second question"]
    assert "Kagent heard: second question." in harness.thread_text(thread_ts)


async def test_failed_task_is_a_clear_error_with_retry(harness: Harness, a2a_sdk_peer: Peer):
    await harness.start(**a2a(a2a_sdk_peer))
    thread_ts = await harness.mention("fail please")
    row = await harness.settle(thread_ts, ("errored",))

    shown = harness.thread_text(thread_ts)
    assert "The agent's task failed: The cluster API refused the request." in shown
    assert row.error_kind == "run_error"
    assert ACTION_RETRY in actions_of(harness.thread_messages(thread_ts)[-1])


ROUTED = """
agents:
  k8s-agent:     {{url: "{kagent}", protocol: a2a}}
  k8s-agent-dev: {{url: "{dev}", protocol: a2a}}
defaults:
  agent: k8s-agent
  routes:
    - {{match: "\\\\b(dev|development)\\\\b", agent: k8s-agent-dev}}
"""


async def test_keyword_routes_pick_the_agent_and_threads_keep_it(
    harness: Harness, kagent_peer: Peer, a2a_sdk_peer: Peer
):
    config = ROUTED.format(kagent=kagent_peer.url, dev=a2a_sdk_peer.url)
    await harness.start(SLACK_INTEGRATION_BOT_CONFIG=config)

    dev_ts = await harness.mention("check dev pods")
    dev_done = await harness.settle(dev_ts, ("done",))
    other_ts = await harness.mention("check prod")
    await harness.settle(other_ts, ("done",))
    await harness.say("and now prod", dev_ts)  # the thread stays with its first agent
    await harness.settle(dev_ts, ("done",), min_version=dev_done.version + 1)

    dev_id, other_id = harness.thread_id(dev_ts), harness.thread_id(other_ts)
    assert len(sent_messages(a2a_sdk_peer, dev_id)) == 2
    assert sent_messages(kagent_peer, dev_id) == []
    assert len(sent_messages(kagent_peer, other_id)) == 1
    assert "The cluster is healthy" in harness.thread_text(dev_ts)
    assert "prod has 3 pods ready." in harness.thread_text(other_ts)


# --- restarts: the real service in a subprocess, killed with SIGKILL ----------------------------


def service_for(
    slack: SlackEmulator, agent: ScriptedAgent, tmp_path: Path, peer: Peer
) -> ServiceProcess:
    env = {key: str(value) for key, value in a2a(peer).items()}
    return ServiceProcess(slack, agent, tmp_path / "orchestrator.db", "answer", **env)


@pytest.mark.parametrize("peer_name", ["kagent_peer", "a2a_sdk_peer"])
async def test_sigkill_with_a_form_pending_then_approve_resumes_once(
    slack: SlackEmulator,
    agent: ScriptedAgent,
    store: Store,
    tmp_path: Path,
    peer_name: str,
    request: pytest.FixtureRequest,
):
    peer: Peer = request.getfixturevalue(peer_name)
    before = len(peer.tool_runs("restart_deployment"))
    service = service_for(slack, agent, tmp_path, peer)
    try:
        await service.start()
        event = slack.post_user_message(CHANNEL, ALICE, "restart api", mention=True)
        await slack.deliver_event(service.events_url, SECRET, event)
        thread_id = conversation_id(slack.team_id, CHANNEL, event["ts"])
        await wait_for_form(store, thread_id)
        waiting = await wait_for(store, thread_id, ("awaiting_approval",))
        service.kill()

        await service.start()
        form = find_with_action(slack.thread(CHANNEL, event["ts"]), ACTION_APPROVE)
        payload = slack.block_actions_payload(
            user=ALICE,
            channel=CHANNEL,
            message_ts=form.ts,
            action_id=ACTION_APPROVE,
            value=actions_of(form)[ACTION_APPROVE],
            thread_ts=event["ts"],
            state_values={},
        )
        await slack.deliver_action(service.events_url, SECRET, payload)
        await slack.deliver_action(service.events_url, SECRET, payload)  # a double click
        await wait_for(store, thread_id, ("done",), after=waiting.version)
        # the final edit follows the stored ending: wait for the whole answer, not a render
        # of it while it streamed
        await until_true(lambda: "Restarted deployment api." in shown_in(slack, event["ts"]), 20)
    finally:
        service.stop()
    assert len(peer.tool_runs("restart_deployment")) == before + 1
    [answer] = [m for m in sent_messages(peer, thread_id) if m.get("taskId")]
    if peer_name == "kagent_peer":
        assert answer["parts"][0]["data"] == {"decision_type": "approve"}
    else:
        assert answer["metadata"][HITL]["approvals"] == [{"id": "approval-api", "approved": True}]
    assert "Restarted deployment api." in shown_in(slack, event["ts"])


@pytest.mark.parametrize("peer_name", ["kagent_peer", "a2a_sdk_peer"])
async def test_a_task_streaming_during_a_restart_finishes_in_the_thread(
    slack: SlackEmulator,
    agent: ScriptedAgent,
    store: Store,
    tmp_path: Path,
    peer_name: str,
    request: pytest.FixtureRequest,
):
    peer: Peer = request.getfixturevalue(peer_name)
    peer.hold()
    service = service_for(slack, agent, tmp_path, peer)
    try:
        await service.start()
        event = slack.post_user_message(CHANNEL, ALICE, "slow count", mention=True)
        await slack.deliver_event(service.events_url, SECRET, event)
        thread_id = conversation_id(slack.team_id, CHANNEL, event["ts"])
        streaming = await wait_for(store, thread_id, ("streaming",))
        await until_true(lambda: "Counting the pods" in shown_in(slack, event["ts"]), 20)
        kept = await _task_stored(store, thread_id)  # stored behind the stream, in order
        assert kept is not None and kept.task_id
        service.kill()

        await service.start()
        await until_true(lambda: _followed(peer, kept.task_id or ""), 20)
        peer.release()
        done = await wait_for(store, thread_id, ("done",), after=streaming.version)
        await until_true(lambda: "there are 42 pods." in shown_in(slack, event["ts"]), 20)
    finally:
        service.stop()
        peer.hold()
    shown = shown_in(slack, event["ts"])
    assert "there are 42 pods." in shown
    assert "Interrupted by a restart" not in shown
    assert done.error_kind is None


async def _task_stored(store: Store, thread_id: str, wait: float = 20) -> AgentTask | None:
    """The thread's agent task once its id is stored (the run stores it behind its reading)."""
    deadline = time.monotonic() + wait
    kept = await store.agent_task(thread_id)
    while (kept is None or not kept.task_id) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        kept = await store.agent_task(thread_id)
    return kept


def shown_in(slack: SlackEmulator, thread_ts: str) -> str:
    return "\n".join(render_text(m) for m in slack.thread(CHANNEL, thread_ts) if m.bot_id)


def _followed(peer: Peer, task_id: str) -> bool:
    """The agent was asked to follow this task again (by subscription)."""
    follow = {"SubscribeToTask", "tasks/resubscribe"}
    requests = peer.requests(task_id)
    return any(r["body"].get("method") in follow for r in requests)


async def test_check_reads_the_cards_without_starting_a_task(
    tmp_path: Path, kagent_peer: Peer, a2a_sdk_peer: Peer
):
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"""
agents:
  k8s-agent: {{url: "{kagent_peer.url}", protocol: a2a}}
  wrong-path: {{url: "{a2a_sdk_peer.url}api/a2a/kagent/nobody", protocol: a2a}}
defaults: {{agent: k8s-agent}}
channels:
  C0DEV: {{agent: "{a2a_sdk_peer.url}"}}
"""
    )
    before = len(kagent_peer.requests()) + len(a2a_sdk_peer.requests())
    code, lines = await check(tmp_path, ORCH_CONFIG=str(config), AGENT_PROTOCOL="a2a")

    assert code == 1
    [kagent] = [line for line in lines if "agent k8s-agent (" in line]
    assert kagent.startswith("ok") and "k8s-agent 0.10.4-test, A2A 0.3.0, streaming" in kagent
    [wrong] = [line for line in lines if "agent wrong-path" in line]
    assert wrong.startswith("FAIL") and "There is no A2A agent card at" in wrong
    assert len(kagent_peer.requests()) + len(a2a_sdk_peer.requests()) == before  # no task


async def test_stop_cancels_the_a2a_task(harness: Harness, a2a_sdk_peer: Peer):
    a2a_sdk_peer.hold()
    try:
        await harness.start(**a2a(a2a_sdk_peer))
        thread_ts = await harness.mention("slow count")
        await until(lambda: "Counting the pods" in harness.thread_text(thread_ts), 20)
        kept = await _task_stored(harness.rt.store, harness.thread_id(thread_ts))
        assert kept is not None and kept.task_id
        event = harness.slack.stop_session_by_user(CHANNEL, thread_ts, ALICE)
        await harness.slack.deliver_event(harness.events_url, SECRET, event)
        await harness.settle(thread_ts, ("done",))
    finally:
        a2a_sdk_peer.release()
        a2a_sdk_peer.hold()
    cancels = [
        r["body"]
        for r in a2a_sdk_peer.requests(kept.task_id)
        if r["body"].get("method") in ("CancelTask", "tasks/cancel")
    ]
    assert len(cancels) == 1 and kept.task_id in str(cancels[0]["params"])
    shown = harness.thread_text(thread_ts)
    assert "Counting the pods" in shown and "Stopped by <@U0ALICE>" in shown
    assert "42 pods" not in shown
