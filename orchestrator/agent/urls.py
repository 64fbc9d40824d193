"""Agent URLs as they may be shown in logs and messages."""

from __future__ import annotations


def redact_url(url: str) -> str:
    """The URL without credentials, query or fragment (where tokens tend to hide)."""
    base = url.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = base.partition("://")
    if not sep:
        return base
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"
