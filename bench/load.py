"""Under load: N concurrent answers through the real service, side by side with a plain bolt bot.

Each bot runs as its own process, serving signed Events API deliveries over HTTP on 127.0.0.1:

- **plain**: `bench/plain_bot.py`, slack-bolt + httpx-sse, in memory, `chat.update` every second;
- **service**: `python -m orchestrator run --http`, on a fresh SQLite file (`--db sqlite`) or a
  fresh database on the local PostgreSQL (`--db postgres`), with the production update interval.

Both talk to the same stand-ins served by this process (`load_standins.py`): a Slack Web API and
an AG-UI agent streaming each answer as DELTAS text deltas over SECONDS seconds, one event per
write. N signed `app_mention`s are delivered at once to each bot, both bots at the same time (so
both see the same machine: it is shared and noisy; `--one-at-a-time` runs one after the other),
and the answers are followed until every one is whole in Slack (or nothing has happened for a
while). The figures, per bot and as ratios service/plain:

- answers completed and lost (lost: the mention's final Slack message does not hold the whole
  answer), mentions that got no message at all, deliveries refused (not answered 200 in 30 s);
- acknowledged, first message ("Thinking…") p50/p99: from the mention sent;
- CPU per answer: the bot process's CPU time (user + system, from /proc) during the pass divided
  by the answers completed; peak RSS (VmHWM);
- time to first text: mention sent -> first Slack write in its thread showing agent text;
- added latency: first Slack write holding the whole answer - end of the agent's stream;
- Slack Web API calls per answer.

    python bench/load.py [--n 200] [--db sqlite|postgres] [--deltas 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bot_process import BotProcess, free_port
from bench.load_standins import BOT_USER_ID, TEAM_ID, Mention, StandIns, answer_text
from bench.scratch_databases import scratch_database
from orchestrator.sandbox import slack_delivery

CHANNEL: Final = "C0LOAD"
USER: Final = "U0LOAD"
SECRET: Final = "load-signing-secret"
QUIET: Final = 15.0  # seconds without any Slack call or agent stream ending: the pass is over
POLL: Final = 0.2
DELIVERY_TIMEOUT: Final = 30.0  # Slack gives up after 3 s and retries; this counts as refused
SETTLE_AFTER_WARM_UP: Final = 1.0


@dataclass(frozen=True, slots=True)
class PassFigures:
    bot: str
    n: int
    completed: int
    no_message: int
    refused: int
    cpu_seconds: float
    peak_rss_mb: float
    acked: list[float]
    first_message: list[float]
    first_text: list[float]
    added: list[float]
    slack_calls: dict[str, int]
    standin_cpu: float
    tick_late_p99: float
    seconds: float

    @property
    def lost(self) -> int:
        return self.n - self.completed

    @property
    def cpu_per_answer_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.completed if self.completed else math.nan


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def mention_event(question: str, ts: str) -> dict[str, object]:
    """An `app_mention` as Slack delivers it: `<@bot> question`, in a channel, not in a thread."""
    return {
        "type": "app_mention",
        "channel": CHANNEL,
        "user": USER,
        "text": f"<@{BOT_USER_ID}> {question}",
        "ts": ts,
        "event_ts": ts,
        "team": TEAM_ID,
        "client_msg_id": str(uuid.uuid4()),
        "blocks": [
            {
                "type": "rich_text",
                "block_id": uuid.uuid4().hex[:5],
                "elements": [
                    {
                        "type": "rich_text_section",
                        "elements": [
                            {"type": "user", "user_id": BOT_USER_ID},
                            {"type": "text", "text": f" {question}"},
                        ],
                    }
                ],
            }
        ],
    }


def signed(event: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the Events API request Slack would send for `event`."""
    envelope = slack_delivery.event_envelope(
        event,
        team_id=TEAM_ID,
        api_app_id="A0LOAD",
        bot_user_id=BOT_USER_ID,
        event_id=slack_delivery.new_event_id(),
        verification_token="load-verification",
    )
    body, content_type = slack_delivery.json_body(envelope)
    return body.encode(), slack_delivery.signed_headers(SECRET, body, content_type)


async def deliver(client: aiohttp.ClientSession, url: str, mention: Mention) -> None:
    body, headers = signed(mention_event(mention.question, mention.thread_ts))
    mention.sent_at = time.monotonic()
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with client.post(url, data=body, headers=headers) as response:
            mention.status = response.status
            mention.acked_at = time.monotonic()


