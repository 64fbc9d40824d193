"""Sends stored feedback to `ORCH_FEEDBACK_URL` as a JSON POST; the store stays the truth.

Every change of a feedback record (a 👍, a 👎, the 👎's reasons) is sent, carrying the record's
stable `id`, so the receiver keeps the latest. A failed send is retried from the store by the
scheduler after 30 s, 2 min, 10 min, 1 h and 6 h; then, or at once on a 4xx other than 408/429,
the record is marked `failed` with the error (see `orchestrator threads show`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from datetime import UTC, datetime
from typing import Any

import httpx

from persistence.models import Feedback
from persistence.store import Store

log = logging.getLogger("orchestrator.feedback")

RETRY_DELAYS = (30.0, 120.0, 600.0, 3600.0, 6 * 3600.0)  # after the 1st, 2nd, … failed send
LEASE = 60.0  # a claimed send is retried by anyone after this long (the sender died)
TIMEOUT = 10.0
_RETRYABLE_STATUS = {408, 429}


class FeedbackForwarder:
    def __init__(self, store: Store, url: str | None) -> None:
        self.store = store
        self.url = url
        self._client = httpx.AsyncClient(timeout=TIMEOUT) if url else None
        # One send per record at a time, so a record's changes reach the receiver in order.
        self._sending: weakref.WeakValueDictionary[int, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @property
    def enabled(self) -> bool:
        return self._client is not None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def send_due(self, now: float | None = None) -> None:
        """Send every record whose (re)send is due at `now`."""
        now = time.time() if now is None else now
        for row in await self.store.due_forwards(now):
            await self.send(row, now=now)

    async def send(self, row: Feedback, *, now: float | None = None) -> bool:
        """One attempt for a pending record; True when the receiver took it."""
        if self._client is None or self.url is None or row.forward_due is None:
            return False
        lock = self._sending.setdefault(row.id, asyncio.Lock())
        async with lock:
            return await self._send(row, now)

    async def _send(self, row: Feedback, now: float | None) -> bool:
        now = time.time() if now is None else now
        if not await self.store.claim_forward(row.id, row.forward_due, now + LEASE):
            return False
        error, retryable = await self._post(await self._payload(row))
        if error is None:
            await self.store.settle_forward(
                row.id,
                row.updated_at,
                forward_state="sent",
                forward_due=None,
                forward_error=None,
                forwarded_at=time.time(),
            )
            return True
        attempts = row.forward_attempts + 1
        give_up = not retryable or attempts > len(RETRY_DELAYS)
        retry_at = None if give_up else time.time() + RETRY_DELAYS[attempts - 1]
        log.warning(
            "feedback not forwarded",
            extra={
                "feedback": row.id,
                "conversation": row.thread_id,
                "attempt": attempts,
                "error": error,
                "retry_at": _iso(retry_at) if retry_at else "never",
            },
        )
        await self.store.settle_forward(
            row.id,
            row.updated_at,
            forward_state="failed" if give_up else "pending",
            forward_due=retry_at,
            forward_attempts=attempts,
            forward_error=error,
        )
        return False

    async def _post(self, payload: dict[str, Any]) -> tuple[str | None, bool]:
        """(error, retryable); error is None on a 2xx."""
        assert self._client is not None and self.url is not None
        try:
            response = await self._client.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}".strip().rstrip(":"), True
        if response.is_success:
            return None, True
        retryable = response.status_code >= 500 or response.status_code in _RETRYABLE_STATUS
        return f"HTTP {response.status_code}", retryable

    async def _payload(self, row: Feedback) -> dict[str, Any]:
        thread = await self.store.get_thread(row.thread_id)
        return {
            "id": row.id,
            "thread": row.thread_id,
            "run": row.run_id,
            "team": thread.team_id if thread else None,
            "channel": thread.channel_id if thread else None,
            "thread_ts": thread.thread_ts if thread else None,
            "user": row.user,
            "rating": row.rating,
            "reasons": list(row.reasons or []),
            "comment": row.comment,
            "at": _iso(row.updated_at),
        }


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()
