"""Reading a Web API request: its parameters however slack_sdk encoded them, and its token."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

# Parameters slack_sdk may send as JSON strings inside form bodies.
JSON_ENCODED_PARAMS = (
    "blocks",
    "metadata",
    "attachments",
    "view",
    "metadata",
    "chunks",
    "prompts",
    "loading_messages",
)


async def read_params(request: Request) -> dict[str, Any]:
    """Query string plus body, whichever way slack_sdk encoded it (JSON, form or multipart)."""
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if not body:
        return params
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ValueError("a JSON body must be an object")
        params.update(decoded)
    elif content_type.startswith("multipart/form-data"):
        form = await request.form()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    else:
        params.update(dict(parse_qsl(body.decode(), keep_blank_values=True)))
    return params


def json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        decoded = json.loads(raw or b"{}")
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def bearer_token(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[len("bearer ") :].strip() or None
    return None


def decode_json_params(params: dict[str, Any]) -> str | None:
    """Decode JSON-string parameters in place; Slack's error for the first that is not JSON."""
    for key in JSON_ENCODED_PARAMS:
        value = params.get(key)
        if not isinstance(value, str):
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            return "invalid_blocks_format" if key == "blocks" else "invalid_arguments"
    return None
