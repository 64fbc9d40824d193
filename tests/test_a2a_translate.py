"""A2A stream results -> AG-UI events (pure), on the shapes real servers send."""

from __future__ import annotations

import uuid
from typing import Any

from a2a.types import StreamResponse
from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    RunErrorEvent,
    RunFinishedEvent,
    TextMessageContentEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from google.protobuf.json_format import ParseDict

from orchestrator.agent.a2a.translate import TASK_EVENT, TaskStream

TASK = "task-1"
CTX = "ctx-1"
KAGENT_PARTIAL = {"kagent_adk_partial": True, "kagent_author": "k8s_agent"}


def response(body: dict[str, Any]) -> StreamResponse:
    return ParseDict(body, StreamResponse(), ignore_unknown_fields=True)


def status(state: str, parts: list[dict[str, Any]] | None = None, **message: Any) -> StreamResponse:
    update: dict[str, Any] = {"taskId": TASK, "contextId": CTX, "status": {"state": state}}
    if parts is not None:
        update["status"]["message"] = {
            "messageId": message.pop("message_id", str(uuid.uuid4())),
            "role": message.pop("role", "ROLE_AGENT"),
            "parts": parts,
            **message,
        }
    return response({"statusUpdate": update})


def artifact(text: str, *, append: bool = False, artifact_id: str = "a1") -> StreamResponse:
    return response(
        {
            "artifactUpdate": {
                "taskId": TASK,
                "contextId": CTX,
                "artifact": {"artifactId": artifact_id, "parts": [{"text": text}]},
                "append": append,
            }
        }
    )


def call(name: str, args: dict[str, Any], call_id: str, prefix: str = "kagent") -> dict[str, Any]:
    return {
        "data": {"name": name, "args": args, "id": call_id},
        "metadata": {f"{prefix}_type": "function_call"},
    }


def result(name: str, value: Any, call_id: str) -> dict[str, Any]:
    return {
        "data": {"name": name, "response": value, "id": call_id},
        "metadata": {"adk_type": "function_response"},
    }


def translate(*results: StreamResponse) -> tuple[TaskStream, list[BaseEvent]]:
    stream = TaskStream(thread_id=CTX, run_id="run-1")
    events: list[BaseEvent] = []
    for item in results:
        events += stream.feed(item)
    return stream, events + stream.end()


def text(events: list[BaseEvent]) -> str:
    paragraphs: list[str] = []
    for event in events:
        if isinstance(event, TextMessageStartEvent):
            paragraphs.append("")
        elif isinstance(event, TextMessageContentEvent):
            paragraphs[-1] += event.delta
    return "\n\n".join(paragraphs)


def test_kagent_streamed_text_is_shown_once():
    _, events = translate(
        status("TASK_STATE_SUBMITTED", [{"text": "hi"}], role="ROLE_USER"),
        status("TASK_STATE_WORKING", [{"text": "Hello "}], metadata=KAGENT_PARTIAL),
        status("TASK_STATE_WORKING", [{"text": "there."}], metadata=KAGENT_PARTIAL),
        status(
            "TASK_STATE_WORKING", [{"text": "Hello there."}], metadata={"kagent_adk_partial": False}
        ),
        artifact("Hello there."),
        status("TASK_STATE_COMPLETED"),
    )

    assert text(events) == "Hello there."
    assert isinstance(events[-1], RunFinishedEvent) and events[-1].outcome is None


def test_the_task_id_is_announced_once():
    stream, events = translate(status("TASK_STATE_WORKING"), status("TASK_STATE_COMPLETED"))

    announced = [e for e in events if isinstance(e, CustomEvent) and e.name == TASK_EVENT]
    assert [e.value for e in announced] == [{"taskId": TASK, "contextId": CTX}]
    assert stream.task_id == TASK


def test_status_messages_and_artifact_chunks_are_paragraphs():
    _, events = translate(
        status("TASK_STATE_WORKING", [{"text": "Checking."}]),
        artifact("The cluster "),
        artifact("is fine.", append=True),
        status("TASK_STATE_COMPLETED", [{"text": "Done."}]),
    )

    assert text(events) == "Checking.\n\nThe cluster is fine.\n\nDone."


def test_tool_calls_and_results():
    _, events = translate(
        status("TASK_STATE_WORKING", [call("get_pods", {"namespace": "dev"}, "c1", "adk")]),
        status("TASK_STATE_WORKING", [result("get_pods", {"ready": 3.0}, "c1")]),
        status("TASK_STATE_COMPLETED"),
    )

    kinds = [type(e) for e in events if not isinstance(e, CustomEvent)]
    tool_events = [ToolCallStartEvent, ToolCallArgsEvent, ToolCallEndEvent, ToolCallResultEvent]
    assert kinds == [*tool_events, RunFinishedEvent]
    assert [e.delta for e in events if isinstance(e, ToolCallArgsEvent)] == ['{"namespace": "dev"}']
    assert [e.content for e in events if isinstance(e, ToolCallResultEvent)] == ['{"ready": 3}']


