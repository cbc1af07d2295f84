"""A small HTTP/1.1 keep-alive client on asyncio streams, for the transformer's predictor hop.

httpx spends about a millisecond of Python per request (its connection pool, header models and
event hooks); between two of our own processes on a fast path that was most of the
transformer's latency. This client keeps a pool of open connections to one ``host:port``, writes
a ``POST`` with ``Content-Length`` and reads the status line, headers and a ``Content-Length`` or
chunked body. A connection that fails is dropped and the request retried once on a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit


class HttpError(Exception):
    """The server could not be reached, or answered something that is not HTTP/1.1."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class KeepAliveClient:
    def __init__(self, base_url: str, *, timeout_s: float = 10.0, max_idle: int = 64) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host:port URLs are supported (got {base_url!r})")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self._idle: list[_Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._max_idle = max_idle
        self._host_header = f"{self.host}:{self.port}".encode()

    async def post(
        self, path: str, body: bytes, content_type: str = "application/json"
    ) -> HttpResponse:
        head = (
            f"POST {self.prefix}{path} HTTP/1.1\r\nHost: ".encode()
            + self._host_header
            + f"\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that opened them
            for connection in self._idle:
                _close(connection)
            self._idle.clear()
            self._loop = loop
        for attempt in (0, 1):
            reused = bool(self._idle)
            connection = self._idle.pop() if reused else await self._connect()
            try:
                response, keep = await asyncio.wait_for(
                    self._exchange(connection, head + body), self.timeout_s
                )
            except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as error:
                _close(connection)
                if attempt == 0 and reused and not isinstance(error, TimeoutError):
                    continue  # a pooled connection the server had closed: once more, fresh
                raise HttpError(f"{self.host}:{self.port}: {error!r}") from None
            if keep and len(self._idle) < self._max_idle:
                self._idle.append(connection)
            else:
                _close(connection)
            return response
        raise HttpError(f"{self.host}:{self.port}: no answer")  # pragma: no cover

    async def _connect(self) -> _Connection:
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout_s
            )
        except (OSError, TimeoutError) as error:
            raise HttpError(f"cannot connect to {self.host}:{self.port}: {error!r}") from None

    @staticmethod
    async def _exchange(connection: _Connection, request: bytes) -> tuple[HttpResponse, bool]:
        reader, writer = connection
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status_line = lines[0].split(b" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP/1.1 response: {lines[0][:80]!r}")
        status = int(status_line[1])
        length: int | None = None
        chunked = False
        keep = status_line[0] == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif key == b"connection":
                keep = value.strip().lower() == b"keep-alive" or (
                    keep and value.strip().lower() != b"close"
                )
        if chunked:
            body = await _read_chunked(reader)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            body = await reader.read()
            keep = False
        return HttpResponse(status, body), keep

    async def close(self) -> None:
        while self._idle:
            _close(self._idle.pop())


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _close(connection: _Connection) -> None:
    with contextlib.suppress(Exception):
        connection[1].close()
