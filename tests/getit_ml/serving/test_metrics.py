"""Per-model Prometheus metrics: exact counts over REST and gRPC, bounded labels, own registries.

Each test starts servers of its own (a fresh registry), sends a known mix of requests and reads
``GET /metrics`` back through prometheus_client's parser, so a miscounted, mislabelled or
unparsable series fails here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import prometheus_client
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from prometheus_client.parser import text_string_to_metric_families

from getit_ml.serving.grpc_server import request_message
from getit_ml.serving.metrics import (
    BUCKETS,
    CONTENT_TYPE,
    REQUEST_DURATION,
    REQUESTS_TOTAL,
    UNKNOWN,
    InferenceMetrics,
)
from getit_ml.serving.protocol import InferenceRequest, InferenceResponse, OutputTensor
from getit_ml.serving.repository import ModelRepository, ServedModel
from getit_ml.serving.server import ServerThread
from tests.getit_ml.serving.conftest import local_options

logger = logging.getLogger(__name__)

INFER = "/v2/models/fraud/infer"
#: One encoded row of the toy model (payment_method code, amount, is_new_device, orders_30d).
ROW = [0.0, 10.0, 1.0, 1.0]
VALID: dict[str, Any] = {
    "inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 4], "data": ROW}]
}
SHAPE_MISMATCH: dict[str, Any] = {
    "inputs": [{"name": "features", "datatype": "FP64", "shape": [2, 4], "data": ROW}]
}
NAN_ROW: dict[str, Any] = {
    "inputs": [
        {"name": "features", "datatype": "FP64", "shape": [1, 4], "data": [0.0, float("nan"), 1, 1]}
    ]
}

Labels = tuple[str, str, str, str]  # model, version, code, protocol


# ------------------------------------------------------------------------------------ helpers
def scrape(url: str) -> dict[str, dict[Labels, float]]:
    """``GET /metrics`` parsed: sample name -> (model, version, code, protocol) -> value (the
    histogram's ``_bucket`` samples under ``name_bucket:le``)."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    samples: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = dict(sample.labels)
            le = labels.pop("le", None)
            key = (labels["model"], labels["version"], labels["code"], labels["protocol"])
            name = sample.name if le is None else f"{sample.name}:{le}"
            samples.setdefault(name, {})[key] = sample.value
    return samples


def requests_total(samples: dict[str, dict[Labels, float]]) -> dict[Labels, float]:
    return samples.get(REQUESTS_TOTAL, {})


def durations_count(samples: dict[str, dict[Labels, float]]) -> dict[Labels, float]:
    return samples.get(f"{REQUEST_DURATION}_count", {})


def post(client: httpx.Client, path: str, document: Any) -> int:
    body = document if isinstance(document, bytes) else orjson.dumps(document)
    return client.post(path, content=body).status_code


def grpc_code(stub: Any, message: Any, timeout: float = 10) -> Any:
    try:
        stub.ModelInfer(message, timeout=timeout)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


class Wrapped:
    """The real scorer behind a served model whose readiness or answer the test decides.

    (The scorer is typed as the repository's ``ServedModel``: these tests need nothing more.)
    """

    def __init__(
        self, inner: ServedModel, *, ready: bool = True, fail: bool = False, delay_s: float = 0
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.version = inner.version
        self.ready = ready
        self.fail = fail
        self.delay_s = delay_s

    def metadata(self) -> dict[str, Any]:
        return self.inner.metadata()

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("a bug in the model")
        return await self.inner.infer(request)


class Echo:
    """A second served model, so that labels are per model."""

    name = "echo"
    version = "3"
    ready = True

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "versions": [self.version], "platform": "test"}

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        data = request.inputs[0].data
        return InferenceResponse(self.name, (OutputTensor("echo", "FP64", data),), self.version)


@pytest.fixture
def running(scorer: ServedModel) -> Iterator[ServerThread]:
    """The toy scorer and an echo model on a server of this test's own (fresh metrics)."""
    models: list[ServedModel] = [scorer, Echo()]
    with ServerThread(ModelRepository(models), local_options()) as server:
        yield server


# -------------------------------------------------------------------------------------- tests
def test_exact_counts_over_rest_and_grpc(running: ServerThread, scorer: ServedModel) -> None:
    fraud, version = scorer.name, scorer.version
    with httpx.Client(base_url=running.http_url, timeout=10) as client:
        statuses = [
            post(client, INFER, VALID),
            post(client, INFER, VALID),
            post(client, f"/v2/models/fraud/versions/{version}/infer", VALID),
            post(client, INFER, b"{bad"),
            post(client, INFER, SHAPE_MISMATCH),
            post(client, "/v2/models/nope/infer", VALID),
            post(client, "/v2/models/fraud/versions/999/infer", VALID),
            post(client, "/v2/models/echo/infer", VALID),
        ]
        assert statuses == [200, 200, 200, 400, 400, 404, 404, 200]
        # Not inference: none of these is counted.
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").status_code == 200
        assert client.get("/v2/models/fraud").status_code == 200
        assert client.get(INFER).status_code == 405
        assert client.get("/v2/nothing").status_code == 404
    with grpc.insecure_channel(running.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        codes = [
            grpc_code(stub, request_message("fraud", VALID)),
            grpc_code(stub, request_message("fraud", NAN_ROW)),
            grpc_code(stub, request_message("fraud", SHAPE_MISMATCH)),
            grpc_code(stub, request_message("fraud", SHAPE_MISMATCH)),
            grpc_code(stub, request_message("nope", VALID)),
        ]
        stub.ServerLive(pb.ServerLiveRequest())
        stub.ModelMetadata(pb.ModelMetadataRequest(name="fraud"))
    ok, invalid, missing = (
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
    )
    assert codes == [ok, invalid, invalid, invalid, missing]

    expected = {
        (fraud, version, "200", "rest"): 3.0,
        (fraud, version, "400", "rest"): 2.0,
        (UNKNOWN, UNKNOWN, "404", "rest"): 1.0,
        (fraud, UNKNOWN, "404", "rest"): 1.0,
        ("echo", "3", "200", "rest"): 1.0,
        (fraud, version, "200", "grpc"): 1.0,
        (fraud, version, "400", "grpc"): 3.0,
        (UNKNOWN, UNKNOWN, "404", "grpc"): 1.0,
    }
    samples = scrape(running.http_url)
    assert requests_total(samples) == expected
    assert durations_count(samples) == expected
    for labels, count in expected.items():
        assert samples[f"{REQUEST_DURATION}_bucket:+Inf"][labels] == count
        assert samples[f"{REQUEST_DURATION}_sum"][labels] > 0
        # Loopback scoring of one row takes well under 10 s: nothing lands only in +Inf.
        assert samples[f"{REQUEST_DURATION}_bucket:10.0"][labels] == count
    # The scrape itself is not counted: a second one reads the same figures.
    again = scrape(running.http_url)
    assert requests_total(again) == expected
    assert durations_count(again) == expected


def test_unknown_model_names_share_one_series(running: ServerThread) -> None:
    with httpx.Client(base_url=running.http_url, timeout=10) as client:
        for index in range(5):
            assert post(client, f"/v2/models/scan-{index}/infer", VALID) == 404
            assert post(client, f"/v2/models/scan-{index}/versions/{index}/infer", VALID) == 404
    with grpc.insecure_channel(running.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for index in range(3):
            message = request_message(f"scan-{index}", VALID)
            assert grpc_code(stub, message) == grpc.StatusCode.NOT_FOUND
        message = request_message("fraud", VALID)
        message.model_version = "no-such-version"
        assert grpc_code(stub, message) == grpc.StatusCode.NOT_FOUND
    assert requests_total(scrape(running.http_url)) == {
        (UNKNOWN, UNKNOWN, "404", "rest"): 10.0,
        (UNKNOWN, UNKNOWN, "404", "grpc"): 3.0,
        ("fraud", UNKNOWN, "404", "grpc"): 1.0,
    }


def test_not_ready_and_internal_errors_are_counted_as_503_and_500(scorer: ServedModel) -> None:
    loading = Wrapped(scorer, ready=False)
    loading.name = "loading"
    broken = Wrapped(scorer, fail=True)
    broken.name = "broken"
    repository = ModelRepository([loading, broken])
    with ServerThread(repository, local_options()) as server:
        with httpx.Client(base_url=server.http_url, timeout=10) as client:
            assert post(client, "/v2/models/loading/infer", VALID) == 503
            assert post(client, "/v2/models/broken/infer", VALID) == 500
            assert post(client, "/v2/models/broken/infer", VALID) == 500
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert grpc_code(stub, request_message("loading", VALID)) == grpc.StatusCode.UNAVAILABLE
            assert grpc_code(stub, request_message("broken", VALID)) == grpc.StatusCode.INTERNAL
        samples = scrape(server.http_url)
    version = scorer.version
    expected = {
        ("loading", version, "503", "rest"): 1.0,
        ("broken", version, "500", "rest"): 2.0,
        ("loading", version, "503", "grpc"): 1.0,
        ("broken", version, "500", "grpc"): 1.0,
    }
    assert requests_total(samples) == expected
    assert durations_count(samples) == expected


def test_a_grpc_call_past_its_deadline_is_counted_as_499_with_its_duration(
    scorer: ServedModel,
) -> None:
    slow = Wrapped(scorer, delay_s=5.0)
    with ServerThread(ModelRepository([slow]), local_options()) as server:
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            message = request_message("fraud", VALID)
            assert grpc_code(stub, message, timeout=0.3) == grpc.StatusCode.DEADLINE_EXCEEDED
        labels = ("fraud", scorer.version, "499", "grpc")
        deadline = time.monotonic() + 10
        while True:  # the server learns of the cancellation a moment after the client
            samples = scrape(server.http_url)
            if requests_total(samples) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert requests_total(samples) == {labels: 1.0}
    assert samples[f"{REQUEST_DURATION}_bucket:0.25"][labels] == 0.0
    assert samples[f"{REQUEST_DURATION}_bucket:2.5"][labels] == 1.0  # not the model's 5 s


def test_each_server_has_its_own_registry(scorer: ServedModel) -> None:
    with (
        ServerThread(ModelRepository([scorer]), local_options()) as first,
        ServerThread(ModelRepository([scorer]), local_options()) as second,
    ):
        with httpx.Client(base_url=first.http_url) as client:
            assert post(client, INFER, VALID) == 200
        assert requests_total(scrape(first.http_url)) == {
            ("fraud", scorer.version, "200", "rest"): 1.0
        }
        assert requests_total(scrape(second.http_url)) == {}
        assert first.server.metrics is not None
        assert first.server.metrics.registry is not prometheus_client.REGISTRY
    default = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "getit_ml_inference" not in default


def test_metrics_can_be_turned_off(scorer: ServedModel) -> None:
    with ServerThread(ModelRepository([scorer]), local_options(metrics=False)) as server:
        assert server.server.metrics is None
        response = httpx.post(f"{server.http_url}{INFER}", content=orjson.dumps(VALID))
        assert response.status_code == 200
        response = httpx.get(f"{server.http_url}/metrics")
        assert response.status_code == 404
        assert list(response.json()) == ["error"]


def test_metrics_route_is_get_only(running: ServerThread) -> None:
    response = httpx.post(f"{running.http_url}/metrics", content=b"")
    assert response.status_code == 405
    assert list(response.json()) == ["error"]
    assert requests_total(scrape(running.http_url)) == {}


def test_a_duration_lands_in_its_bucket() -> None:
    metrics = InferenceMetrics()
    for seconds in (0.0003, 0.003, 0.003, 0.04, 20.0):
        metrics.rest.observe("fraud", "7", 200, seconds)
    metrics.grpc.observe("fraud", "7", 404, 0.001)
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    family = families[REQUEST_DURATION]
    assert family.type == "histogram"
    rest = {"model": "fraud", "version": "7", "code": "200", "protocol": "rest"}
    buckets = {
        float(s.labels["le"]): s.value
        for s in family.samples
        if s.name.endswith("_bucket") and {k: s.labels[k] for k in rest} == rest
    }
    assert list(buckets) == [*BUCKETS, float("inf")]
    assert buckets[0.0005] == 1  # cumulative
    assert buckets[0.0025] == 1
    assert buckets[0.005] == 3
    assert buckets[0.05] == 4
    assert buckets[10.0] == 4
    assert buckets[float("inf")] == 5
    counter = families["getit_ml_inference_requests"]
    assert counter.type == "counter"
    totals = {
        s.labels["protocol"] + s.labels["code"]: s.value
        for s in counter.samples
        if s.name == REQUESTS_TOTAL
    }
    assert totals == {"rest200": 5, "grpc404": 1}


def test_many_observations_add_up_exactly() -> None:
    """Counts, sums and cumulative buckets of many observations (what the cost is, is the serving
    benchmark's to say, not a test's)."""
    metrics = InferenceMetrics()
    observe = metrics.rest.observe
    for _ in range(1_000):
        observe("fraud", "sha256-abc", 200, 0.0008)
    observe("fraud", "sha256-abc", 200, 20.0)  # beyond the last bound: only +Inf
    assert requests_total_of(metrics) == 1_001
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    samples = {(s.name, s.labels.get("le")): s.value
               for s in families[REQUEST_DURATION].samples}  # fmt: skip
    assert samples[(f"{REQUEST_DURATION}_bucket", "0.0005")] == 0
    assert samples[(f"{REQUEST_DURATION}_bucket", "0.001")] == 1_000
    assert samples[(f"{REQUEST_DURATION}_bucket", "10.0")] == 1_000
    assert samples[(f"{REQUEST_DURATION}_bucket", "+Inf")] == 1_001
    assert samples[(f"{REQUEST_DURATION}_sum", None)] == pytest.approx(1_000 * 0.0008 + 20.0)


def test_counts_stay_per_server_in_prometheus_multiprocess_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Importing Feast sets PROMETHEUS_MULTIPROC_DIR, where prometheus_client's own counters of
    one name share a value across registries; ours must not."""
    from prometheus_client import values

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    first, second = InferenceMetrics(), InferenceMetrics()
    first.rest.observe("fraud", "1", 200, 0.001)
    first.rest.observe("fraud", "1", 200, 0.001)
    second.rest.observe("fraud", "1", 200, 0.001)
    assert requests_total_of(first) == 2
    assert requests_total_of(second) == 1


def requests_total_of(metrics: InferenceMetrics) -> float:
    text = metrics.exposition().decode()
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == REQUESTS_TOTAL
    )
