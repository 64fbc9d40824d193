"""`python -m tests.chaos --runs 20 --threads 150` (SQLite, one replica) or `--replicas 2 --db
postgres`: chaos runs against the real service, with the figures of each run and the totals."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from tests.chaos.report import print_run, print_totals
from tests.chaos.run import Plan, one_run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=150)
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs per run")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--spread", type=float, default=12.0, help="seconds threads start over")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    # A killed replica's connections break mid-write: asyncio says so once per write.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    plan = Plan(
        threads=args.threads, kills=args.kills, replicas=args.replicas, db=args.db,
        spread=args.spread, seed=args.seed,
    )  # fmt: skip
    return asyncio.run(_runs(plan, args.runs))


async def _runs(plan: Plan, runs: int) -> int:
    print(
        f"chaos: {runs} runs, {plan.threads} threads, {plan.kills} kills each, "
        f"{plan.replicas} replica(s) on {plan.db}",
        flush=True,
    )
    done = []
    for run in range(runs):
        folder = Path(tempfile.mkdtemp(prefix="orch-chaos-"))
        figures = await one_run(run, plan, folder)
        print_run(figures)
        if figures.failed:
            print(f"    logs kept in {folder}", flush=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)
        done.append(figures)
    print_totals(done)
    return 1 if any(f.failed for f in done) else 0


if __name__ == "__main__":
    sys.exit(main())
