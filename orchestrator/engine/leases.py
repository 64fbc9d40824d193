"""Who streams which run: process identities and when another process's run counts as lost.

A run's lease names its owner as `host:pid:token`. The owner renews it while the run goes on. A
run is lost when its lease lapsed, or at once when its owner is known dead: same host, and either
no such process any more, or this very process under another token (a container restarted with
the same pid). Replicas on other hosts are trusted until their lease lapses.
"""

from __future__ import annotations

import os
import socket
import uuid

_HOST = socket.gethostname()
_ALIVE_HERE: set[str] = set()  # owners created in this process that have not been retired


def new_owner() -> str:
    owner = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    _ALIVE_HERE.add(owner)
    return owner


def retire(owner: str) -> None:
    _ALIVE_HERE.discard(owner)


def is_dead(owner: str) -> bool:
    """True only when this host can tell for sure that `owner` no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner not in _ALIVE_HERE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's live process
        return False
    return False


def is_lost(owner: str | None, expires_at: float, now: float) -> bool:
    """Whether a run with this lease (owner None: no lease at all) should be reconciled."""
    return owner is None or expires_at < now or is_dead(owner)
