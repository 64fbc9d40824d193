"""Checking what a call carries the way Slack does: text and markdown lengths, Block Kit blocks,
views, required fields."""

from __future__ import annotations

from typing import Any

from orchestrator.sandbox.block_kit_rules import validate_blocks, validate_view
from orchestrator.sandbox.slack_emulator.records import SlackApiFailure

TEXT_MAX = 40_000
MARKDOWN_TEXT_MAX = 12_000


def content(params: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]] | None]:
    """The (text, blocks) a post or update carries, validated like Slack validates them."""
    text, blocks, markdown = params.get("text"), params.get("blocks"), params.get("markdown_text")
    if markdown is not None:
        if text is not None or blocks is not None:
            raise SlackApiFailure("markdown_text_conflict")
        markdown = str(markdown)
        if len(markdown) > MARKDOWN_TEXT_MAX:
            raise SlackApiFailure("msg_too_long")
        return markdown, [{"type": "markdown", "text": markdown}]
    if text is not None:
        text = str(text)
        if len(text) > TEXT_MAX:
            raise SlackApiFailure("msg_too_long")
    if blocks is not None:
        check_blocks(blocks)
    return text, blocks


def check_blocks(blocks: Any) -> None:
    errors = validate_blocks(blocks)
    if errors:
        raise SlackApiFailure(
            "invalid_blocks",
            errors=errors,
            response_metadata={"messages": [f"[ERROR] {error}" for error in errors]},
        )


def checked_view(view: Any) -> dict[str, Any]:
    if view is None:
        raise missing_field("view")
    errors = validate_view(view)
    if errors:
        raise SlackApiFailure(
            "invalid_arguments",
            response_metadata={"messages": [f"[ERROR] {error}" for error in errors]},
        )
    return dict(view)


def missing_field(name: str) -> SlackApiFailure:
    return SlackApiFailure(
        "invalid_arguments",
        response_metadata={"messages": [f"[ERROR] missing required field: {name}"]},
    )
