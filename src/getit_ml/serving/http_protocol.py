"""The v2 REST server's HTTP/1.1 connections: uvicorn's httptools protocol, made to defend itself
and to answer every error in JSON.

uvicorn's ``HttpToolsProtocol`` parses requests fast, but at the edges it behaves like a generic
web server, not like an inference API: a malformed request (a bad ``Content-Length``, invalid
HTTP) gets a ``text/plain`` 400, a client that sends half a request keeps its connection (and
uvicorn's task) forever, a connection that never sends anything is never closed, its
``limit_concurrency`` answers ``text/plain``, and on shutdown it closes idle keep-alive
connections at once, racing clients that are writing a request on them at that moment.
:class:`GuardedHttpProtocol` keeps uvicorn's parser and request cycle and changes those edges:

* **JSON errors**: invalid HTTP is ``400 {"error": "invalid HTTP request: <reason>"}`` with
  ``content-type: application/json`` (and the connection closed, as HTTP requires);
* **a read timeout** (``read_timeout_s``): from a request's first byte until its last, a client
  has that long; a slow or half-sent request gets ``408`` and the connection is closed. A
  connection that opens and sends nothing is closed after the keep-alive timeout;
* **a head limit** (``max_head_bytes``): a request line plus headers larger than that is ``431``;
* **a connection cap** (``max_connections``): one more connection than that is answered ``503``
  with ``Retry-After`` when it sends its request, then closed (read and dropped first, so the
  client reads the answer instead of a reset);
* **a graceful drain**: on shutdown a connection with a request in flight finishes it and says
  ``Connection: close``; an idle keep-alive connection is kept ``drain_linger_s`` longer, so a
  request already on its way is served (``Connection: close``) instead of being cut, then closed.

The limits are class attributes: :func:`guarded_protocol` makes a subclass holding one server's
(uvicorn builds one protocol instance per connection from the class it is given). The hot path
gains one attribute test per ``data_received``; a timer is armed only while a request is
incomplete after a read (never for a request that arrives in one segment).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar, Final

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

logger = logging.getLogger(__name__)

DEFAULT_READ_TIMEOUT_S: Final = 15.0
DEFAULT_MAX_CONNECTIONS: Final = 1024
DEFAULT_MAX_HEAD_BYTES: Final = 64 * 1024
DEFAULT_DRAIN_LINGER_S: Final = 0.5
#: ``Retry-After`` (seconds) of the 503 a connection over the cap gets.
REFUSED_RETRY_AFTER_S: Final = 1
#: How long a refused connection may take to send its request (it is then closed unanswered),
#: and how long its answer waits for the client to close after reading it.
_REFUSED_LINGER_S: Final = 2.0
#: A warning about refused connections at most this often (a flood would flood the log too).
_REFUSED_LOG_EVERY_S: Final = 10.0


def error_response(
    status: int,
    message: str,
    default_headers: list[tuple[bytes, bytes]] | None = None,
    *,
    retry_after_s: int | None = None,
) -> bytes:
    """A complete ``status`` response with ``{"error": message}`` that closes the connection."""
    body = orjson.dumps({"error": message})
    parts = [STATUS_LINE[status]]
    for name, value in default_headers or []:
        parts.extend([name, b": ", value, b"\r\n"])
    parts.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body))
    if retry_after_s is not None:
        parts.append(b"retry-after: %d\r\n" % retry_after_s)
    parts.extend([b"connection: close\r\n\r\n", body])
    return b"".join(parts)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools connection with JSON errors, a read timeout, a head limit, a
    connection cap and a lingering drain (see the module docstring)."""

    read_timeout_s: ClassVar[float] = DEFAULT_READ_TIMEOUT_S
    #: ``None``: no cap.
    max_connections: ClassVar[int | None] = DEFAULT_MAX_CONNECTIONS
    max_head_bytes: ClassVar[int] = DEFAULT_MAX_HEAD_BYTES
    drain_linger_s: ClassVar[float] = DEFAULT_DRAIN_LINGER_S
    _refused_since_log: ClassVar[int] = 0
    _refused_logged_at: ClassVar[float] = 0.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        #: A request has begun and its last byte has not arrived.
        self._reading = False
        #: ... and its head (request line + headers) is not complete either.
        self._in_head = False
        self._head_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        #: Over the connection cap: answered 503 and closed, never served.
        self._refused = False
        self._refused_answered = False
        self._draining = False

    # ------------------------------------------------------------------------ the connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        cap = self.max_connections
        if cap is not None and len(self.connections) >= cap:
            self._refuse(transport)
            return
        super().connection_made(transport)
        # uvicorn arms its keep-alive timeout only after a response: a connection that never
        # sends a request would otherwise stay open (a file descriptor) for ever.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._answer_refused()
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # uvicorn's own handling (the server runs with ws="none": served as plain HTTP).
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as error:
            reason = str(error) or type(error).__name__
            logger.info("invalid HTTP request from %s: %s", self.client, reason)
            self._fail(400, f"invalid HTTP request: {reason}")
            return
        if self._reading and not self.transport.is_closing():
            if self._in_head:
                self._head_bytes += len(data)
                if self._head_bytes > self.max_head_bytes:
                    self._fail(
                        431,
                        f"the request line and headers exceed {self.max_head_bytes} bytes",
                    )
                    return
            if self._timer is None:
                self._timer = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    # ---------------------------------------------------------------------- parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = True
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False  # the answer says "Connection: close"

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = False
        self._cancel_timer()

    # ------------------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """The server drains: finish what is in flight, then close (see the module
        docstring)."""
        self._draining = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
        elif not self._reading:
            # Idle: a request the client is sending right now still gets its answer.
            self.loop.call_later(self.drain_linger_s, self._close_if_idle)
        # (A request whose head is still arriving: on_headers_complete turns keep-alive off,
        # and the read timeout bounds it.)

    def _close_if_idle(self) -> None:
        cycle = self.cycle
        if not self._reading and (cycle is None or cycle.response_complete):
            self.transport.close()

    # ------------------------------------------------------------------------------- helpers
    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _read_timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing() or not self._reading:
            return
        cycle = self.cycle
        if self._in_head:
            # The cycle is the previous request's: still answering it (pipelining) means the
            # connection cannot carry another answer now.
            answered = cycle is not None and not cycle.response_complete
        else:
            answered = cycle is not None and cycle.response_started
        if answered:
            self.transport.close()
            return
        logger.info("request from %s not received within %gs", self.client, self.read_timeout_s)
        self._fail(408, f"the request was not received within {self.read_timeout_s:g} s")

    def _fail(self, status: int, message: str) -> None:
        """Answer ``status`` with a JSON error and close (the request, if any, is abandoned)."""
        self._cancel_timer()
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.transport.close()  # an answer is half written: nothing else can follow it
            return
        if cycle is not None and not cycle.response_complete:
            # The app is waiting for the rest of this body: it gets a disconnect, and whatever it
            # answers goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.write(error_response(status, message, self.server_state.default_headers))
        self.transport.close()

    def _refuse(self, transport: asyncio.Transport) -> None:
        self._refused = True
        self.transport = transport
        self._timer = self.loop.call_later(_REFUSED_LINGER_S, transport.close)
        cls = type(self)
        cls._refused_since_log += 1
        now = time.monotonic()
        if now - cls._refused_logged_at >= _REFUSED_LOG_EVERY_S:
            logger.warning(
                "%d connection(s) refused: at the cap of %s open connections",
                cls._refused_since_log, self.max_connections,
            )  # fmt: skip
            cls._refused_since_log = 0
            cls._refused_logged_at = now

    def _answer_refused(self) -> None:
        if self._refused_answered:
            return  # the rest of the request: dropped
        self._refused_answered = True
        self.transport.write(
            error_response(
                503,
                f"the server is at its limit of {self.max_connections} connections; retry later",
                self.server_state.default_headers,
                retry_after_s=REFUSED_RETRY_AFTER_S,
            )
        )
        # A lingering close: stop writing, keep reading (and dropping) until the client closes or
        # the timer does, so that unread request bytes do not turn the close into a reset that
        # destroys the answer before the client reads it.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:  # pragma: no cover - TCP transports can
            self.transport.close()


def guarded_protocol(
    *,
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
    drain_linger_s: float = DEFAULT_DRAIN_LINGER_S,
) -> type[GuardedHttpProtocol]:
    """A :class:`GuardedHttpProtocol` subclass with these limits (uvicorn's ``Config(http=...)``
    takes the class; each server gets its own, so servers in one process never share limits or
    refusal counts)."""
    if read_timeout_s <= 0:
        raise ValueError(f"read_timeout_s must be positive (got {read_timeout_s})")
    if max_connections is not None and max_connections < 1:
        raise ValueError(f"max_connections must be positive (got {max_connections})")
    if max_head_bytes < 1024:
        raise ValueError(f"max_head_bytes must be at least 1024 (got {max_head_bytes})")
    if drain_linger_s < 0:
        raise ValueError(f"drain_linger_s must not be negative (got {drain_linger_s})")

    class Guarded(GuardedHttpProtocol):
        pass

    Guarded.read_timeout_s = read_timeout_s
    Guarded.max_connections = max_connections
    Guarded.max_head_bytes = max_head_bytes
    Guarded.drain_linger_s = drain_linger_s
    return Guarded
