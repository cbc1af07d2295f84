"""The HTTP layer under the v2 app, spoken to over raw sockets: what uvicorn answers by itself
(invalid HTTP, a bad Content-Length) is JSON; slow, half-sent or oversized requests are cut off
with a JSON answer; a connection over the cap gets 503 + Retry-After; silent connections close."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from getit_ml.serving.http_protocol import guarded_protocol
from getit_ml.serving.repository import ModelRepository
from getit_ml.serving.scorer import BinaryTabularScorer
from getit_ml.serving.server import ServerThread
from tests.getit_ml.serving.conftest import local_options

INFER = "/v2/models/fraud/infer"
BODY = orjson.dumps(
    {"inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 4], "data": [1, 50, 0, 3]}]}
)
READ_TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def guarded(scorer: BinaryTabularScorer) -> Iterator[ServerThread]:
    """The toy scorer with a short read timeout and keep-alive, and room for 4 connections."""
    options = local_options(read_timeout_s=READ_TIMEOUT_S, timeout_keep_alive_s=1,
                            max_connections=4, grpc_port=None)  # fmt: skip
    with ServerThread(ModelRepository([scorer]), options) as running:
        yield running


def _connect(server: ServerThread) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(server.server.http_port or 0)), timeout=5)
    sock.settimeout(5)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (Content-Length framed), read to its end."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"the connection closed before a response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:length]


def _closed(sock: socket.socket, within_s: float = 5.0) -> bool:
    """Whether the server closes the connection (EOF or reset) within ``within_s``."""
    sock.settimeout(within_s)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def _post_head(length: int | str, content_type: str = "application/json") -> bytes:
    return (
        f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _json_error(status: int, headers: dict[str, str], body: bytes, expected: int) -> str:
    assert status == expected, body
    assert headers["content-type"] == "application/json"
    document = orjson.loads(body)
    assert list(document) == ["error"]
    message: str = document["error"]
    assert message
    return message


@pytest.mark.parametrize(
    ("request_bytes", "fragment"),
    [
        (_post_head("ten") + BODY, "invalid HTTP request"),
        (_post_head("-5") + BODY, "invalid HTTP request"),
        (b"GARBAGE\r\n\r\n", "invalid HTTP request"),
        (b"GET /v2 HTTP/1.1\r\nHost: x\r\nBad Header: \x01\r\n\r\n", "invalid HTTP request"),
        (
            b"POST /v2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n{}",
            "invalid HTTP request",
        ),
    ],
    ids=["content-length not a number", "negative content-length", "not HTTP",
         "control character in a header", "content-length and chunked"],
)  # fmt: skip
def test_invalid_http_gets_a_json_400_and_a_close(
    guarded: ServerThread, request_bytes: bytes, fragment: str
) -> None:
    with _connect(guarded) as sock:
        sock.sendall(request_bytes)
        message = _json_error(*_read_response(sock), 400)
        assert fragment in message
        assert _closed(sock)


def test_a_half_sent_body_gets_408_and_the_connection_closed(guarded: ServerThread) -> None:
    with _connect(guarded) as sock:
        began = time.monotonic()
        sock.sendall(_post_head(len(BODY)) + BODY[:10])  # ... and nothing more
        message = _json_error(*_read_response(sock), 408)
        waited = time.monotonic() - began
        assert f"{READ_TIMEOUT_S:g} s" in message
        assert READ_TIMEOUT_S * 0.8 <= waited < READ_TIMEOUT_S + 2
        assert _closed(sock)


def test_a_trickled_head_gets_408(guarded: ServerThread) -> None:
    """Slowloris: bytes keep coming, but the request never completes in time."""
    with _connect(guarded) as sock:
        sock.sendall(b"POST /v2/models/fraud/infer HTTP/1.1\r\n")
        deadline = time.monotonic() + READ_TIMEOUT_S * 1.5
        while time.monotonic() < deadline and _still_open(sock):
            time.sleep(0.05)
        _json_error(*_read_response(sock), 408)


def _still_open(sock: socket.socket) -> bool:
    """Send one more header line; False once the server has given up on us."""
    try:
        sock.sendall(b"X-Slow: 1\r\n")
    except OSError:
        return False
    return True


def test_a_slow_but_timely_request_is_served(guarded: ServerThread) -> None:
    with _connect(guarded) as sock:
        request = _post_head(len(BODY)) + BODY
        for start in range(0, len(request), 20):
            sock.sendall(request[start : start + 20])
            time.sleep(READ_TIMEOUT_S / 20)
        status, _, body = _read_response(sock)
        assert status == 200, body


def test_a_huge_head_gets_431(guarded: ServerThread) -> None:
    with _connect(guarded) as sock:
        sock.sendall(b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000)
        _json_error(*_read_response(sock), 431)
        assert _closed(sock)


def test_a_silent_connection_is_closed_after_the_keep_alive(guarded: ServerThread) -> None:
    with _connect(guarded) as sock:
        assert _closed(sock, within_s=5)


def test_connections_over_the_cap_get_503_with_retry_after(guarded: ServerThread) -> None:
    held = [_connect(guarded) for _ in range(4)]
    try:
        for sock in held:  # each served, and kept open
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(sock)[0] == 200
        with _connect(guarded) as extra:
            extra.sendall(_post_head(len(BODY)) + BODY)
            status, headers, body = _read_response(extra)
            message = _json_error(status, headers, body, 503)
            assert "limit of 4 connections" in message
            assert headers["retry-after"] == "1"
            assert headers["connection"] == "close"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)  # the server notices the closes
    with _connect(guarded) as again:
        again.sendall(_post_head(len(BODY)) + BODY)
        assert _read_response(again)[0] == 200


def test_the_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="read_timeout_s"):
        guarded_protocol(read_timeout_s=0)
    with pytest.raises(ValueError, match="max_connections"):
        guarded_protocol(max_connections=0)
    assert guarded_protocol(max_connections=None).max_connections is None
