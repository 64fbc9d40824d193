"""Structured logging: one line per record, user text escaped, secrets never formatted in."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def escape(text: str) -> str:
    """Control characters and newlines as visible escapes, so user text cannot forge lines."""
    return text.encode("unicode_escape", "backslashreplace").decode("ascii")


def timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC, with the offset: `2026-11-29T11:45:24.123+00:00`."""
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={escape(str(v))}" for k, v in _fields(record).items())
        line = f"{timestamp(record)} {record.levelname} {record.name}: "
        line += escape(record.getMessage())
        if extras:
            line += f" {extras}"
        if record.exc_info:
            line += " | " + escape(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "at": timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **{
                k: v if isinstance(v, int | float | bool) else str(v)
                for k, v in _fields(record).items()
            },
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=True)


def setup(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in (
        "httpx",
        "httpcore",
        "uvicorn.access",
        "aiosqlite",
        "slack_bolt",
        "slack_sdk",
        "transitions",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
