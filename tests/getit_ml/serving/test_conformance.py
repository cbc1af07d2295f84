"""Protocol hardening: every malformed request gets its exact status and ``{"error": ...}``.

Stock KServe 0.21 answers malformed JSON with 422 (FastAPI's body), a shape mismatch or empty
``inputs`` with 500, scores NaN input as ``null`` with 200, accepts a 70 MB body and lets anyone
unload a model. Each row below is one such request against the real toy model's server.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import orjson
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from getit_ml.serving.protocol import DEFAULT_MAX_BODY_BYTES
from getit_ml.serving.repository import ModelRepository
from getit_ml.serving.scorer import BinaryTabularScorer, ScorerOptions, load_scorer
from getit_ml.serving.server import ServerOptions, ServerThread
from tests.getit_ml.serving.conftest import TEST_BODY_LIMIT, local_options

INFER = "/v2/models/fraud/infer"
#: What every client of ours declares.
JSON = {"content-type": "application/json"}


def named(**changes: Any) -> dict[str, Any]:
    """A valid two-row request by feature name; ``changes`` replace or drop (None) inputs."""
    inputs = {
        "payment_method": {
            "name": "payment_method",
            "datatype": "BYTES",
            "shape": [2],
            "data": ["card", "bkash"],
        },
        "amount_bdt": {
            "name": "amount_bdt",
            "datatype": "FP64",
            "shape": [2],
            "data": [5000.0, 120.5],
        },
        "is_new_device": {
            "name": "is_new_device",
            "datatype": "BOOL",
            "shape": [2],
            "data": [True, False],
        },
        "orders_30d": {"name": "orders_30d", "datatype": "INT64", "shape": [2], "data": [0, 7]},
    }
    for key, value in changes.items():
        if value is None:
            inputs.pop(key)
        else:
            inputs[key] = value
    return {"inputs": list(inputs.values())}


def batch(
    data: list[Any], shape: list[int], datatype: str = "FP64", **extra: Any
) -> dict[str, Any]:
    tensor = {"name": "features", "datatype": datatype, "shape": shape, "data": data}
    return {"inputs": [tensor], **extra}


def _json(document: Any) -> bytes:
    return orjson.dumps(document)


def _binary_nan() -> tuple[bytes, dict[str, str]]:
    header = _json(
        {
            "inputs": [
                {
                    "name": "features",
                    "datatype": "FP64",
                    "shape": [1, 4],
                    "parameters": {"binary_data_size": 32},
                }
            ]
        }
    )
    payload = struct.pack("<4d", 1.0, math.nan, 0.0, 3.0)
    return header + payload, {"inference-header-content-length": str(len(header))}


def _binary_short() -> tuple[bytes, dict[str, str]]:
    header = _json(
        {
            "inputs": [
                {
                    "name": "features",
                    "datatype": "FP64",
                    "shape": [1, 4],
                    "parameters": {"binary_data_size": 8},
                }
            ]
        }
    )
    return header + b"\0" * 8, {"inference-header-content-length": str(len(header))}


def _oversize_chunks() -> Iterator[bytes]:
    for _ in range(20):
        yield b" " * 8192  # 160 KiB without a Content-Length header


# (case id, method, path, body, headers, expected status)
CASES: list[tuple[str, str, str, Any, dict[str, str], int]] = [
    ("malformed JSON", "POST", INFER, b"{bad", {}, 400),
    ("empty body", "POST", INFER, b"", {}, 400),
    ("not UTF-8", "POST", INFER, b"\xff\xfe{}", {}, 400),
    ("JSON array", "POST", INFER, b"[]", {}, 400),
    ("JSON string", "POST", INFER, b'"inputs"', {}, 400),
    ("no inputs", "POST", INFER, _json({}), {}, 400),
    ("inputs not a list", "POST", INFER, _json({"inputs": {}}), {}, 400),
    ("empty inputs", "POST", INFER, _json({"inputs": []}), {}, 400),
    ("input not an object", "POST", INFER, _json({"inputs": [1]}), {}, 400),
    ("unknown top-level field", "POST", INFER, _json({**named(), "input": []}), {}, 400),
    ("id not a string", "POST", INFER, _json({**named(), "id": 7}), {}, 400),
    ("parameters not an object", "POST", INFER, _json({**named(), "parameters": [1]}), {}, 400),
    (
        "no name",
        "POST",
        INFER,
        _json({"inputs": [{"datatype": "FP64", "shape": [1], "data": [1.0]}]}),
        {},
        400,
    ),
    (
        "no shape",
        "POST",
        INFER,
        _json({"inputs": [{"name": "features", "datatype": "FP64", "data": [1.0]}]}),
        {},
        400,
    ),
    ("negative dimension", "POST", INFER, _json(batch([1.0] * 4, [-1, 4])), {}, 400),
    ("float dimension", "POST", INFER, _json(batch([1.0] * 4, [1.0, 4])), {}, 400),
    (
        "no datatype",
        "POST",
        INFER,
        _json({"inputs": [{"name": "features", "shape": [1], "data": [1.0]}]}),
        {},
        400,
    ),
    ("unknown datatype", "POST", INFER, _json(batch([1.0] * 4, [1, 4], "FP128")), {}, 400),
    (
        "no data",
        "POST",
        INFER,
        _json({"inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 4]}]}),
        {},
        400,
    ),
    (
        "data not a list",
        "POST",
        INFER,
        _json({"inputs": [{"name": "features", "datatype": "FP64", "shape": [1], "data": 1.0}]}),
        {},
        400,
    ),
    ("shape/data mismatch", "POST", INFER, _json(batch([1.0] * 4, [2, 4])), {}, 400),
    ("absurd shape", "POST", INFER, _json(batch([1.0], [100_000, 100_000])), {}, 400),
    ("text in FP64 data", "POST", INFER, _json(batch([1.0, "2", 0.0, 1.0], [1, 4])), {}, 400),
    ("bool in FP64 data", "POST", INFER, _json(batch([1.0, True, 0.0, 1.0], [1, 4])), {}, 400),
    ("float in INT64 data", "POST", INFER, _json(batch([1, 2.5, 0, 1], [1, 4], "INT64")), {}, 400),
    ("INT8 out of range", "POST", INFER, _json(batch([1, 300, 0, 1], [1, 4], "INT8")), {}, 400),
    (
        "FP32 overflow to infinity",
        "POST",
        INFER,
        _json(batch([1.0, 1e300, 0.0, 1.0], [1, 4], "FP32")),
        {},
        400,
    ),
    ("NaN in binary data", "POST", INFER, *_binary_nan(), 400),
    (
        "binary header not a number",
        "POST",
        INFER,
        _json(named()),
        {"inference-header-content-length": "ten"},
        400,
    ),
    (
        "binary header past the body",
        "POST",
        INFER,
        _json(named()),
        {"inference-header-content-length": "99999"},
        400,
    ),
    ("binary size disagrees with shape", "POST", INFER, *_binary_short(), 400),
    (
        "nested deeper than 8",
        "POST",
        INFER,
        _json(batch([[[[[[[[[[1.0]]]]]]]]]], [1])),
        {},
        400,
    ),
    (
        "duplicate input",
        "POST",
        INFER,
        _json({"inputs": [*named()["inputs"], named()["inputs"][0]]}),
        {},
        400,
    ),
    (
        "unknown input name",
        "POST",
        INFER,
        _json(named(extra={"name": "extra", "datatype": "FP64", "shape": [2], "data": [1.0, 2.0]})),
        {},
        400,
    ),
    ("a feature left out", "POST", INFER, _json(named(orders_30d=None)), {}, 400),
    (
        "rows disagree",
        "POST",
        INFER,
        _json(
            named(
                orders_30d={
                    "name": "orders_30d",
                    "datatype": "INT64",
                    "shape": [3],
                    "data": [0, 1, 2],
                }
            )
        ),
        {},
        400,
    ),
    (
        "text for a numeric feature",
        "POST",
        INFER,
        _json(
            named(
                amount_bdt={
                    "name": "amount_bdt",
                    "datatype": "BYTES",
                    "shape": [2],
                    "data": ["1", "2"],
                }
            )
        ),
        {},
        400,
    ),
    ("boolean feature of 2", "POST", INFER, _json(batch([0.0, 10.0, 2.0, 1.0], [1, 4])), {}, 400),
    (
        "category code out of range",
        "POST",
        INFER,
        _json(batch([99.0, 10.0, 1.0, 1.0], [1, 4])),
        {},
        400,
    ),
    ("batch of the wrong width", "POST", INFER, _json(batch([1.0] * 3, [1, 3])), {}, 400),
    ("batch as BYTES", "POST", INFER, _json(batch(["a"] * 4, [1, 4], "BYTES")), {}, 400),
    ("batch with no rows", "POST", INFER, _json(batch([], [0, 4])), {}, 400),
    (
        "batch mixed with named",
        "POST",
        INFER,
        _json({"inputs": [*batch([0.0] * 4, [1, 4])["inputs"], named()["inputs"][0]]}),
        {},
        400,
    ),
    (
        "missing mask of the wrong shape",
        "POST",
        INFER,
        _json(
            {
                "inputs": [
                    *named()["inputs"],
                    {"name": "missing", "datatype": "BOOL", "shape": [2, 3], "data": [False] * 6},
                ]
            }
        ),
        {},
        400,
    ),
    (
        "missing mask not BOOL",
        "POST",
        INFER,
        _json(
            {
                "inputs": [
                    *named()["inputs"],
                    {"name": "missing", "datatype": "INT64", "shape": [2, 4], "data": [0] * 8},
                ]
            }
        ),
        {},
        400,
    ),
    ("unknown output", "POST", INFER, _json({**named(), "outputs": [{"name": "score"}]}), {}, 400),
    ("unknown model", "POST", "/v2/models/nope/infer", _json(named()), {}, 404),
    ("unknown version", "POST", "/v2/models/fraud/versions/999/infer", _json(named()), {}, 404),
    ("unknown model metadata", "GET", "/v2/models/nope", None, {}, 404),
    ("unknown model readiness", "GET", "/v2/models/nope/ready", None, {}, 404),
    ("unknown endpoint", "GET", "/v2/nothing/here", None, {}, 404),
    ("v1 endpoint", "POST", "/v1/models/fraud:predict", _json({"instances": []}), {}, 404),
    ("GET on infer", "GET", INFER, None, {}, 405),
    ("POST on live", "POST", "/v2/health/live", b"{}", {}, 405),
    ("oversize body", "POST", INFER, b" " * (TEST_BODY_LIMIT + 1), {}, 413),
    ("oversize chunked body", "POST", INFER, "chunks", {}, 413),
    ("unload while disabled", "POST", "/v2/repository/models/fraud/unload", b"", {}, 403),
    ("load while disabled", "POST", "/v2/repository/models/fraud/load", b"", {}, 403),
    (
        "FP64 beyond float32",
        "POST",
        INFER,
        _json(named(amount_bdt={**named()["inputs"][1], "data": [1e308, 1.0]})),
        {},
        400,
    ),
    ("text/plain body", "POST", INFER, _json(named()), {"content-type": "text/plain"}, 415),
    (
        "form body",
        "POST",
        INFER,
        _json(named()),
        {"content-type": "application/x-www-form-urlencoded"},
        415,
    ),
    (
        "octet-stream without the binary extension",
        "POST",
        INFER,
        _json(named()),
        {"content-type": "application/octet-stream"},
        415,
    ),
    (
        "repository index as text",
        "POST",
        "/v2/repository/index",
        b"{}",
        {"content-type": "text/plain"},
        415,
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_malformed_requests_get_exact_status_and_error_body(
    server: ServerThread,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
) -> None:
    content = _oversize_chunks() if body == "chunks" else body
    with httpx.Client(base_url=server.http_url, timeout=10, headers=JSON) as client:
        response = client.request(method, path, content=content, headers=headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        document = response.json()
        assert list(document) == ["error"]
        assert isinstance(document["error"], str)
        assert document["error"]
        # The server is unharmed: the same connection still scores.
        assert client.post(INFER, content=_json(named())).status_code == 200


def test_the_table_covers_twenty_distinct_malformed_requests() -> None:
    assert len(CASES) >= 20
    assert len({c[0] for c in CASES}) == len(CASES)
    assert {c[5] for c in CASES} == {400, 403, 404, 405, 413, 415}


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "Application/JSON"],
    ids=["undeclared", "json", "json with charset", "json in capitals"],
)
def test_json_bodies_may_declare_parameters_or_nothing(
    server: ServerThread, content_type: str | None
) -> None:
    """Undeclared is JSON: Triton's HTTP client, a reference client of the protocol, sends no
    Content-Type (see ``test_clients``)."""
    headers = {} if content_type is None else {"content-type": content_type}
    response = httpx.post(f"{server.http_url}{INFER}", content=_json(named()), headers=headers)
    assert response.status_code == 200, response.text


def test_binary_tensors_may_travel_as_octet_stream(server: ServerThread) -> None:
    header = _json(
        {
            "inputs": [
                {
                    "name": "features",
                    "datatype": "FP64",
                    "shape": [1, 4],
                    "parameters": {"binary_data_size": 32},
                }
            ]
        }
    )
    body = header + struct.pack("<4d", 1.0, 500.0, 0.0, 3.0)
    for content_type in ("application/octet-stream", "application/json"):
        response = httpx.post(
            f"{server.http_url}{INFER}",
            content=body,
            headers={
                "content-type": content_type,
                "inference-header-content-length": str(len(header)),
            },
        )
        assert response.status_code == 200, response.text
    refused = httpx.post(
        f"{server.http_url}{INFER}",
        content=body,
        headers={"content-type": "text/plain", "inference-header-content-length": str(len(header))},
    )
    assert refused.status_code == 415
    assert "application/octet-stream" in refused.json()["error"]


def test_valid_requests_score(server: ServerThread) -> None:
    with httpx.Client(base_url=server.http_url, headers=JSON) as client:
        response = client.post(INFER, content=_json({**named(), "id": "r-1"}))
        document = response.json()
        assert response.status_code == 200
        assert document["id"] == "r-1"
        assert document["model_version"].startswith("sha256-")
        outputs = {o["name"]: o for o in document["outputs"]}
        assert outputs["fraud_probability"]["shape"] == [2]
        assert all(0 <= p <= 1 for p in outputs["fraud_probability"]["data"])
        assert outputs["decision"]["datatype"] == "BOOL"


def test_health_metadata_and_readiness(server: ServerThread) -> None:
    with httpx.Client(base_url=server.http_url) as client:
        assert client.get("/v2/health/live").json() == {"live": True}
        assert client.get("/v2/health/ready").status_code == 200
        assert client.get("/v2/models/fraud/ready").status_code == 200
        meta = client.get("/v2/models/fraud").json()
        names = [t["name"] for t in meta["inputs"]]
        assert names == ["payment_method", "amount_bdt", "is_new_device", "orders_30d", "missing"]
        server_meta = client.get("/v2").json()
        assert server_meta["name"] == "getit-ml"
        assert "model_repository" not in server_meta["extensions"]


def test_not_ready_until_loaded(scorer: BinaryTabularScorer, toy_model_dir: Any) -> None:
    """No model: not ready. A model that is not ready: not ready, and inference is 503."""
    with ServerThread(ModelRepository([]), local_options()) as empty:
        assert httpx.get(f"{empty.http_url}/v2/health/ready").status_code == 400
        assert httpx.get(f"{empty.http_url}/v2/health/live").status_code == 200
    loading = load_scorer(model_dir=toy_model_dir)
    loading.ready = False
    with ServerThread(ModelRepository([loading]), local_options()) as running:
        assert httpx.get(f"{running.http_url}/v2/health/ready").status_code == 400
        assert httpx.get(f"{running.http_url}/v2/models/fraud/ready").status_code == 400
        response = httpx.post(f"{running.http_url}{INFER}", content=_json(named()), headers=JSON)
        assert response.status_code == 503
        assert "not ready" in response.json()["error"]
        channel = grpc.insecure_channel(running.grpc_target)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerReady(pb.ServerReadyRequest()).ready is False
        channel.close()


class Degraded:
    """A loaded scorer whose dependency is down: ``readiness()`` says so."""

    def __init__(self, scorer: BinaryTabularScorer) -> None:
        self.scorer = scorer
        self.name, self.version, self.ready = scorer.name, scorer.version, True
        self.healthy = False

    def readiness(self) -> tuple[bool, str]:
        return (True, "") if self.healthy else (False, "the online store is unreachable")

    def metadata(self) -> dict[str, Any]:
        return self.scorer.metadata()

    async def infer(self, request: Any) -> Any:
        return await self.scorer.infer(request)


def test_readiness_follows_the_models_own_but_inference_and_liveness_do_not(
    scorer: BinaryTabularScorer,
) -> None:
    """Out of rotation (health 400, with the reason) yet still answering what reaches it."""
    model = Degraded(scorer)
    with (
        ServerThread(ModelRepository([model]), local_options()) as running,
        httpx.Client(base_url=running.http_url, headers=JSON) as client,
        grpc.insecure_channel(running.grpc_target) as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for path in ("/v2/health/ready", "/v2/models/fraud/ready"):
            answer = client.get(path)
            assert answer.status_code == 400
            assert "online store is unreachable" in answer.json()["error"]
        assert stub.ServerReady(pb.ServerReadyRequest()).ready is False
        assert stub.ModelReady(pb.ModelReadyRequest(name="fraud")).ready is False
        assert client.get("/v2/health/live").status_code == 200
        assert stub.ServerLive(pb.ServerLiveRequest()).live is True
        assert client.post(INFER, content=_json(named())).status_code == 200
        model.healthy = True
        assert client.get("/v2/health/ready").status_code == 200
        assert client.get("/v2/models/fraud/ready").status_code == 200
        assert stub.ServerReady(pb.ServerReadyRequest()).ready is True
        assert stub.ModelReady(pb.ModelReadyRequest(name="fraud")).ready is True


@pytest.mark.parametrize("engine", ["xgboost", "auto"])
def test_a_non_finite_score_is_never_returned(
    toy_model_dir: Any, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    broken = load_scorer(model_dir=toy_model_dir, options=ScorerOptions(engine=engine))
    if engine == "xgboost":
        monkeypatch.setattr(
            broken._booster, "inplace_predict", lambda *a, **k: np.array([np.nan, 0.5])
        )
    else:
        assert broken._forest is not None
        leaves = np.full_like(broken._forest.leaf_values, np.nan)
        broken._forest = dataclasses.replace(broken._forest, leaf_values=leaves)
    with ServerThread(ModelRepository([broken]), local_options()) as running:
        response = httpx.post(f"{running.http_url}{INFER}", content=_json(named()), headers=JSON)
        assert response.status_code == 500
        assert "finite probability" in response.json()["error"]
        channel = grpc.insecure_channel(running.grpc_target)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(_grpc_batch([0.0, 10.0, 1.0, 1.0]))
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        channel.close()


def test_repository_extension_only_when_enabled(toy_model_dir: Any) -> None:
    model = load_scorer(model_dir=toy_model_dir)
    repository = ModelRepository(
        [model],
        loaders={"fraud": lambda: load_scorer(model_dir=toy_model_dir)},
        enable_load_unload=True,
    )
    with (
        ServerThread(repository, local_options()) as running,
        httpx.Client(base_url=running.http_url, headers=JSON) as client,
    ):
        assert "model_repository" in client.get("/v2").json()["extensions"]
        assert client.post("/v2/repository/models/fraud/unload").status_code == 200
        assert client.post(INFER, content=_json(named())).status_code == 404
        assert client.get("/v2/health/ready").status_code == 400
        assert client.post("/v2/repository/models/fraud/load").status_code == 200
        assert client.post(INFER, content=_json(named())).status_code == 200
        assert client.post("/v2/repository/models/other/load").status_code == 404


def test_default_body_limit_is_16_mib() -> None:
    assert DEFAULT_MAX_BODY_BYTES == 16 * 1024 * 1024
    assert ServerOptions().max_body_bytes == DEFAULT_MAX_BODY_BYTES


# ---------------------------------------------------------------------------------------- gRPC
def _grpc_batch(values: list[float], shape: list[int] | None = None, **kwargs: Any) -> Any:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="features",
        datatype="FP64",
        shape=shape or [1, len(values)],
        contents=pb.InferTensorContents(fp64_contents=values),
    )
    return pb.ModelInferRequest(
        model_name=kwargs.pop("model_name", "fraud"), inputs=[tensor], **kwargs
    )


GRPC_CASES: list[tuple[str, Any, Any]] = [
    ("no inputs", pb.ModelInferRequest(model_name="fraud"), grpc.StatusCode.INVALID_ARGUMENT),
    ("NaN", _grpc_batch([0.0, math.nan, 1.0, 1.0]), grpc.StatusCode.INVALID_ARGUMENT),
    ("infinity", _grpc_batch([0.0, math.inf, 1.0, 1.0]), grpc.StatusCode.INVALID_ARGUMENT),
    ("shape mismatch", _grpc_batch([0.0] * 4, [2, 4]), grpc.StatusCode.INVALID_ARGUMENT),
    (
        "wrong contents field",
        pb.ModelInferRequest(
            model_name="fraud",
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="features",
                    datatype="FP64",
                    shape=[1, 4],
                    contents=pb.InferTensorContents(int64_contents=[0, 1, 1, 1]),
                )
            ],
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    (
        "raw contents count",
        pb.ModelInferRequest(
            model_name="fraud",
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="features", datatype="FP64", shape=[1, 4]
                )
            ],
            raw_input_contents=[b"\0" * 32, b"\0" * 8],
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    (
        "unknown model",
        _grpc_batch([0.0, 1.0, 1.0, 1.0], model_name="nope"),
        grpc.StatusCode.NOT_FOUND,
    ),
    ("too large", _grpc_batch([0.0] * 40_000, [10_000, 4]), grpc.StatusCode.RESOURCE_EXHAUSTED),
]


@pytest.mark.parametrize(
    ("message", "code"), [c[1:] for c in GRPC_CASES], ids=[c[0] for c in GRPC_CASES]
)
def test_grpc_errors_map_to_status_codes(server: ServerThread, message: Any, code: Any) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(message, timeout=10)
        assert caught.value.code() == code, caught.value.details()
        assert caught.value.details()
        ok = stub.ModelInfer(_grpc_batch([0.0, 10.0, 1.0, 1.0]), timeout=10)
        assert len(ok.outputs) == 2


def test_grpc_repository_extension_is_off(server: ServerThread) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="fraud"))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert stub.ModelReady(pb.ModelReadyRequest(name="fraud")).ready is True
