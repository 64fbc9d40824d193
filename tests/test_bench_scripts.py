"""The benchmarks stay runnable: each runs end to end on a tiny workload (figures not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "args",
    [
        ["bench/throughput.py", "--events", "50", "--repeat", "1"],
        ["bench/slack_calls.py", "--help"],
        ["bench/startup.py", "--threads", "100", "--forms", "10"],
        ["bench/load.py", "--n", "5", "--deltas", "10", "--seconds", "1", "--wait", "30"],
    ],
)
def test_benchmark_runs(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()
