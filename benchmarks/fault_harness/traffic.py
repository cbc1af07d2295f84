"""Load, probes and raw HTTP: what the clients and the kubelet see of a server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

FAMILY = "fraud"
#: A kubelet's probe timeout (the chart's), and the probers' periods.
PROBE_TIMEOUT_S = 1.0
LIVE_PERIOD_S = 0.1
READY_PERIOD_S = 0.2
#: How long a load client waits for one answer before it counts the request as lost.
REQUEST_TIMEOUT_S = 30.0


# ---------------------------------------------------------------------------------- samples
@dataclass(frozen=True)
class Sample:
    """One request or probe: when it began and ended (``time.monotonic()``), the status (0: no
    answer: a connection error or the client's timeout), and what the answer said."""

    kind: str  # infer | live | ready | burst
    start: float
    end: float
    status: int
    retry_after: str | None = None
    content_type: str = ""
    flagged: bool = False
    error: str = ""
    decision: str = ""

    @property
    def latency_s(self) -> float:
        return self.end - self.start

    @property
    def scored(self) -> bool:
        """A normal answer: 200 and not flagged."""
        return self.status == 200 and not self.flagged


def response_flags(body: Any) -> tuple[bool, str]:
    """Whether an inference answer is flagged as not normally scored, and its decision status.

    Looks where a transformer may say so: ``parameters.decision_status`` / ``degraded_rows`` /
    ``degraded``, and an output named ``decision_status``."""
    if not isinstance(body, dict):
        return False, ""
    parameters = body.get("parameters") or {}
    statuses: list[str] = []
    raw = parameters.get("decision_status") if isinstance(parameters, dict) else None
    if isinstance(raw, str):
        statuses.append(raw)
    elif isinstance(raw, list):
        statuses.extend(str(v) for v in raw)
    for output in body.get("outputs") or []:
        if isinstance(output, dict) and output.get("name") == "decision_status":
            statuses.extend(str(v) for v in output.get("data") or [])
    degraded = 0
    if isinstance(parameters, dict):
        with contextlib.suppress(TypeError, ValueError):
            degraded = int(parameters.get("degraded_rows") or 0)
        if parameters.get("degraded") is True:
            degraded = max(degraded, 1)
    flagged = degraded > 0 or any(s != "scored" for s in statuses)
    return flagged, ",".join(dict.fromkeys(statuses))


# ------------------------------------------------------------------------------ raw HTTP I/O
@dataclass(frozen=True)
class RawAnswer:
    """What came back on one connection: the HTTP status (0: none), headers (lower-case names),
    body, seconds until the answer (or the close), and whether the peer closed without one."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_s: float
    closed: bool = False
    error: str = ""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def is_json(self) -> bool:
        return "json" in self.content_type and isinstance(self.json(), dict)


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return status, headers


def read_http(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before an answer" if not buffer else "closed mid-head")
        buffer += chunk
    head, _, body = buffer.partition(b"\r\n\r\n")
    status, headers = _parse_head(head)
    length = headers.get("content-length")
    while True:
        if length is not None and len(body) >= int(length):
            break
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if length is None:
                break
            raise
        if not chunk:
            break
        body += chunk
    return status, headers, body


def raw_exchange(
    port: int, data: bytes, *, timeout_s: float = 5.0, http: bool = True, send_all: bool = True
) -> RawAnswer:
    """Send ``data`` on a fresh connection and read one answer (HTTP, or ``http=False``: the
    first bytes, for Redis)."""
    began = time.monotonic()
    deadline = began + timeout_s
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            if send_all:
                sock.sendall(data)
            if not http:
                sock.settimeout(timeout_s)
                return RawAnswer(0, {}, sock.recv(65536), time.monotonic() - began)
            status, headers, body = read_http(sock, deadline)
            return RawAnswer(status, headers, body, time.monotonic() - began)
    except ConnectionError as error:
        return RawAnswer(0, {}, b"", time.monotonic() - began, closed=True, error=str(error))
    except TimeoutError:
        return RawAnswer(0, {}, b"", time.monotonic() - began, error="timeout")
    except OSError as error:
        return RawAnswer(0, {}, b"", time.monotonic() - began, error=type(error).__name__)


def infer_bytes(document: dict[str, Any] | bytes, content_type: str = "application/json") -> bytes:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    head = (f"POST /v2/models/{FAMILY}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


def get_bytes(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()


def infer_once(port: int, document: dict[str, Any], timeout_s: float = 10.0) -> Sample:
    """One checkout on a fresh connection, as a :class:`Sample`."""
    began = time.monotonic()
    answer = raw_exchange(port, infer_bytes(document), timeout_s=timeout_s)
    return _sample("infer", began, began + answer.elapsed_s, answer.status, answer.headers,
                   answer.body, answer.error)  # fmt: skip


def _sample(
    kind: str, start: float, end: float, status: int, headers: dict[str, str], body: bytes,
    error: str = "",
) -> Sample:  # fmt: skip
    flagged, decision = False, ""
    if status == 200 and kind in ("infer", "burst"):
        try:
            flagged, decision = response_flags(json.loads(body))
        except ValueError:
            flagged, decision = True, "unparsable"
    return Sample(kind, start, end, status, headers.get("retry-after"),
                  headers.get("content-type", ""), flagged, error, decision)  # fmt: skip


async def _aread(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status, headers = _parse_head(head[:-4])
    length = headers.get("content-length")
    body = await reader.readexactly(int(length)) if length is not None else await reader.read()
    return status, headers, body


# ---------------------------------------------------------------------------------- traffic
class Traffic:
    """Steady load and the kubelet's probes against one transformer, in a background thread.

    ``clients`` keep-alive connections each send the checkout, wait for the answer (at most
    :data:`REQUEST_TIMEOUT_S`), then ``think_s``; a request without an answer is recorded with
    status 0 and the connection is opened again. The liveness and readiness probers open a
    fresh connection per probe on a fixed period (a hanging probe does not delay the next) with
    a 1 s timeout, as a kubelet does.
    """

    def __init__(
        self, port: int, document: dict[str, Any], *, clients: int = 4, think_s: float = 0.05
    ) -> None:
        self.port = port
        self.request = infer_bytes(document)
        self.clients = clients
        self.think_s = think_s
        self.samples: list[Sample] = []
        self.in_flight: dict[int, float] = {}
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fault-traffic", daemon=True)
        self._ids = 0

    # ------------------------------------------------------------------------------ control
    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=REQUEST_TIMEOUT_S + 5)

    def pause(self) -> None:
        """Stop the load clients (the probers go on), and wait for their requests to end."""
        self._paused.set()
        self.settle(time.monotonic())

    def resume(self) -> None:
        self._paused.clear()

    def settle(self, before: float, timeout_s: float = REQUEST_TIMEOUT_S + 5) -> None:
        """Wait until every request started before ``before`` has its answer."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not any(start < before for start in list(self.in_flight.values())):
                return
            time.sleep(0.05)

    def between(self, kind: str, start: float, end: float) -> list[Sample]:
        """Samples of ``kind`` that began in ``[start, end)``."""
        return [s for s in list(self.samples) if s.kind == kind and start <= s.start < end]

    def submit(self, coroutine: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def flood(self, connections: int, seconds: float) -> Future[Any]:
        """``connections`` extra closed-loop clients (kind ``burst``) for ``seconds``."""
        return self.submit(self._flood(connections, seconds))

    def burst(self, connections: int) -> list[Sample]:
        """One request on each of ``connections`` fresh connections at once; their samples."""
        future: Future[list[Sample]] = self.submit(self._burst(connections))
        return future.result(timeout=REQUEST_TIMEOUT_S + 10)

    def sequence(self, requests: int) -> list[Sample]:
        """``requests`` one after the other on one keep-alive connection; their samples."""
        future: Future[list[Sample]] = self.submit(self._sequence(requests))
        return future.result(timeout=requests * (REQUEST_TIMEOUT_S + 1))

    # ------------------------------------------------------------------------------- the loop
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        tasks = [asyncio.ensure_future(self._client()) for _ in range(self.clients)]
        tasks.append(asyncio.ensure_future(self._prober("live", "/v2/health/live", LIVE_PERIOD_S)))
        tasks.append(
            asyncio.ensure_future(self._prober("ready", "/v2/health/ready", READY_PERIOD_S))
        )
        while not self._stop.is_set():
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _begin(self) -> tuple[int, float]:
        self._ids += 1
        began = time.monotonic()
        self.in_flight[self._ids] = began
        return self._ids, began

    def _record(self, ident: int, sample: Sample) -> None:
        self.samples.append(sample)
        self.in_flight.pop(ident, None)

    async def _one(
        self,
        kind: str,
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """One request on ``connection`` (opened if None); the connection to reuse, if any."""
        ident, began = self._begin()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                if connection is None:
                    connection = await asyncio.open_connection("127.0.0.1", self.port)
                reader, writer = connection
                writer.write(self.request)
                status, headers, body = await _aread(reader)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
            self._record(ident, Sample(kind, began, time.monotonic(), 0,
                                       error=type(error).__name__))  # fmt: skip
            if connection is not None:
                connection[1].close()
            return None
        self._record(ident, _sample(kind, began, time.monotonic(), status, headers, body))
        if headers.get("connection", "").lower() == "close":
            writer.close()
            return None
        return connection

    async def _client(self) -> None:
        connection = None
        while not self._stop.is_set():
            if self._paused.is_set():
                if connection is not None:
                    connection[1].close()
                    connection = None
                await asyncio.sleep(0.05)
                continue
            connection = await self._one("infer", connection)
            await asyncio.sleep(self.think_s if connection is not None else 0.05)
        if connection is not None:
            connection[1].close()

    async def _flood(self, connections: int, seconds: float) -> None:
        stop_at = time.monotonic() + seconds

        async def worker() -> None:
            connection = None
            while time.monotonic() < stop_at:
                connection = await self._one("burst", connection)
                if connection is None:
                    await asyncio.sleep(0.02)
            if connection is not None:
                connection[1].close()

        await asyncio.gather(*(worker() for _ in range(connections)))

    async def _burst(self, connections: int) -> list[Sample]:
        first = len(self.samples)
        await asyncio.gather(*(self._one("burst", None) for _ in range(connections)))
        return [s for s in self.samples[first:] if s.kind == "burst"]

    async def _sequence(self, requests: int) -> list[Sample]:
        first = len(self.samples)
        connection = None
        for _ in range(requests):
            connection = await self._one("burst", connection)
        if connection is not None:
            connection[1].close()
        return [s for s in self.samples[first:] if s.kind == "burst"]

    async def _prober(self, kind: str, path: str, period_s: float) -> None:
        request = get_bytes(path)

        async def probe() -> None:
            ident, began = self._begin()
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_S):
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    writer.write(request)
                    status, headers, body = await _aread(reader)
                    writer.close()
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
                self._record(ident, Sample(kind, began, time.monotonic(), 0,
                                           error=type(error).__name__))  # fmt: skip
                return
            self._record(ident, _sample(kind, began, time.monotonic(), status, headers, body))

        pending: set[asyncio.Task[None]] = set()
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                task = asyncio.ensure_future(probe())
                pending.add(task)
                task.add_done_callback(pending.discard)
                next_at += period_s
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        finally:
            for task in list(pending):
                task.cancel()
