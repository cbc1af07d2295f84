"""The transformer's small HTTP/1.1 client against a raw asyncio server: Content-Length and
chunked bodies, kept-alive connections the server closed, no server at all."""

from __future__ import annotations

import asyncio

import pytest

from getit_ml.serving.http_client import HttpError, KeepAliveClient


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
