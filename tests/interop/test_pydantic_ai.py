"""pydantic-ai (`AGUIAdapter`, a tool with `requires_approval=True`) in Slack, end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from renderers.common import ACTION_APPROVE, ACTION_REJECT
from tests.harness import Harness
from tests.interop.conftest import running_peer
from tests.interop.flows import (
    APPROVED_TEXT,
    EDITED_ARGS,
    EDITED_TEXT,
    answer_of,
    ask,
    assert_conforms,
    assert_paused_story,
    decide,
    edit_and_approve,
    form_of,
    json_input,
    open_edit,
    schema_of,
    story,
    submit_edit,
    thread_text,
    tool_runs,
)
from tests.interop.peers import PeerServer


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerServer]:
    yield from running_peer("pydantic_ai", None, tmp_path_factory)


async def test_approve_runs_the_tool_and_the_agent_says_so(
    harness: Harness, peer: PeerServer
) -> None:
    pause = await ask(harness, peer)
    assert_paused_story(harness, pause, editable=True)
    schema = schema_of(peer, pause)
    assert schema is not None and set(schema["properties"]) == {"approved", "editedArgs", "reason"}

    await decide(harness, pause, ACTION_APPROVE)

    answer = answer_of(peer, pause)
    assert (answer.wire, answer.status) == ("resume", "resolved")
    assert answer.payload == {"approved": True}
    assert_conforms(answer.payload, schema_of(peer, pause))
    assert tool_runs(peer, pause) == [story.ARGS]
    text = thread_text(harness, pause)
    assert APPROVED_TEXT in text and "Approved by" in text


async def test_reject_with_a_reason_is_a_decision_the_agent_sees(
    harness: Harness, peer: PeerServer
) -> None:
    pause = await ask(harness, peer)
    await decide(harness, pause, ACTION_REJECT, reason="not during the release freeze")

    answer = answer_of(peer, pause)
    assert (answer.wire, answer.status) == ("resume", "resolved")
    assert answer.payload == {"approved": False, "reason": "not during the release freeze"}
    assert_conforms(answer.payload, schema_of(peer, pause))
    assert tool_runs(peer, pause) == []
    text = thread_text(harness, pause)
    assert story.REJECTED.format(why="not during the release freeze") in text
    assert "Rejected by" in text


async def test_edited_arguments_run_the_tool_with_them(harness: Harness, peer: PeerServer) -> None:
    pause = await ask(harness, peer)
    await edit_and_approve(harness, pause, EDITED_ARGS)

    answer = answer_of(peer, pause)
    assert answer.payload == {"approved": True, "editedArgs": EDITED_ARGS}
    assert_conforms(answer.payload, schema_of(peer, pause))
    assert tool_runs(peer, pause) == [EDITED_ARGS]
    assert EDITED_TEXT in thread_text(harness, pause)


async def test_arguments_that_are_not_json_are_refused_in_the_modal(
    harness: Harness, peer: PeerServer
) -> None:
    pause = await ask(harness, peer)
    sent = len(peer.entries(pause.since, "request"))
    view = await open_edit(harness, pause)
    response = await submit_edit(harness, view, '{"pod": "web-7", namespace: staging}')

    block_id, _, _ = json_input(view)
    body = response.json()
    assert body["response_action"] == "errors" and "JSON" in body["errors"][block_id]
    await harness.rt.engine.drain()
    assert len(peer.entries(pause.since, "request")) == sent  # nothing went to the server
    assert (await harness.row(pause.thread_ts)).state == "awaiting_approval"
    assert json.loads(json_input(await open_edit(harness, pause))[2]) == story.ARGS
    assert form_of(harness, pause)
