"""``inference_services/feature_transformer``: the kserve.Model adapter builds the scorer's
request in ``preprocess`` (KServe's transformer contract) from a real feature store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from kserve import InferInput, InferOutput, InferRequest, InferResponse
from kserve.errors import InvalidInput

from getit_ml.errors import UserError
from getit_ml.families import get_family
from getit_ml.features.store import StoreLayout, apply_definitions, materialize, open_store
from getit_ml.serving.entrypoints import build_transformer, transformer_parser
from getit_ml.serving.predictor import predictor_client
from getit_ml.serving.repository import ModelRepository
from getit_ml.serving.scorer import load_scorer
from getit_ml.serving.server import ServerOptions, ServerThread
from getit_ml.serving.transformer import FeastLookup, FeatureTransformer
from getit_ml.settings import load_settings
from inference_services.feature_transformer.model import FeatureTransformerModel
from tests.getit_ml.features.offline_fixtures import write_offline
from tests.getit_ml.serving.support import (
    FRAUD_SERVICE,
    build_service_model,
    family_feature_types,
)

T0 = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def transformer_model(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FeatureTransformerModel]:
    root = tmp_path_factory.mktemp("adapter-store") / "features"
    rows = [(c, T0 + timedelta(days=1), 1) for c in (1, 2)]
    write_offline(StoreLayout(root).offline_dir, {"customer_features": rows, "customer_risk": rows})
    settings = load_settings()
    store = open_store(settings, root)
    apply_definitions(store, settings.feature_repo)
    materialize(store, T0, T0 + timedelta(days=5))
    model_dir = build_service_model(family_feature_types(store), root.parent / "model")
    options = ServerOptions(http_port=0, grpc_port=None, host="127.0.0.1")
    with ServerThread(ModelRepository([load_scorer(model_dir=model_dir)]), options) as scorer:
        transformer = FeatureTransformer(
            FeastLookup(store, FRAUD_SERVICE),
            predictor_client(scorer.http_url, "v2"),
            get_family("fraud").serving.request,
            name="fraud",
        )
        model = FeatureTransformerModel("fraud", transformer)
        assert model.load()
        yield model


def _checkout(customer: int, amount: float) -> InferRequest:
    tensors = [
        InferInput("customer_id", [1], "INT64", [customer]),
        InferInput("amount_bdt", [1], "FP64", [amount]),
        InferInput("payment_method", [1], "BYTES", ["nagad"]),
        InferInput("checkout_device_id", [1], "INT64", [customer]),
    ]
    return InferRequest("fraud", tensors, request_id="c-1")


def test_preprocess_builds_the_scorers_request(transformer_model: FeatureTransformerModel) -> None:
    request = asyncio.run(transformer_model.preprocess(_checkout(1, 1500.0)))
    names = [t.name for t in request.inputs]
    assert names[-1] == "missing"
    assert {"amount_bdt", "hour_local", "is_wallet"} <= set(names)
    by_name = {t.name: t for t in request.inputs}
    assert by_name["amount_bdt"].as_numpy().tolist() == [1500.0]
    assert by_name["is_wallet"].as_numpy().tolist() == [True]  # nagad is a wallet
    mask = by_name["missing"].as_numpy()
    assert mask.shape == (1, len(names) - 1)
    assert not mask[0, names.index("amount_bdt")]
    # KServe's client carries the request under an id of the adapter's own, so postprocess can
    # add the rows' decision_status; the caller's id comes back.
    result = InferResponse(
        response_id=request.id,
        model_name="fraud",
        infer_outputs=[InferOutput("fraud_probability", [1], "FP64", [0.1])],
    )
    answered = transformer_model.postprocess(result)
    assert answered.id == "c-1"
    statuses = {o.name: o for o in answered.outputs}["decision_status"]
    assert statuses.datatype == "BYTES"
    assert list(statuses.data) == ["scored"]
    assert answered.parameters["degraded_rows"] == 0


def test_preprocess_refuses_a_malformed_checkout(
    transformer_model: FeatureTransformerModel,
) -> None:
    bad = InferRequest("fraud", [InferInput("amount_bdt", [1], "FP64", [np.inf])])
    with pytest.raises(InvalidInput):
        asyncio.run(transformer_model.preprocess(bad))


def test_the_parser_takes_kserves_transformer_flags() -> None:
    args = transformer_parser().parse_args(
        [
            "--predictor_host",
            "fraud-predictor:8080",
            "--predictor_protocol",
            "grpc-v2",
            "--feature_store",
            "/tmp/x",
        ]
    )
    assert args.predictor_host == "fraud-predictor:8080"
    assert args.predictor_protocol == "grpc-v2"
    assert args.feature_service is None  # the family's
    assert args.predictor_timeout == 60.0
    assert Path(args.feature_store) == Path("/tmp/x")
    assert args.freshness_check == "ttl"
    assert args.predictor_call_timeout is None  # GETIT_ML_PREDICTOR_CALL_TIMEOUT_S
    assert args.feature_read_deadline is None  # GETIT_ML_FEATURE_READ_DEADLINE_S
    with pytest.raises(SystemExit):
        transformer_parser().parse_args(["--freshness_check", "sometimes"])


def test_the_entry_point_takes_its_bounds_from_settings_and_flags(
    transformer_model: FeatureTransformerModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings give the timeouts, flags override them; the startup wait and the per-call
    timeout are two values (one minute per call would let a hung scorer hold requests)."""
    monkeypatch.setenv("GETIT_ML_PREDICTOR_CALL_TIMEOUT_S", "3.5")
    monkeypatch.setenv("GETIT_ML_STORE_BREAKER_FAILURES", "7")
    store = transformer_model.transformer.lookup.store  # type: ignore[attr-defined]
    args = transformer_parser().parse_args(
        ["--model_name", "fraud", "--predictor_host", "127.0.0.1:1", "--feature_store",
         str(store.config.repo_path), "--feature_read_deadline", "0.05",
         "--freshness_check", "off"]
    )  # fmt: skip
    transformer = build_transformer(args, get_family("fraud").serving)
    assert transformer.predictor_timeout_s == 3.5
    assert transformer.freshness_check == "off"
    assert transformer.policy == get_family("fraud").serving.degraded
    assert transformer.lookup.options.deadline_s == 0.05
    assert transformer.lookup.options.breaker_failures == 7
    bad = transformer_parser().parse_args(
        ["--predictor_host", "127.0.0.1:1", "--predictor_call_timeout", "0"]
    )
    with pytest.raises(UserError, match="--predictor_call_timeout must be positive"):
        build_transformer(bad, get_family("fraud").serving)


