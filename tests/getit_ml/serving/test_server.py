"""The server's lifecycle: a stop drains in-flight requests, then refuses new connections."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import numpy as np
import orjson

from getit_ml.serving.protocol import InferenceRequest, InferenceResponse, OutputTensor
from getit_ml.serving.repository import ModelRepository
from getit_ml.serving.server import ServerThread
from tests.getit_ml.serving.conftest import local_options


class SlowEcho:
    """A served model that takes ``delay_s`` per request (to have one in flight at a stop)."""

    name = "slow"
    version = "1"
    ready = True

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.started = threading.Event()

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "test",
            "inputs": [],
            "outputs": [],
        }

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        self.started.set()
        await asyncio.sleep(self.delay_s)
        data = request.inputs[0].data
        return InferenceResponse(self.name, (OutputTensor("echo", "FP64", data),), self.version)


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
                httpx.post(f"{url}/v2/models/slow/infer", content=body, timeout=10)
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
