"""Approval forms, pure: JSON Schema or a legacy field list -> `FormField`s, and Slack's submitted
`state.values` -> typed values plus the errors to show on the form."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from renderers.common import FIELD_ACTION_ID, field_block_id
from renderers.limits import MAX_OPTION_VALUE
from renderers.view import FormField

FieldKind = Literal[
    "text", "textarea", "select", "multiselect", "boolean", "number", "date", "json"
]
MULTILINE_MIN_LENGTH = 200  # a string allowed to be longer than this gets a textarea

_LIST_KINDS: dict[str, FieldKind] = {
    "text": "text",
    "string": "text",
    "textarea": "textarea",
    "select": "select",
    "radio": "select",
    "multiselect": "multiselect",
    "boolean": "boolean",
    "bool": "boolean",
    "checkbox": "boolean",
    "number": "number",
    "integer": "number",
    "date": "date",
}
_INDEX_VALUE_RE = re.compile(r"^option:(\d+)$")


# --- JSON Schema ------------------------------------------------------------------------------


def fields_from_schema(schema: dict[str, Any]) -> list[FormField]:
    """The fields of a JSON Schema object, in property order. Unknown shapes become text."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    required = schema.get("required")
    required_names = set(required) if isinstance(required, list) else set()
    return [
        _field_from_property(str(name), _unwrap_nullable(prop), str(name) in required_names)
        for name, prop in properties.items()
    ]


def _unwrap_nullable(prop: Any) -> dict[str, Any]:
    """`anyOf: [X, {type: null}]` (as pydantic writes Optional[X]) -> X, merged with its title."""
    if not isinstance(prop, dict):
        return {}
    for key in ("anyOf", "oneOf"):
        variants = [v for v in prop.get(key) or [] if isinstance(v, dict)]
        real = [v for v in variants if v.get("type") != "null"]
        if len(real) == 1:
            outer = {k: v for k, v in prop.items() if k != key}
            return {**real[0], **outer}
    return prop


