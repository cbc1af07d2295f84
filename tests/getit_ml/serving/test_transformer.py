"""The feature transformer against a real embedded feature store and the real scorer over v2.

The reference for "the right features" is Feast itself: ``online_features`` of the whole
``fraud_scoring_v1`` service (Feast runs the on-demand views) for the same checkout, encoded with
the model's schema and scored by XGBoost directly. The transformer must give the same score over
REST and over gRPC, for a known and an unknown customer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from feast import FeatureStore

from getit_ml.errors import UserError
from getit_ml.families import get_family
from getit_ml.features.store import StoreLayout, apply_definitions, materialize, open_store
from getit_ml.features.store import online_features as feast_service_features
from getit_ml.serving.predictor import predictor_client
from getit_ml.serving.repository import ModelRepository
from getit_ml.serving.scorer import BinaryTabularScorer, load_scorer
from getit_ml.serving.server import ServerThread
from getit_ml.serving.transformer import FeastLookup, FeatureTransformer
from getit_ml.settings import load_settings
from getit_ml.training.xgb import load_model, predict_proba
from tests.getit_ml.features.offline_fixtures import write_offline
from tests.getit_ml.serving.conftest import local_options
from tests.getit_ml.serving.support import (
    CHURN_SERVICE,
    FRAUD_SERVICE,
    build_service_model,
    family_feature_types,
)

CHECKOUT = get_family("fraud").serving.request
SCORING = get_family("churn").serving.request

T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
REQUEST_TS_US = int((T0 + 9 * DAY).timestamp() * 1_000_000)
KNOWN, UNKNOWN = 3, 99_999


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving-store") / "features"


@pytest.fixture(scope="module")
def store(store_root: Path) -> FeatureStore:
    root = store_root
    rows = [(c, T0 + DAY, 1) for c in range(1, 6)]
    write_offline(
        StoreLayout(root).offline_dir,
        {
            "customer_features": rows,
            "customer_risk": rows,
            "device_features": rows,
            "customer_velocity": [(c, T0 + 9 * DAY - timedelta(minutes=5), 2) for c in range(1, 6)],
        },
    )
    settings = load_settings()
    feature_store = open_store(settings, root)
    apply_definitions(feature_store, settings.feature_repo)
    materialize(feature_store, T0, T0 + 10 * DAY)
    return feature_store


@pytest.fixture(scope="module")
def service_model(store: FeatureStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    types = family_feature_types(store)
    return build_service_model(types, tmp_path_factory.mktemp("service-model") / "model")


@pytest.fixture(scope="module")
def scorer_server(service_model: Path) -> Iterator[ServerThread]:
    with ServerThread(
        ModelRepository([load_scorer(model_dir=service_model)]), local_options()
    ) as running:
        yield running


def _checkout(customers: list[int]) -> dict[str, Any]:
    n = len(customers)
    return {
        "id": "checkout-1",
        "inputs": [
            {"name": "customer_id", "datatype": "INT64", "shape": [n], "data": customers},
            {
                "name": "request_ts_us",
                "datatype": "INT64",
                "shape": [n],
                "data": [REQUEST_TS_US] * n,
            },
            {"name": "amount_bdt", "datatype": "FP64", "shape": [n], "data": [2500.0] * n},
            {"name": "payment_method", "datatype": "BYTES", "shape": [n], "data": ["bkash"] * n},
            {"name": "checkout_device_id", "datatype": "INT64", "shape": [n], "data": customers},
        ],
    }


def _expected(store: FeatureStore, service_model: Path, customers: list[int]) -> np.ndarray:
    rows = [
        {
            "customer_id": c,
            "device_id": c,
            "request_ts_us": REQUEST_TS_US,
            "amount_bdt": 2500.0,
            "payment_method": "bkash",
            "checkout_device_id": c,
            "checkout_wallet_account_id": -1,
        }
        for c in customers
    ]
    frame = feast_service_features(store, "fraud_scoring_v1", rows).values
    for field in ("amount_bdt", "payment_method"):  # request fields are model inputs too
        frame[field] = [row[field] for row in rows]
    booster, schema = load_model(service_model)
    return predict_proba(booster, schema, frame)


@pytest.mark.parametrize("protocol", ["v2", "grpc-v2"])
def test_transformer_scores_like_the_feature_service(
    store: FeatureStore, service_model: Path, scorer_server: ServerThread, protocol: str
) -> None:
    host = scorer_server.http_url if protocol == "v2" else scorer_server.grpc_target
    transformer = FeatureTransformer(
        FeastLookup(store, FRAUD_SERVICE), predictor_client(host, protocol), CHECKOUT, name="fraud"
    )
    transformer.connect(timeout_s=10)
    customers = [KNOWN, UNKNOWN]
    with ServerThread(ModelRepository([transformer]), local_options()) as running:
        response = httpx.post(
            f"{running.http_url}/v2/models/fraud/infer", content=orjson.dumps(_checkout(customers))
        )
    assert response.status_code == 200, response.text
    document = response.json()
    outputs = {o["name"]: o["data"] for o in document["outputs"]}
    expected = _expected(store, service_model, customers)
    np.testing.assert_allclose(outputs["fraud_probability"], expected, rtol=1e-6)
    assert document["id"] == "checkout-1"
    assert document["model_version"] == transformer.version
    assert document["parameters"]["missing_features"] > 0  # the unknown customer has none


def test_an_unknown_customer_is_scored_with_missing_features(
    store: FeatureStore, scorer_server: ServerThread
) -> None:
    transformer = FeatureTransformer(
        FeastLookup(store, FRAUD_SERVICE),
        predictor_client(scorer_server.http_url, "v2"),
        CHECKOUT,
        name="fraud",
    )
    transformer.connect(timeout_s=10)
    known, known_missing = transformer.predictor_request(_decoded(_checkout([KNOWN])))
    unknown, unknown_missing = transformer.predictor_request(_decoded(_checkout([UNKNOWN])))
    assert unknown_missing > known_missing
    mask = next(i for i in unknown["inputs"] if i["name"] == "missing")
    assert mask["shape"] == [1, len(unknown["inputs"]) - 1]
    # Request fields and on-demand context are never missing, even for an unknown customer.
    names = [i["name"] for i in unknown["inputs"][:-1]]
    flags = dict(zip(names, mask["data"], strict=True))
    assert flags["amount_bdt"] is False
    assert flags["hour_local"] is False
    assert known["inputs"][0]["name"] == unknown["inputs"][0]["name"]


def _decoded(document: dict[str, Any]) -> Any:
    from getit_ml.serving.protocol import decode_document

    return decode_document(document)


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"drop": "customer_id"}, 400),
        (
            {"replace": {"name": "customer_id", "datatype": "FP64", "shape": [1], "data": [3.5]}},
            400,
        ),
        (
            {"replace": {"name": "payment_method", "datatype": "INT64", "shape": [1], "data": [1]}},
            400,
        ),
        (
            {
                "replace": {
                    "name": "amount_bdt",
                    "datatype": "FP64",
                    "shape": [2],
                    "data": [1.0, 2.0],
                }
            },
            400,
        ),
        ({"add": {"name": "email", "datatype": "BYTES", "shape": [1], "data": ["a@b"]}}, 400),
    ],
    ids=["no customer", "float customer", "numeric rail", "rows disagree", "unknown field"],
)
def test_malformed_checkouts(
    store: FeatureStore, scorer_server: ServerThread, change: dict[str, Any], status: int
) -> None:
    transformer = FeatureTransformer(
        FeastLookup(store, FRAUD_SERVICE),
        predictor_client(scorer_server.http_url, "v2"),
        CHECKOUT,
        name="fraud",
    )
    transformer.connect(timeout_s=10)
    document = _checkout([KNOWN])
    inputs = document["inputs"]
    if "drop" in change:
        inputs[:] = [i for i in inputs if i["name"] != change["drop"]]
    if "replace" in change:
        inputs[:] = [
            change["replace"] if i["name"] == change["replace"]["name"] else i for i in inputs
        ]
    if "add" in change:
        inputs.append(change["add"])
    with ServerThread(ModelRepository([transformer]), local_options()) as running:
        response = httpx.post(
            f"{running.http_url}/v2/models/fraud/infer", content=orjson.dumps(document)
        )
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"]


def test_an_unreachable_predictor_is_a_503(
    store: FeatureStore, service_model: Path, scorer: BinaryTabularScorer
) -> None:
    repository = ModelRepository([load_scorer(model_dir=service_model)])
    with ServerThread(repository, local_options()) as predictor:
        transformer = FeatureTransformer(
            FeastLookup(store, FRAUD_SERVICE),
            predictor_client(predictor.http_url, "v2", timeout_s=2),
            CHECKOUT,
            name="fraud",
        )
        transformer.connect(timeout_s=10)
    # The predictor is gone now.
    with ServerThread(ModelRepository([transformer]), local_options()) as running:
        response = httpx.post(
            f"{running.http_url}/v2/models/fraud/infer", content=orjson.dumps(_checkout([KNOWN]))
        )
    assert response.status_code == 503
    assert "unreachable" in response.json()["error"]


def test_every_model_input_is_produced(
    store: FeatureStore, scorer_server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    """The service model's inputs all come from the store, the context or the request; a
    model that needs something else is announced at start-up (it would always be missing)."""
    lookup = FeastLookup(store, FRAUD_SERVICE)
    transformer = FeatureTransformer(
        lookup, predictor_client(scorer_server.http_url, "v2"), CHECKOUT, name="fraud"
    )
    with caplog.at_level("WARNING", logger="getit_ml.serving.transformer"):
        transformer.connect(timeout_s=10)
    assert "always be missing" not in caplog.text
    lookup_names = lookup.feature_names
    assert "avg_payment_amount_30d" in lookup_names  # read for the on-demand view
    short = FeastLookup(store, FRAUD_SERVICE)
    short.refs = [r for r in short.refs if not r.endswith(":avg_payment_amount_30d")]
    renamed = FeatureTransformer(
        short, predictor_client(scorer_server.http_url, "v2"), CHECKOUT, name="fraud"
    )
    with caplog.at_level("WARNING", logger="getit_ml.serving.transformer"):
        renamed.connect(timeout_s=10)
    assert "avg_payment_amount_30d" in caplog.text


def test_the_lookup_finds_the_services_keys_and_request_fields(store: FeatureStore) -> None:
    """Nothing is declared for a service by hand: its join keys, the request fields its
    on-demand views read and their bodies come from the Feast registry."""
    fraud = FeastLookup(store, FRAUD_SERVICE)
    assert set(fraud.entity_keys) == {"customer_id", "device_id"}
    assert set(fraud.request_fields) == {
        "request_ts_us",
        "amount_bdt",
        "payment_method",
        "checkout_device_id",
        "checkout_wallet_account_id",
    }
    assert [body.__name__ for body in fraud.on_demand] == [
        "calendar_context_view",
        "transaction_context_view",
    ]
    churn = FeastLookup(store, CHURN_SERVICE)
    assert churn.entity_keys == ("customer_id",)
    assert churn.request_fields == ("request_ts_us",)
    assert [body.__name__ for body in churn.on_demand] == ["calendar_context_view"]


def test_a_request_that_cannot_feed_the_service_is_refused(store: FeatureStore) -> None:
    with pytest.raises(UserError, match=r"needs .*device_id"):
        FeatureTransformer(
            FeastLookup(store, FRAUD_SERVICE), predictor_client("x:1", "v2"), SCORING
        )


def test_the_same_transformer_serves_churn(
    store: FeatureStore, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Churn's request is a customer id and, by default, the time: the generic transformer reads
    churn's service (customer features and the scoring calendar) and gets Feast's own answer."""
    model = build_service_model(
        family_feature_types(store, "churn"),
        tmp_path_factory.mktemp("churn-model") / "model",
        "churn",
    )
    scorer = load_scorer(model_dir=model)
    with ServerThread(ModelRepository([scorer]), local_options()) as predictor:
        transformer = FeatureTransformer(
            FeastLookup(store, CHURN_SERVICE),
            predictor_client(predictor.http_url, "v2"),
            SCORING,
            name="churn",
        )
        transformer.connect(timeout_s=10)
        document = get_family("churn").serving.request_document(
            [
                {"customer_id": KNOWN, "request_ts_us": REQUEST_TS_US},
                {"customer_id": UNKNOWN, "request_ts_us": REQUEST_TS_US},
            ]
        )
        with ServerThread(ModelRepository([transformer]), local_options()) as running:
            response = httpx.post(
                f"{running.http_url}/v2/models/churn/infer", content=orjson.dumps(document)
            )
            defaulted = httpx.post(
                f"{running.http_url}/v2/models/churn/infer",
                content=orjson.dumps(
                    get_family("churn").serving.request_document([{"customer_id": KNOWN}])
                ),
            )
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
    rows = [{"customer_id": c, "request_ts_us": REQUEST_TS_US} for c in (KNOWN, UNKNOWN)]
    frame = feast_service_features(store, CHURN_SERVICE, rows).values
    booster, schema = load_model(model)
    np.testing.assert_allclose(
        outputs["churn_probability"], predict_proba(booster, schema, frame), rtol=1e-6
    )
    assert defaulted.status_code == 200, defaulted.text  # request_ts_us defaults to now
