"""Answers to paused A2A tasks, in each server's shape; cards and new turns (all pure)."""

from __future__ import annotations

from typing import Any

import pytest
from a2a.types import AgentCard, Message
from ag_ui.core import ResumeEntry, RunAgentInput, UserMessage
from google.protobuf.json_format import MessageToDict, ParseDict

from orchestrator.agent.a2a.answers import DECLINED, UnknownAnswer, answer_message
from orchestrator.agent.a2a.card import called_card, facts, problems
from orchestrator.agent.a2a.questions import HITL_EXTENSION, Pending, asked
from orchestrator.agent.a2a.request import NothingToSend, user_message


def entry(pending: Pending, status: str = "resolved", payload: Any = None) -> ResumeEntry:
    return ResumeEntry(interrupt_id=pending.interrupt_id, status=status, payload=payload)


def sent(resume: list[ResumeEntry]) -> dict[str, Any]:
    return MessageToDict(answer_message(resume, "ctx-1"))


def data(resume: list[ResumeEntry]) -> Any:
    [part] = sent(resume)["parts"]
    return part["data"]


def test_interrupt_ids_round_trip_odd_characters():
    pending = Pending("adk", "call:1/é", "task:9", 2)

    assert Pending.parse(pending.interrupt_id) == pending
    assert Pending.parse("langgraph-interrupt-1") is None
    assert Pending.parse("a2a:nope:x:y:0") is None


def test_kagent_approve_and_reject_on_the_paused_task():
    call = Pending("adk", "c1", "task-1")

    assert data([entry(call, payload={"approved": True})]) == {"decision_type": "approve"}
    assert data([entry(call, "cancelled")]) == {"decision_type": "reject"}
    rejected = entry(call, payload={"approved": False, "reason": "not today"})
    assert data([rejected]) == {"decision_type": "reject", "rejection_reason": "not today"}
    message = sent([rejected])
    assert (message["taskId"], message["contextId"], message["role"]) == (
        "task-1",
        "ctx-1",
        "ROLE_USER",
    )


def test_kagent_several_calls_are_one_batch():
    first, second = Pending("adk", "c1", "task-1"), Pending("adk", "c2", "task-1")

    answer = data([entry(first), entry(second, payload={"approved": False, "comment": "no"})])

    assert answer == {
        "decision_type": "batch",
        "decisions": {"c1": "approve", "c2": "reject"},
        "rejection_reasons": {"c2": "no"},
    }


def test_kagent_ask_user_answers():
    question = Pending("adk_ask", "confirm-1", "task-1", 3)
    values = {"answer_1": "prod", "answer_2": ["a", "b"]}

    assert data([entry(question, payload=values)]) == {
        "decision_type": "approve",
        "ask_user_answers": [{"answer": ["prod"]}, {"answer": ["a", "b"]}, {"answer": []}],
    }


def test_hitl_answers_declare_the_extension():
    tools = [Pending("tool", "ap-1", "task-1"), Pending("tool", "ap-2", "task-1")]

    message = sent([entry(tools[0]), entry(tools[1], "cancelled")])

    assert message["extensions"] == [HITL_EXTENSION]
    assert message["metadata"][HITL_EXTENSION] == {
        "type": "tool_approval_response",
        "approvals": [{"id": "ap-1", "approved": True}, {"id": "ap-2", "approved": False}],
    }
    ask = sent([entry(Pending("ask", "q-1", "task-1", 1), payload={"answer_1": "dev"})])
    assert ask["metadata"][HITL_EXTENSION] == {
        "type": "ask_user_response",
        "id": "q-1",
        "answers": [{"answer": ["dev"]}],
    }


def test_free_text_answers():
    question = Pending("text", "input", "task-1")

    assert sent([entry(question, payload={"answer": "kube-system"})])["parts"] == [
        {"text": "kube-system"}
    ]
    assert sent([entry(question, "cancelled")])["parts"] == [{"text": DECLINED}]


def test_answers_the_adapter_did_not_ask_for_are_refused():
    with pytest.raises(UnknownAnswer):
        answer_message([ResumeEntry(interrupt_id="other", status="resolved")], "ctx-1")
    one, other = Pending("adk", "c1", "task-1"), Pending("adk", "c2", "task-2")
    with pytest.raises(UnknownAnswer):
        answer_message([entry(one), entry(other)], "ctx-1")


def test_hitl_ask_user_request_becomes_a_form():
    request = {
        "type": "ask_user_request",
        "id": "q-1",
        "questions": [
            {"question": "Env?", "choices": ["dev", "prod"], "multiple": False},
            {"question": "Checks?", "choices": ["pods", "nodes"], "multiple": True},
            {"question": "  ", "choices": []},
        ],
    }
    message = ParseDict(
        {"messageId": "m", "parts": [{"text": "Questions"}], "metadata": {HITL_EXTENSION: request}},
        Message(),
    )

    [interrupt] = asked(message, "task-1").interrupts

    assert Pending.parse(interrupt.id) == Pending("ask", "q-1", "task-1", 2)
    assert (interrupt.response_schema or {})["required"] == ["answer_1", "answer_2"]


def card(body: dict[str, Any]) -> AgentCard:
    return ParseDict(body, AgentCard(), ignore_unknown_fields=True)


def test_a_card_naming_an_in_cluster_address_is_called_where_configured():
    kagent = card(
        {
            "name": "k8s-agent",
            "version": "0.10.4",
            "supportedInterfaces": [
                {
                    "url": "http://k8s-agent.kagent:8080/",
                    "protocolBinding": "JSONRPC",
                    "protocolVersion": "0.3.0",
                }
            ],
            "capabilities": {"streaming": True},
        }
    )
    configured = "https://kagent.example.test/api/a2a/kagent/k8s-agent"

    called = called_card(kagent, configured)

    assert facts(called).endpoint == configured
    assert facts(kagent).summary() == "k8s-agent 0.10.4, A2A 0.3.0, streaming"
    assert problems(kagent) == []


def test_card_problems_are_said():
    grpc_only = card(
        {
            "name": "x",
            "supportedInterfaces": [{"url": "http://h/", "protocolBinding": "GRPC"}],
            "capabilities": {"extensions": [{"uri": HITL_EXTENSION}]},
        }
    )

    assert facts(grpc_only).hitl
    assert problems(grpc_only) == [
        "The card offers no JSON-RPC interface (it offers: GRPC).",
        "The card does not announce streaming: answers arrive only when the task ends.",
    ]


def test_a_new_turn_sends_what_people_said_since_the_agent_answered():
    run = RunAgentInput(
        thread_id="ctx-1",
        run_id="r",
        messages=[
            UserMessage(id="1", content="old", name="U1"),
            {"id": "2", "role": "assistant", "content": "answer"},
            UserMessage(id="3", content="first", name="U1"),
            UserMessage(id="4", content="second", name="U2"),
        ],
        forwarded_props={"source": "slack", "slack": {"channel": "C1"}},
    )

    message = MessageToDict(user_message(run))

    assert message["contextId"] == "ctx-1"
    assert message["parts"] == [{"text": "U1: first"}, {"text": "U2: second"}]
    assert message["metadata"] == {"source": "slack", "slack": {"channel": "C1"}}
    with pytest.raises(NothingToSend):
        user_message(RunAgentInput(thread_id="t", run_id="r", messages=[]))
