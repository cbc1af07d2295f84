"""A small HTTP/1.1 keep-alive client on asyncio streams, for the transformer's predictor hop.

httpx spends about a millisecond of Python per request (its connection pool, header models and
event hooks); between two of our own processes on a fast path that was most of the
transformer's latency. This client keeps a pool of open connections to one ``host:port``, writes
a ``POST`` with ``Content-Length`` and reads the status line, headers and a ``Content-Length`` or
chunked body.

Pooled connections go stale: the server closes an idle keep-alive connection after its timeout
(ours: 65 s), and on a rolling restart it closes them all. A stale connection costs a failed
request unless the client notices, so:

* a connection idle longer than ``idle_timeout_s`` (30 s, below any sane server's keep-alive) is
  dropped instead of reused: the client closes it before the server can;
* a connection whose server has already closed its side (the end of stream has arrived) is
  dropped instead of reused (no system call: the event loop has already read the EOF);
* an idempotent request that fails on a reused connection before any answer arrives — the server
  closed it while the request was on its way — is sent once more, on a *fresh* connection (never
  on another pooled one, which is likely just as stale: the bug behind "predictor is unreachable"
  after a quiet minute). A request that fails on a fresh connection is not retried: the server
  is down or going away, and the caller's answer (503, retry later) should come at once.

``timeout_s`` bounds the whole call — connecting, the retry, the answer — so a caller with a
deadline gets its answer (or :class:`HttpTimeoutError`) within it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

#: Default idle timeout of pooled connections: well below the servers' keep-alive (ours 65 s,
#: KServe's uvicorn 5 s is the exception: set ``idle_timeout_s`` lower for such a server).
DEFAULT_IDLE_TIMEOUT_S: Final = 30.0


class HttpError(Exception):
    """The server could not be reached, or answered something that is not HTTP/1.1."""


class HttpTimeoutError(HttpError):
    """No complete answer within the call's timeout."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def reusable(self, now: float, idle_timeout_s: float) -> bool:
        return (
            now - self.idle_since < idle_timeout_s
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class _NoAnswer(Exception):
    """The connection failed before any byte of an answer arrived (safe to resend)."""


class KeepAliveClient:
    """Keep-alive ``POST``s to one ``http://host:port[/prefix]`` (see the module docstring).

    ``timeout_s``: each call's default bound (a call may pass its own); ``idle_timeout_s``: a
    pooled connection idle longer is closed instead of reused; ``max_idle``: connections kept.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        max_idle: int = 64,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host:port URLs are supported (got {base_url!r})")
        if timeout_s <= 0 or idle_timeout_s <= 0:
            raise ValueError(
                f"timeouts must be positive (got timeout_s={timeout_s}, "
                f"idle_timeout_s={idle_timeout_s})"
            )
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self.idle_timeout_s = idle_timeout_s
        self._idle: list[_Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._max_idle = max_idle
        self._host_header = f"{self.host}:{self.port}".encode()

    async def post(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/json",
        *,
        timeout_s: float | None = None,
        idempotent: bool = True,
    ) -> HttpResponse:
        """``POST body`` to ``path``; the answer, whatever its status. :class:`HttpError` if
        there is none (:class:`HttpTimeoutError` after ``timeout_s``, default the client's)."""
        request = (
            f"POST {self.prefix}{path} HTTP/1.1\r\nHost: ".encode()
            + self._host_header
            + f"\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that opened them
            self._drop_idle()
            self._loop = loop
        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(limit):
                connection = self._pooled(loop.time())
                if connection is not None:
                    try:
                        return await self._send(connection, request, loop)
                    except _NoAnswer as error:
                        if not idempotent:
                            raise HttpError(f"{self.host}:{self.port}: {error}") from None
                        # The server closed it as the request went out: once more, fresh.
                return await self._send(await self._connect(), request, loop)
        except TimeoutError:
            raise HttpTimeoutError(
                f"{self.host}:{self.port}: no answer within {limit:g} s"
            ) from None
        except _NoAnswer as error:
            raise HttpError(f"{self.host}:{self.port}: {error}") from None

    def _pooled(self, now: float) -> _Connection | None:
        """The most recently used pooled connection still worth using (LIFO: the freshest one
        is the least likely to have been closed); stale ones are closed on the way."""
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.reusable(now, self.idle_timeout_s):
                return connection
            connection.close()
        return None

    async def _send(
        self, connection: _Connection, request: bytes, loop: asyncio.AbstractEventLoop
    ) -> HttpResponse:
        try:
            response, keep = await _exchange(connection, request)
        except BaseException:
            connection.close()
            raise
        if keep and len(self._idle) < self._max_idle:
            connection.idle_since = loop.time()
            self._idle.append(connection)
        else:
            connection.close()
        return response

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as error:
            raise HttpError(f"cannot connect to {self.host}:{self.port}: {error!r}") from None
        return _Connection(reader, writer)

    def _drop_idle(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def close(self) -> None:
        self._drop_idle()


async def _exchange(connection: _Connection, request: bytes) -> tuple[HttpResponse, bool]:
    """Write ``request``, read one answer; whether the connection may carry another.
    :class:`_NoAnswer` if it failed before the answer's first byte, :class:`HttpError` after."""
    reader, writer = connection.reader, connection.writer
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if error.partial:
            raise HttpError(f"the answer was cut off: {error.partial[:80]!r}") from None
        raise _NoAnswer("the server closed the connection without answering") from None
    except asyncio.LimitOverrunError:
        raise HttpError("the answer's head is too large") from None
    except OSError as error:
        raise _NoAnswer(f"the connection failed: {error!r}") from None
    try:
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
                token = value.strip().lower()
                keep = token == b"keep-alive" or (keep and token != b"close")
        if chunked:
            body = await _read_chunked(reader)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            body = await reader.read()
            keep = False
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        raise HttpError(f"a broken answer: {error!r}") from None
    return HttpResponse(status, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
