"""Google ADK (`ag-ui-adk`, a `FunctionTool(require_confirmation=True)`) in Slack, end to end:
by default the run pauses on a pending `adk_request_confirmation` tool call; with
`emit_interrupt_outcome=True` it also reports an interrupt outcome."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from renderers.common import ACTION_APPROVE, ACTION_REJECT
from tests.harness import Harness
from tests.interop.conftest import running_peer
from tests.interop.flows import (
    APPROVED_TEXT,
    advertised,
    answer_of,
    ask,
    assert_conforms,
    assert_paused_story,
    decide,
    story,
    thread_text,
    tool_runs,
)
from tests.interop.peers import PeerServer

CONFIRMATION = "adk_request_confirmation"
# ADK's ToolConfirmation, which the answer to a pending confirmation call must parse as.
TOOL_CONFIRMATION_SCHEMA = {
    "type": "object",
    "properties": {"confirmed": {"type": "boolean"}, "hint": {"type": "string"}, "payload": {}},
    "required": ["confirmed"],
}


@pytest.fixture(scope="module", params=["default", "interrupt"])
def peer(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PeerServer]:
    yield from running_peer("adk", request.param, tmp_path_factory)


def pending_confirmation(peer: PeerServer, since: int) -> str:
    """The id of the `adk_request_confirmation` call the server left pending."""
    starts = [
        e["event"]
        for e in peer.entries(since, "event")
        if e["event"].get("type") == "TOOL_CALL_START"
        and e["event"].get("toolCallName") == CONFIRMATION
    ]
    assert len(starts) == 1, starts
    return starts[0]["toolCallId"]


async def test_approve_runs_the_tool_and_the_agent_says_so(
    harness: Harness, peer: PeerServer
) -> None:
    pause = await ask(harness, peer)
    assert_paused_story(harness, pause, editable=False)
    call_id = pending_confirmation(peer, pause.since)
    assert "Done" not in thread_text(harness, pause)

    await decide(harness, pause, ACTION_APPROVE)

    answer = answer_of(peer, pause)
    if peer.mode == "interrupt":
        (interrupt,) = advertised(peer, pause)
        assert interrupt["id"] == call_id
        assert (answer.wire, answer.status) == ("resume", "resolved")
        assert answer.payload == {"confirmed": True}  # the ToolConfirmation ADK reads
        assert_conforms(answer.payload, interrupt.get("responseSchema"))
        assert_conforms(answer.payload, TOOL_CONFIRMATION_SCHEMA)
    else:
        assert answer.wire == "tool"
        assert answer.body["messages"][-1]["toolCallId"] == call_id
        assert answer.payload == {"confirmed": True}
        assert_conforms(answer.payload, TOOL_CONFIRMATION_SCHEMA)
    assert tool_runs(peer, pause) == [story.ARGS]
    assert APPROVED_TEXT in thread_text(harness, pause)


async def test_reject_is_a_decision_the_agent_is_told(harness: Harness, peer: PeerServer) -> None:
    pause = await ask(harness, peer)
    call_id = pending_confirmation(peer, pause.since)
    await decide(harness, pause, ACTION_REJECT)

    answer = answer_of(peer, pause)
    if peer.mode == "interrupt":
        (interrupt,) = advertised(peer, pause)
        assert (answer.wire, answer.status) == ("resume", "resolved")
        assert answer.payload == {"confirmed": False}
        assert_conforms(answer.payload, interrupt.get("responseSchema"))
        assert_conforms(answer.payload, TOOL_CONFIRMATION_SCHEMA)
    else:
        assert answer.wire == "tool"
        last = answer.body["messages"][-1]
        assert last["toolCallId"] == call_id and json.loads(last["content"]) == answer.payload
        assert answer.payload == {"confirmed": False}
        assert_conforms(answer.payload, TOOL_CONFIRMATION_SCHEMA)
    assert tool_runs(peer, pause) == []
    assert story.REJECTED.format(why="This tool call is rejected.") in thread_text(harness, pause)
