"""The A2A adapter against real A2A servers: an `a2a-sdk` 1.x agent and Kagent's runtime."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    EventType,
    Interrupt,
    ResumeEntry,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedEvent,
    TextMessageContentEvent,
    ToolCallArgsEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
    UserMessage,
)

from orchestrator.agent.a2a import TASK_EVENT, A2AClient
from orchestrator.agent.errors import AgentNotFound, AgentUnreachable, TaskGone
from orchestrator.agent.targets import AgentTarget
from tests.interop.a2a_peers import Peer, free_port

HITL = "https://kagent.dev/extensions/hitl/v1"


@pytest.fixture
async def client() -> AsyncIterator[A2AClient]:
    a2a = A2AClient(first_event_timeout=60, idle_timeout=60)
    yield a2a
    await a2a.aclose()


class Run:
    def __init__(self, events: list[BaseEvent]) -> None:
        self.events = events

    @property
    def text(self) -> str:
        """The answer as the engine shows it: one paragraph per text message."""
        paragraphs: list[str] = []
        for event in self.events:
            if event.type == EventType.TEXT_MESSAGE_START:
                paragraphs.append("")
            elif isinstance(event, TextMessageContentEvent):
                paragraphs[-1] += event.delta
        return "\n\n".join(paragraphs)

    @property
    def last(self) -> BaseEvent:
        return self.events[-1]

    @property
    def interrupts(self) -> list[Interrupt]:
        assert isinstance(self.last, RunFinishedEvent), self.last
        assert self.last.outcome is not None and self.last.outcome.type == "interrupt"
        return list(self.last.outcome.interrupts)

    @property
    def task_id(self) -> str:
        found = [e for e in self.events if isinstance(e, CustomEvent) and e.name == TASK_EVENT]
        return str(found[0].value["taskId"])

    def tools(self) -> dict[str, tuple[str, Any]]:
        """tool call id -> (name, args)."""
        calls: dict[str, list[str]] = {}
        for event in self.events:
            if isinstance(event, ToolCallStartEvent):
                calls[event.tool_call_id] = [event.tool_call_name, ""]
            elif isinstance(event, ToolCallArgsEvent):
                calls[event.tool_call_id][1] += event.delta
        return {k: (v[0], json.loads(v[1])) for k, v in calls.items()}

    def results(self) -> dict[str, str]:
        found = [e for e in self.events if isinstance(e, ToolCallResultEvent)]
        return {e.tool_call_id: json.loads(str(e.content)) for e in found}


def run_input(
    thread: str, text: str = "", resume: list[ResumeEntry] | None = None
) -> RunAgentInput:
    messages = [UserMessage(id=str(uuid.uuid4()), content=text, name="U0ALICE")] if text else []
    return RunAgentInput(
        thread_id=thread,
        run_id=str(uuid.uuid4()),
        messages=messages,
        resume=resume,
        forwarded_props={"source": "slack"},
    )


async def ask(client: A2AClient, peer: Peer, thread: str, text: str) -> Run:
    return Run([e async for e in client.stream(target(peer), run_input(thread, text))])


async def answer(client: A2AClient, peer: Peer, thread: str, entries: list[ResumeEntry]) -> Run:
    events = client.stream(target(peer), run_input(thread, resume=entries))
    return Run([e async for e in events])


def approve(interrupt: Interrupt, values: dict[str, Any] | None = None) -> ResumeEntry:
    return ResumeEntry(
        interrupt_id=interrupt.id, status="resolved", payload=values or {"approved": True}
    )


def reject(interrupt: Interrupt, reason: str | None = None) -> ResumeEntry:
    payload = {"approved": False, "reason": reason} if reason else None
    status = "resolved" if reason else "cancelled"
    return ResumeEntry(interrupt_id=interrupt.id, status=status, payload=payload)


def target(peer: Peer) -> AgentTarget:
    return AgentTarget(name=peer.name, url=peer.url, headers={"Authorization": "Bearer t0ken"})


def thread_id() -> str:
    return f"slack-{uuid.uuid4().hex[:12]}"


def methods(peer: Peer, thread: str) -> list[str]:
    return [r["body"]["method"] for r in peer.requests(thread)]


# --- A2A 1.0: a2a-sdk ----------------------------------------------------------------------


async def test_a2a_sdk_answer_streams_text_and_tool_calls(client: A2AClient, a2a_sdk_peer: Peer):
    thread = thread_id()
    run = await ask(client, a2a_sdk_peer, thread, "How is the cluster?")

    assert run.events[0].type == EventType.RUN_STARTED
    assert run.text == "Checking the cluster.\n\nThe cluster is healthy: 3 pods ready."
    assert run.tools() == {"call-pods": ("get_pods", {"namespace": "prod"})}
    assert run.results() == {"call-pods": {"ready": 3}}
    assert isinstance(run.last, RunFinishedEvent) and run.last.outcome is None
    [request] = a2a_sdk_peer.requests(thread)
    assert request["body"]["method"] == "SendStreamingMessage"
    assert request["headers"]["a2a-version"] == "1.0"
    assert request["headers"]["a2a-extensions"] == HITL
    assert request["headers"]["authorization"] == "Bearer t0ken"
    message = request["body"]["params"]["message"]
    assert message["contextId"] == thread
    assert message["parts"] == [{"text": "How is the cluster?"}]


async def test_a2a_sdk_approval_resumes_the_same_task_once(client: A2AClient, a2a_sdk_peer: Peer):
    thread = thread_id()
    before = len(a2a_sdk_peer.tool_runs())
    paused = await ask(client, a2a_sdk_peer, thread, "restart api")

    [interrupt] = paused.interrupts
    assert interrupt.message == "Restarts need approval."
    assert paused.tools()[interrupt.tool_call_id or ""] == (
        "restart_deployment",
        {"name": "api", "namespace": "prod"},
    )
    done = await answer(client, a2a_sdk_peer, thread, [approve(interrupt)])

    assert done.text == "Decision for api: approved. Restarted deployment api."
    assert len(a2a_sdk_peer.tool_runs()) == before + 1
    sent = a2a_sdk_peer.requests(thread)[-1]["body"]["params"]["message"]
    assert sent["taskId"] == paused.task_id and sent["contextId"] == thread
    assert sent["extensions"] == [HITL]
    assert sent["metadata"][HITL] == {
        "type": "tool_approval_response",
        "approvals": [{"id": "approval-api", "approved": True}],
    }


async def test_a2a_sdk_several_calls_answered_in_one_message(client: A2AClient, a2a_sdk_peer: Peer):
    thread = thread_id()
    paused = await ask(client, a2a_sdk_peer, thread, "restart all")
    api, worker = paused.interrupts

    done = await answer(
        client, a2a_sdk_peer, thread, [approve(api), reject(worker, "worker is busy")]
    )

    assert done.text == (
        "Decision for api: approved. Restarted deployment api. "
        "Decision for worker: rejected (worker is busy)."
    )
    sent = a2a_sdk_peer.requests(thread)[-1]["body"]["params"]["message"]
    assert sent["metadata"][HITL]["approvals"] == [
        {"id": "approval-api", "approved": True},
        {"id": "approval-worker", "approved": False, "rejection_reason": "worker is busy"},
    ]


async def test_a2a_sdk_questions_become_a_form(client: A2AClient, a2a_sdk_peer: Peer):
    thread = thread_id()
    paused = await ask(client, a2a_sdk_peer, thread, "ask me")

    [interrupt] = paused.interrupts
    schema = interrupt.response_schema or {}
    assert schema["properties"] == {
        "answer_1": {"title": "Which environment?", "type": "string", "enum": ["dev", "prod"]},
        "answer_2": {
            "title": "Which checks?",
            "type": "array",
            "items": {"type": "string", "enum": ["pods", "nodes"]},
        },
        "answer_3": {"title": "Anything else?", "type": "string"},
    }
    values = {"answer_1": "dev", "answer_2": ["pods", "nodes"], "answer_3": "be quick"}
    done = await answer(client, a2a_sdk_peer, thread, [approve(interrupt, values)])

    assert done.text == 'Answers: [{"answer": ["dev"]}, {"answer": ["pods", "nodes"]}, ' + (
        '{"answer": ["be quick"]}].'
    )


@pytest.mark.parametrize(
    ("text", "message", "code"),
    [
        ("fail now", "The agent's task failed: The cluster API refused the request.", "a2a_failed"),
        (
            "refuse this",
            "The agent rejected the request: I do not run requests like this one.",
            "a2a_rejected",
        ),
        (
            "login please",
            "The agent needs you to sign in at https://login.example.test/a2a?state=abc "
            "before it can go on.",
            "a2a_auth_required",
        ),
    ],
)
async def test_a2a_sdk_task_ending_badly_is_a_run_error(
    client: A2AClient, a2a_sdk_peer: Peer, text: str, message: str, code: str
):
    run = await ask(client, a2a_sdk_peer, thread_id(), text)

    assert isinstance(run.last, RunErrorEvent)
    assert (run.last.message, run.last.code) == (message, code)


async def test_follow_up_keeps_the_context(client: A2AClient, a2a_sdk_peer: Peer):
    thread = thread_id()
    await ask(client, a2a_sdk_peer, thread, "first question")
    await ask(client, a2a_sdk_peer, thread, "second question")

    contexts = [r["body"]["params"]["message"]["contextId"] for r in a2a_sdk_peer.requests(thread)]
    assert contexts == [thread, thread]


async def reattach_after_drop(client: A2AClient, peer: Peer, thread: str) -> tuple[Run, Run]:
    """Starts a slow answer, drops the stream after its first words, re-attaches, finishes."""
    peer.hold()
    seen: list[BaseEvent] = []
    stream = client.stream(target(peer), run_input(thread, "slow count"))
    async for event in stream:
        seen.append(event)
        if isinstance(event, TextMessageContentEvent):
            break
    await stream.aclose()
    first = Run(seen)
    other = A2AClient()
    try:
        events = other.reattach(target(peer), run_input(thread), first.task_id)
        rest = [await anext(events)]  # RUN_STARTED, sent once the subscription is open
        while not isinstance(rest[-1], TextMessageContentEvent):
            rest.append(await anext(events))
        peer.release()
        rest += [e async for e in events]
    finally:
        await other.aclose()
        peer.hold()
    return first, Run(rest)


async def test_a2a_sdk_reattaches_to_a_streaming_task(client: A2AClient, a2a_sdk_peer: Peer):
    thread = thread_id()
    first, rest = await reattach_after_drop(client, a2a_sdk_peer, thread)

    assert first.text == "Counting the pods… "
    assert rest.text == "Counting the pods… there are 42 pods."
    assert isinstance(rest.last, RunFinishedEvent)
    requests = a2a_sdk_peer.requests()
    subscribed = [r for r in requests if r["body"].get("method") == "SubscribeToTask"]
    assert subscribed[-1]["body"]["params"]["id"] == first.task_id


async def test_reattach_to_an_unknown_task_says_so(client: A2AClient, a2a_sdk_peer: Peer):
    with pytest.raises(TaskGone):
        async for _ in client.reattach(target(a2a_sdk_peer), run_input(thread_id()), "no-such"):
            pass


async def test_unreachable_and_unknown_agents(client: A2AClient, a2a_sdk_peer: Peer):
    nobody = AgentTarget(name="nobody", url=f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(AgentUnreachable):
        async for _ in client.stream(nobody, run_input(thread_id(), "hello")):
            pass
    wrong = AgentTarget(name="wrong", url=f"{a2a_sdk_peer.url}api/a2a/kagent/nobody")
    with pytest.raises(AgentNotFound, match="no A2A agent card"):
        async for _ in client.stream(wrong, run_input(thread_id(), "hello")):
            pass


async def test_cards_are_read_without_starting_a_task(
    client: A2AClient, a2a_sdk_peer: Peer, kagent_peer: Peer
):
    sdk, sdk_problems = await client.describe(target(a2a_sdk_peer))
    kagent, kagent_problems = await client.describe(target(kagent_peer))

    assert sdk.summary() == f"a2a-sdk-peer 1.3.0-test, A2A 1.0, streaming, extensions: {HITL}"
    assert kagent.summary() == "k8s-agent 0.10.4-test, A2A 0.3.0, streaming"
    assert sdk_problems == kagent_problems == []


# --- A2A 0.3: Kagent's runtime -------------------------------------------------------------


async def test_kagent_answer_streams_once(client: A2AClient, kagent_peer: Peer):
    thread = thread_id()
    run = await ask(client, kagent_peer, thread, "Hello Kagent")

    assert run.text == "Kagent heard: hello kagent."
    assert isinstance(run.last, RunFinishedEvent) and run.last.outcome is None
    [request] = kagent_peer.requests(thread)
    assert request["body"]["method"] == "message/stream"
    assert request["headers"]["a2a-version"] == "0.3"
    assert request["body"]["params"]["message"]["contextId"] == thread


async def test_kagent_tool_call_and_result(client: A2AClient, kagent_peer: Peer):
    run = await ask(client, kagent_peer, thread_id(), "check dev")

    [(name, args)] = run.tools().values()
    assert (name, args) == ("get_pods", {"namespace": "dev"})
    assert list(run.results().values()) == [{"namespace": "dev", "ready": 3}]
    assert run.text == "dev has 3 pods ready."


async def test_kagent_approval_runs_the_tool_once(client: A2AClient, kagent_peer: Peer):
    thread = thread_id()
    before = len(kagent_peer.tool_runs("restart_deployment"))
    paused = await ask(client, kagent_peer, thread, "restart api")

    [interrupt] = paused.interrupts
    assert interrupt.message == "Tool 'restart_deployment' requires approval before execution."
    name, args = paused.tools()[interrupt.tool_call_id or ""]
    assert (name, args) == ("restart_deployment", {"name": "api", "namespace": "prod"})
    done = await answer(client, kagent_peer, thread, [approve(interrupt)])

    assert done.text == "Restarted deployment api."
    assert len(kagent_peer.tool_runs("restart_deployment")) == before + 1
    sent = kagent_peer.requests(thread)[-1]["body"]["params"]["message"]
    assert sent["taskId"] == paused.task_id and sent["contextId"] == thread
    assert sent["parts"] == [{"kind": "data", "data": {"decision_type": "approve"}}]


async def test_kagent_rejection_keeps_the_tool_from_running(client: A2AClient, kagent_peer: Peer):
    thread = thread_id()
    before = len(kagent_peer.tool_runs("restart_deployment"))
    paused = await ask(client, kagent_peer, thread, "restart api")

    done = await answer(client, kagent_peer, thread, [reject(paused.interrupts[0], "not now")])

    assert done.text == "Nothing restarted: Tool call was rejected by user. Reason: not now"
    assert len(kagent_peer.tool_runs("restart_deployment")) == before
    sent = kagent_peer.requests(thread)[-1]["body"]["params"]["message"]
    assert sent["parts"][0]["data"] == {"decision_type": "reject", "rejection_reason": "not now"}


async def test_kagent_several_calls_answered_as_a_batch(client: A2AClient, kagent_peer: Peer):
    thread = thread_id()
    paused = await ask(client, kagent_peer, thread, "restart all")
    api, worker = paused.interrupts

    done = await answer(client, kagent_peer, thread, [approve(api), reject(worker)])

    assert done.text == (
        "Restarted deployment api. Nothing restarted: Tool call was rejected by user."
    )
    sent = kagent_peer.requests(thread)[-1]["body"]["params"]["message"]
    assert sent["parts"][0]["data"] == {
        "decision_type": "batch",
        "decisions": {api.tool_call_id: "approve", worker.tool_call_id: "reject"},
    }


async def test_kagent_ask_user_questions(client: A2AClient, kagent_peer: Peer):
    thread = thread_id()
    paused = await ask(client, kagent_peer, thread, "ask me")

    [interrupt] = paused.interrupts
    assert interrupt.message == "Which environment?; Anything else?"
    values = {"answer_1": "prod", "answer_2": "nothing"}
    done = await answer(client, kagent_peer, thread, [approve(interrupt, values)])

    assert "prod" in done.text and "nothing" in done.text
    sent = kagent_peer.requests(thread)[-1]["body"]["params"]["message"]
    assert sent["parts"][0]["data"] == {
        "decision_type": "approve",
        "ask_user_answers": [{"answer": ["prod"]}, {"answer": ["nothing"]}],
    }


async def test_kagent_reattaches_to_a_streaming_task(client: A2AClient, kagent_peer: Peer):
    thread = thread_id()
    first, rest = await reattach_after_drop(client, kagent_peer, thread)

    assert first.text == "Counting the pods… "
    assert rest.text.endswith("there are 42 pods.")
    assert isinstance(rest.last, RunFinishedEvent)
    assert "tasks/resubscribe" in [r["body"]["method"] for r in kagent_peer.requests()]