def _schema_type(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else ""


def _field_from_property(name: str, prop: dict[str, Any], required: bool) -> FormField:
    kind, options = _schema_kind(prop)
    return FormField(
        name=name,
        label=str(prop.get("title") or humanise(name)),
        kind=kind,
        options=options,
        default=prop.get("default"),
        required=required,
        description=str(prop.get("description") or ""),
        integer=_schema_type(prop) == "integer",
    )


def _schema_kind(prop: dict[str, Any]) -> tuple[FieldKind, list[str]]:
    kind = _schema_type(prop)
    enum = _enum_options(prop)
    items = prop.get("items")
    item_enum = _enum_options(_unwrap_nullable(items)) if isinstance(items, dict) else []
    if enum:
        return "select", enum
    if kind == "array" and item_enum:
        return "multiselect", item_enum
    if kind == "boolean":
        return "boolean", []
    if kind in ("number", "integer"):
        return "number", []
    if kind in ("object", "array"):
        return "json", []  # edited as JSON text
    if kind == "string" and prop.get("format") == "date":
        return "date", []
    if kind == "string" and _is_multiline(prop):
        return "textarea", []
    return "text", []


def _enum_options(prop: dict[str, Any]) -> list[str]:
    """`enum` values, or the `const`s of a `oneOf` (titled choices), as option strings."""
    if isinstance(prop.get("enum"), list):
        values = [v for v in prop["enum"] if v is not None]
    else:
        variants = prop.get("oneOf") or prop.get("anyOf") or []
        consts = [v.get("const") for v in variants if isinstance(v, dict)]
        values = consts if consts and all(c is not None for c in consts) else []
    return unique(option_text(v) for v in values)


def _is_multiline(prop: dict[str, Any]) -> bool:
    max_length = prop.get("maxLength")
    return (
        prop.get("format") == "textarea"
        or (isinstance(max_length, int) and max_length > MULTILINE_MIN_LENGTH)
        or prop.get("x-multiline") is True
        or prop.get("multiline") is True
    )


# --- legacy field lists -----------------------------------------------------------------------


def fields_from_list(fields: list[dict[str, Any]]) -> list[FormField]:
    """The legacy `[{name, type, options, default, required, label}]` form; nameless entries are
    skipped, unknown types become text."""
    entries = [entry for entry in fields if isinstance(entry, dict) and entry.get("name")]
    return [_field_from_entry(entry) for entry in entries]


def _field_from_entry(entry: dict[str, Any]) -> FormField:
    name = str(entry["name"])
    declared = str(entry.get("type") or "text").lower()
    kind: FieldKind = _LIST_KINDS.get(declared, "text")
    options = unique(_entry_option(o) for o in entry.get("options") or [])
    if kind in ("select", "multiselect") and not options:
        kind = "text"
    return FormField(
        name=name,
        label=str(entry.get("label") or entry.get("title") or humanise(name)),
        kind=kind,
        options=options if kind in ("select", "multiselect") else [],
        default=entry.get("default"),
        required=bool(entry.get("required", False)),
        description=str(entry.get("description") or entry.get("hint") or ""),
        integer=declared == "integer" or entry.get("integer") is True,
    )


def _entry_option(option: Any) -> str:
    """An option as sent: a plain value, or `{label, value}` (the value is what goes back)."""
    if isinstance(option, dict):
        return option_text(option.get("value", option.get("label", "")))
    return option_text(option)


# --- shared helpers ---------------------------------------------------------------------------


def humanise(name: str) -> str:
    """`max_replicas` / `maxReplicas` -> "Max replicas"."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    text = " ".join(words.split()).lower()
    return text[:1].upper() + text[1:] if text else name


def option_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def unique(values: Any) -> list[str]:
    """Non-empty strings, first occurrence kept (Slack rejects duplicate option values)."""
    return list(dict.fromkeys(v for v in values if v))


def option_value(index: int, option: str) -> str:
    """The value Slack carries for an option: the option itself, or its index when too long."""
    return option if len(option) <= MAX_OPTION_VALUE else f"option:{index}"


def option_from_value(value: str, options: list[str]) -> str | None:
    if value in options:
        return value
    match = _INDEX_VALUE_RE.match(value)
    if match and int(match.group(1)) < len(options):
        return options[int(match.group(1))]
    return None


# --- submitted values -------------------------------------------------------------------------


def read_form_values(
    state_values: dict[str, Any], fields: list[FormField]
) -> tuple[dict[str, Any], list[str]]:
    """Typed values keyed by field name (empty ones left out) and the errors to show."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    for form_field in fields:
        block = state_values.get(field_block_id(form_field.name)) or {}
        action = block.get(FIELD_ACTION_ID) or {}
        value, error = _read_value(action, form_field)
        if error:
            errors.append(error)
        elif value is not None:
            values[form_field.name] = value
        elif form_field.required:
            errors.append(f"{form_field.label} is required")
    return values, errors


def _read_value(action: dict[str, Any], form_field: FormField) -> tuple[Any, str | None]:
    """(value or None when empty, error or None)."""
    kind = form_field.kind
    if kind == "select":
        return _selected(action.get("selected_option"), form_field.options), None
    if kind == "multiselect":
        picked = [_selected(o, form_field.options) for o in action.get("selected_options") or []]
        chosen = [p for p in picked if p is not None]
        return (chosen or None), None
    if kind == "boolean":
        selected = _selected(action.get("selected_option"), ["true", "false"])
        return (None if selected is None else selected == "true"), None
    if kind == "date":
        return action.get("selected_date") or None, None
    text = action.get("value")
    if not isinstance(text, str) or not text.strip():
        return None, None
    if kind == "number":
        return _parse_number(text.strip(), form_field)
    return text, None


def _selected(option: Any, options: list[str]) -> str | None:
    if not isinstance(option, dict) or not isinstance(option.get("value"), str):
        return None
    return option_from_value(option["value"], options)


def _parse_number(text: str, form_field: FormField) -> tuple[int | float | None, str | None]:
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text), None
    try:
        number = float(text)
    except ValueError:
        return None, f"{form_field.label} must be a number"
    if not math.isfinite(number):
        return None, f"{form_field.label} must be a number"
    if form_field.integer and not number.is_integer():
        return None, f"{form_field.label} must be a whole number"
    return (int(number) if form_field.integer else number), None
