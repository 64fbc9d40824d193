"""A thread as the service stored it: its state, transitions, approvals, queue and the
conversation it sends the agent; read from the service's database without ever writing."""

from __future__ import annotations

import uuid
from typing import Any

from orchestrator.config.settings import Settings
from orchestrator.core.ids import NAMESPACE, conversation_id
from persistence.store import Store


class ThreadInspector:
    def __init__(self, settings: Settings, database_url: str) -> None:
        namespace = settings.conversation_namespace
        self._namespace = uuid.UUID(namespace) if namespace else NAMESPACE
        self._key = settings.conversation_key
        self._database_url = database_url
        self._store: Store | None = None

    def conversation_id(self, team_id: str, channel: str, thread_ts: str) -> str:
        """The id the service gives the thread (and sends the agent as `threadId`)."""
        return conversation_id(team_id, channel, thread_ts, self._key, self._namespace)

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def details(self, thread_id: str) -> dict[str, Any] | None:
        """The stored thread, or None when the service has not stored it (yet)."""
        if self._store is None:
            self._store = await Store.open(self._database_url, check_writable=False)
        store = self._store
        thread = await store.get_thread(thread_id)
        if thread is None:
            return None
        return {
            "id": thread.id,
            "state": thread.state,
            "version": thread.version,
            "agent": thread.agent,
            "requester": thread.requester,
            "run_id": thread.run_id,
            "error_kind": thread.error_kind,
            "error": thread.error_text,
            "transitions": [
                {
                    "at": h.at,
                    "trigger": h.trigger,
                    "from": h.from_state,
                    "to": h.to_state,
                    "actor": h.actor,
                    "detail": h.detail,
                }
                for h in await store.history(thread_id)
            ],
            "approvals": [
                {
                    "id": i.id,
                    "form": i.wire_form,
                    "status": i.status,
                    "message": i.message,
                    "approvers": i.approvers,
                    "answered_by": i.answered_by,
                    "answered_at": i.answered_at,
                    "answer": i.answer,
                    "expires_at": i.expires_at,
                    "form_ts": i.form_ts,
                }
                for i in await store.interrupts_of(thread_id)
            ],
            "queued": [{"ts": q.ts, "user": q.user} for q in await store.queued(thread_id)],
            "conversation": await store.messages(thread_id),
        }
