"""Slack's Block Kit limits, and the helpers that keep rendered messages within them.

Everything here is pure: `truncate` shortens with a visible marker, `split_text` cuts a long mrkdwn
answer into section-sized chunks (closing and reopening code fences it cuts through), and
`pack_messages` puts blocks into as few messages as the limits allow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from renderers.view import SlackMessage

MAX_BLOCKS = 50  # blocks per message
MAX_SECTION_TEXT = 3000  # a section's text, and any other text object
MAX_MESSAGE_MARKDOWN = 12000  # total visible text we allow in one message's blocks
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_BUTTON_VALUE = 2000
MAX_INPUT_LABEL = 2000
MAX_INPUT_HINT = 2000
MAX_INPUT_VALUE = 3000  # plain_text_input initial_value
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_OPTIONS = 100
MAX_MESSAGE_TEXT = 40000  # the message's top-level `text`
MAX_BLOCK_ID = 255
MAX_ACTION_ID = 255

FENCE = "```"
CONTINUED = "_(continued)_"

_PARTIAL_ENTITY_RE = re.compile(r"&[a-z]{0,3}$")


def truncate(text: str, limit: int, marker: str = "…") -> str:
    """`text` if it fits in `limit` characters, else its start plus `marker`, within `limit`."""
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return marker[:limit]
    return text[: limit - len(marker)] + marker


def truncate_escaped(text: str, limit: int, marker: str = "…") -> str:
    """Like `truncate`, for entity-escaped mrkdwn: never leaves half an `&amp;` behind."""
    if len(text) <= limit:
        return text
    cut = truncate(text, limit, marker)
    head = cut[: len(cut) - len(marker)]
    return _PARTIAL_ENTITY_RE.sub("", head) + marker


# --- splitting ---------------------------------------------------------------------------------


def split_text(text: str, limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Cut mrkdwn into non-empty chunks of at most `limit` characters.

    Cuts prefer a paragraph break, then a line break, then a space. A chunk that ends inside a
    code fence is closed with ``` and the next chunk reopens it, so every chunk renders on its own.
    """
    budget = limit - 2 * (len(FENCE) + 1)  # room to reopen and to close a fence
    if budget < 1:
        raise ValueError(f"limit {limit} is too small to split into")
    chunks: list[str] = []
    rest = text
    reopen = False
    while rest:
        prefix = FENCE + "\n" if reopen else ""
        if len(prefix) + len(rest) <= limit and not leaves_fence_open(prefix + rest):
            chunks.append(prefix + rest)
            break
        cut, skip = _cut_point(rest, budget)
        chunk = prefix + rest[:cut]
        reopen = leaves_fence_open(chunk)
        if reopen:
            chunk += "\n" + FENCE
        chunks.append(chunk)
        rest = rest[cut + skip :]
    return [chunk for chunk in chunks if chunk.strip()]


def leaves_fence_open(text: str) -> bool:
    """True when `text` ends inside a ``` code block."""
    return text.count(FENCE) % 2 == 1


def text_from(text: str, start: int) -> str:
    """`text` from character `start` on, rendering on its own: a code block that `start` cuts
    through is opened again."""
    rest = text[start:]
    return f"{FENCE}\n{rest}" if start and rest and leaves_fence_open(text[:start]) else rest


def _cut_point(text: str, budget: int) -> tuple[int, int]:
    """Where to cut `text` within `budget` characters, and how many separator chars to drop."""
    if len(text) <= budget:
        return len(text), 0
    window = text[: budget + 1]  # a separator right at the budget still counts
    floor = budget // 3  # don't make tiny chunks just to hit a nicer boundary
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator, 0, budget + 1)
        if at > floor:
            return at, len(separator)
    return _hard_cut(text, budget), 0


def _hard_cut(text: str, budget: int) -> int:
    """A cut with no whitespace around: at least don't split a ``` or an `&amp;` entity."""
    cut = budget
    while cut > 1 and text[cut - 1] == "`" and text[cut] == "`":
        cut -= 1
    entity = _PARTIAL_ENTITY_RE.search(text, max(0, cut - 4), cut)
    if entity and entity.start() > 0:
        cut = entity.start()
    return cut


# --- packing -----------------------------------------------------------------------------------


def continued_block() -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": CONTINUED}]}


def text_length(node: Any) -> int:
    """The visible text a block carries: every text object's `text`, however deeply nested."""
    if isinstance(node, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else text_length(v)
            for k, v in node.items()
        )
    if isinstance(node, list):
        return sum(text_length(item) for item in node)
    return 0


def _block_ids(blocks: Iterable[dict[str, Any]]) -> set[str]:
    return {block["block_id"] for block in blocks if "block_id" in block}


class _Message:
    def __init__(self, continuation: bool) -> None:
        self.blocks: list[dict[str, Any]] = [continued_block()] if continuation else []
        self.chars = text_length(self.blocks)
        self.ids: set[str] = set()
        self.added = 0

    def fits(self, group: Sequence[dict[str, Any]]) -> bool:
        ids = _block_ids(group)
        return (
            len(self.blocks) + len(group) <= MAX_BLOCKS
            and self.chars + text_length(list(group)) <= MAX_MESSAGE_MARKDOWN
            and not ids & self.ids
            and len(ids) == sum("block_id" in block for block in group)
        )

    def add(self, group: Sequence[dict[str, Any]]) -> None:
        self.blocks.extend(group)
        self.chars += text_length(list(group))
        self.ids |= _block_ids(group)
        self.added += len(group)


def pack_messages(
    groups: Sequence[Sequence[dict[str, Any]]], default_text: str
) -> list[SlackMessage]:
    """Put groups of blocks into as few messages as the limits allow, in order.

    A group (say, a form with its buttons) stays in one message when it can fit in one, because
    Slack only reports the inputs of the message whose button was clicked. Block ids must be
    unique within a message, so a group whose ids clash starts a new message. Every message after
    the first opens with a "(continued)" line.
    """
    messages = [_Message(continuation=False)]
    for group in (g for g in groups if g):
        if messages[-1].added and not messages[-1].fits(group):
            messages.append(_Message(continuation=True))
        if messages[-1].fits(group):
            messages[-1].add(group)
            continue
        for block in group:  # too big for any one message: spread it out
            if messages[-1].added and not messages[-1].fits([block]):
                messages.append(_Message(continuation=True))
            messages[-1].add([block])
    if not messages[0].added:
        messages[0].add([{"type": "context", "elements": [{"type": "mrkdwn", "text": "…"}]}])
    return [SlackMessage(fallback_text(m.blocks, default_text), m.blocks) for m in messages]


def fallback_text(blocks: Sequence[dict[str, Any]], default: str) -> str:
    """The notification text for a message: its sections' and contexts' text, or `default`."""
    parts = [_block_plain(block) for block in blocks]
    text = "\n".join(part for part in parts if part and part != CONTINUED)
    return truncate(text or default, MAX_MESSAGE_TEXT)


def _block_plain(block: dict[str, Any]) -> str:
    if block.get("type") in ("section", "header") and "text" in block:
        return str(block["text"]["text"])
    if block.get("type") == "context":
        return " ".join(str(e.get("text", "")) for e in block["elements"])
    return ""
