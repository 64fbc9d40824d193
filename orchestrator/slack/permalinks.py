"""Finding a thread from what a person copies out of Slack: a message link, or a timestamp.

- `https://acme.slack.com/archives/C0123ABC/p1795951320000001`: the message's link ("Copy
  link"); for a reply Slack adds `?thread_ts=1795951320.000001&cid=C0123ABC`, which names the
  thread it belongs to.
- `1795951320.000001` (a ts, as in the API and in `threads list`), or `p1795951320000001` (the
  last part of a link).

Pure: no Slack calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urlsplit

_TS: Final = re.compile(r"^\d{9,11}\.\d{6}$")
_LINK_TS: Final = re.compile(r"^p(\d{9,11})(\d{6})$")
_CHANNEL: Final = re.compile(r"^[CDG][A-Z0-9]{2,}$")


@dataclass(frozen=True, slots=True)
class SlackReference:
    """A message in Slack: its ts, and its channel when the reference names it."""

    ts: str
    channel: str | None = None


def parse_reference(text: str) -> SlackReference | None:
    """The thread a link or timestamp points at; None when `text` is neither."""
    text = text.strip()
    if _TS.match(text):
        return SlackReference(text)
    if _LINK_TS.match(text):
        return SlackReference(_link_ts(text))
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    segments = [segment for segment in parts.path.split("/") if segment]
    if len(segments) < 3 or segments[-3] != "archives":
        return None
    channel, message = segments[-2], segments[-1]
    if not _CHANNEL.match(channel) or not _LINK_TS.match(message):
        return None
    query = parse_qs(parts.query)
    thread_ts = query.get("thread_ts", [""])[0]
    if _TS.match(thread_ts):
        return SlackReference(thread_ts, channel)
    return SlackReference(_link_ts(message), channel)


def _link_ts(segment: str) -> str:
    match = _LINK_TS.match(segment)
    assert match is not None
    return f"{match.group(1)}.{match.group(2)}"
