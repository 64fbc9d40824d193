"""The 👎 modal: what went wrong (the usual reasons) and an optional comment."""

from __future__ import annotations

from typing import Any

from renderers.common import FEEDBACK_CALLBACK_ID, FIELD_ACTION_ID, Block

REASONS: dict[str, str] = {
    "wrong": "Wrong answer",
    "more_detail": "Needs more detail",
    "too_long": "Too long",
    "other": "Other",
}
REASONS_BLOCK_ID = "reasons"
COMMENT_BLOCK_ID = "comment"
MAX_COMMENT = 3000


def feedback_modal(
    run_id: str, reasons: list[str] | None = None, comment: str | None = None
) -> Block:
    """The modal `views.open` shows; `reasons` and `comment` prefill an earlier answer."""
    options = [_option(key, label) for key, label in REASONS.items()]
    checkboxes: dict[str, Any] = {
        "type": "checkboxes",
        "action_id": FIELD_ACTION_ID,
        "options": options,
    }
    chosen = [o for o in options if o["value"] in (reasons or [])]
    if chosen:
        checkboxes["initial_options"] = chosen
    comment_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": FIELD_ACTION_ID,
        "multiline": True,
        "max_length": MAX_COMMENT,
        "placeholder": {"type": "plain_text", "text": "What should the answer have said?"},
    }
    if comment:
        comment_input["initial_value"] = comment[:MAX_COMMENT]
    return {
        "type": "modal",
        "callback_id": FEEDBACK_CALLBACK_ID,
        "private_metadata": run_id,
        "title": {"type": "plain_text", "text": "Feedback"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Skip"},
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "Your 👎 is recorded. What was wrong with the answer?",
                },
            },
            {
                "type": "input",
                "block_id": REASONS_BLOCK_ID,
                "optional": True,
                "label": {"type": "plain_text", "text": "Reasons"},
                "element": checkboxes,
            },
            {
                "type": "input",
                "block_id": COMMENT_BLOCK_ID,
                "optional": True,
                "label": {"type": "plain_text", "text": "Comment"},
                "element": comment_input,
            },
        ],
    }


def read_feedback(state_values: dict[str, Any]) -> tuple[list[str], str | None, dict[str, str]]:
    """Reasons and comment from a submitted modal, and the errors to show per block."""
    errors: dict[str, str] = {}
    picked = (state_values.get(REASONS_BLOCK_ID) or {}).get(FIELD_ACTION_ID) or {}
    reasons = [str(o.get("value")) for o in picked.get("selected_options") or []]
    unknown = [r for r in reasons if r not in REASONS]
    if unknown:
        errors[REASONS_BLOCK_ID] = f"Unknown reason {unknown[0]!r}; pick from the list."
    typed = (state_values.get(COMMENT_BLOCK_ID) or {}).get(FIELD_ACTION_ID) or {}
    comment = (typed.get("value") or "").strip() or None
    if comment and len(comment) > MAX_COMMENT:
        errors[COMMENT_BLOCK_ID] = f"Please keep the comment under {MAX_COMMENT} characters."
    if not reasons and not comment and not errors:
        errors[REASONS_BLOCK_ID] = "Pick a reason or write a comment (or press Skip)."
    return reasons, comment, errors


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": label}, "value": value}
