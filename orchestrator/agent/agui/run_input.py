"""The JSON body of an AG-UI run."""

from __future__ import annotations

from typing import Any

from ag_ui.core import RunAgentInput


def run_input_payload(run_input: RunAgentInput) -> dict[str, Any]:
    """The JSON body of a run: camelCase, Nones left out, but tools/context/forwardedProps always
    present (older servers reject a run without them)."""
    payload = run_input.model_dump(mode="json", by_alias=True, exclude_none=True)
    payload.setdefault("messages", [])
    payload.setdefault("tools", [])
    payload.setdefault("context", [])
    payload.setdefault("forwardedProps", {})
    return payload