async def warm_up(client: aiohttp.ClientSession, url: str) -> None:
    """One plain channel message (no mention: no answer), so that the bot has asked Slack who it
    is (`auth.test`, cached by bolt) before the mentions arrive, as a bot that has been running
    a while has."""
    ts = "1699999999.000001"
    event = {"type": "message", "channel": CHANNEL, "channel_type": "channel", "user": USER}
    body, headers = signed(event | {"text": "hello", "ts": ts, "event_ts": ts, "team": TEAM_ID})
    async with client.post(url, data=body, headers=headers) as response:
        await response.read()


def mentions_for(bot: str, index: int, n: int, deltas: int) -> list[Mention]:
    """N mentions, each a new thread in the channel, asking a question only this bot is asked."""
    questions = [f"{bot[0]}{i:05d}" for i in range(n)]
    return [
        Mention(q, f"{1700000000 + index}.{i + 1:06d}", answer_text(q, deltas))
        for i, q in enumerate(questions)
    ]


async def run_pass(
    bot: BotProcess, standins: StandIns, mentions: list[Mention], seconds: float, wait: float
) -> PassFigures:
    """Deliver every mention at once, follow the answers until all are whole in Slack (or
    nothing has happened for QUIET seconds), wait for the bot to be idle, and measure."""
    for mention in mentions:
        standins.expect(mention)
    # aiohttp rather than httpx: httpx's pool costs O(connections) per request, which at a
    # thousand concurrent deliveries made this process the bottleneck.
    timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as client:
        await warm_up(client, bot.events_url)
        await asyncio.sleep(SETTLE_AFTER_WARM_UP)
        cpu_before, own_before, started = bot.cpu_seconds(), _own_cpu(), time.monotonic()
        await asyncio.gather(*(deliver(client, bot.events_url, m) for m in mentions))
    deadline = started + seconds + wait
    while time.monotonic() < deadline and not all(m.complete_at for m in mentions):
        quiet = time.monotonic() - standins.last_activity
        if time.monotonic() > started + seconds and quiet > QUIET and await bot.idle():
            break  # nothing reached Slack or the agent for a while, and the bot does nothing
        await asyncio.sleep(POLL)
    await bot.settle()
    elapsed = time.monotonic() - started
    return PassFigures(
        bot=bot.name,
        n=len(mentions),
        completed=sum(m.complete for m in mentions),
        no_message=sum(not m.messages for m in mentions),
        refused=sum(m.status != 200 for m in mentions),
        cpu_seconds=bot.cpu_seconds() - cpu_before,
        peak_rss_mb=bot.peak_rss_mb(),
        acked=[m.acked_at - m.sent_at for m in mentions if m.acked_at],
        first_message=[m.first_message_at - m.sent_at for m in mentions if m.first_message_at],
        first_text=[m.first_text_at - m.sent_at for m in mentions if m.first_text_at],
        added=[
            m.complete_at - m.stream_ended for m in mentions if m.complete_at and m.stream_ended
        ],
        slack_calls=dict(standins.calls[bot.token]),
        standin_cpu=_own_cpu() - own_before,
        tick_late_p99=percentile(standins.clock.lateness, 0.99),
        seconds=elapsed,
    )


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bot_process(
    name: str, standins: StandIns, database_url: str, args: argparse.Namespace, workdir: Path
) -> BotProcess:
    port = free_port()
    env = {
        "SLACK_BOT_TOKEN": f"xoxb-load-{name}",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": f"{standins.base_url}/api/",
        "AGENT_URL": f"{standins.base_url}/agent",
    }
    if name == "plain":
        command = [
            sys.executable,
            str(Path(__file__).with_name("plain_bot.py")),
            "--port",
            str(port),
        ]
        return BotProcess(name, command, env, port, workdir, ready_path="/slack/events")
    env |= {
        "ORCH_DATABASE_URL": database_url,
        "ORCH_UPDATE_INTERVAL": "1.0",
        "ORCH_SHUTDOWN_GRACE": "0",
    }
    run = ["-m", "orchestrator", "run", "--http", "--host", "127.0.0.1", "--port", str(port)]
    if args.profile:
        profiler = ["-m", "pyinstrument", "-r", "text", "-o", str(Path(args.profile).resolve())]
        run = [*profiler, *run]
    return BotProcess(name, [sys.executable, *run], env, port, workdir, ready_path="/readyz")


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    standins = StandIns(args.deltas, args.seconds)
    await standins.start()
    try:
        folder = (
            contextlib.nullcontext(tempfile.mkdtemp(prefix="load-bench-", dir=args.keep))
            if args.keep
            else tempfile.TemporaryDirectory(prefix="load-bench-")
        )
        with folder as tmp:
            async with contextlib.AsyncExitStack() as stack:
                bots = []
                for name in args.bots:
                    workdir = Path(tmp) / name
                    workdir.mkdir()
                    url = await stack.enter_async_context(
                        scratch_database(args.db, workdir, "orch_load")
                    )
                    bot = bot_process(name, standins, url, args, workdir)
                    await bot.start()
                    stack.push_async_callback(bot.stop)
                    bots.append(bot)
                standins.reset()  # the calls made while the bots started are not counted
                passes = [
                    run_pass(
                        bot,
                        standins,
                        mentions_for(bot.name, index, args.n, args.deltas),
                        args.seconds,
                        args.wait,
                    )
                    for index, bot in enumerate(bots)
                ]
                if args.one_at_a_time:
                    results = [await one for one in passes]
                else:
                    results = list(await asyncio.gather(*passes))
    finally:
        await standins.stop()
    report(results, args)
    return 0