def test_the_adapter_exposes_readiness_and_metrics(
    transformer_model: FeatureTransformerModel,
) -> None:
    ready, reason = transformer_model.readiness()
    assert not ready  # the fixture's data is from March 2025: older than the views' ttls
    assert "is stale" in reason
    collector = transformer_model.metrics_collector
    names = {family.name for family in collector.collect()}
    assert {"getit_ml_dependency_up", "getit_ml_feature_view_watermark_present",
            "getit_ml_degraded_rows"} <= names  # fmt: skip


def test_the_container_entry_point_honours_predictor_timeout(tmp_path: Path) -> None:
    """The chart passes --predictor_timeout; the one entry point must wait that long for the
    scorer at start-up, not a built-in minute (it once did: the container path ignored it)."""
    import subprocess
    import time

    from getit_ml.processes import ManagedProcess, module_command
    from getit_ml.services import free_port

    root = tmp_path / "features"
    write_offline(StoreLayout(root).offline_dir, {"customer_features": [(1, T0, 1)]})
    settings = load_settings()
    apply_definitions(open_store(settings, root), settings.feature_repo)
    command = module_command(
        "inference_services.feature_transformer",
        ["--model_name", "fraud", "--predictor_host", f"127.0.0.1:{free_port()}",
         "--predictor_timeout", "2", "--feature_store", str(root),
         "--http_port", str(free_port()), "--grpc_port", str(free_port())],
    )  # fmt: skip
    process = ManagedProcess(command, name="transformer", log=tmp_path / "log", in_repository=True)
    started = time.monotonic()
    process.spawn()
    try:
        code = process.wait(timeout_s=55)
    except subprocess.TimeoutExpired:
        process.stop(5)
        raise AssertionError("the transformer ignored --predictor_timeout 2") from None
    waited = time.monotonic() - started
    assert code == 2
    assert waited < 50, f"waited {waited:.0f} s for an unreachable scorer"
    log = (tmp_path / "log").read_text()
    assert "not ready" in log
    assert "Traceback" not in log
