"""AgentClient against the scripted AG-UI agent over real loopback HTTP + SSE."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from ag_ui.core import (
    AssistantMessage,
    BaseEvent,
    CustomEvent,
    EventType,
    FunctionCall,
    RawEvent,
    ReasoningMessageChunkEvent,
    ResumeEntry,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunFinishedSuccessOutcome,
    RunStartedEvent,
    TextMessageChunkEvent,
    TextMessageContentEvent,
    ToolCall,
    ToolCallArgsEvent,
    ToolCallChunkEvent,
    ToolCallStartEvent,
    ToolMessage,
    UserMessage,
)

from orchestrator.agent.agui.client import AgentClient
from orchestrator.agent.agui.events import ChunkExpander, parse_event
from orchestrator.agent.agui.run_input import run_input_payload
from orchestrator.agent.errors import (
    AgentAuthError,
    AgentError,
    AgentHTTPError,
    AgentNotFound,
    AgentTimeout,
    AgentUnreachable,
    MalformedEvent,
    StreamIncomplete,
)
from orchestrator.sandbox.agent_server import APPROVAL_MESSAGE, ScriptedAgent, long_markdown

DATA = Path(__file__).parent / "data"
RECORDINGS = [
    "langgraph-legacy-interrupt",
    "langgraph-legacy-resume",
    "langgraph-structured-interrupt",
    "langgraph-structured-resume",
]


# One server and one HTTP client for the module: starting and stopping uvicorn per test would
# cost most of this file's time budget. The module mark makes every test here a coroutine, the
# pure ones too.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent_server() -> AsyncIterator[ScriptedAgent]:
    server = ScriptedAgent(name="test-agent", recordings_dir=DATA)
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def agent(agent_server: ScriptedAgent) -> ScriptedAgent:
    agent_server.reset()
    return agent_server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
def client(http: httpx.AsyncClient) -> AgentClient:
    return AgentClient(http, first_event_timeout=2.0, idle_timeout=2.0)


def make_input(text: str = "hello", *, run_id: str = "run-1", **extra: Any) -> RunAgentInput:
    messages = extra.pop("messages", [UserMessage(id="u1", content=text)])
    return RunAgentInput(thread_id="thread-1", run_id=run_id, messages=messages, **extra)


async def collect(client: AgentClient, url: str, run_input: RunAgentInput) -> list[BaseEvent]:
    return [event async for event in client.stream(url, run_input)]


def types(events: list[BaseEvent]) -> list[str]:
    return [event.type.value for event in events]


def text_of(events: list[BaseEvent]) -> str:
    return "".join(e.delta for e in events if isinstance(e, TextMessageContentEvent))


def finished(events: list[BaseEvent]) -> RunFinishedEvent:
    last = events[-1]
    assert isinstance(last, RunFinishedEvent)
    return last


# --- the happy path ----------------------------------------------------------------------------


async def test_answer_yields_typed_events_in_order(agent: ScriptedAgent, client: AgentClient):
    events = await collect(client, agent.url("answer"), make_input())

    kinds = types(events)
    assert kinds[:2] == ["RUN_STARTED", "TEXT_MESSAGE_START"]
    assert kinds[-2:] == ["TEXT_MESSAGE_END", "RUN_FINISHED"]
    assert set(kinds[2:-2]) == {"TEXT_MESSAGE_CONTENT"}
    assert text_of(events) == agent.answer_text
    assert "test-agent" in agent.answer_text
    started = events[0]
    assert isinstance(started, RunStartedEvent)
    assert (started.thread_id, started.run_id) == ("thread-1", "run-1")
    assert (finished(events).thread_id, finished(events).run_id) == ("thread-1", "run-1")


async def test_server_records_the_request_body_and_headers(
    agent: ScriptedAgent, http: httpx.AsyncClient
):
    client = AgentClient(http)
    stream = client.stream(agent.url("echo"), make_input("hi there"), headers={"X-Trace": "t-1"})
    events = [event async for event in stream]

    (request,) = agent.requests_for("echo")
    assert request.path == "/agents/echo"
    assert request.body["threadId"] == "thread-1"
    assert request.body["messages"] == [{"id": "u1", "role": "user", "content": "hi there"}]
    assert (request.body["tools"], request.body["context"], request.body["forwardedProps"]) == (
        [],
        [],
        {},
    )
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["x-trace"] == "t-1"
    assert json.loads(text_of(events)) == {"messages": 1, "last_user_message": "hi there"}


async def test_run_input_payload_always_sends_tools_context_and_forwarded_props():
    payload = run_input_payload(make_input())

    assert payload["tools"] == [] and payload["context"] == [] and payload["forwardedProps"] == {}
    assert payload["messages"] == [{"id": "u1", "role": "user", "content": "hello"}]
    assert "state" not in payload and "resume" not in payload

    props = {"source": "slack", "channel": "C1"}
    assert run_input_payload(make_input(forwarded_props=props))["forwardedProps"] == props


async def test_tools_scenario(agent: ScriptedAgent, client: AgentClient):
    events = await collect(client, agent.url("tools"), make_input())

    kinds = types(events)
    assert kinds[:4] == ["RUN_STARTED", "STEP_STARTED", "TOOL_CALL_START", "TOOL_CALL_ARGS"]
    assert kinds.count("TOOL_CALL_START") == kinds.count("TOOL_CALL_RESULT") == 2
    assert kinds.index("STEP_FINISHED") < kinds.index("TEXT_MESSAGE_START")
    first_call = "".join(e.delta for e in events if isinstance(e, ToolCallArgsEvent))[:40]
    assert first_call.startswith('{"query": "deploy checklist"')


async def test_chunks_are_expanded(agent: ScriptedAgent, client: AgentClient):
    events = await collect(client, agent.url("chunks"), make_input())

    kinds = types(events)
    assert not [kind for kind in kinds if kind.endswith("_CHUNK")]
    assert kinds[:6] == [
        "RUN_STARTED",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
    ]
    assert kinds[6] == "TEXT_MESSAGE_START"
    assert kinds[-2:] == ["TEXT_MESSAGE_END", "RUN_FINISHED"]
    args = "".join(e.delta for e in events if isinstance(e, ToolCallArgsEvent))
    assert json.loads(args) == {"query": "deploy checklist"}
    assert text_of(events) == agent.answer_text


async def test_chunk_expander_opens_and_closes_like_the_js_client():
    expander = ChunkExpander()
    fed = [
        TextMessageChunkEvent(message_id="m1", delta="a"),
        TextMessageChunkEvent(delta="b"),  # no id: continues m1
        TextMessageChunkEvent(message_id="m2", delta="c"),  # new id: closes m1
        ToolCallChunkEvent(tool_call_id="t1", tool_call_name="f", delta="{}"),
        ReasoningMessageChunkEvent(message_id="r1", delta="hmm"),
        RunFinishedEvent(thread_id="t", run_id="r"),
    ]
    out = [event for chunk in fed for event in expander.feed(chunk)]

    assert types(out) == [
        "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END",
        "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END",
        "TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END",
        "REASONING_MESSAGE_START", "REASONING_MESSAGE_CONTENT", "REASONING_MESSAGE_END",
        "RUN_FINISHED",
    ]  # fmt: skip
    assert [getattr(event, "message_id", None) for event in out[:7]] == ["m1"] * 4 + ["m2"] * 3
    assert expander.close() == []


async def test_chunk_expander_rejects_a_first_chunk_without_id():
    with pytest.raises(MalformedEvent):
        ChunkExpander().feed(TextMessageChunkEvent(delta="orphan"))


# --- parsing -----------------------------------------------------------------------------------


async def test_parse_event_skips_raw_in_any_key_order():
    assert parse_event('{"type":"RAW","event":{"big":[1,2,3]}}') is None
    assert parse_event('{"event":{"big":[1,2,3]},"type":"RAW"}') is None
    assert parse_event('{ "type" : "RAW", "event": null }') is None


async def test_parse_event_types_known_events_in_any_key_order():
    event = parse_event('{"delta":"hi","messageId":"m1","type":"TEXT_MESSAGE_CONTENT"}')
    assert isinstance(event, TextMessageContentEvent) and event.delta == "hi"


async def test_parse_event_warns_once_per_unknown_type(caplog: pytest.LogCaptureFixture):
    name = f"FUTURE_{uuid.uuid4().hex}\n"
    data = json.dumps({"type": name})
    with caplog.at_level(logging.WARNING, logger="orchestrator.agent"):
        assert parse_event(data) is None
        assert parse_event(data) is None

    (record,) = [r for r in caplog.records if name.strip() in r.getMessage()]
    assert "\n" not in record.getMessage()  # the name is escaped
    assert record.__dict__["event_type"].endswith("\\n")


async def test_parse_event_rejects_bad_json_and_schema_errors():
    with pytest.raises(MalformedEvent, match="not valid JSON"):
        parse_event("{not json")
    with pytest.raises(MalformedEvent, match="TEXT_MESSAGE_CONTENT"):
        parse_event('{"type":"TEXT_MESSAGE_CONTENT","messageId":"m1"}')
    with pytest.raises(MalformedEvent, match="without a type"):
        parse_event('{"messageId":"m1"}')


async def test_unknown_type_is_skipped_in_a_stream(agent: ScriptedAgent, client: AgentClient):
    events = await collect(client, agent.url("unknown-type"), make_input())

    assert types(events)[:2] == ["RUN_STARTED", "TEXT_MESSAGE_START"]
    assert text_of(events) == agent.answer_text


@pytest.mark.parametrize("name", RECORDINGS)
async def test_recorded_streams_parse_and_raw_is_skipped(
    agent: ScriptedAgent, client: AgentClient, name: str
):
    lines = [
        line for line in (DATA / f"{name}.sse").read_text().splitlines() if line.startswith("data:")
    ]
    raw_lines = [line for line in lines if line.startswith('data: {"type":"RAW"')]

    events = await collect(client, agent.url(f"replay-{name}"), make_input())

    assert len(raw_lines) > 20
    assert not [event for event in events if isinstance(event, RawEvent)]
    assert len(events) == len(lines) - len(raw_lines)
    assert isinstance(events[-1], RunFinishedEvent)


async def test_recorded_legacy_interrupt_yields_custom_on_interrupt(
    agent: ScriptedAgent, client: AgentClient
):
    events = await collect(client, agent.url("replay-langgraph-legacy-interrupt"), make_input())

    (custom,) = [event for event in events if isinstance(event, CustomEvent)]
    assert custom.name == "on_interrupt"
    assert json.loads(custom.value)["fields"][0]["name"] == "replicas"
    assert finished(events).outcome is None


async def test_recorded_structured_interrupt_has_interrupt_outcome(
    agent: ScriptedAgent, client: AgentClient
):
    url = agent.url("replay-langgraph-structured-interrupt")
    events = await collect(client, url, make_input())

    outcome = finished(events).outcome
    assert isinstance(outcome, RunFinishedInterruptOutcome)
    assert outcome.type == "interrupt"
    assert outcome.interrupts[0].message == APPROVAL_MESSAGE


async def test_replay_with_resume_replays_the_resume_recording(
    agent: ScriptedAgent, client: AgentClient
):
    resume = make_input(forwarded_props={"command": {"resume": {"replicas": "5"}}})
    events = await collect(client, agent.url("replay-langgraph-legacy-interrupt"), resume)

    started = events[0]
    assert isinstance(started, RunStartedEvent) and started.run_id == "run-2"
    assert agent.resumes == 1


# --- human in the loop -------------------------------------------------------------------------


async def test_interrupt_outcome_and_resume(agent: ScriptedAgent, client: AgentClient):
    events = await collect(client, agent.url("interrupt-outcome"), make_input("scale web"))

    (start,) = [event for event in events if isinstance(event, ToolCallStartEvent)]
    args = "".join(e.delta for e in events if isinstance(e, ToolCallArgsEvent))
    assert start.tool_call_name == "scale_deployment"
    assert json.loads(args) == {"deployment": "web", "replicas": 5}
    outcome = finished(events).outcome
    assert isinstance(outcome, RunFinishedInterruptOutcome)
    (interrupt,) = outcome.interrupts
    assert (interrupt.reason, interrupt.message) == ("confirmation", APPROVAL_MESSAGE)
    assert interrupt.tool_call_id == start.tool_call_id
    assert interrupt.expires_at is None
    schema = interrupt.response_schema or {}
    assert schema["properties"]["replicas"]["enum"] == [3, 5, 8]
    assert schema["required"] == ["replicas"]

    payload = {"replicas": 5, "comment": "ok, go"}
    entry = ResumeEntry(interrupt_id=interrupt.id, status="resolved", payload=payload)
    resumed = await collect(
        client, agent.url("interrupt-outcome"), make_input(run_id="run-2", resume=[entry])
    )

    assert text_of(resumed) == f"Done. Decision received: {json.dumps(payload)}."
    assert agent.resumes == 1
    body = agent.requests_for("interrupt-outcome")[1].body
    assert body["resume"] == [
        {"interruptId": interrupt.id, "status": "resolved", "payload": payload}
    ]


async def test_interrupt_outcome_carries_expiry_when_configured(
    agent: ScriptedAgent, client: AgentClient, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(agent, "interrupt_expires_at", "2030-01-01T00:00:00Z")
    events = await collect(client, agent.url("interrupt-outcome"), make_input())

    outcome = finished(events).outcome
    assert isinstance(outcome, RunFinishedInterruptOutcome)
    assert outcome.interrupts[0].expires_at == "2030-01-01T00:00:00Z"


async def test_interrupt_legacy_and_resume(agent: ScriptedAgent, client: AgentClient):
    events = await collect(client, agent.url("interrupt-legacy"), make_input())

    custom = events[-2]
    assert isinstance(custom, CustomEvent) and custom.name == "on_interrupt"
    assert isinstance(custom.value, str)
    value = json.loads(custom.value)
    assert value["message"] == APPROVAL_MESSAGE
    assert [field["name"] for field in value["fields"]] == ["replicas", "comment"]
    assert finished(events).outcome is None

    answer = {"replicas": "3"}
    resume = make_input(run_id="run-2", forwarded_props={"command": {"resume": answer}})
    resumed = await collect(client, agent.url("interrupt-legacy"), resume)

    assert text_of(resumed) == f"Done. Decision received: {json.dumps(answer)}."
    assert agent.resumes == 1


async def test_interrupt_pending_tool_and_resume(agent: ScriptedAgent, client: AgentClient):
    events = await collect(client, agent.url("interrupt-tool"), make_input())

    assert "TOOL_CALL_RESULT" not in types(events)
    (start,) = [event for event in events if isinstance(event, ToolCallStartEvent)]
    assert start.tool_call_name == "confirm_action"
    outcome = finished(events).outcome
    assert isinstance(outcome, RunFinishedSuccessOutcome)
    assert outcome.pending_tool_call_ids == [start.tool_call_id]

    args = "".join(e.delta for e in events if isinstance(e, ToolCallArgsEvent))
    function = FunctionCall(name="confirm_action", arguments=args)
    call = ToolCall(id=start.tool_call_id, function=function)
    answer = {"approved": True}
    messages = [
        UserMessage(id="u1", content="hello"),
        AssistantMessage(id="a1", tool_calls=[call]),
        ToolMessage(id="t1", tool_call_id=start.tool_call_id, content=json.dumps(answer)),
    ]
    resumed = await collect(
        client, agent.url("interrupt-tool"), make_input(run_id="run-2", messages=messages)
    )

    assert text_of(resumed) == f"Done. Decision received: {json.dumps(answer)}."
    assert agent.resumes == 1


async def test_interrupt_multi_and_cancelled_resume(agent: ScriptedAgent, client: AgentClient):
    events = await collect(client, agent.url("interrupt-multi"), make_input())

    outcome = finished(events).outcome
    assert isinstance(outcome, RunFinishedInterruptOutcome)
    assert len(outcome.interrupts) == 2
    assert len({interrupt.id for interrupt in outcome.interrupts}) == 2

    entries = [ResumeEntry(interrupt_id=i.id, status="cancelled") for i in outcome.interrupts]
    resumed = await collect(
        client, agent.url("interrupt-multi"), make_input(run_id="run-2", resume=entries)
    )

    assert text_of(resumed) == "Cancelled."
    assert agent.resumes == 1


async def test_auto_routes_by_the_last_user_message(agent: ScriptedAgent, client: AgentClient):
    approval = await collect(client, agent.url(), make_input("please scale web to 5"))
    answer = await collect(client, agent.url(), make_input("what is this?"))

    assert isinstance(finished(approval).outcome, RunFinishedInterruptOutcome)
    assert text_of(answer) == agent.answer_text


async def test_run_error_is_an_event_not_an_exception(agent: ScriptedAgent, client: AgentClient):
    events = await collect(client, agent.url("run-error"), make_input())

    error = events[-1]
    assert isinstance(error, RunErrorEvent)
    assert (error.message, error.code) == ("The model provider is overloaded", "overloaded")


async def test_large_answers(agent: ScriptedAgent, client: AgentClient):
    huge = await collect(client, agent.url("huge-delta"), make_input())
    long = await collect(client, agent.url("long"), make_input())

    assert [len(e.delta) for e in huge if isinstance(e, TextMessageContentEvent)] == [50_000]
    assert text_of(long) == long_markdown()
    assert len(text_of(long)) > 14_000 and types(long).count("TEXT_MESSAGE_CONTENT") > 1000


# --- failures ----------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def expect_error(client: AgentClient, url: str) -> AgentError:
    with pytest.raises(AgentError) as info:
        await collect(client, url, make_input())
    return info.value


async def test_unreachable_agent(client: AgentClient):
    url = f"http://127.0.0.1:{closed_port()}/agents/x?token=secret"
    error = await expect_error(client, url)

    assert isinstance(error, AgentUnreachable)
    assert error.kind == "agent_unreachable" and error.retryable
    assert error.url == url.split("?")[0]
    assert "secret" not in str(error)


@pytest.mark.parametrize(
    ("scenario", "error_type", "retryable"),
    [
        ("no-such-agent", AgentNotFound, False),
        ("401", AgentAuthError, False),
        ("500", AgentHTTPError, True),
    ],
)
async def test_http_errors(
    agent: ScriptedAgent,
    client: AgentClient,
    scenario: str,
    error_type: type[AgentError],
    retryable: bool,
):
    error = await expect_error(client, agent.url(scenario))

    assert type(error) is error_type
    assert error.retryable is retryable
    assert error.url == agent.url(scenario)


async def test_not_found_says_what_the_backend_said(agent: ScriptedAgent, client: AgentClient):
    error = await expect_error(client, agent.url("nobody"))

    assert "agent not found" in error.detail


async def test_503_carries_retry_after(agent: ScriptedAgent, client: AgentClient):
    error = await expect_error(client, agent.url("503"))

    assert isinstance(error, AgentHTTPError)
    assert (error.status, error.retry_after) == (503, 7)


async def test_500_has_status_and_no_retry_after(agent: ScriptedAgent, client: AgentClient):
    error = await expect_error(client, agent.url("500"))

    assert isinstance(error, AgentHTTPError)
    assert (error.status, error.retry_after) == (500, None)


async def test_slow_start_times_out_before_the_first_event(
    agent: ScriptedAgent, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(agent, "slow_start_seconds", 1.0)
    client = AgentClient(http, first_event_timeout=0.2, idle_timeout=5.0)

    error = await expect_error(client, agent.url("slow-start"))

    assert isinstance(error, AgentTimeout)
    assert "0.2 seconds" in error.detail


async def test_stall_times_out_mid_stream(
    agent: ScriptedAgent, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(agent, "stall_seconds", 5.0)
    client = AgentClient(http, first_event_timeout=1.0, idle_timeout=0.2)
    seen: list[BaseEvent] = []

    with pytest.raises(AgentTimeout, match="silent"):
        async for event in client.stream(agent.url("stall"), make_input()):
            seen.append(event)

    assert types(seen) == ["RUN_STARTED", "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT"]


async def test_slow_consumer_is_not_an_idle_agent(agent: ScriptedAgent, http: httpx.AsyncClient):
    client = AgentClient(http, first_event_timeout=0.2, idle_timeout=0.2)
    events: list[BaseEvent] = []
    async for event in client.stream(agent.url("answer"), make_input()):
        if not events:
            await asyncio.sleep(0.5)  # the consumer holds an event longer than the idle timeout
        events.append(event)
    assert isinstance(events[-1], RunFinishedEvent)


@pytest.mark.parametrize("scenario", ["drop", "drop-abrupt"])
async def test_dropped_stream_is_incomplete(
    agent: ScriptedAgent, client: AgentClient, scenario: str
):
    seen: list[BaseEvent] = []
    with pytest.raises(StreamIncomplete):
        async for event in client.stream(agent.url(scenario), make_input()):
            seen.append(event)

    assert types(seen)[0] == "RUN_STARTED"
    assert not [event for event in seen if isinstance(event, RunFinishedEvent)]


async def test_malformed_event(agent: ScriptedAgent, client: AgentClient):
    error = await expect_error(client, agent.url("malformed"))

    assert isinstance(error, MalformedEvent)
    assert error.kind == "malformed_event"


async def test_consumer_may_stop_early(agent: ScriptedAgent, client: AgentClient):
    stream = client.stream(agent.url("long"), make_input())
    async for event in stream:
        if event.type == EventType.TEXT_MESSAGE_CONTENT:
            break
    await stream.aclose()

    events = await collect(client, agent.url("answer"), make_input())
    assert isinstance(events[-1], RunFinishedEvent)
