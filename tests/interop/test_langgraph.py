"""LangGraph (`ag-ui-langgraph`) in Slack, end to end: a graph whose `interrupt()` carries a
`responseSchema`, reported as the AG-UI 1.0 outcome and as the legacy `on_interrupt` event."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from orchestrator.sandbox.slack_emulator import render_text
from renderers.common import ACTION_APPROVE, ACTION_REJECT
from tests.harness import Harness
from tests.interop.conftest import running_peer
from tests.interop.flows import (
    APPROVED_TEXT,
    EDITED_ARGS,
    EDITED_TEXT,
    WAIT,
    advertised,
    answer_of,
    ask,
    assert_conforms,
    assert_paused_story,
    decide,
    edit_and_approve,
    form_of,
    open_edit,
    schema_of,
    story,
    submit_edit,
    thread_text,
    tool_runs,
)
from tests.interop.peers import PeerServer


@pytest.fixture(scope="module", params=["outcome", "legacy"])
def peer(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PeerServer]:
    yield from running_peer("langgraph", request.param, tmp_path_factory)


def wire(peer: PeerServer) -> str:
    """Where this mode's server reads the decision."""
    return "resume" if peer.mode == "outcome" else "command"


async def test_approve_runs_the_tool_and_the_agent_says_so(
    harness: Harness, peer: PeerServer
) -> None:
    pause = await ask(harness, peer)
    assert_paused_story(harness, pause, editable=True)
    (interrupt,) = advertised(peer, pause)
    assert interrupt["message"] == story.HINT
    assert story.HINT in render_text(form_of(harness, pause))

    await decide(harness, pause, ACTION_APPROVE)

    answer = answer_of(peer, pause)
    assert answer.wire == wire(peer)
    assert answer.payload == {"approved": True}
    if answer.wire == "resume":
        assert answer.status == "resolved"
        assert answer.body["resume"][0]["interruptId"] == interrupt["id"]
    assert_conforms(answer.payload, schema_of(peer, pause))
    assert answer.body["messages"], "a resume carries the history"
    assert tool_runs(peer, pause) == [story.ARGS]
    assert APPROVED_TEXT in thread_text(harness, pause)


async def test_reject_with_a_reason_is_a_decision_the_graph_sees(
    harness: Harness, peer: PeerServer
) -> None:
    pause = await ask(harness, peer)
    await decide(harness, pause, ACTION_REJECT, reason="wrong cluster")

    answer = answer_of(peer, pause)
    assert answer.wire == wire(peer)
    assert answer.payload == {"approved": False, "reason": "wrong cluster"}
    if answer.wire == "resume":
        assert answer.status == "resolved"
    assert_conforms(answer.payload, schema_of(peer, pause))
    assert tool_runs(peer, pause) == []
    assert story.REJECTED.format(why="rejected: wrong cluster") in thread_text(harness, pause)


async def test_edited_arguments_run_the_tool_with_them(harness: Harness, peer: PeerServer) -> None:
    pause = await ask(harness, peer)
    await edit_and_approve(harness, pause, EDITED_ARGS)

    answer = answer_of(peer, pause)
    assert answer.wire == wire(peer)
    assert answer.payload == {"approved": True, "editedArgs": EDITED_ARGS}
    assert_conforms(answer.payload, schema_of(peer, pause))
    assert tool_runs(peer, pause) == [EDITED_ARGS]
    assert EDITED_TEXT in thread_text(harness, pause)


async def test_a_resume_the_server_refuses_reopens_the_form_with_its_message(
    harness: Harness, peer: PeerServer
) -> None:
    pause = await ask(harness, peer)
    row = await harness.row(pause.thread_ts)
    view = await open_edit(harness, pause)
    response = await submit_edit(harness, view, json.dumps({"pod": "web-7", "ns": "staging"}))
    assert response.status_code == 200, response.text

    # the graph fails on the unknown argument: RUN_ERROR right after the resume
    await harness.settle(
        pause.thread_ts, ("awaiting_approval",), wait=WAIT, min_version=row.version + 2
    )
    answer = answer_of(peer, pause)
    assert_conforms(answer.payload, schema_of(peer, pause))
    assert tool_runs(peer, pause) == []
    form = render_text(form_of(harness, pause))
    assert "unexpected keyword argument 'ns'" in form
    (interrupt,) = await harness.interrupts(pause.thread_ts)
    assert interrupt.status == "pending"
