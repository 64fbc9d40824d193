"""A plain slack-bolt + httpx-sse bot of the usual kind: the baseline `bench/load.py` compares the
service with.

On `app_mention` it posts "Thinking…" in the thread, streams the AG-UI agent's answer over SSE and
edits the message with `chat.update` once a second, then a last time when the stream ends. No
database, no state machine, no recovery: everything lives in memory and dies with the process.

    SLACK_BOT_TOKEN=... SLACK_SIGNING_SECRET=... SLACK_API_URL=http://.../api/ \\
    AGENT_URL=http://.../agent python bench/plain_bot.py --port 3000

Both HTTP clients are shared: slack_sdk's async client given one aiohttp session (without it,
slack_sdk opens a session and a connection per call, which under a few hundred answers costs this
bot most of its CPU and makes it fall behind its streams), and one `httpx.AsyncClient` for the
agent without a connection limit (httpx's default of 100 would queue the 101st stream).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
import uuid
from typing import Any

import aiohttp
import httpx
from httpx_sse import aconnect_sse
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

UPDATE_INTERVAL = 1.0
MENTION = re.compile(r"<@[A-Z0-9]+>\s*")

app = AsyncApp(
    client=AsyncWebClient(
        token=os.environ["SLACK_BOT_TOKEN"],
        base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
    ),
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
)


async def share_session(_app: object) -> None:
    """One aiohttp session for every Slack call, made on the server's own loop."""
    app.client.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


agent = httpx.AsyncClient(
    timeout=httpx.Timeout(60.0, read=300.0),
    limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
)


def run_input(channel: str, thread_ts: str, text: str) -> dict[str, Any]:
    """An AG-UI `RunAgentInput` with the mention's text as the one user message."""
    return {
        "threadId": f"{channel}:{thread_ts}",
        "runId": str(uuid.uuid4()),
        "state": None,
        "messages": [{"id": str(uuid.uuid4()), "role": "user", "content": text}],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }


async def stream_answer(body: dict[str, Any], on_text: Any) -> str:
    """The agent's answer, calling `on_text(text_so_far)` after every delta."""
    text = ""
    async with aconnect_sse(agent, "POST", os.environ["AGENT_URL"], json=body) as source:
        source.response.raise_for_status()
        async for sse in source.aiter_sse():
            event = json.loads(sse.data)
            kind = event.get("type")
            if kind == "TEXT_MESSAGE_CONTENT":
                text += event["delta"]
                await on_text(text)
            elif kind == "RUN_ERROR":
                raise RuntimeError(event.get("message", "the agent failed"))
            elif kind == "RUN_FINISHED":
                break
    return text


@app.event("app_mention")
async def on_mention(event: dict[str, Any], client: AsyncWebClient) -> None:
    channel = event["channel"]
    thread_ts = event.get("thread_ts") or event["ts"]
    posted = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text="Thinking…")
    ts = posted["ts"]
    last_edit = time.monotonic()
    shown = ""

    async def on_text(text: str) -> None:
        nonlocal last_edit, shown
        if time.monotonic() - last_edit >= UPDATE_INTERVAL:
            last_edit = time.monotonic()
            shown = text
            await client.chat_update(channel=channel, ts=ts, text=text)

    try:
        answer = await stream_answer(
            run_input(channel, thread_ts, MENTION.sub("", event.get("text", ""))), on_text
        )
    except (httpx.HTTPError, RuntimeError) as exc:
        await client.chat_update(channel=channel, ts=ts, text=f"Sorry, that failed: {exc}")
        return
    if answer != shown:
        await client.chat_update(channel=channel, ts=ts, text=answer or "(no answer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    server = app.server(port=args.port, host=args.host)
    server.web_app.on_startup.append(share_session)
    server.start()


if __name__ == "__main__":
    main()
