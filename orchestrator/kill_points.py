"""Named steps where a test can have this process killed with SIGKILL, to prove that nothing
acknowledged is lost wherever a crash lands.

Off unless `ORCH_TEST_HOOKS=1`. Then `ORCH_TEST_KILL_AT` names the steps, comma-separated, each
optionally with the hit that kills (`after_claim:3` kills on the third claim):

- `after_ack`: an HTTP delivery was acknowledged to Slack
- `after_claim`: a click claimed its answer, before the thread moved
- `before_resume`: a resume is about to leave for the agent
- `after_resume`: the agent answered a resume, before that was recorded
- `mid_publish`: a form was posted to Slack, before its ts was stored
- `before_close`: a run's end was stored, before its messages were closed
- `before_next_queued`: a run ended, before the next queued message started
- `after_settle`: the agent took an answer and it was stored as final, before its form was
  drawn so
- `before_resend`: recovery put answers that may have reached the agent back to be sent again,
  before it sent them
"""

from __future__ import annotations

import os
import signal
from collections import Counter

POINTS = (
    "after_ack",
    "after_claim",
    "before_resume",
    "after_resume",
    "mid_publish",
    "before_close",
    "before_next_queued",
    "before_resend",
    "after_settle",
)


def _armed() -> dict[str, int]:
    if os.environ.get("ORCH_TEST_HOOKS") != "1":
        return {}
    armed: dict[str, int] = {}
    for item in os.environ.get("ORCH_TEST_KILL_AT", "").split(","):
        name, _, nth = item.strip().partition(":")
        if name in POINTS:
            armed[name] = int(nth) if nth.isdigit() and int(nth) > 0 else 1
    return armed


_ARMED = _armed()
_HITS: Counter[str] = Counter()


def reached(point: str) -> None:
    """Called at each named step; kills this process there when a test armed it."""
    if point not in _ARMED:
        return
    _HITS[point] += 1
    if _HITS[point] == _ARMED[point]:
        os.kill(os.getpid(), signal.SIGKILL)
