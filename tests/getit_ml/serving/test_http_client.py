"""The transformer's small HTTP/1.1 client against a raw asyncio server: Content-Length and
chunked bodies, kept-alive connections the server closed (seen or not), the idle timeout, the one
retry on a fresh connection, timeouts, no server at all; and the predictor's error mapping."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from getit_ml.serving.http_client import HttpError, HttpTimeoutError, KeepAliveClient
from getit_ml.serving.predictor import predictor_client
from getit_ml.serving.protocol import ProtocolError


async def _serve(close_after: int) -> tuple[asyncio.Server, list[int]]:
    """Answers each POST with its body reversed; every ``close_after`` answers it closes the
    connection without saying so (what an idle timeout does); odd answers are chunked."""
    seen: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                body = (await reader.readexactly(length))[::-1]
                seen.append(len(seen))
                if len(seen) % 2:
                    half = len(body) // 2
                    chunks = b"".join(
                        f"{len(part):x}\r\n".encode() + part + b"\r\n"
                        for part in (body[:half], body[half:])
                        if part
                    )
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + chunks
                        + b"0\r\n\r\n"
                    )
                else:
                    writer.write(
                        b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n" % len(body) + body
                    )
                await writer.drain()
                answered += 1
                if answered == close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, seen


def test_bodies_and_reconnects() -> None:
    async def scenario() -> tuple[list[tuple[int, bytes]], int]:
        server, seen = await _serve(close_after=2)
        port = server.sockets[0].getsockname()[1]
        client = KeepAliveClient(f"http://127.0.0.1:{port}", timeout_s=5)
        answers = []
        for text in (b"abc", b"hello", b"xy", b"12345"):
            response = await client.post("/v2/models/m/infer", text)
            answers.append((response.status, response.body))
            await asyncio.sleep(0.01)  # let the server close its side
        await client.close()
        server.close()
        await server.wait_closed()
        return answers, len(seen)

    answers, served = asyncio.run(scenario())
    assert answers == [(200, b"cba"), (201, b"olleh"), (200, b"yx"), (201, b"54321")]
    assert served == 4


def test_an_unreachable_server_is_an_http_error() -> None:
    async def call() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        await KeepAliveClient(f"http://127.0.0.1:{port}", timeout_s=2).post("/x", b"{}")

    with pytest.raises(HttpError, match="cannot connect"):
        asyncio.run(call())


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="http://"):
        KeepAliveClient("https://example.org")


# ------------------------------------------------------------------------- stale connections
class Scripted:
    """A raw HTTP/1.1 server whose connections each follow ``plan``: the n-th request on a
    connection is answered (``"ok"``), dropped without an answer (``"drop"``: what a server
    closing an idle connection does to a request already on its way), or left unanswered
    (``"hang"``). Counts connections and answered requests."""

    def __init__(self, plan: list[str], status: int = 200, body: bytes = b"{}") -> None:
        self.plan = plan
        self.status = status
        self.body = body
        self.connections = 0
        self.answered = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for step in self.plan:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                if step == "drop":
                    break
                if step == "hang":
                    await asyncio.sleep(30)
                writer.write(
                    b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (self.status, len(self.body))
                    + self.body
                )
                await writer.drain()
                self.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _concurrently(client: KeepAliveClient, n: int) -> None:
    """``n`` requests at once: ``n`` connections in the pool afterwards."""
    await asyncio.gather(*(client.post("/x", b"{}") for _ in range(n)))


def test_a_request_dropped_on_a_pooled_connection_is_retried_on_a_fresh_one() -> None:
    """Every pooled connection is stale (its next request is dropped): the retry must not take
    another of them."""

    async def scenario() -> tuple[int, int, int]:
        async with Scripted(["ok", "drop"]) as server:
            client = KeepAliveClient(server.url, timeout_s=5)
            await _concurrently(client, 3)
            response = await client.post("/x", b"{}")
            await client.close()
            return response.status, server.connections, server.answered

    status, connections, answered = asyncio.run(scenario())
    assert status == 200
    assert connections == 4  # three pooled (one of them tried), one fresh
    assert answered == 4


def test_a_non_idempotent_request_is_not_resent() -> None:
    async def scenario() -> None:
        async with Scripted(["ok", "drop"]) as server:
            client = KeepAliveClient(server.url, timeout_s=5)
            await client.post("/x", b"{}")
            try:
                await client.post("/x", b"{}", idempotent=False)
            finally:
                await client.close()

    with pytest.raises(HttpError, match="without answering"):
        asyncio.run(scenario())


def test_a_failure_on_a_fresh_connection_is_not_retried() -> None:
    async def scenario() -> int:
        async with Scripted(["drop"]) as server:
            client = KeepAliveClient(server.url, timeout_s=5)
            with pytest.raises(HttpError, match="without answering"):
                await client.post("/x", b"{}")
            return server.connections

    assert asyncio.run(scenario()) == 1


def test_connections_idle_past_the_idle_timeout_are_not_reused() -> None:
    async def scenario() -> tuple[int, int]:
        async with Scripted(["ok"] * 10) as server:
            client = KeepAliveClient(server.url, timeout_s=5, idle_timeout_s=0.2)
            await client.post("/x", b"{}")
            await client.post("/x", b"{}")  # reused at once
            reused = server.connections
            await asyncio.sleep(0.3)
            await client.post("/x", b"{}")  # idle too long: a new connection
            await client.close()
            return reused, server.connections

    assert asyncio.run(scenario()) == (1, 2)


def test_connections_the_server_closed_are_not_reused() -> None:
    """The server closed them after one answer each (its keep-alive ran out): the client sees the
    end of stream before reusing one, so no request is ever sent into a closed connection."""

    async def scenario() -> tuple[int, int]:
        async with Scripted(["ok"]) as server:
            client = KeepAliveClient(server.url, timeout_s=5)
            await _concurrently(client, 4)
            await asyncio.sleep(0.05)  # the FINs arrive
            for _ in range(3):
                assert (await client.post("/x", b"{}")).status == 200
            await client.close()
            return server.connections, server.answered

    connections, answered = asyncio.run(scenario())
    assert (connections, answered) == (7, 7)  # 4, then one fresh per request: none dropped


def test_the_timeout_bounds_the_whole_call() -> None:
    async def scenario() -> float:
        async with Scripted(["hang"]) as server:
            client = KeepAliveClient(server.url, timeout_s=5)
            began = time.monotonic()
            with pytest.raises(HttpTimeoutError, match=r"within 0\.2 s"):
                await client.post("/x", b"{}", timeout_s=0.2)
            await client.close()
            return time.monotonic() - began

    assert asyncio.run(scenario()) < 1.0


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        KeepAliveClient("http://127.0.0.1:1", idle_timeout_s=0)


# --------------------------------------------------------------------- the predictor's errors
DOCUMENT: dict[str, Any] = {"inputs": []}


def _predictor_error(url: str, **kwargs: Any) -> ProtocolError:
    async def call() -> None:
        client = predictor_client(url, "v2", timeout_s=2)
        try:
            await client.infer("m", DOCUMENT, **kwargs)
        finally:
            await client.close()

    with pytest.raises(ProtocolError) as caught:
        asyncio.run(call())
    return caught.value


def _scripted_error(plan: list[str], status: int = 200, **kwargs: Any) -> ProtocolError:
    async def call() -> ProtocolError:
        body = orjson.dumps({"error": "boom"})
        async with Scripted(plan, status=status, body=body) as server:
            return await asyncio.to_thread(_predictor_error, server.url, **kwargs)

    return asyncio.run(call())


def test_an_unreachable_predictor_is_a_503_with_retry_after() -> None:
    async def closed_port() -> int:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = int(server.sockets[0].getsockname()[1])
        server.close()
        await server.wait_closed()
        return port

    error = _predictor_error(f"127.0.0.1:{asyncio.run(closed_port())}")
    assert error.status == 503
    assert error.retry_after_header == "1"
    assert "unreachable" in error.message


@pytest.mark.parametrize(
    ("plan", "status", "expected", "retry"),
    [
        (["hang"], 200, 503, "1"),  # no answer in time
        (["ok"], 503, 503, "1"),  # the scorer's "not now"
        (["ok"], 500, 502, None),  # the scorer failed
        (["ok"], 400, 500, None),  # we built a request our scorer refuses: our bug
    ],
    ids=["timeout", "503", "500", "400"],
)
def test_predictor_answers_map_to_what_the_transformer_says(
    plan: list[str], status: int, expected: int, retry: str | None
) -> None:
    error = _scripted_error(plan, status, timeout_s=0.3)
    assert error.status == expected
    assert error.retry_after_header == retry
