"""Approval forms: schema and legacy lists -> fields; Slack's submitted state -> typed values."""

from __future__ import annotations

from typing import Any

import pytest

from renderers import get_renderer
from renderers.forms import fields_from_list, fields_from_schema, humanise, read_form_values
from renderers.view import FormField, InterruptView, ThreadView

# --- JSON Schema ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prop", "kind", "options", "integer"),
    [
        ({"type": "string"}, "text", [], False),
        ({"type": "string", "format": "textarea"}, "textarea", [], False),
        ({"type": "string", "maxLength": 500}, "textarea", [], False),
        ({"type": "string", "maxLength": 200}, "text", [], False),
        ({"type": "string", "x-multiline": True}, "textarea", [], False),
        ({"type": "string", "multiline": True}, "textarea", [], False),
        ({"type": "string", "enum": ["a", "b"]}, "select", ["a", "b"], False),
        ({"enum": [3, 5, 8]}, "select", ["3", "5", "8"], False),
        ({"oneOf": [{"const": "x", "title": "X"}, {"const": "y"}]}, "select", ["x", "y"], False),
        ({"type": "array", "items": {"enum": ["a", "b"]}}, "multiselect", ["a", "b"], False),
        ({"type": "boolean"}, "boolean", [], False),
        ({"type": "integer"}, "number", [], True),
        ({"type": "number"}, "number", [], False),
        ({"type": "string", "format": "date"}, "date", [], False),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, "number", [], True),
        ({"type": ["boolean", "null"]}, "boolean", [], False),
        ({"type": "object", "properties": {}}, "json", [], False),
        ({"type": "array", "items": {"type": "string"}}, "json", [], False),
        ({"$ref": "#/defs/x"}, "text", [], False),
        ("not a schema", "text", [], False),
    ],
)
def test_schema_property_kinds(prop: Any, kind: str, options: list[str], integer: bool) -> None:
    [field] = fields_from_schema({"type": "object", "properties": {"value": prop}})
    assert (field.kind, field.options, field.integer) == (kind, options, integer)


def test_schema_labels_defaults_descriptions_and_required() -> None:
    schema = {
        "type": "object",
        "properties": {
            "max_replicas": {"type": "integer", "default": 5, "description": "How many"},
            "reason": {"type": "string", "title": "Why?"},
        },
        "required": ["max_replicas"],
    }
    assert fields_from_schema(schema) == [
        FormField(
            "max_replicas",
            "Max replicas",
            "number",
            default=5,
            required=True,
            description="How many",
            integer=True,
        ),
        FormField("reason", "Why?", "text"),
    ]


def test_schema_without_properties_has_no_fields() -> None:
    assert fields_from_schema({"type": "string"}) == []
    assert fields_from_schema({}) == []


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("replicas", "Replicas"),
        ("max_replicas", "Max replicas"),
        ("maxReplicas", "Max replicas"),
        ("dry-run", "Dry run"),
    ],
)
def test_humanise(name: str, label: str) -> None:
    assert humanise(name) == label


# --- legacy field lists --------------------------------------------------------------------------


def test_legacy_field_list_as_langgraph_sends_it() -> None:
    fields = fields_from_list(
        [
            {"name": "replicas", "type": "select", "options": ["3", "5", "8"], "default": "5"},
            {"name": "comment", "type": "textarea"},
        ]
    )
    assert fields == [
        FormField("replicas", "Replicas", "select", options=["3", "5", "8"], default="5"),
        FormField("comment", "Comment", "textarea"),
    ]


def test_legacy_field_list_variants() -> None:
    fields = fields_from_list(
        [
            {
                "name": "env",
                "type": "select",
                "options": [{"label": "Production", "value": "prod"}, "dev", "dev"],
            },
            {
                "name": "tags",
                "type": "multiselect",
                "options": ["a", "b"],
                "default": ["a"],
                "required": True,
            },
            {"name": "ok", "type": "boolean", "label": "Sure?"},
            {"name": "n", "type": "integer"},
            {"name": "when", "type": "date"},
            {"name": "odd", "type": "colour"},
            {"name": "empty", "type": "select"},
            {"type": "text"},
        ]
    )
    by_name = {f.name: f for f in fields}
    assert list(by_name) == ["env", "tags", "ok", "n", "when", "odd", "empty"]
    assert by_name["env"].options == ["prod", "dev"]
    assert by_name["tags"].kind == "multiselect" and by_name["tags"].required
    assert by_name["ok"].kind == "boolean" and by_name["ok"].label == "Sure?"
    assert by_name["n"].kind == "number" and by_name["n"].integer
    assert by_name["when"].kind == "date"
    assert by_name["odd"].kind == "text"
    assert by_name["empty"].kind == "text"  # a select with nothing to choose is a text box


# --- submitted values ----------------------------------------------------------------------------

FIELDS = [
    FormField("name", "Name", "text", required=True),
    FormField("why", "Why", "textarea"),
    FormField("size", "Size", "select", options=["s", "m"]),
    FormField("zones", "Zones", "multiselect", options=["a", "b", "c"]),
    FormField("force", "Force", "boolean"),
    FormField("count", "Count", "number", integer=True),
    FormField("ratio", "Ratio", "number"),
    FormField("when", "When", "date"),
]


