"""One renderer per thread state: pure functions from a `ThreadView` to Slack messages."""

from __future__ import annotations

from collections.abc import Callable

from renderers import awaiting_approval, done, errored, idle, streaming
from renderers.view import SlackMessage, ThreadView

Renderer = Callable[[ThreadView], list[SlackMessage]]

RENDERERS: dict[str, Renderer] = {
    "idle": idle.render,
    "streaming": streaming.render,
    "awaiting_approval": awaiting_approval.render,
    "errored": errored.render,
    "done": done.render,
}


def get_renderer(name: str) -> Renderer:
    """The renderer called `name`; a KeyError names the valid ones."""
    try:
        return RENDERERS[name]
    except KeyError:
        valid = ", ".join(RENDERERS)
        raise KeyError(f"no renderer named {name!r}; valid renderers: {valid}") from None
