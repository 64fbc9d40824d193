"""Slack requests waiting for their answer in this process, and the wait for none to be left.

Slack gives a delivery 3 seconds to be acknowledged, and ours is sent once the delivery is
stored. The runs that acknowledged deliveries start (a post in the thread, the agent's stream,
the run's own writes) share the one event loop with the deliveries still waiting: under a burst
of mentions they would take turns with them, and the last acknowledgements would come seconds
late (Slack then sends the event again). So the work a request starts in the background waits
until no request is left waiting (`settled`), at most `limit` seconds; one person's mention
waits for nothing but its own acknowledgement.

The count is the process's, as the event loop and its CPU are.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from orchestrator import metrics

# How long background work waits for them at most: well within Slack's 3 s, so that under a
# longer overload the runs go on all the same.
LIMIT = 2.0

_open = 0
_waiters: list[asyncio.Future[None]] = []


@contextlib.contextmanager
def answering() -> Iterator[None]:
    """Around the handling of one Slack request, until its acknowledgement is sent."""
    global _open
    _open += 1
    metrics.SLACK_REQUESTS_WAITING.inc()
    try:
        yield
    finally:
        _open -= 1
        metrics.SLACK_REQUESTS_WAITING.dec()
        if not _open:
            _wake()


def waiting() -> int:
    """Slack requests not answered yet."""
    return _open


async def settled(limit: float = LIMIT) -> None:
    """Returns once no Slack request is waiting for its answer, or after `limit` seconds."""
    if not _open:
        return
    waiter = asyncio.get_running_loop().create_future()
    _waiters.append(waiter)
    try:
        async with asyncio.timeout(limit):
            await waiter
    except TimeoutError:
        pass
    finally:
        with contextlib.suppress(ValueError):
            _waiters.remove(waiter)


def _wake() -> None:
    waiters, _waiters[:] = list(_waiters), []
    for waiter in waiters:
        if not waiter.done() and not waiter.get_loop().is_closed():
            waiter.set_result(None)
