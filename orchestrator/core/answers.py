"""The answer to an approval, pure: which of the schema's properties the buttons and the
"Edit arguments" modal answer, the form values typed as the schema says, and the payload,
validated against the interrupt's `responseSchema` before anything is sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.core.dialects import DECISION_KEYS, DEFAULT_DECISION_KEY, EDITED_ARGS_KEYS

if TYPE_CHECKING:
    import jsonschema


@dataclass(frozen=True, slots=True)
class AnswerShape:
    """How a schema is answered. `decision_key` is the boolean the buttons set (None: the schema
    has none), `edit_key` the object replacing the tool's arguments (None: no editing), `hidden`
    the properties not shown as form fields."""

    schema: dict[str, Any] | None
    decision_key: str | None
    edit_key: str | None
    hidden: frozenset[str]


def properties_of(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    return dict(props) if isinstance(props, Mapping) else {}


def _required(schema: Mapping[str, Any] | None) -> list[str]:
    """Required names, including those one branch of a top-level `anyOf`/`oneOf` requires."""
    if not isinstance(schema, Mapping):
        return []
    names = [n for n in schema.get("required") or [] if isinstance(n, str)]
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key) or []:
            if isinstance(branch, Mapping):
                names.extend(n for n in branch.get("required") or [] if isinstance(n, str))
    return names


def _is_type(prop: Any, kind: str) -> bool:
    if not isinstance(prop, Mapping):
        return False
    declared = prop.get("type")
    return declared == kind or (isinstance(declared, list) and kind in declared)


def shape_of(schema: dict[str, Any] | None, tool_args: str | None = None) -> AnswerShape:
    props = properties_of(schema)
    decisions = [k for k in DECISION_KEYS if _is_type(props.get(k), "boolean")]
    required = _required(schema)
    decision = next((k for k in decisions if k in required), decisions[0] if decisions else None)
    edit = next((k for k in EDITED_ARGS_KEYS if _is_type(props.get(k), "object")), None)
    hidden = set(decisions)
    if edit is not None:
        hidden.add(edit)
        hidden.update(n for n in _argument_names(tool_args, props.get(edit)) if n in props)
    return AnswerShape(schema, decision, edit, frozenset(hidden))


def _argument_names(tool_args: str | None, edit_schema: Any) -> set[str]:
    names = set(properties_of(edit_schema))
    parsed = parse_object(tool_args or "")
    if parsed is not None:
        names.update(parsed)
    return names


def visible_schema(shape: AnswerShape) -> dict[str, Any] | None:
    """The schema the form shows: without the properties the buttons and the modal answer."""
    if shape.schema is None:
        return None
    props = {k: v for k, v in properties_of(shape.schema).items() if k not in shape.hidden}
    required = [n for n in shape.schema.get("required") or [] if n in props]
    return {**shape.schema, "properties": props, "required": required}


def parse_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- typing form values ---------------------------------------------------------------------


def typed_values(
    values: Mapping[str, Any], schema: Mapping[str, Any] | None, labels: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """Form values (options and text as Slack sends them) typed as each property says."""
    props = properties_of(schema)
    typed: dict[str, Any] = {}
    errors: list[str] = []
    for name, value in values.items():
        result, error = _typed(value, props.get(name))
        if error:
            errors.append(f"{labels.get(name, name)} {error}")
        else:
            typed[name] = result
    return typed, errors


def _typed(value: Any, prop: Any) -> tuple[Any, str | None]:
    if not isinstance(prop, Mapping):
        return value, None
    prop = _unwrap(prop)
    if isinstance(value, list):
        items = prop.get("items")
        converted = [_typed(item, items) for item in value]
        failed = next((e for _, e in converted if e), None)
        return [v for v, _ in converted], failed
    enum = _enum_values(prop)
    if enum and isinstance(value, str):
        match = next((v for v in enum if _option_text(v) == value), None)
        return (match, None) if match is not None or value in enum else (value, None)
    if isinstance(value, str) and (_is_type(prop, "object") or _is_type(prop, "array")):
        try:
            return json.loads(value), None
        except ValueError:
            return value, "must be JSON"
    if isinstance(value, str) and (_is_type(prop, "integer") or _is_type(prop, "number")):
        return _number(value, integer=_is_type(prop, "integer") and not _is_type(prop, "number"))
    if isinstance(value, int | float) and not isinstance(value, bool) and _is_type(prop, "string"):
        return _option_text(value), None
    if isinstance(value, str) and _is_type(prop, "boolean") and value in ("true", "false"):
        return value == "true", None
    return value, None


def _unwrap(prop: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("anyOf", "oneOf"):
        variants = [v for v in prop.get(key) or [] if isinstance(v, Mapping)]
        real = [v for v in variants if v.get("type") != "null"]
        if len(real) == 1 and "const" not in real[0]:
            return {**real[0], **{k: v for k, v in prop.items() if k != key}}
    return prop


def _enum_values(prop: Mapping[str, Any]) -> list[Any]:
    if isinstance(prop.get("enum"), list):
        return [v for v in prop["enum"] if v is not None]
    variants = prop.get("oneOf") or prop.get("anyOf") or []
    consts = [v.get("const") for v in variants if isinstance(v, Mapping) and "const" in v]
    return [c for c in consts if c is not None]


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _number(text: str, *, integer: bool) -> tuple[Any, str | None]:
    try:
        number = float(text)
    except ValueError:
        return text, "must be a number"
    if not math.isfinite(number):
        return text, "must be a number"
    if number.is_integer() and ("." not in text or integer):
        return int(number), None
    if integer:
        return text, "must be a whole number"
    return number, None


# --- the payload ----------------------------------------------------------------------------


def payload_for(
    shape: AnswerShape,
    *,
    approved: bool,
    values: Mapping[str, Any],
    edited_args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What goes back: the decision in its boolean, the filled fields, the edited arguments.

    Without a decision boolean in the schema, an approval is the values themselves (or
    `{"approved": true}` when there are none and the schema allows it)."""
    key = shape.decision_key
    if key is not None:
        payload: dict[str, Any] = {key: approved, **values}
    elif approved:
        payload = dict(values)
        if not payload:
            fallback = {DEFAULT_DECISION_KEY: True}
            payload = fallback if not errors_of(fallback, shape.schema) else {}
    else:
        payload = {DEFAULT_DECISION_KEY: False, **values}
    if approved and edited_args is not None and shape.edit_key is not None:
        payload[shape.edit_key] = edited_args
    return payload


def errors_of(payload: Any, schema: Mapping[str, Any] | None) -> list[str]:
    """Why `payload` does not validate against `schema` (nothing when it does, or no schema)."""
    if not isinstance(schema, Mapping):
        return []
    # Imported on the first answer to check: jsonschema and what it loads (`referencing`,
    # `rpds`) are about 8 MB of memory and 30 ms of every start, for a process that may never
    # see a form with a schema.
    import jsonschema

    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError:
        return []  # a schema that is itself invalid cannot be checked against; send as is
    validator = validator_class(schema)
    found = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    return [_describe(error) for error in found]


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(part) for part in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message
