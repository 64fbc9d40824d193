"""Conversation ids: the same Slack thread maps to the same AG-UI `threadId`, everywhere."""

from __future__ import annotations

import string
import uuid

# Fixed forever: changing it would give every existing Slack thread a new conversation id.
NAMESPACE = uuid.UUID("6f1c2a4e-8a7b-5d3e-9c41-2b7e0f5a9d13")
DEFAULT_KEY = "{team_id}:{channel_id}:{thread_ts}"
KEY_FIELDS = frozenset({"team_id", "channel_id", "thread_ts"})


def validate_key_template(template: str) -> None:
    """Refuse a key template that names a field we do not have."""
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    unknown = names - KEY_FIELDS
    if unknown:
        raise ValueError(
            f"conversation key template {template!r} uses unknown field(s) "
            f"{sorted(unknown)}; valid fields: {sorted(KEY_FIELDS)}"
        )
    if "thread_ts" not in names:
        raise ValueError(f"conversation key template {template!r} must contain {{thread_ts}}")


def conversation_id(
    team_id: str,
    channel_id: str,
    thread_ts: str,
    template: str = DEFAULT_KEY,
    namespace: uuid.UUID = NAMESPACE,
) -> str:
    """UUID v5 of the thread's key: stable across processes, replicas and restarts."""
    key = template.format(team_id=team_id, channel_id=channel_id, thread_ts=thread_ts)
    return str(uuid.uuid5(namespace, key))