def option(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": value}, "value": value}


def state(**actions: dict[str, Any]) -> dict[str, Any]:
    return {f"field:{name}": {"value": action} for name, action in actions.items()}


def test_read_form_values_types_every_kind() -> None:
    values, errors = read_form_values(
        state(
            name={"type": "plain_text_input", "value": "  web  "},
            why={"type": "plain_text_input", "value": "line 1\nline 2"},
            size={"type": "static_select", "selected_option": option("m")},
            zones={"type": "multi_static_select", "selected_options": [option("a"), option("c")]},
            force={"type": "radio_buttons", "selected_option": option("false")},
            count={"type": "number_input", "value": "12"},
            ratio={"type": "number_input", "value": "0.25"},
            when={"type": "datepicker", "selected_date": "2025-02-01"},
        ),
        FIELDS,
    )
    assert errors == []
    assert values == {
        "name": "  web  ",  # passed through as typed
        "why": "line 1\nline 2",
        "size": "m",
        "zones": ["a", "c"],
        "force": False,
        "count": 12,
        "ratio": 0.25,
        "when": "2025-02-01",
    }
    assert isinstance(values["count"], int) and isinstance(values["ratio"], float)


def test_read_form_values_leaves_out_empty_and_reports_required() -> None:
    values, errors = read_form_values(
        state(
            name={"type": "plain_text_input", "value": "   "},
            size={"type": "static_select", "selected_option": None},
            zones={"type": "multi_static_select", "selected_options": []},
            when={"type": "datepicker", "selected_date": None},
        ),
        FIELDS,
    )
    assert values == {}
    assert errors == ["Name is required"]


@pytest.mark.parametrize(
    ("typed", "field", "expected", "error"),
    [
        ("3", FormField("replicas", "replicas", "number", integer=True), 3, None),
        ("-4", FormField("n", "n", "number"), -4, None),
        ("1e3", FormField("n", "n", "number", integer=True), 1000, None),
        (
            "3.5",
            FormField("replicas", "replicas", "number", integer=True),
            None,
            "replicas must be a whole number",
        ),
        ("many", FormField("count", "count", "number"), None, "count must be a number"),
        ("nan", FormField("count", "count", "number"), None, "count must be a number"),
    ],
)
def test_read_form_values_numbers(
    typed: str, field: FormField, expected: Any, error: str | None
) -> None:
    values, errors = read_form_values(
        state(**{field.name: {"type": "number_input", "value": typed}}), [field]
    )
    assert values.get(field.name) == expected
    assert errors == ([error] if error else [])


def test_read_form_values_ignores_options_it_never_offered() -> None:
    field = FormField("size", "Size", "select", options=["s", "m"], required=True)
    values, errors = read_form_values(state(size={"selected_option": option("xl")}), [field])
    assert values == {} and errors == ["Size is required"]


def test_missing_blocks_count_as_empty() -> None:
    values, errors = read_form_values(
        {}, [FormField("a", "A", "text"), FormField("b", "B", "date", required=True)]
    )
    assert values == {} and errors == ["B is required"]


def slack_submission(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """What Slack would send back for a form nobody touched: each input's initial value."""
    values: dict[str, Any] = {}
    for block in blocks:
        if block["type"] != "input":
            continue
        element = block["element"]
        action: dict[str, Any] = {"type": element["type"]}
        if "initial_value" in element:
            action["value"] = element["initial_value"]
        if "initial_option" in element:
            action["selected_option"] = element["initial_option"]
        if "initial_options" in element:
            action["selected_options"] = element["initial_options"]
        if "initial_date" in element:
            action["selected_date"] = element["initial_date"]
        values[block["block_id"]] = {element["action_id"]: action}
    return values


def test_a_rendered_form_submitted_as_is_gives_back_its_defaults() -> None:
    long_option = "option " + "x" * 300  # longer than Slack's 150-char option value
    fields = [
        FormField("name", "Name", "text", default="web"),
        FormField("size", "Size", "select", options=["s", long_option], default=long_option),
        FormField("zones", "Zones", "multiselect", options=["a", "b"], default=["b"]),
        FormField("force", "Force", "boolean", default=True),
        FormField("count", "Count", "number", default=3, integer=True),
        FormField("ratio", "Ratio", "number", default=0.5),
        FormField("when", "When", "date", default="2025-01-31"),
    ]
    view = ThreadView(
        "c", "awaiting_approval", interrupts=[InterruptView(id="i", message="?", fields=fields)]
    )
    [message] = get_renderer("awaiting_approval")(view)
    values, errors = read_form_values(slack_submission(message.blocks), fields)
    assert errors == []
    assert values == {
        "name": "web",
        "size": long_option,
        "zones": ["b"],
        "force": True,
        "count": 3,
        "ratio": 0.5,
        "when": "2025-01-31",
    }