def report(results: list[PassFigures], args: argparse.Namespace) -> None:
    print(
        f"load: {args.n} concurrent mentions, answers of {args.deltas} deltas over "
        f"{args.seconds:g} s, service on {args.db}"
    )
    by_name = {r.bot: r for r in results}
    names = [r.bot for r in results]
    rows: list[tuple[str, list[str], str]] = []

    def row(label: str, values: list[float], fmt: str, ratio: bool = False) -> None:
        cells = [format(v, fmt) if not math.isnan(v) else "-" for v in values]
        quotient = ""
        if ratio and {"plain", "service"} <= by_name.keys():
            plain, service = values[names.index("plain")], values[names.index("service")]
            quotient = f"{service / plain:.2f}x" if plain and not math.isnan(plain) else "-"
        rows.append((label, cells, quotient))

    row("answers completed", [r.completed for r in results], "d")
    row("answers lost", [r.lost for r in results], "d")
    row("mentions with no message", [r.no_message for r in results], "d")
    row("deliveries refused", [r.refused for r in results], "d")
    row("CPU per answer (ms)", [r.cpu_per_answer_ms for r in results], ".1f", ratio=True)
    row("peak RSS (MB)", [r.peak_rss_mb for r in results], ".1f", ratio=True)
    for p in (0.5, 0.99):
        row(f"acknowledged p{p * 100:g} (s)", [percentile(r.acked, p) for r in results], ".2f")
    for p in (0.5, 0.99):
        row(
            f"first message p{p * 100:g} (s)",
            [percentile(r.first_message, p) for r in results],
            ".2f",
        )
    for p in (0.5, 0.99):
        row(f"first text p{p * 100:g} (s)", [percentile(r.first_text, p) for r in results], ".2f")
    for p in (0.5, 0.99):
        row(f"added latency p{p * 100:g} (s)", [percentile(r.added, p) for r in results], ".2f")
    row("Slack calls per answer", [sum(r.slack_calls.values()) / r.n for r in results], ".1f")
    methods = sorted({m for r in results for m in r.slack_calls})
    for method in methods:
        row(f"  {method}", [r.slack_calls.get(method, 0) / r.n for r in results], ".2f")
    width = max(len(label) for label, _, _ in rows)
    print(f"{'figure':<{width}}  " + "  ".join(f"{n:>9}" for n in names) + "  service/plain")
    for label, cells, quotient in rows:
        print(f"{label:<{width}}  " + "  ".join(f"{c:>9}" for c in cells) + f"  {quotient:>8}")
    for r in results:
        print(
            f"pass {r.bot}: {r.seconds:.1f} s; the stand-ins (this process) meanwhile used "
            f"{r.standin_cpu:.1f} s CPU, their clock ticks were late by "
            f"{1000 * r.tick_late_p99:.0f} ms at p99"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="concurrent mentions (default 200)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--deltas", type=int, default=200, help="text deltas per answer")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each answer streams")
    parser.add_argument("--wait", type=float, default=120.0, help="longest wait past the streams")
    parser.add_argument(
        "--bots",
        type=lambda s: s.split(","),
        default=["plain", "service"],
        help="which bots, in order (default plain,service)",
    )
    parser.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="one bot after the other instead of both at once",
    )
    parser.add_argument("--keep", help="keep the bots' logs in a folder made in this one")
    parser.add_argument("--profile", help="profile the service with pyinstrument into this file")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
