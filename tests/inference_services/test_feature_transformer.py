"""``inference_services/feature_transformer``: the kserve.Model adapter builds the scorer's
request in ``preprocess`` (KServe's transformer contract) from a real feature store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from kserve import InferInput, InferRequest
from kserve.errors import InvalidInput

from getit_ml.families import get_family
from getit_ml.features.store import StoreLayout, apply_definitions, materialize, open_store
from getit_ml.serving.entrypoints import transformer_parser
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
    request = transformer_model.preprocess(_checkout(1, 1500.0))
    names = [t.name for t in request.inputs]
    assert names[-1] == "missing"
    assert {"amount_bdt", "hour_local", "is_wallet"} <= set(names)
    by_name = {t.name: t for t in request.inputs}
    assert by_name["amount_bdt"].as_numpy().tolist() == [1500.0]
    assert by_name["is_wallet"].as_numpy().tolist() == [True]  # nagad is a wallet
    mask = by_name["missing"].as_numpy()
    assert mask.shape == (1, len(names) - 1)
    assert not mask[0, names.index("amount_bdt")]
    assert request.id == "c-1"


def test_preprocess_refuses_a_malformed_checkout(
    transformer_model: FeatureTransformerModel,
) -> None:
    bad = InferRequest("fraud", [InferInput("amount_bdt", [1], "FP64", [np.inf])])
    with pytest.raises(InvalidInput):
        transformer_model.preprocess(bad)


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
