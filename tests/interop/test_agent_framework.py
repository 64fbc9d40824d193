"""Microsoft Agent Framework (`agent-framework-ag-ui`, a tool with `approval_mode=
"always_require"`) in Slack, end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from renderers.common import ACTION_APPROVE, ACTION_REJECT
from tests.harness import Harness
from tests.interop.conftest import running_peer
from tests.interop.flows import (
    APPROVED_TEXT,
    EDITED_ARGS,
    EDITED_TEXT,
    advertised,
    answer_of,
    ask,
    assert_conforms,
    assert_paused_story,
    decide,
    edit_and_approve,
    schema_of,
    story,
    thread_text,
    tool_runs,
)
from tests.interop.peers import PeerServer


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerServer]:
    yield from running_peer("agent_framework", None, tmp_path_factory)


async def test_approve_runs_the_tool_and_the_agent_says_so(
    harness: Harness, peer: PeerServer
) -> None:
    pause = await ask(harness, peer)
    assert_paused_story(harness, pause, editable=True)
    (interrupt,) = advertised(peer, pause)
    assert interrupt["toolCallId"] and interrupt["reason"] == "tool_call"

    await decide(harness, pause, ACTION_APPROVE)

    answer = answer_of(peer, pause)
    assert (answer.wire, answer.status) == ("resume", "resolved")
    assert answer.body["resume"][0]["interruptId"] == interrupt["id"]
    assert answer.payload == {"approved": True}
    assert_conforms(answer.payload, schema_of(peer, pause))
    assert tool_runs(peer, pause) == [story.ARGS]
    assert APPROVED_TEXT in thread_text(harness, pause)


async def test_reject_is_a_decision_the_agent_is_told(harness: Harness, peer: PeerServer) -> None:
    pause = await ask(harness, peer)
    await decide(harness, pause, ACTION_REJECT)

    answer = answer_of(peer, pause)
    assert (answer.wire, answer.status) == ("resume", "resolved")
    assert answer.payload == {"approved": False}
    assert_conforms(answer.payload, schema_of(peer, pause))
    assert tool_runs(peer, pause) == []
    text = thread_text(harness, pause)
    assert "Decision: rejected. restart_pod did not run" in text and "Rejected by" in text


async def test_edited_arguments_go_in_edited_args_only(harness: Harness, peer: PeerServer) -> None:
    pause = await ask(harness, peer)
    await edit_and_approve(harness, pause, EDITED_ARGS)

    answer = answer_of(peer, pause)
    assert answer.payload == {"approved": True, "editedArgs": EDITED_ARGS}
    assert_conforms(answer.payload, schema_of(peer, pause))
    assert tool_runs(peer, pause) == [EDITED_ARGS]
    assert EDITED_TEXT in thread_text(harness, pause)
