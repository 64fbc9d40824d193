"""Slack Web API calls spent on one streamed answer, per streaming mode.

A 2,000-token answer (a token is ~4 characters, one `TEXT_MESSAGE_CONTENT` delta each)
arrives evenly over 20 seconds with the production interval of 1 s, and is published against the
sandbox Slack emulator over real HTTP by:

- `update`: `Publisher` (first message, throttled `chat.update`, continuations as posts);
- `native`: `NativePublisher` (`chat.startStream`, `chat.appendStream` on the interval,
  rollover before 3,000 characters, `chat.stopStream`).

Time is compressed: the interval, the stream age limit, the emulator's stream lifetime and the
delta pacing are all divided by `--speedup` (default 20, so the 20 simulated seconds take one).
The publishers only ever compare time against their interval, so the number of calls depends on
the duration divided by the interval and is the same as at full speed (give or take one flush
at the edges, from scheduling jitter).

Two more figures, at full speed:

- time to first text: the answer's message opened, the text's start, then its first token 50 ms
  later; how long until the emulator holds that token, with the production interval of 1 s,
  when the first text is sent at once (`changed(now=True)`, what the engine does) and when it
  waits for the throttle (as before);
- one kept HTTP session against a new session per call (slack_sdk's default without
  `session=`): `--calls` `chat.update`s in a row, the process's CPU per call (this process
  also runs the emulator, so the figure includes its side) and the TCP connections used.

Run as `python bench/slack_calls.py [--tokens N] [--seconds S] [--speedup K] [--calls N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.sandbox.slack_emulator import SlackEmulator
from orchestrator.slack.native_publisher import NativePublisher
from orchestrator.slack.publisher import Publisher
from renderers import done, streaming
from renderers.view import ThreadView

CHANNEL = "C0BENCH"
USER = "U0BENCH"
INTERVAL = 1.0  # production ORCH_UPDATE_INTERVAL
MAX_AGE = 210.0  # NativePublisher's default
STREAM_TTL = 240.0  # Slack's stream lifetime, as the emulator keeps it


def tokens_of(count: int) -> list[str]:
    """Tokens of 4 characters (a 3-letter word and a space), a paragraph every 60 tokens."""
    return [f"w{i % 100:02d}" + ("\n\n" if i % 60 == 59 else " ") for i in range(count)]


async def run_mode(mode: str, tokens: list[str], seconds: float, speedup: float) -> Counter[str]:
    slack = SlackEmulator(channels=[CHANNEL], stream_ttl=STREAM_TTL / speedup)
    await slack.start()
    try:
        client = AsyncWebClient(token=slack.token, base_url=slack.api_url)
        thread_ts = slack.post_user_message(CHANNEL, USER, "explain", mention=True)["ts"]
        view = ThreadView(conversation_id="bench", state="streaming", requester=USER)
        interval = INTERVAL / speedup
        publisher: Publisher | NativePublisher
        if mode == "native":
            publisher = NativePublisher(
                client,
                CHANNEL,
                thread_ts,
                view,
                recipient_user_id=USER,
                recipient_team_id=slack.team_id,
                interval=interval,
                max_age=MAX_AGE / speedup,
            )
        else:
            publisher = Publisher(client, CHANNEL, thread_ts, interval=interval)
        render = lambda: streaming.render(view)  # noqa: E731 - what the engine passes
        await publisher.open(render())
        await feed(publisher, view, tokens, seconds / speedup, render)
        view.state = "done"
        await publisher.close(done.render(view))
        shown = "".join(m.text for m in slack.thread(CHANNEL, thread_ts)[1:])
        if mode == "native" and shown != view.text:
            raise SystemExit("native: the streamed text differs from the answer")
        return Counter(call.method for call in slack.calls)
    finally:
        await slack.stop()


async def feed(
    publisher: Publisher | NativePublisher,
    view: ThreadView,
    tokens: list[str],
    duration: float,
    render: object,
) -> None:
    loop = asyncio.get_running_loop()
    start, step = loop.time(), duration / len(tokens)
    for index, token in enumerate(tokens):
        view.append_text(token)
        publisher.changed(render, now=index == 0)  # type: ignore[arg-type] # as the engine does
        delay = start + (index + 1) * step - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)


async def first_text(mode: str, at_once: bool) -> float:
    """Seconds from the answer's first token to the emulator holding it."""
    slack = SlackEmulator(channels=[CHANNEL])
    await slack.start()
    shown = asyncio.Event()
    slack.call_watchers.append(lambda call: "w00" in str(call.params) and shown.set())
    try:
        async with aiohttp.ClientSession() as session:
            client = AsyncWebClient(token=slack.token, base_url=slack.api_url, session=session)
            thread_ts = slack.post_user_message(CHANNEL, USER, "explain", mention=True)["ts"]
            view = ThreadView(conversation_id="bench", state="streaming", requester=USER)
            publisher: Publisher | NativePublisher
            if mode == "native":
                publisher = NativePublisher(client, CHANNEL, thread_ts, view, interval=INTERVAL)
            else:
                publisher = Publisher(client, CHANNEL, thread_ts, interval=INTERVAL)
            render = lambda: streaming.render(view)  # noqa: E731 - what the engine passes
            await publisher.open(render())
            publisher.changed(render)  # the text's start: nothing to show yet
            await asyncio.sleep(0.05)
            started = time.perf_counter()
            view.append_text("w00 ")
            publisher.changed(render, now=at_once)
            await asyncio.wait_for(shown.wait(), 5)
            elapsed = time.perf_counter() - started
            view.state = "done"
            await publisher.close(done.render(view))
            return elapsed
    finally:
        await slack.stop()


