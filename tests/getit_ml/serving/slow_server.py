"""``python -m tests.getit_ml.serving.slow_server PORT DELAY_S``: a v2 server in a process of its
own (SIGTERM drains, as in a pod) whose one model, ``slow``, echoes its first input after
``DELAY_S`` — so that a test can have requests in flight when it sends the signal."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

from getit_ml.serving.protocol import InferenceRequest, InferenceResponse, OutputTensor
from getit_ml.serving.repository import ModelRepository
from getit_ml.serving.server import ServerOptions, run_forever


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


def main(argv: list[str]) -> None:
    port, delay_s = int(argv[0]), float(argv[1])
    options = ServerOptions(http_port=port, grpc_port=None, host="127.0.0.1", grace_period_s=20)
    run_forever(ModelRepository([SlowEcho(delay_s)]), options)


if __name__ == "__main__":
    main(sys.argv[1:])
