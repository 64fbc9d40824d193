"""The figures a chaos run prints."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from tests.chaos.run import Figures

INVARIANTS = (
    "1 acknowledged message answered",
    "2 queued messages in order",
    "3 approvals once",
    "4 no live message left",
    "5 no streaming without owner",
    "6 malformed requests get 4xx",
    "6 no traceback",
)


def print_run(f: Figures) -> None:
    named = ", ".join(f"{k}x{v}" for k, v in sorted(f.kills_named.items())) or "none"
    print(
        f"run {f.run:>2}: {f.threads} threads, {f.acked_messages} messages acknowledged "
        f"({f.unacked_messages} never acknowledged), {f.acked_clicks} clicks acknowledged, "
        f"kills: {f.kills_random} random + armed at steps [{named}] ({f.kills_reached} reached), "
        f"{f.malformed_sent} malformed, "
        f"acks {_waits(f.ack_seconds)}, "
        f"recovered in {f.recovery_seconds:.1f}s, run {f.seconds:.0f}s, "
        f"violations {f.failed}",
        flush=True,
    )
    for invariant, items in f.violations.items():
        for item in items[:5]:
            print(f"    {invariant}: {item}", flush=True)


def print_totals(runs: Sequence[Figures]) -> None:
    named: Counter[str] = Counter()
    for f in runs:
        named.update(f.kills_named)
    print("totals:")
    print(f"  runs {len(runs)}, threads {sum(f.threads for f in runs)}")
    print(f"  messages acknowledged {sum(f.acked_messages for f in runs)}")
    print(f"  clicks acknowledged {sum(f.acked_clicks for f in runs)}")
    print(
        f"  kills {sum(f.kills_random for f in runs)} random + {sum(named.values())} armed at "
        f"steps ({', '.join(f'{k}x{v}' for k, v in sorted(named.items()))}), "
        f"{sum(f.kills_reached for f in runs)} of them reached"
    )
    print(f"  malformed requests {sum(f.malformed_sent for f in runs)}")
    print(f"  acknowledgements {_waits([w for f in runs for w in f.ack_seconds])}")
    worst = max((f.recovery_seconds for f in runs), default=0.0)
    print(f"  recovery after the last kill: at most {worst:.1f}s")
    for invariant in INVARIANTS:
        count = sum(len(f.violations.get(invariant, [])) for f in runs)
        print(f"  invariant {invariant}: {count} violations")


def _waits(waits: Sequence[float]) -> str:
    if not waits:
        return "none"
    ordered = sorted(waits)
    median = ordered[len(ordered) // 2]
    within = sum(1 for w in ordered if w <= 3.0)
    return f"median {median:.2f}s, max {ordered[-1]:.2f}s, {within}/{len(ordered)} within 3 s"