def test_kagent_confirmation_pauses_with_the_tool_named():
    confirmation = {
        "data": {
            "name": "adk_request_confirmation",
            "id": "confirm-1",
            "args": {
                "originalFunctionCall": {"name": "restart", "args": {"name": "api"}, "id": "c1"},
                "toolConfirmation": {"hint": "Restart needs approval.", "confirmed": False},
            },
        },
        "metadata": {"kagent_type": "function_call", "kagent_is_long_running": True},
    }
    _, events = translate(
        status("TASK_STATE_WORKING", [call("restart", {"name": "api"}, "c1")]),
        status("TASK_STATE_WORKING", [confirmation]),
        status("TASK_STATE_INPUT_REQUIRED", [confirmation]),
    )

    starts = [e for e in events if isinstance(e, ToolCallStartEvent)]
    assert [(e.tool_call_id, e.tool_call_name) for e in starts] == [("c1", "restart")]
    finished = events[-1]
    assert isinstance(finished, RunFinishedEvent) and finished.outcome is not None
    [interrupt] = finished.outcome.interrupts  # type: ignore[union-attr]
    assert interrupt.tool_call_id == "c1"
    assert interrupt.message == "Restart needs approval."
    assert interrupt.response_schema is None


def test_hitl_tools_not_streamed_before_are_shown_with_the_form():
    request = {
        "type": "tool_approval_request",
        "tools": [{"id": "ap-1", "call_id": "c9", "name": "delete", "args": {"path": "/tmp"}}],
    }
    hitl = "https://kagent.dev/extensions/hitl/v1"
    _, events = translate(
        status(
            "TASK_STATE_INPUT_REQUIRED",
            [{"text": "Approval required"}],
            metadata={hitl: request},
            extensions=[hitl],
        )
    )

    starts = [e for e in events if isinstance(e, ToolCallStartEvent)]
    assert [(e.tool_call_id, e.tool_call_name) for e in starts] == [("c9", "delete")]
    assert text(events) == ""


def test_free_text_question():
    _, events = translate(status("TASK_STATE_INPUT_REQUIRED", [{"text": "Which namespace?"}]))

    finished = events[-1]
    assert isinstance(finished, RunFinishedEvent) and finished.outcome is not None
    [interrupt] = finished.outcome.interrupts  # type: ignore[union-attr]
    assert interrupt.message == "Which namespace?"
    assert list((interrupt.response_schema or {})["properties"]) == ["answer"]


def test_endings_that_are_errors():
    cases = {
        "TASK_STATE_FAILED": ("The agent's task failed: boom", "a2a_failed"),
        "TASK_STATE_REJECTED": ("The agent rejected the request: boom", "a2a_rejected"),
        "TASK_STATE_CANCELED": ("The agent's task was canceled: boom", "a2a_canceled"),
    }
    for state, expected in cases.items():
        _, events = translate(status(state, [{"text": "boom"}]))
        error = events[-1]
        assert isinstance(error, RunErrorEvent)
        assert (error.message, error.code) == expected
        assert text(events) == ""


def test_sign_in_link_from_an_adk_auth_request():
    auth = {
        "data": {
            "name": "adk_request_credential",
            "id": "x",
            "args": {
                "authConfig": {
                    "exchangedAuthCredential": {
                        "oauth2": {"authUri": "https://idp.example.test/authorize?client_id=k"}
                    }
                }
            },
        },
        "metadata": {"kagent_type": "function_call", "kagent_is_long_running": True},
    }
    _, events = translate(status("TASK_STATE_AUTH_REQUIRED", [auth]))

    error = events[-1]
    assert isinstance(error, RunErrorEvent) and error.code == "a2a_auth_required"
    assert "https://idp.example.test/authorize?client_id=k" in error.message


def test_a_message_reply_finishes_the_run():
    reply = response(
        {"message": {"messageId": "m1", "role": "ROLE_AGENT", "parts": [{"text": "Hi"}]}}
    )
    stream, events = translate(reply)

    assert stream.ended and text(events) == "Hi"
    assert isinstance(events[-1], RunFinishedEvent)


def test_a_stream_that_stops_while_working_has_not_ended():
    stream, events = translate(status("TASK_STATE_WORKING", [{"text": "Half"}]))

    assert not stream.ended
    assert not any(isinstance(e, (RunFinishedEvent, RunErrorEvent)) for e in events)


def test_a_snapshot_after_a_restart_repeats_nothing_already_shown():
    stream = TaskStream(thread_id=CTX, run_id="run-2")
    events = stream.feed(artifact("Counting "))
    snapshot = response(
        {
            "task": {
                "id": TASK,
                "contextId": CTX,
                "status": {"state": "TASK_STATE_WORKING"},
                "artifacts": [{"artifactId": "a1", "parts": [{"text": "Counting the pods"}]}],
            }
        }
    )
    events += stream.feed(snapshot)
    events += stream.feed(artifact(": 42.", append=True))
    events += stream.feed(status("TASK_STATE_COMPLETED"))
    events += stream.end()

    assert text(events) == "Counting the pods: 42."
