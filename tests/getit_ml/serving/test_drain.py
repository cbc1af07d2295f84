"""A scorer that stops, restarts or idles behind the transformer's hop.

The hop is :class:`Relay`: a served model that forwards each request to a scorer through
:func:`~getit_ml.serving.predictor.predictor_client`, the client and the error mapping the
feature transformer uses (without its feature store, which these tests are not about). The
scorers are real processes that get a real SIGTERM, as a pod does on a rolling restart:

* requests already at the scorer when it is told to stop are answered (200);
* requests that arrive once it stopped listening get 503 + ``Retry-After`` from the hop — never
  a 500 or 502 — and the hop recovers by itself when a scorer is back on the port;
* connections pooled past the scorer's keep-alive are never the cause of a failed request.
"""

from __future__ import annotations

import collections
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from getit_ml.processes import ManagedProcess, module_command
from getit_ml.registry.mlflow_registry import artifact_sha256
from getit_ml.services import free_port
from getit_ml.serving.predictor import predictor_client
from getit_ml.serving.protocol import InferenceRequest, InferenceResponse
from getit_ml.serving.repository import ModelRepository
from getit_ml.serving.scorer import BinaryTabularScorer
from getit_ml.serving.server import ServerThread
from tests.getit_ml.serving.conftest import local_options
from tests.getit_ml.serving.support import toy_frame

JSON = {"content-type": "application/json"}
CONCURRENCY = 16


class Relay:
    """The transformer's hop to its scorer, and nothing else."""

    version = "1"
    ready = True

    def __init__(self, name: str, scorer_url: str, **client: Any) -> None:
        self.name = name
        self.predictor = predictor_client(scorer_url, "v2", **client)

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "versions": ["1"], "platform": "relay", "inputs": [],
                "outputs": []}  # fmt: skip

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        document = {
            "inputs": [
                {"name": t.name, "datatype": t.datatype, "shape": list(t.shape),
                 "data": t.data.ravel().tolist()}
                for t in request.inputs
            ]
        }  # fmt: skip
        return await self.predictor.infer(self.name, document)

    async def aclose(self) -> None:
        await self.predictor.close()


def _process(module: str, arguments: list[str], port: int, log: Path) -> ManagedProcess:
    return ManagedProcess(
        module_command(module, arguments),
        name=module,
        ready_url=f"http://127.0.0.1:{port}/v2/health/ready",
        env={"OMP_NUM_THREADS": "1"},
        log=log,
        in_repository=True,
        start_timeout_s=60,
    )


def _slow_server(port: int, delay_s: float, log: Path) -> ManagedProcess:
    return _process("tests.getit_ml.serving.slow_server", [str(port), str(delay_s)], port, log)


def _scorer(model_dir: Path, port: int, log: Path) -> ManagedProcess:
    arguments = ["--model_dir", str(model_dir), "--expected_sha256", artifact_sha256(model_dir),
                 "--family", "fraud", "--http_port", str(port), "--grpc_port", str(free_port()),
                 "--host", "127.0.0.1", "--log_level", "WARNING"]  # fmt: skip
    return _process("inference_services.xgboost_scorer", arguments, port, log)


@pytest.fixture
def relay_to_slow(tmp_path: Path) -> Iterator[tuple[ServerThread, ManagedProcess]]:
    port = free_port()
    slow = _slow_server(port, 2.0, tmp_path / "slow.log")
    with (
        slow,
        ServerThread(
            ModelRepository([Relay("slow", f"127.0.0.1:{port}")]), local_options(grpc_port=None)
        ) as relay,
    ):
        yield relay, slow


def _echo(value: float) -> bytes:
    return orjson.dumps(
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [value]}]}
    )


def _assert_retry_later(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]


def test_requests_at_the_scorer_when_it_is_stopped_are_answered(
    relay_to_slow: tuple[ServerThread, ManagedProcess],
) -> None:
    relay, slow = relay_to_slow
    url = f"{relay.http_url}/v2/models/slow/infer"

    def call(i: int) -> httpx.Response:
        return httpx.post(url, content=_echo(float(i)), headers=JSON, timeout=30)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        futures = [pool.submit(call, i) for i in range(CONCURRENCY)]
        time.sleep(0.8)  # all 16 are at the scorer, which takes 2 s over each
        assert not any(f.done() for f in futures)
        slow.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        answers = [f.result() for f in futures]
    assert [a.status_code for a in answers] == [200] * CONCURRENCY, [a.text for a in answers]
    for i, answer in enumerate(answers):
        assert answer.json()["outputs"][0]["data"] == [float(i)]
    assert slow.wait(30) == 0  # drained, then exited cleanly
    began = time.monotonic()
    _assert_retry_later(httpx.post(url, content=_echo(1.0), headers=JSON, timeout=30))
    assert time.monotonic() - began < 1.0  # refused at once, not a timeout


