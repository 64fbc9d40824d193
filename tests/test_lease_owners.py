"""Lease owners name their process so that no other process can be mistaken for it: two
containers sharing a hostname (host networking) but not a PID namespace never declare each other
dead; a process this host can see is gone is."""

from __future__ import annotations

import subprocess
import sys

from orchestrator.engine import leases


def a_pid_that_is_gone() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_an_owner_names_host_boot_pid_namespace_pid_and_a_token() -> None:
    owner = leases.new_owner()
    identity = leases.parse(owner)
    assert identity is not None
    assert identity.pid == leases.here().pid
    assert identity.host == leases.here().host
    assert identity.boot and identity.namespace and len(identity.token) >= 12
    assert leases.new_owner() != owner


def test_a_gone_process_of_this_host_and_namespace_is_dead() -> None:
    me = leases.here()
    owner = leases.format_owner(me.host, me.boot, me.namespace, a_pid_that_is_gone(), "t0ken")
    assert leases.is_dead(owner)
    assert leases.is_lost(owner, expires_at=float("inf"), now=0.0)


def test_same_hostname_but_another_pid_namespace_is_never_judged_dead() -> None:
    me = leases.here()
    owner = leases.format_owner(me.host, me.boot, "pid:[1]", a_pid_that_is_gone(), "t0ken")
    assert not leases.is_dead(owner)
    assert not leases.is_lost(owner, expires_at=100.0, now=50.0)  # trusted until its lease lapses
    assert leases.is_lost(owner, expires_at=100.0, now=150.0)


def test_same_hostname_after_a_reboot_is_not_confused_with_a_live_process() -> None:
    me = leases.here()
    owner = leases.format_owner(me.host, "another-boot", me.namespace, me.pid, "t0ken")
    assert not leases.is_dead(owner)


def test_this_very_pid_under_another_token_is_dead() -> None:
    me = leases.here()
    owner = leases.format_owner(me.host, me.boot, me.namespace, me.pid, "an-old-token")
    assert leases.is_dead(owner)  # a container restarted with the same pid
    live = leases.new_owner()
    assert not leases.is_dead(live)
    leases.retire(live)
    assert leases.is_dead(live)


def test_owners_in_the_old_form_are_trusted_until_their_lease_lapses() -> None:
    me = leases.here()
    old = f"{me.host}:{a_pid_that_is_gone()}:abcdef123456"
    assert not leases.is_dead(old)
    assert leases.is_lost(old, expires_at=1.0, now=2.0)
