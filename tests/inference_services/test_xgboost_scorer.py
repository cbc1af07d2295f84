"""``inference_services/xgboost_scorer`` (the xgboost-binary runtime): the kserve.Model adapter
and its ``__main__``, on our servers and on a stock ``kserve.ModelServer``, started and stopped
as real processes."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from kserve import InferInput, InferRequest
from kserve.errors import InvalidInput
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from getit_ml.errors import UserError
from getit_ml.processes import ManagedProcess, module_command
from getit_ml.registry.mlflow_registry import ArtifactMismatchError, artifact_sha256
from getit_ml.services import free_port
from getit_ml.serving.entrypoints import model_name, scorer_loader, scorer_parser, server_options
from getit_ml.training.xgb import load_model, predict_proba
from inference_services.xgboost_scorer.model import XGBoostScorerModel
from tests.getit_ml.serving.support import toy_frame


def _encoded(model_dir: Path, rows: int = 3) -> tuple[np.ndarray, np.ndarray]:
    booster, schema = load_model(model_dir)
    frame = toy_frame(rows, seed=5).drop(columns=["is_fraud"])
    return schema.encode(frame), predict_proba(booster, schema, frame)


def _model(model_dir: Path) -> XGBoostScorerModel:
    args = scorer_parser().parse_args(
        ["--model_dir", str(model_dir), "--family", "fraud", "--allow_unverified", "true"]
    )
    model = XGBoostScorerModel(model_name(args), scorer_loader(args))
    assert model.load()
    return model


def test_the_parser_is_kserves_plus_ours(model_dir: Path) -> None:
    args = scorer_parser().parse_args(
        [
            "--model_dir",
            str(model_dir),
            "--http_port",
            "9000",
            "--grpc_port",
            "9001",
            "--workers",
            "1",
            "--max_body_bytes",
            "1024",
            "--enable_repository_extension",
            "true",
            "--family",
            "churn",
        ]
    )
    assert (args.http_port, args.grpc_port, args.workers) == (9000, 9001, 1)
    assert model_name(args) == "churn"  # KServe names the model; without it, the family does
    named = scorer_parser().parse_args(["--model_dir", "a", "--model_name", "x", "--family", "y"])
    assert model_name(named) == "x"
    assert args.max_body_bytes == 1024
    assert args.enable_repository_extension is True
    assert args.server == "fast"
    with pytest.raises(SystemExit):
        scorer_parser().parse_args(["--model_dir", "a", "--model_uri", "models:/fraud@champion"])


def test_kserves_keep_alive_flag_sets_the_servers_idle_timeout() -> None:
    """``--timeout-keep-alive`` is KServe's flag: our server honours it (the transformer's pool
    must stay under it), 65 s by default as in KServe; zero or less is refused."""
    default = server_options(scorer_parser().parse_args(["--model_dir", "a"]))
    assert default.timeout_keep_alive_s == 65
    short = scorer_parser().parse_args(["--model_dir", "a", "--timeout-keep-alive", "3"])
    assert server_options(short).timeout_keep_alive_s == 3
    zero = scorer_parser().parse_args(["--model_dir", "a", "--timeout-keep-alive", "0"])
    with pytest.raises(UserError, match="--timeout-keep-alive must be positive"):
        server_options(zero)


def test_a_model_folder_is_verified_or_explicitly_not(model_dir: Path) -> None:
    """A folder is whatever bytes are on disk: its digest, or ``--allow_unverified true``."""
    bare = scorer_parser().parse_args(["--model_dir", str(model_dir), "--family", "fraud"])
    with pytest.raises(UserError, match=r"--expected_sha256 HEX .* --allow_unverified true"):
        scorer_loader(bare)
    digest = artifact_sha256(model_dir)
    verified = scorer_parser().parse_args(
        ["--model_dir", str(model_dir), "--family", "fraud", "--expected_sha256", digest]
    )
    assert scorer_loader(verified)().version == f"sha256-{digest[:12]}"
    tampered = scorer_parser().parse_args(
        ["--model_dir", str(model_dir), "--expected_sha256", "0" * 64]
    )
    with pytest.raises(ArtifactMismatchError):
        scorer_loader(tampered)()
    both = scorer_parser().parse_args(
        ["--model_dir", str(model_dir), "--expected_sha256", digest, "--allow_unverified", "true"]
    )
    with pytest.raises(UserError, match="not both"):
        scorer_loader(both)
    registry = scorer_parser().parse_args(
        ["--model_uri", "models:/fraud@champion", "--allow_unverified", "true"]
    )
    with pytest.raises(UserError, match="--model_dir only"):
        scorer_loader(registry)


def test_main_refuses_an_unverified_folder(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inference_services.xgboost_scorer.__main__ import main

    assert main(["--model_dir", str(model_dir), "--http_port", "0"]) == 2
    err = capsys.readouterr().err
    assert "--expected_sha256" in err
    assert "--allow_unverified" in err
    assert "Traceback" not in err


def test_predict_with_kserve_types(model_dir: Path) -> None:
    model = _model(model_dir)
    matrix, expected = _encoded(model_dir)
    tensor = InferInput("features", list(matrix.shape), "FP64")
    tensor.set_data_from_numpy(matrix, binary_data=False)
    response = model.predict(InferRequest("fraud", [tensor], request_id="a"))
    probability = next(o for o in response.outputs if o.name == "fraud_probability")
    np.testing.assert_allclose(probability.as_numpy(), expected, rtol=1e-6)
    assert response.model_version == model.version
    bad = InferInput("features", [1, 4], "FP64")
    bad.set_data_from_numpy(np.array([[0.0, np.nan, 1.0, 1.0]]), binary_data=False)
    with pytest.raises(InvalidInput, match="finite"):
        model.predict(InferRequest("fraud", [bad]))


@contextmanager
def _process(args: list[str], http_port: int, tmp: Path) -> Iterator[ManagedProcess]:
    process = ManagedProcess(
        module_command(args[0], args[1:]),
        name=args[0],
        ready_url=f"http://127.0.0.1:{http_port}/v2/health/ready",
        env={"OMP_NUM_THREADS": "1"},
        log=tmp / "server.log",
        in_repository=True,
        start_timeout_s=60,
    )
    with process:
        yield process


def _infer_body(matrix: np.ndarray) -> dict[str, object]:
    return {
        "inputs": [
            {
                "name": "features",
                "datatype": "FP64",
                "shape": list(matrix.shape),
                "data": matrix.ravel().tolist(),
            }
        ]
    }


def test_main_serves_rest_and_grpc_and_drains_on_sigterm(model_dir: Path, tmp_path: Path) -> None:
    http_port, grpc_port = free_port(), free_port()
    matrix, expected = _encoded(model_dir)
    args = [
        "inference_services.xgboost_scorer",
        "--model_dir",
        str(model_dir),
        "--expected_sha256",
        artifact_sha256(model_dir),
        "--http_port",
        str(http_port),
        "--grpc_port",
        str(grpc_port),
        "--host",
        "127.0.0.1",
        "--family",
        "fraud",
    ]
    with _process(args, http_port, tmp_path) as process:
        response = httpx.post(
            f"http://127.0.0.1:{http_port}/v2/models/fraud/infer", json=_infer_body(matrix)
        )
        assert response.status_code == 200
        data = {o["name"]: o["data"] for o in response.json()["outputs"]}
        np.testing.assert_allclose(data["fraud_probability"], expected, rtol=1e-6)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            reply = stub.ModelInfer(
                pb.ModelInferRequest(
                    model_name="fraud",
                    inputs=[
                        pb.ModelInferRequest.InferInputTensor(
                            name="features",
                            datatype="FP64",
                            shape=list(matrix.shape),
                            contents=pb.InferTensorContents(fp64_contents=matrix.ravel().tolist()),
                        )
                    ],
                )
            )
            assert reply.outputs[0].name == "fraud_probability"
            scores = np.frombuffer(reply.raw_output_contents[0], dtype="<f8")
            np.testing.assert_allclose(scores, expected, rtol=1e-6)
        assert process.stop(30, signal.SIGTERM) == 0


def test_main_on_a_stock_kserve_model_server(model_dir: Path, tmp_path: Path) -> None:
    http_port, grpc_port = free_port(), free_port()
    matrix, expected = _encoded(model_dir)
    args = [
        "inference_services.xgboost_scorer",
        "--server",
        "kserve",
        "--model_dir",
        str(model_dir),
        "--allow_unverified",
        "true",
        "--http_port",
        str(http_port),
        "--grpc_port",
        str(grpc_port),
        "--model_name",
        "fraud",
    ]
    with _process(args, http_port, tmp_path) as process:
        url = f"http://127.0.0.1:{http_port}/v2/models/fraud/infer"
        response = httpx.post(url, json=_infer_body(matrix))
        assert response.status_code == 200, response.text
        data = {o["name"]: o["data"] for o in response.json()["outputs"]}
        np.testing.assert_allclose(data["fraud_probability"], expected, rtol=1e-6)
        nan = _infer_body(np.array([[0.0, 1.0, 1.0, 1.0]]))
        nan["inputs"][0]["data"][1] = "NaN"  # type: ignore[index]
        assert httpx.post(url, json=nan).status_code == 400
        process.stop(40, signal.SIGTERM)


def test_main_without_a_model_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    from inference_services.xgboost_scorer.__main__ import main

    assert main(["--http_port", "0"]) == 2
    err = capsys.readouterr().err
    assert "--model_uri" in err
    assert "Traceback" not in err