@pytest.mark.slow
def test_a_scorer_stopped_under_load_costs_only_503s_and_comes_back(
    scorer: BinaryTabularScorer, toy_model_dir: Path, tmp_path: Path
) -> None:
    """16 clients keep the hop busy; the scorer gets SIGTERM, then a new one starts on its port.
    Every answer is a 200 or a 503 with Retry-After; the hop recovers without a restart."""
    port = free_port()
    batch = scorer.schema.encode(toy_frame(1, seed=3).drop(columns=["is_fraud"]))
    body = orjson.dumps(
        {"inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 4],
                     "data": batch.ravel().tolist()}]}
    )  # fmt: skip
    first = _scorer(toy_model_dir, port, tmp_path / "scorer-1.log").start()
    tally: collections.Counter[tuple[int, str | None]] = collections.Counter()
    bad: list[str] = []
    stop = threading.Event()
    try:
        with ServerThread(
            ModelRepository([Relay("fraud", f"127.0.0.1:{port}", timeout_s=5)]),
            local_options(grpc_port=None),
        ) as relay:
            url = f"{relay.http_url}/v2/models/fraud/infer"

            def worker() -> None:
                with httpx.Client(headers=JSON, timeout=30) as client:
                    while not stop.is_set():
                        answer = client.post(url, content=body)
                        tally[answer.status_code, answer.headers.get("retry-after")] += 1
                        if answer.status_code != 200 and (
                            answer.status_code != 503
                            or answer.headers.get("content-type") != "application/json"
                        ):
                            bad.append(f"{answer.status_code} {answer.text[:200]}")

            threads = [threading.Thread(target=worker) for _ in range(CONCURRENCY)]
            for thread in threads:
                thread.start()
            time.sleep(1.0)
            first.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            assert first.wait(30) == 0
            time.sleep(0.5)  # the scorer is gone: the hop answers 503 now
            second = _scorer(toy_model_dir, port, tmp_path / "scorer-2.log").start()
            try:
                back = time.monotonic()
                while tally[200, None] == 0 or time.monotonic() - back < 1.0:
                    time.sleep(0.1)
                recovered = httpx.post(url, content=body, headers=JSON, timeout=10)
                stop.set()
                for thread in threads:
                    thread.join(30)
            finally:
                second.stop()
    finally:
        stop.set()
        first.stop()
    assert not bad, bad[:5]
    assert set(tally) <= {(200, None), (503, "1")}, tally
    assert tally[503, "1"] > 0  # the outage was seen ...
    assert recovered.status_code == 200  # ... and is over, without restarting the hop
    assert np.isfinite(recovered.json()["outputs"][0]["data"][0])


def test_connections_pooled_past_the_scorers_keep_alive_cost_nothing(
    scorer: BinaryTabularScorer,
) -> None:
    """A burst fills the hop's pool; the scorer closes those connections after its keep-alive
    (1 s here, 65 s in production); the next burst is answered in full. (The client's idle
    timeout is set above the keep-alive on purpose: the closed connections must be noticed.)"""
    with ServerThread(
        ModelRepository([scorer]), local_options(grpc_port=None, timeout_keep_alive_s=1)
    ) as backend:
        relay = Relay("fraud", backend.http_url, idle_timeout_s=60)
        with ServerThread(ModelRepository([relay]), local_options(grpc_port=None)) as front:
            url = f"{front.http_url}/v2/models/fraud/infer"
            body = orjson.dumps(
                {"inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 4],
                             "data": [1.0, 500.0, 0.0, 3.0]}]}
            )  # fmt: skip

            def burst() -> list[int]:
                with ThreadPoolExecutor(CONCURRENCY) as pool:
                    calls = [
                        pool.submit(httpx.post, url, content=body, headers=JSON, timeout=10)
                        for _ in range(CONCURRENCY)
                    ]
                    return [c.result().status_code for c in calls]

            assert burst() == [200] * CONCURRENCY
            time.sleep(1.5)  # past the scorer's keep-alive: it closed every pooled connection
            assert burst() == [200] * CONCURRENCY
