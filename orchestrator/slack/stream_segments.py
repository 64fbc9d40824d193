"""The parts of a native stream: one streamed message (`Segment`), the errors Slack answers stream
calls with, and `StreamRefused`, which a refused call raises with Slack's error."""

from __future__ import annotations

from dataclasses import dataclass, field

from slack_sdk.models.messages.chunk import Chunk, MarkdownTextChunk

from orchestrator.slack.stream_content import TaskState

STREAM_GONE = frozenset(
    {"message_not_in_streaming_state", "msg_too_long", "streaming_state_conflict"}
)
STOPPED_BY_USER = "stopped_by_user"
UNSUPPORTED = frozenset(
    {
        "unknown_method",
        "not_allowed_token_type",
        "missing_scope",
        "feature_not_enabled",
        "method_deprecated",
        "404",
    }
)
TRANSIENT = frozenset({"ratelimited"})  # a live append refused this way is simply retried


@dataclass(slots=True)
class Segment:
    """One streamed message: its ts, when it started, what it holds, and whether it streams."""

    ts: str
    started_at: float
    chars: int = 0
    full: bool = False  # the text was cut here: what follows goes to a new message
    open: bool = True  # more may be appended
    ended: bool = False  # Slack no longer streams it (stopped, expired, or stopped by the user)
    tasks: TaskState = field(default_factory=TaskState)


class StreamRefused(Exception):
    """Native streaming cannot go on for this run; the reason is Slack's error."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def stream_body(piece: str, chunks: list[Chunk]) -> list[Chunk]:
    return [*chunks, MarkdownTextChunk(text=piece)] if piece else list(chunks)
