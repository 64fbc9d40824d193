"""A PostgreSQL server that goes away while the service runs: a message is answered "please send
it again" (asyncpg's refused connection is a database failure like the others), and once the
server is back the same delivery is taken."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

from tests.databases import fresh_postgres
from tests.harness import ALICE, CHANNEL, SECRET, Harness

NOT_TAKEN = "I could not take this message"


class Gate:
    """A TCP relay on 127.0.0.1 to the PostgreSQL server, which can be closed (as a server that
    went away) and opened again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@contextlib.asynccontextmanager
async def gated_postgres() -> AsyncIterator[tuple[str, Gate]]:
    async with fresh_postgres() as url:
        parsed = make_url(url)
        gate = Gate(parsed.host or "127.0.0.1", parsed.port or 5432)
        await gate.open()
        yield parsed.set(port=gate.port).render_as_string(hide_password=False), gate
        with contextlib.suppress(AssertionError):
            await gate.close()


async def test_a_server_gone_is_answered_and_the_redelivery_is_taken(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async with gated_postgres() as (url, gate):
        await harness.start("answer", ORCH_DATABASE_URL=url)
        first = await harness.mention("before the server went away")
        await harness.settle(first, ("done",))

        await gate.close()
        event_ = harness.slack.post_user_message(CHANNEL, ALICE, "take this", mention=True)
        with caplog.at_level(logging.ERROR, logger="orchestrator.slack"):
            response = await harness.slack.deliver_event(
                harness.events_url, SECRET, event_, event_id="EvGone"
            )
        assert response.status_code == 200
        [notice] = [m.text for m in harness.thread_messages(event_["ts"])]
        assert NOT_TAKEN in notice and "send it again" in notice
        [record] = [r for r in caplog.records if r.getMessage().startswith("message not taken")]
        assert "cannot connect" in record.__dict__["error"]
        assert len(harness.agent.requests) == 1

        await gate.open()  # the server is back: Slack delivers the same event once more
        await harness.slack.deliver_event(
            harness.events_url, SECRET, event_, event_id="EvGone", retry_num=1
        )
        await harness.settle(event_["ts"], ("done",))
        assert harness.agent.requests[-1].body["messages"][-1]["content"] == "take this"
        await harness.stop()
