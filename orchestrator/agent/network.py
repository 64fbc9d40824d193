"""The agent connections' network layer: an httpcore backend on asyncio's own transports.

httpcore reads a response under asyncio through anyio: every read enters a cancel scope with
a timer (`fail_after`), maps exceptions through a context manager, and stops and restarts the
socket's reading (`pause_reading()`/`resume_reading()`, two `epoll_ctl` calls). A model server
sends one SSE event per TCP write, so a stream pays all of that per event: under load it was a
quarter of the process's CPU. httpcore has no asyncio backend of its own (one was proposed and
declined upstream, encode/httpcore#930), so this one implements httpcore's public
`AsyncNetworkBackend` interface with an `asyncio.Protocol`:

- the protocol keeps reading into a buffer (paused above `HIGH_WATER`, resumed below
  `LOW_WATER`), so a read returns what is buffered without waiting, and otherwise waits on one
  future; a read timeout is kept by one timer per connection that follows the deadline;
- a write hands the bytes to the transport and waits only while the transport asks it to
  (`pause_writing`);
- TLS (agents over https, and proxies' tunnels) uses `loop.start_tls`;
- failures are httpcore's exception types, as with its own backends.

`AgentTransport` is httpx's transport with its connection pool given this backend; requests
through a proxy (from the environment) keep httpx's own transports.
"""

from __future__ import annotations

import asyncio
import collections
import math
import socket
import ssl
from collections.abc import Iterable
from typing import Any, Final

import httpcore
import httpx

HIGH_WATER: Final = 256 * 1024  # buffered bytes past which the socket is not read
LOW_WATER: Final = 64 * 1024  # and below which it is read again

SocketOption = tuple[int, int, int] | tuple[int, int, bytes] | tuple[int, int, None, int]


class _Signal:
    """What one task waits for (data, or room to write), with an optional time limit.

    A wait moves the deadline; one timer per connection follows it lazily (it fires at the
    deadline it was set for and, if the wait it was for is over or the deadline has moved,
    sets itself again). A timer made and cancelled per read would cost more than the read.
    """

    __slots__ = ("deadline", "future", "timer")

    def __init__(self) -> None:
        self.future: asyncio.Future[None] | None = None
        self.deadline = math.inf
        self.timer: asyncio.TimerHandle | None = None

    def set(self) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_result(None)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    async def wait(self, limit: float | None, timeout: type[Exception], message: str) -> None:
        """Raises `timeout(message)` after `limit` seconds (None: no limit)."""
        loop = asyncio.get_running_loop()
        self.future = future = loop.create_future()
        if limit is None:
            self.deadline = math.inf
        else:
            self.deadline = loop.time() + limit
            if self.timer is None or self.timer.when() > self.deadline:
                self.close()
                self.timer = loop.call_at(self.deadline, self._check)
        try:
            await future
        except TimeoutError:
            raise timeout(message) from None
        finally:
            self.future = None

    def _check(self) -> None:
        self.timer = None
        future = self.future
        if future is None or future.done() or self.deadline == math.inf:
            return  # the next wait with a limit sets a timer again
        loop = future.get_loop()
        if loop.time() >= self.deadline:
            future.set_exception(TimeoutError())
        else:
            self.timer = loop.call_at(self.deadline, self._check)


class _Reader(asyncio.Protocol):
    """Buffers what a connection receives and wakes the one reader waiting for it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.ended = False  # the peer sent EOF or the connection is gone
        self.error: BaseException | None = None
        self.data = _Signal()
        self.drained = _Signal()
        self.reading_paused = False
        self.writing_paused = False

    # asyncio's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self.data.set()

    def eof_received(self) -> bool:
        self.ended = True
        self.data.set()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        self.writing_paused = False
        self.data.set()
        self.drained.set()
        self.data.close()
        self.drained.close()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.drained.set()

    # the stream's side

    def take(self, max_bytes: int) -> bytes:
        chunk = self.chunks.popleft()
        if len(chunk) > max_bytes:
            self.chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        self.size -= len(chunk)
        if self.reading_paused and self.size <= LOW_WATER and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return chunk


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection (TCP, or TLS over it)."""

    def __init__(self, transport: asyncio.Transport, reader: _Reader) -> None:
        self._transport = transport
        self._reader = reader

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        reader = self._reader
        while not reader.chunks:
            if reader.ended:
                if reader.error is not None:
                    raise httpcore.ReadError(_said(reader.error))
                return b""
            await reader.data.wait(timeout, httpcore.ReadTimeout, "timed out reading")
        return reader.take(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        reader = self._reader
        if reader.ended or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        while reader.writing_paused and not reader.ended:
            await reader.drained.wait(timeout, httpcore.WriteTimeout, "timed out writing")
        if reader.error is not None:
            raise httpcore.WriteError(_said(reader.error))

    async def aclose(self) -> None:
        self._transport.close()
        await asyncio.sleep(0)  # the transport closes its socket on the loop's next turn

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        reader = _Reader()  # the TLS transport's own buffer; the TCP one is left behind
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, reader, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except OSError as exc:  # ssl.SSLError and ConnectionError among them
            self._transport.close()
            raise httpcore.ConnectError(_said(exc)) from exc
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        reader.transport = transport
        return AsyncioStream(transport, reader)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle connection that is readable was closed or is broken
            return bool(self._reader.chunks) or self._reader.ended
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info in ("ssl_object", "socket"):
            return self._transport.get_extra_info(info)
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens `AsyncioStream`s over TCP (agents are not reached over Unix sockets)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = None if local_address is None else (local_address, 0)
        try:
            async with asyncio.timeout(timeout):
                transport, reader = await loop.create_connection(
                    _Reader, host, port, local_addr=local
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:
            raise httpcore.ConnectError(_said(exc)) from exc
        _apply(transport, socket_options)
        assert isinstance(transport, asyncio.Transport)
        return AsyncioStream(transport, reader)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _said(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _apply(transport: asyncio.BaseTransport, options: Iterable[SocketOption] | None) -> None:
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is not None:
        for option in options or ():
            sock.setsockopt(*option)


class AgentTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, its connection pool on `AsyncioBackend` (no proxy; see the module)."""

    def __init__(self, *, verify: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=verify, limits=limits)
        # httpx's transport offers no way to pass a network backend to the pool it builds, so
        # the pool is built again here, with the same settings (httpx 0.27 and 0.28 keep it in
        # `_pool` and use it only there).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )


def agent_http_client(
    *, timeout: httpx.Timeout, limits: httpx.Limits, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncClient:
    """The shared client for agents: direct connections through `AgentTransport`; a proxy set
    in the environment (HTTPS_PROXY and the like) still applies, through httpx's own."""
    if not isinstance(verify, ssl.SSLContext):  # one context for both (each costs ~20 ms)
        verify = httpx.create_ssl_context(verify=verify)
    return httpx.AsyncClient(
        verify=verify,
        timeout=timeout,
        limits=limits,
        mounts={"all://": AgentTransport(verify=verify, limits=limits)},
    )
