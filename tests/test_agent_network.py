"""The agents' HTTP client on its asyncio network backend, against real servers on loopback:
what httpx's own backend does (whole bodies, keep-alive, timeouts, cut and reset connections,
uploads, TLS, proxies from the environment), done by `orchestrator.agent.network`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import trustme

from orchestrator.agent.network import HIGH_WATER, AsyncioStream, agent_http_client

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)


@contextlib.asynccontextmanager
async def server(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 running `handler` per connection; yields its port."""
    tasks: set[asyncio.Task[None]] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(connected, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def client(
    *,
    read: float = 5.0,
    connect: float = 5.0,
    write: float = 5.0,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    timeout = httpx.Timeout(5.0, read=read, connect=connect, write=write)
    return agent_http_client(timeout=timeout, limits=LIMITS, verify=verify)


async def request_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return head[0], headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    return await reader.readexactly(int(headers.get("content-length", "0")))


CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def test_a_stream_sent_one_event_per_write_arrives_whole_and_in_order() -> None:
    events = [f'data: {{"n": {i}}}\n\n'.encode() for i in range(300)]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(CHUNKED_HEAD)
        for event in events:
            writer.write(chunk(event))
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with (
        server(handler) as port,
        client() as http,
        http.stream("POST", f"http://127.0.0.1:{port}/", json={}) as response,
    ):
        stream = response.extensions["network_stream"]
        received = b"".join([part async for part in response.aiter_bytes()])
    assert received == b"".join(events)
    assert isinstance(stream, AsyncioStream)  # not httpx's own backend


async def test_a_body_larger_than_the_buffer_read_slowly_arrives_whole() -> None:
    body = bytes(range(256)) * (4 * HIGH_WATER // 256 + 7)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    async with (
        server(handler) as port,
        client() as http,
        http.stream("GET", f"http://127.0.0.1:{port}/") as response,
    ):
        parts = []
        async for part in response.aiter_raw():
            parts.append(part)
            await asyncio.sleep(0.002)  # the server fills the buffer past its high water
    assert b"".join(parts) == body


async def test_an_upload_larger_than_the_socket_buffers_arrives_whole() -> None:
    body = hashlib.sha256(b"seed").digest() * (16 * 1024 * 1024 // 32)
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, headers = await request_head(reader)
        got = bytearray()
        while len(got) < int(headers["content-length"]):
            got += await reader.read(65536)
            await asyncio.sleep(0.0005)  # a slow reader: the client's writes are paused
        seen.append(hashlib.sha256(got).digest())
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")

    async with server(handler) as port, client() as http:
        response = await http.post(f"http://127.0.0.1:{port}/", content=body)
    assert response.status_code == 204
    assert seen == [hashlib.sha256(body).digest()]


async def test_an_upload_the_server_does_not_read_raises_a_write_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # never reads: the socket buffers fill, the client must wait

    body = b"x" * (64 * 1024 * 1024)
    async with server(handler) as port, client(write=0.3, read=10) as http:
        with pytest.raises(httpx.WriteTimeout):
            await asyncio.wait_for(http.post(f"http://127.0.0.1:{port}/", content=body), 5)


async def test_a_kept_alive_connection_is_reused_and_replaced_once_the_server_closes_it() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        for _ in range(2):
            await request_head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
        # then the server drops the idle connection without saying so in a header

    async with server(handler) as port, client() as http:
        url = f"http://127.0.0.1:{port}/"
        assert [(await http.get(url)).text for _ in range(2)] == ["ok", "ok"]
        assert connections == 1
        await asyncio.sleep(0.1)  # the close reaches the client while the connection is idle
        assert (await http.get(url)).text == "ok"
        assert connections == 2


async def test_a_server_silent_for_longer_than_the_read_timeout_raises_it() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(CHUNKED_HEAD)
        for n in range(8):  # 0.8 s in all, never more than 0.1 s apart
            writer.write(chunk(b"data: %d\n\n" % n))
            await writer.drain()
            await asyncio.sleep(0.1)
        await asyncio.sleep(30)

    received = []
    async with (
        server(handler) as port,
        client(read=0.3) as http,
        http.stream("POST", f"http://127.0.0.1:{port}/", json={}) as response,
    ):
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            async for part in response.aiter_bytes():
                received.append(part)
        waited = time.monotonic() - started
    assert b"".join(received) == b"".join(b"data: %d\n\n" % n for n in range(8))
    assert 0.7 + 0.3 - 0.05 <= waited < 5  # the last chunk came 0.7 s after the first


async def test_a_stream_cut_short_is_a_protocol_error_and_a_reset_a_read_error() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(CHUNKED_HEAD + chunk(b"data: {}\n\n"))
        await writer.drain()

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await cut(reader, writer)
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    for handler, error in ((cut, httpx.RemoteProtocolError), (reset, httpx.ReadError)):
        async with (
            server(handler) as port,
            client() as http,
            http.stream("POST", f"http://127.0.0.1:{port}/", json={}) as response,
        ):
            received = []
            with pytest.raises(error):
                async for part in response.aiter_bytes():
                    received.append(part)
        assert received == [b"data: {}\n\n"]


async def test_a_cancelled_stream_closes_its_connection() -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(CHUNKED_HEAD + chunk(b"data: {}\n\n"))
        await writer.drain()
        await reader.read()  # EOF: the client closed the connection
        closed.set()

    async def read(http: httpx.AsyncClient, url: str, started: asyncio.Event) -> None:
        async with http.stream("POST", url, json={}) as response:
            async for _ in response.aiter_bytes():
                started.set()

    async with server(handler) as port, client() as http:
        started = asyncio.Event()
        task = asyncio.create_task(read(http, f"http://127.0.0.1:{port}/", started))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.wait_for(closed.wait(), 5)


async def test_nothing_listening_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: the connection is refused
        async with client() as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{port}/")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return context


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        _, headers = await request_head(reader)
        await read_body(reader, headers)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()


async def test_an_https_agent_is_reached_over_tls_and_an_untrusted_one_refused(
    ca: trustme.CA,
) -> None:
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    async with server(answer_ok, server_tls(ca)) as port:
        async with client(verify=trusted) as http:
            response = await http.get(f"https://localhost:{port}/")
            assert response.text == "ok"
            assert response.extensions["network_stream"].get_extra_info("ssl_object") is not None
        async with client(verify=ssl.create_default_context()) as http:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(f"https://localhost:{port}/")


async def test_a_server_that_never_finishes_the_tls_handshake_is_a_connect_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async with server(silent) as port, client(connect=0.3) as http:
        with pytest.raises(httpx.ConnectTimeout):
            await http.get(f"https://localhost:{port}/")


async def test_a_proxy_set_in_the_environment_still_carries_the_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines: list[str] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, headers = await request_head(reader)
        lines.append(line)
        await read_body(reader, headers)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nproxied")
        await writer.drain()

    async with server(proxy) as port:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with client() as http:
            response = await http.post("http://agent.example/run", json={})
    assert response.text == "proxied"
    assert lines == ["POST http://agent.example/run HTTP/1.1"]
