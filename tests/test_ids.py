from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from orchestrator.core.ids import NAMESPACE, conversation_id, validate_key_template


def test_same_thread_same_id_across_processes() -> None:
    here = conversation_id("T1", "C1", "1700000000.000100")
    code = (
        "from orchestrator.core.ids import conversation_id;"
        "print(conversation_id('T1', 'C1', '1700000000.000100'))"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == here
    assert uuid.UUID(here).version == 5


def test_threads_and_channels_do_not_collide() -> None:
    ids = {
        conversation_id(team, channel, ts)
        for team in ("T1", "T2")
        for channel in ("C1", "C2", "D1")
        for ts in ("1700000000.000100", "1700000000.000101")
    }
    assert len(ids) == 12


def test_key_template_for_older_schemes() -> None:
    legacy = conversation_id("T1", "C1", "17.1", template="{thread_ts}")
    assert legacy == str(uuid.uuid5(NAMESPACE, "17.1"))
    assert legacy == conversation_id("T9", "C9", "17.1", template="{thread_ts}")


def test_key_template_validation() -> None:
    validate_key_template("{team_id}:{channel_id}:{thread_ts}")
    with pytest.raises(ValueError, match=r"unknown field.*'user'"):
        validate_key_template("{user}:{thread_ts}")
    with pytest.raises(ValueError, match="must contain"):
        validate_key_template("{channel_id}")
