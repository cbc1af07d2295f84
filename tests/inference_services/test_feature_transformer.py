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

from getit_ml.features.store import StoreLayout, apply_definitions, materialize, open_store
from getit_ml.serving.entrypoints import transformer_parser
from getit_ml.serving.repository import ModelRepository
from getit_ml.serving.scorer import load_scorer
from getit_ml.serving.server import ServerOptions, ServerThread
from getit_ml.serving.transformer import FeastLookup, FeatureTransformer, predictor_client
from getit_ml.settings import load_settings
from getit_ml.training.dataset import service_feature_types
from inference_services.feature_transformer.model import FeatureTransformerModel
from tests.getit_ml.features.offline_fixtures import write_offline
from tests.getit_ml.serving.support import build_service_model

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
    model_dir = build_service_model(service_feature_types(store), root.parent / "model")
    options = ServerOptions(http_port=0, grpc_port=None, host="127.0.0.1")
    with ServerThread(ModelRepository([load_scorer(model_dir=model_dir)]), options) as scorer:
        transformer = FeatureTransformer(
            FeastLookup(store), predictor_client(scorer.http_url, "v2")
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
    assert args.feature_service == "fraud_scoring_v1"
    assert Path(args.feature_store) == Path("/tmp/x")
