"""A lean HTTP/1.1 load-generator client: pre-serialized requests on keep-alive connections.

httpx costs the benchmark process about 0.8 ms of CPU per request, so on a small machine it, not the server,
sets the ceiling. Here each request is a ready-made byte string written to an idle keep-alive connection
(one request in flight per connection, no pipelining) and the response is parsed with httptools (the
parser uvicorn uses) only as far as its status code and end.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast

import httptools


class RawHTTPError(OSError):
    """The connection closed or the response could not be parsed (an OSError, so load.py counts it as 0)."""


def request_head(host: str, path: str) -> bytes:
    """The request line and Host header of a POST to `path` (the part that names the server)."""
    return f"POST {path} HTTP/1.1\r\nHost: {host}\r\n".encode()


def request_tail(body: bytes, headers: dict[str, str]) -> bytes:
    """Content-Length, `headers`, the blank line and `body`: the rest of the request after request_head."""
    lines = [f"Content-Length: {len(body)}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection answering one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[int] | None = None
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport, self.open = cast(asyncio.Transport, transport), True  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(RawHTTPError(f"bad response: {exc}"))

    def on_message_complete(self) -> None:
        """httptools callback: the whole response has arrived."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.parser.get_status_code())
        if not self.parser.should_keep_alive():
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail(RawHTTPError(f"connection lost: {exc}"))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        """Close the connection (it is not reused)."""
        self.open = False
        if self.transport is not None:
            self.transport.close()

    async def roundtrip(self, data: bytes) -> int:
        """Write one request and wait for its response's status code."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


@dataclass
class RawClient:
    """A pool of at most `limit` keep-alive connections to host:port; a request waits when all are busy."""

    host: str
    port: int
    limit: int = 256
    idle: list[_Connection] = field(default_factory=list)
    opened: int = 0
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.limit)

    async def _connection(self) -> _Connection:
        while self.idle:
            conn = self.idle.pop()
            if conn.open:
                return conn
        _, conn = await asyncio.get_running_loop().create_connection(_Connection, self.host, self.port)
        self.opened += 1
        return conn

    async def send(self, data: bytes) -> int:
        """Send one pre-serialized request; its HTTP status. Raises OSError (RawHTTPError) on failure."""
        async with self._slots:
            conn = await self._connection()
            try:
                status = await conn.roundtrip(data)
            except BaseException:
                conn.close()
                raise
            if conn.open:
                self.idle.append(conn)
            return status

    def close(self) -> None:
        """Close every idle connection."""
        for conn in self.idle:
            conn.close()
        self.idle.clear()
