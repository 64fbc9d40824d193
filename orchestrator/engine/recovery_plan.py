"""What recovery does with the rows it read in bulk: pure choices, no I/O (recovery.py acts)."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from orchestrator.engine import leases
from persistence.models import Interrupt, Thread
from persistence.store import LeftClaim, StreamingRun

# A thread whose run ended may start its next queued message.
QUEUE_STATES = ("idle", "done", "errored")


def lost_runs(
    runs: Iterable[StreamingRun], live: Collection[str], now: float
) -> list[StreamingRun]:
    """The runs streaming elsewhere whose process is gone (its lease lapsed, or its owner is
    known dead), not those streaming here."""
    lost = []
    for run in runs:
        if run.thread.id in live:
            continue
        owner, expires_at = (run.lease.owner, run.lease.expires_at) if run.lease else (None, 0.0)
        if leases.is_lost(owner, expires_at, now):
            lost.append(run)
    return lost


def claims_to_send(claims: Iterable[LeftClaim]) -> list[LeftClaim]:
    """Claimed answers to send now, one per thread (the resume carries every answer of the
    run): not those of a run whose other forms still wait (the last answer sends them all)."""
    first: dict[str, LeftClaim] = {}
    for claim in claims:
        if claim.pending == 0:
            first.setdefault(claim.thread.id, claim)
    return list(first.values())


def forms_by_thread(
    rows: Iterable[tuple[Interrupt, Thread]],
) -> list[tuple[Thread, list[Interrupt]]]:
    """Unposted forms grouped by their thread, threads in the order of their first form."""
    grouped: dict[str, tuple[Thread, list[Interrupt]]] = {}
    for row, thread in rows:
        grouped.setdefault(thread.id, (thread, []))[1].append(row)
    return list(grouped.values())


def queues_to_run(threads: Iterable[Thread]) -> list[Thread]:
    """Threads whose queue may go on: not those whose run before is still being closed (its
    live messages; `finish_live` closes them first)."""
    return [t for t in threads if t.state in QUEUE_STATES and not t.live_ts]
