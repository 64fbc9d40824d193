"""Throughput of one AG-UI SSE stream: bare parsing against the whole engine path.

The same pre-encoded stream (text deltas with a large RAW event every so often) is served on
127.0.0.1 and read K times by each of two paths:

(a) by httpx + httpx-sse + `TypeAdapter(Event).validate_json` on every `data:` line;
(b) by a real `Runtime` (SQLite in a temp dir, production update interval) with a recording
    publisher: the engine's own `Publisher`, throttle and renders, writing its Slack calls to
    memory instead of HTTP. The run is started by a signed `app_mention` delivered to the app and
    timed until the engine has drained it; the thread row is then checked to be `done`.

The two paths alternate K times (so both see the machine in the same state) and the best run of
each is reported. Run as `python bench/throughput.py [--events N] [--repeat K]` (defaults 20000
and 5).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
from ag_ui.core import Event, RunAgentInput
from httpx_sse import aconnect_sse
from pydantic import TypeAdapter

from orchestrator.agent.agui.run_input import run_input_payload
from orchestrator.sandbox.slack_emulator import SlackEmulator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine_bench import CHANNEL, UPDATE_INTERVAL, EngineBench
from bench.sse_workload import RAW_SIZE, StreamServer, Workload

ADAPTER: Final[TypeAdapter[Event]] = TypeAdapter(Event)

TARGET: Final = 0.5


# --- (a) the baseline ----------------------------------------------------------------------


def request_body() -> dict[str, Any]:
    """The same kind of body the engine sends: a RunAgentInput with one user message."""
    run_input = RunAgentInput.model_validate(
        {
            "threadId": "bench-thread",
            "runId": "bench-run",
            "messages": [{"id": "u-1", "role": "user", "content": "<@UBOT> go"}],
            "tools": [],
            "context": [],
            "state": None,
            "forwardedProps": {"source": "slack"},
        }
    )
    return run_input_payload(run_input)


async def bare_run(http: httpx.AsyncClient, url: str) -> tuple[float, int]:
    """Seconds to read and validate the whole stream, and the number of events read."""
    body = request_body()
    count = 0
    started = time.perf_counter()
    async with aconnect_sse(http, "POST", url, json=body) as source:
        source.response.raise_for_status()
        async for sse in source.aiter_sse():
            ADAPTER.validate_json(sse.data)
            count += 1
    return time.perf_counter() - started, count


# --- reporting -----------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    seconds: float
    events: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def print_table(
    work: Workload,
    bare: Result,
    engine: Result,
    *,
    repeat: int,
    calls: int,
    rss: float,
) -> None:
    ratio = engine.rate / bare.rate
    print(
        f"stream: {work.events} events ({work.deltas} text deltas, {work.raws} RAW of "
        f"~{RAW_SIZE} B), {len(work.payload) / 1e6:.2f} MB; best of {repeat}"
    )
    print(f"{'path':<26}{'events':>9}{'seconds':>10}{'events/s':>12}")
    for name, result in (("(a) httpx-sse + validate", bare), ("(b) engine, recorded", engine)):
        print(f"{name:<26}{result.events:>9}{result.seconds:>10.3f}{result.rate:>12,.0f}")
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"ratio (b)/(a): {ratio:.2f}   target ≥ {TARGET}: {verdict}")
    print(f"Slack calls recorded in (b): {calls} (update interval {UPDATE_INTERVAL:g}s)")
    print(f"peak RSS of the process: {rss:.1f} MB")


# --- main ----------------------------------------------------------------------------------


async def bench(deltas: int, repeat: int) -> None:
    work = Workload.build(deltas)
    stream = StreamServer(work.payload)
    slack = SlackEmulator(channels=[CHANNEL])
    await stream.start()
    await slack.start()
    try:
        with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
            await measure(work, stream, slack, Path(tmp) / "bench.db", repeat)
    finally:
        await slack.stop()
        await stream.stop()


async def measure(
    work: Workload, stream: StreamServer, slack: SlackEmulator, db_path: Path, repeat: int
) -> None:
    # (a) and (b) alternate, so both see the machine in the same state; the best of each counts.
    bare_runs: list[tuple[float, int]] = []
    engine_runs: list[tuple[float, int]] = []
    engine_bench = EngineBench(slack, stream.url, db_path)
    await engine_bench.start()
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(repeat):
                bare_runs.append(await bare_run(http, stream.url))
                engine_runs.append(await engine_bench.run(work.text))
    finally:
        await engine_bench.stop()
    seconds_a, count = min(bare_runs)
    if count != work.events:
        raise RuntimeError(f"(a) read {count} events of {work.events}")
    seconds_b, calls = min(engine_runs)
    print_table(
        work,
        Result(seconds_a, count),
        Result(seconds_b, work.events),
        repeat=repeat,
        calls=calls,
        rss=peak_rss_mb(),
    )


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=positive, default=20000, help="text deltas (N)")
    parser.add_argument("--repeat", type=positive, default=5, help="take the best of K runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(bench(args.events, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
