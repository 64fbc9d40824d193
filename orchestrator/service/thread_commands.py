"""`orchestrator threads list|show`: the persisted threads, read without writing anything.

Both only read: they answer while the service is busy writing, never wait for its write lock,
and never create a database. `show` finds its thread by conversation id (or a unique prefix),
by Slack link ("Copy link" on any message of the thread), or by the thread's ts.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from orchestrator.config.machine_source import machine_definition
from orchestrator.config.settings import Settings
from orchestrator.slack.permalinks import parse_reference
from persistence.models import Thread
from persistence.store import Store


class UnknownState(ValueError):
    """`--state` names no state of the machine; the message lists the states."""


async def open_for_reading(settings: Settings) -> Store:
    return await Store.open(
        settings.database_url,
        busy_timeout=settings.database_busy_timeout,
        check_writable=False,
        create=False,
    )


def check_state(settings: Settings, state: str | None) -> None:
    """Refuses a `--state` the machine does not have (it would list no thread, silently)."""
    if state is None:
        return
    states = list(machine_definition(settings.machine_file).states)
    if state not in states:
        raise UnknownState(f"unknown state {state!r}; the states are {', '.join(states)}")


async def list_threads(settings: Settings, state: str | None, as_json: bool, limit: int) -> int:
    check_state(settings, state)
    store = await open_for_reading(settings)
    try:
        rows = await store.list_threads(state, limit=limit + 1)
    finally:
        await store.close()
    if len(rows) > limit:
        rows = rows[:limit]
        print(f"showing the newest {limit} threads; --limit shows more", file=sys.stderr)
    items = [
        {
            "id": r.id,
            "state": r.state,
            "channel": r.channel_id,
            "thread_ts": r.thread_ts,
            "requester": r.requester,
            "updated_at": _when(r.updated_at),
        }
        for r in rows
    ]
    if as_json:
        print(json.dumps(items, indent=2))
        return 0
    if not items:
        print("no threads" + (f" in state {state}" if state else ""))
        return 0
    print(f"{'ID':36}  {'STATE':17}  {'CHANNEL':12}  {'THREAD':18}  {'REQUESTER':12}  UPDATED")
    for i in items:
        print(
            f"{i['id']:36}  {i['state']:17}  {i['channel']:12}  {i['thread_ts']:18}  "
            f"{i['requester'] or '-':12}  {i['updated_at']}"
        )
    return 0


async def _find(store: Store, reference: str) -> tuple[list[Thread], str]:
    """The threads `reference` may mean, and how to say what was looked for."""
    slack = parse_reference(reference)
    if slack is None:
        return await store.threads_starting_with(
            reference, limit=2
        ), f"an id starting {reference!r}"
    where = f" in {slack.channel}" if slack.channel else ""
    found = await store.threads_at(slack.ts, slack.channel, limit=2)
    return found, f"a Slack thread at {slack.ts}{where}"


async def show_thread(settings: Settings, reference: str, as_json: bool) -> int:
    store = await open_for_reading(settings)
    try:
        matches, looked_for = await _find(store, reference)
        if len(matches) != 1:
            if matches:
                print(
                    f"error: more than one thread with {looked_for}; give more of the id, or "
                    "the Slack link of the thread",
                    file=sys.stderr,
                )
            else:
                print(f"error: no thread with {looked_for}", file=sys.stderr)
            return 1
        thread = matches[0]
        history = await store.history(thread.id)
        interrupts = await store.interrupts_of(thread.id)
        queued = await store.queued(thread.id)
        feedback = await store.feedback_of(thread.id)
        escalation = await store.get_escalation(thread.id)
    finally:
        await store.close()
    data = {
        "id": thread.id,
        "state": thread.state,
        "version": thread.version,
        "team": thread.team_id,
        "channel": thread.channel_id,
        "thread_ts": thread.thread_ts,
        "requester": thread.requester,
        "error": thread.error_text,
        "history": [
            {
                "at": _when(h.at),
                "trigger": h.trigger,
                "from": h.from_state,
                "to": h.to_state,
                "actor": h.actor,
                "detail": h.detail,
            }
            for h in history
        ],
        "interrupts": [
            {
                "id": i.id,
                "interrupt_id": i.interrupt_id,
                "form": i.wire_form,
                "status": i.status,
                "message": i.message,
                "answered_by": i.answered_by,
                "answered_at": _when(i.answered_at),
                "answer": i.answer,
                "expires_at": _when(i.expires_at),
            }
            for i in interrupts
        ],
        "queued": [{"ts": q.ts, "user": q.user} for q in queued],
        "feedback": [
            {
                "id": f.id,
                "run": f.run_id,
                "user": f.user,
                "rating": f.rating,
                "reasons": f.reasons,
                "comment": f.comment,
                "at": _when(f.updated_at),
                "forwarded": f.forward_state,
                "forward_error": f.forward_error,
            }
            for f in feedback
        ],
        "escalation": (
            {"by": escalation.user, "at": _when(escalation.at), "targets": escalation.targets}
            if escalation
            else None
        ),
    }
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"thread    {data['id']}")
    print(f"state     {data['state']}  (version {data['version']})")
    print(f"slack     {data['team']} / {data['channel']} / {data['thread_ts']}")
    print(f"requester {data['requester'] or '-'}")
    if data["error"]:
        print(f"error     {data['error']}")
    print("\nhistory")
    for h in data["history"]:
        moved = f"{h['from']} -> {h['to']}" if h["from"] != h["to"] else f"{h['from']} (stays)"
        print(f"  {h['at']}  {h['trigger']:20} {moved:34} by {h['actor'] or '-'}")
    if data["interrupts"]:
        print("\napprovals")
        for i in data["interrupts"]:
            who = f" by {i['answered_by']} at {i['answered_at']}" if i["answered_by"] else ""
            print(f"  {i['id']}  {i['status']}{who}  [{i['form']}] {i['message']}")
            if i["answer"]:
                print(f"      answer: {json.dumps(i['answer'])}")
    if data["queued"]:
        print(f"\nqueued messages: {len(data['queued'])}")
    _print_feedback(data)
    return 0


def _print_feedback(data: dict[str, Any]) -> None:
    if data["feedback"]:
        print("\nfeedback")
        for f in data["feedback"]:
            error = f["forward_error"]
            sent = f" (forward {f['forwarded']}: {error})" if error else ""
            print(f"  {f['at']}  {f['rating']} by {f['user']}  run {f['run']}{sent}")
            if f["reasons"] or f["comment"]:
                print(f"      reasons: {', '.join(f['reasons']) or '-'}  comment: {f['comment']!r}")
    if data["escalation"]:
        e = data["escalation"]
        print(f"\nescalated by {e['by']} at {e['at']} to {', '.join(e['targets'])}")


def _when(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
