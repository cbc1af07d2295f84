"""The server's lifecycle: a stop drains in-flight requests, then refuses new connections; idle
keep-alive connections are served while they linger, then closed; the grace period's victims
get a JSON 503."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import numpy as np
import orjson

from getit_ml.serving.repository import ModelRepository
from getit_ml.serving.server import ServerThread
from tests.getit_ml.serving.conftest import local_options
from tests.getit_ml.serving.slow_server import SlowEcho


def test_stop_drains_in_flight_requests() -> None:
    model = SlowEcho(delay_s=1.0)
    body = orjson.dumps(
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [4.0]}]}
    )
    results: list[httpx.Response] = []
    running = ServerThread(ModelRepository([model]), local_options()).start()
    url = running.http_url
    try:
        caller = threading.Thread(
            target=lambda: results.append(
                httpx.post(
                    f"{url}/v2/models/slow/infer",
                    content=body,
                    headers={"content-type": "application/json"},
                    timeout=10,
                )
            )
        )
        caller.start()
        assert model.started.wait(5)
    finally:
        running.stop()  # while the request sleeps
    caller.join(10)
    assert results, "the in-flight request got no answer"
    assert results[0].status_code == 200
    assert np.allclose(results[0].json()["outputs"][0]["data"], [4.0])
    try:
        httpx.get(f"{url}/v2/health/live", timeout=2)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("the stopped server still accepts connections")


def _raw(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(5)
    return sock


def _exchange(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def _refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


LIVE = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"


def test_the_drain_serves_a_request_on_an_idle_connection_then_closes_it() -> None:
    """A stop: no new connections; the request in flight finishes; a request that arrives on an
    idle keep-alive connection meanwhile is answered with ``Connection: close``, not cut off."""
    model = SlowEcho(delay_s=1.5)
    body = orjson.dumps(
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [2.0]}]}
    )
    running = ServerThread(
        ModelRepository([model]), local_options(grpc_port=None, drain_linger_s=3.0)
    ).start()
    port = int(running.server.http_port or 0)
    idle = _raw(port)
    results: list[httpx.Response] = []
    try:
        assert _exchange(idle, LIVE)[0] == 200  # kept alive, now idle
        caller = threading.Thread(
            target=lambda: results.append(
                httpx.post(f"{running.http_url}/v2/models/slow/infer", content=body,
                           headers={"content-type": "application/json"}, timeout=10)
            )
        )  # fmt: skip
        caller.start()
        assert model.started.wait(5)
        running.server.request_stop()  # from this thread, while the request sleeps
        deadline = time.monotonic() + 5
        while not _refuses(port):  # the drain has begun: the listener is closed
            assert time.monotonic() < deadline, "the server kept accepting connections"
            time.sleep(0.02)
        status, headers, _ = _exchange(idle, LIVE)
        assert status == 200
        assert headers["connection"] == "close"
        assert idle.recv(1) == b""  # ... and closed after it
        caller.join(10)
    finally:
        idle.close()
        running.stop()
    assert results, "the in-flight request got no answer"
    assert results[0].status_code == 200
    assert results[0].headers["connection"] == "close"


def test_an_idle_connection_is_closed_once_the_linger_is_over() -> None:
    running = ServerThread(
        ModelRepository([SlowEcho(0.0)]), local_options(grpc_port=None, drain_linger_s=0.2)
    ).start()
    idle = _raw(int(running.server.http_port or 0))
    try:
        assert _exchange(idle, LIVE)[0] == 200
        began = time.monotonic()
        running.stop()
        assert idle.recv(1) == b""
        assert time.monotonic() - began < 3
    finally:
        idle.close()


def test_a_request_past_the_grace_period_gets_a_json_503() -> None:
    """What the grace period cuts off is told so, in JSON, with Retry-After."""
    model = SlowEcho(delay_s=30.0)
    body = orjson.dumps(
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [2.0]}]}
    )
    running = ServerThread(
        ModelRepository([model]), local_options(grpc_port=None, grace_period_s=1)
    ).start()
    results: list[httpx.Response] = []
    caller = threading.Thread(
        target=lambda: results.append(
            httpx.post(f"{running.http_url}/v2/models/slow/infer", content=body,
                       headers={"content-type": "application/json"}, timeout=20)
        )
    )  # fmt: skip
    caller.start()
    try:
        assert model.started.wait(5)
    finally:
        running.stop()
    caller.join(10)
    assert results, "no answer"
    assert results[0].status_code == 503
    assert results[0].headers["content-type"] == "application/json"
    assert results[0].headers["retry-after"] == "1"
    assert "stopped" in results[0].json()["error"]
