"""Answers to approvals, pure: what the buttons and the modal answer, typing, payloads."""

from __future__ import annotations

import json
import subprocess
import sys

from orchestrator.core.answers import (
    errors_of,
    payload_for,
    shape_of,
    typed_values,
    visible_schema,
)
from orchestrator.core.dialects import CONFIRMATION_TOOLS, confirmation_of, subject_of

PYDANTIC_AI = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean"},
        "editedArgs": {"type": "object"},
        "reason": {"type": "string"},
    },
    "required": ["approved"],
}
AGENT_FRAMEWORK = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean"},
        "accepted": {"type": "boolean"},
        "pod": {"type": "string"},
        "namespace": {"type": "string"},
        "editedArgs": {
            "type": "object",
            "properties": {"pod": {"type": "string"}, "namespace": {"type": "string"}},
            "required": ["pod", "namespace"],
            "additionalProperties": False,
        },
    },
    "anyOf": [{"required": ["approved"]}, {"required": ["accepted"]}],
    "additionalProperties": False,
}
ARGS = json.dumps({"pod": "web-7", "namespace": "prod"})
SCALE = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "enum": [3, 5, 8]},
        "zones": {"type": "array", "items": {"enum": [1, 2, 3]}},
        "ratio": {"type": "number"},
        "dry_run": {"type": "boolean"},
        "labels": {"type": "object"},
    },
    "required": ["replicas"],
}


def test_the_decision_boolean_and_edited_arguments_are_not_fields() -> None:
    shape = shape_of(PYDANTIC_AI, ARGS)
    assert (shape.decision_key, shape.edit_key) == ("approved", "editedArgs")
    assert list((visible_schema(shape) or {})["properties"]) == ["reason"]


def test_argument_mirrors_are_hidden_where_edited_arguments_carry_edits() -> None:
    shape = shape_of(AGENT_FRAMEWORK, ARGS)
    assert shape.decision_key == "approved"  # the first of the alternatives, never both
    assert (visible_schema(shape) or {})["properties"] == {}


def test_a_schema_without_approval_booleans_keeps_its_fields() -> None:
    shape = shape_of(SCALE)
    assert (shape.decision_key, shape.edit_key) == (None, None)
    assert set((visible_schema(shape) or {})["properties"]) == set(SCALE["properties"])


def test_values_are_typed_as_the_schema_says() -> None:
    values = {
        "replicas": "8",
        "zones": ["1", "3"],
        "ratio": "0.5",
        "dry_run": "true",
        "labels": '{"team": "web"}',
    }
    typed, errors = typed_values(values, SCALE, {})
    assert errors == []
    assert typed == {
        "replicas": 8,
        "zones": [1, 3],
        "ratio": 0.5,
        "dry_run": True,
        "labels": {"team": "web"},
    }
    assert errors_of(typed, SCALE) == []


def test_text_that_is_not_json_in_an_object_field_is_an_error() -> None:
    _typed, errors = typed_values({"labels": "{team: web"}, SCALE, {"labels": "Labels"})
    assert errors == ["Labels must be JSON"]


def test_approve_reject_and_edit_payloads_validate() -> None:
    shape = shape_of(PYDANTIC_AI, ARGS)
    approve = payload_for(shape, approved=True, values={})
    reject = payload_for(shape, approved=False, values={"reason": "freeze"})
    edited = payload_for(
        shape, approved=True, values={}, edited_args={"pod": "web-7", "namespace": "dev"}
    )
    assert approve == {"approved": True}
    assert reject == {"approved": False, "reason": "freeze"}
    assert edited == {"approved": True, "editedArgs": {"pod": "web-7", "namespace": "dev"}}
    assert [errors_of(p, PYDANTIC_AI) for p in (approve, reject, edited)] == [[], [], []]


def test_edited_arguments_the_schema_refuses_are_reported() -> None:
    shape = shape_of(AGENT_FRAMEWORK, ARGS)
    payload = payload_for(shape, approved=True, values={}, edited_args={"pod": "web-7"})
    assert errors_of(payload, AGENT_FRAMEWORK) == ["editedArgs: 'namespace' is a required property"]


def test_without_a_decision_boolean_an_approval_is_the_values() -> None:
    shape = shape_of(SCALE)
    assert payload_for(shape, approved=True, values={"replicas": 5}) == {"replicas": 5}
    rejection = payload_for(shape, approved=False, values={})
    assert rejection == {"approved": False}
    assert errors_of(rejection, SCALE) == ["'replicas' is a required property"]
    assert payload_for(shape_of(None), approved=True, values={}) == {"approved": True}


def test_an_empty_approval_falls_back_to_nothing_when_the_schema_allows_no_extra() -> None:
    closed = {"type": "object", "properties": {"note": {"type": "string"}}}
    closed["additionalProperties"] = False
    assert payload_for(shape_of(closed), approved=True, values={}) == {}


def test_a_confirmation_tool_names_the_call_it_asks_about() -> None:
    tool = confirmation_of("adk_request_confirmation")
    assert tool is CONFIRMATION_TOOLS["adk_request_confirmation"]
    args = json.dumps(
        {
            "originalFunctionCall": {"id": "c1", "name": "restart_pod", "args": {"pod": "web-7"}},
            "toolConfirmation": {"hint": "ok?", "confirmed": False},
        }
    )
    subject = subject_of(tool, args)
    assert (subject.name, json.loads(subject.args or "")) == ("restart_pod", {"pod": "web-7"})
    shape = shape_of(tool.response_schema)
    assert payload_for(shape, approved=True, values={}) == {"confirmed": True}
    assert confirmation_of("restart_pod") is None


def test_the_service_loads_jsonschema_only_when_an_answer_is_checked() -> None:
    script = (
        "import sys\n"
        "import orchestrator.service.cli, orchestrator.service.runtime\n"
        "from orchestrator.core.answers import errors_of\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'jsonschema', 'referencing'}))\n"
        "print(errors_of({'approved': 'yes'}, {'properties': {'approved': {'type': 'boolean'}}}))\n"
        "print('jsonschema' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines() == [
        "[]",
        "[\"approved: 'yes' is not of type 'boolean'\"]",
        "True",
    ]
