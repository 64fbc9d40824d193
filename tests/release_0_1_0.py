"""A database as release 0.1.0 left it, and the Slack thread that goes with it.

`tests/data/release-0.1.0/` holds the tables 0.1.0 created (its own DDL, with no migration
history) and what it had stored after a mention that paused for an approval form while a
follow-up waited in the queue, with the messages Slack showed then. The Slack emulator gets the
messages again (with new timestamps); the rows get the same timestamps.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine

from orchestrator.core.ids import conversation_id
from orchestrator.sandbox.slack_emulator import SlackEmulator
from tests.harness import CHANNEL

DATA = Path(__file__).parent / "data" / "release-0.1.0"
_TOKEN = re.compile(r"\$(TS\d+|THREAD_ID)")


def fixture() -> dict[str, Any]:
    return json.loads((DATA / "pending-approval.json").read_text())


async def create_schema(url: str) -> None:
    """The tables 0.1.0 created in an empty database, and its version row."""
    engine = create_async_engine(url)
    dialect = engine.dialect.name
    script = (DATA / f"schema-{dialect}.sql").read_text()
    lines = [line for line in script.splitlines() if not line.startswith("--")]
    statements = [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()


async def post_thread(slack: SlackEmulator, data: dict[str, Any]) -> dict[str, str]:
    """Posts the thread's messages again; `$TSn` and `$THREAD_ID` -> their values now."""
    values: dict[str, str] = {}
    client = AsyncWebClient(token=slack.token, base_url=slack.api_url)
    for message in data["slack_messages"]:
        root = values.get("TS1")
        if message["from"] == "bot":
            response = await client.chat_postMessage(
                channel=CHANNEL, text=message["text"], blocks=message["blocks"], thread_ts=root
            )
            ts = response["ts"]
        else:
            event = slack.post_user_message(
                CHANNEL, message["from"], message["text"], root, mention=message["mention"]
            )
            ts = event["ts"]
        values[message["ts"].removeprefix("$")] = ts
    values["THREAD_ID"] = conversation_id(slack.team_id, CHANNEL, values["TS1"])
    return values


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _TOKEN.sub(lambda m: values[m.group(1)], value)
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    return value


async def store_rows(url: str, data: dict[str, Any], values: dict[str, str]) -> None:
    """Inserts what 0.1.0 had stored, in the tables as they are in the database."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            tables = MetaData()
            await conn.run_sync(tables.reflect)
            for name, rows in data["rows"].items():
                await conn.execute(tables.tables[name].insert(), _fill(rows, values))
    finally:
        await engine.dispose()


async def database_of_release_0_1_0(url: str, slack: SlackEmulator) -> dict[str, str]:
    """The whole picture: schema, rows and Slack thread. Returns the values of the tokens."""
    data = fixture()
    await create_schema(url)
    values = await post_thread(slack, data)
    await store_rows(url, data, values)
    return values