async def calls_cost(shared: bool, calls: int) -> tuple[float, int]:
    """CPU seconds per `chat.update` and the TCP connections used, with one kept session or a
    new session per call."""
    slack = SlackEmulator(channels=[CHANNEL])
    await slack.start()
    try:
        async with aiohttp.ClientSession() as session:
            client = AsyncWebClient(
                token=slack.token, base_url=slack.api_url, session=session if shared else None
            )
            posted = await client.chat_postMessage(channel=CHANNEL, text="w00")
            cpu = time.process_time()
            for index in range(calls):
                await client.chat_update(channel=CHANNEL, ts=posted["ts"], text=f"w{index}")
            per_call = (time.process_time() - cpu) / calls
        return per_call, len(slack.connections(slack.calls_to("chat.update")))
    finally:
        await slack.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--speedup", type=float, default=20.0)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    tokens = tokens_of(args.tokens)
    chars = sum(map(len, tokens))
    print(
        f"{args.tokens} tokens ({chars} characters) over {args.seconds:g} simulated s, "
        f"interval {INTERVAL:g} s, time compressed {args.speedup:g}x"
    )
    print(f"{'mode':<8} {'method':<20} {'calls':>5}")
    for mode in ("update", "native"):
        counts = await run_mode(mode, tokens, args.seconds, args.speedup)
        for method, count in sorted(counts.items()):
            print(f"{mode:<8} {method:<20} {count:>5}")
        print(f"{mode:<8} {'total':<20} {sum(counts.values()):>5}")

    print(f"\ntime to first text, interval {INTERVAL:g} s")
    for mode in ("update", "native"):
        at_once = await first_text(mode, at_once=True)
        throttled = await first_text(mode, at_once=False)
        print(
            f"{mode:<8} at once {at_once * 1000:7.1f} ms   after the throttle "
            f"{throttled * 1000:7.1f} ms"
        )

    print(f"\n{args.calls} chat.update calls in a row (CPU of client and emulator)")
    per_call_new, connections_new = await calls_cost(False, args.calls)
    per_call_kept, connections_kept = await calls_cost(True, args.calls)
    for label, per_call, connections in (
        ("a new session per call", per_call_new, connections_new),
        ("one kept session", per_call_kept, connections_kept),
    ):
        print(f"{label:<24} {per_call * 1000:6.2f} ms CPU per call, {connections:>4} connections")
    print(f"{'ratio new/kept':<24} {per_call_new / per_call_kept:6.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
