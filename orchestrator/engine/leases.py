"""Who streams which run: process identities and when another process's run counts as lost.

A run's lease names its owner as `host/boot/pid-namespace/pid/token`. The owner renews it while
the run goes on. A run is lost when its lease lapsed, or at once when its owner is known dead:
same host, same boot and same PID namespace (so this process can see the owner's pid), and either
no such process any more, or this very process under another token (a container restarted with
the same pid). Containers that share a hostname (host networking) but not a PID namespace, and
replicas on other hosts, are trusted until their lease lapses.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

SEPARATOR = "/"
_ALIVE_HERE: set[str] = set()  # owners created in this process that have not been retired


@dataclass(frozen=True, slots=True)
class Identity:
    host: str
    boot: str  # the kernel's boot id: a reboot reuses pids
    namespace: str  # the PID namespace: only pids of the same one can be checked
    pid: int
    token: str = ""


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def here() -> Identity:
    """This process (its pid read now: a forked child is another process)."""
    host = socket.gethostname().replace(SEPARATOR, "_")
    boot = _read("/proc/sys/kernel/random/boot_id").replace(SEPARATOR, "_") or "-"
    return Identity(host, boot, _namespace().replace(SEPARATOR, "_") or "-", os.getpid())


def format_owner(host: str, boot: str, namespace: str, pid: int, token: str) -> str:
    return SEPARATOR.join((host, boot, namespace, str(pid), token))


def parse(owner: str) -> Identity | None:
    """The identity an owner names, or None for a form this release does not write."""
    parts = owner.split(SEPARATOR)
    if len(parts) != 5 or not parts[3].isdigit():
        return None
    host, boot, namespace, pid, token = parts
    return Identity(host, boot, namespace, int(pid), token)


def new_owner() -> str:
    me = here()
    owner = format_owner(me.host, me.boot, me.namespace, me.pid, secrets.token_hex(8))
    _ALIVE_HERE.add(owner)
    return owner


def retire(owner: str) -> None:
    _ALIVE_HERE.discard(owner)


def is_dead(owner: str) -> bool:
    """True only when this process can tell for sure that `owner` no longer runs."""
    them, me = parse(owner), here()
    if them is None or (them.host, them.boot, them.namespace) != (me.host, me.boot, me.namespace):
        return False
    if "-" in (me.boot, me.namespace):  # no way to tell this boot or namespace from another
        return False
    if them.pid == me.pid:
        return owner not in _ALIVE_HERE
    try:
        os.kill(them.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's live process
        return False
    return False


def is_lost(owner: str | None, expires_at: float, now: float) -> bool:
    """Whether a run with this lease (owner None: no lease at all) should be reconciled."""
    return owner is None or expires_at < now or is_dead(owner)
