"""The sidecars as real servers: a kserve 0.12.1 v2 predictor, the explainer calling it over
HTTP, and the drift detector fed with payload-logger CloudEvents (each a subprocess started
with its ``__main__`` and kserve's parser, on free ports, always stopped)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from getit_ml.families.fraud import FESTIVAL_WEEK
from getit_ml.monitoring.events import binary_headers
from getit_ml.monitoring.synthetic import FESTIVAL_MIX, FraudPopulation, fraud_probability
from getit_ml.monitoring.traffic import replay, shifted_traffic
from getit_ml.services import free_port
from tests.monitoring.support.servers import Receiver, request, served

pytestmark = pytest.mark.slow


def _rows(matrix: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(v) else float(v) for v in row] for row in matrix]


@pytest.fixture(scope="module")
def predictor_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("logs") / "predictor.log"
    arguments = [
        "tests/monitoring/support/predictor_server.py",
        "--http_port",
        str(port),
        "--model_name",
        "fraud",
    ]
    with served(arguments, port, "/v2/models/fraud/ready", log=log):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def explainer_url(
    predictor_url: str, reference_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("logs") / "explainer.log"
    arguments = [
        "-m",
        "inference_services.explainer",
        "--http_port",
        str(port),
        "--model_name",
        "fraud",
        "--reference_dir",
        str(reference_dir),
        "--predictor_url",
        predictor_url,
        "--max_instances",
        "2",
    ]
    with served(arguments, port, "/v1/models/fraud", log=log):
        yield f"http://127.0.0.1:{port}"


def _flagged(population: FraudPopulation) -> np.ndarray:
    sample = population.sample(4_000, np.random.default_rng(21)).features
    scores = fraud_probability(population.schema, sample)
    return sample[np.argsort(-scores)[:1]]


def test_v1_explain_route(explainer_url: str, population: FraudPopulation) -> None:
    status, body = request(
        "POST",
        f"{explainer_url}/v1/models/fraud:explain",
        {"instances": _rows(_flagged(population))},
    )
    assert status == 200, body
    assert body["model_name"] == "fraud"
    [explanation] = body["explanations"]
    assert explanation["label"] == "fraud"
    assert explanation["anchor"]["rule"].startswith("IF ")
    model_features = {"is_new_device", "is_wallet_change", "amount_vs_avg_30d", "payments_10m"}
    assert set(explanation["anchor"]["features"]) <= model_features
    assert {v["feature"] for v in explanation["attributions"]["values"]} <= model_features
    assert explanation["reasons"]
    assert explanation["predictor_calls"] >= 2  # really went over HTTP to the predictor


def test_v2_explain_route_takes_the_predictors_input(
    explainer_url: str, population: FraudPopulation
) -> None:
    row = _flagged(population)
    missing = np.isnan(row)
    inputs = [
        {
            "name": "features",
            "shape": list(row.shape),
            "datatype": "FP64",
            "data": np.where(missing, 0.0, row).ravel().tolist(),
        },
        {
            "name": "missing",
            "shape": list(row.shape),
            "datatype": "BOOL",
            "data": missing.ravel().tolist(),
        },
    ]
    assert missing.any()  # the mask is exercised
    status, body = request(
        "POST", f"{explainer_url}/v2/models/fraud/explain", {"id": "req-7", "inputs": inputs}
    )
    assert status == 200, body
    assert body["id"] == "req-7"
    assert body["explanations"][0]["score"] == pytest.approx(
        float(fraud_probability(population.schema, row)[0])
    )


def test_explainer_rejects_bad_input_with_400(explainer_url: str) -> None:
    status, body = request(
        "POST", f"{explainer_url}/v1/models/fraud:explain", {"instances": [[1.0, 2.0]]}
    )
    assert status == 400
    assert "125 features" in json.dumps(body)
    status, body = request(
        "POST", f"{explainer_url}/v1/models/fraud:explain", {"instances": [[0.0] * 125] * 3}
    )
    assert status == 400
    assert "at most 2" in json.dumps(body)
    status, _ = request("POST", f"{explainer_url}/v1/models/other:explain", {"instances": []})
    assert status == 404


def test_explainer_cannot_be_unloaded_from_outside(explainer_url: str) -> None:
    """kserve 0.12.1 mounts the repository extension unauthenticated; ours removes it."""
    for action in ("unload", "load"):
        status, _ = request("POST", f"{explainer_url}/v2/repository/models/fraud/{action}", {})
        assert status == 404
    status, _ = request("GET", f"{explainer_url}/v2/models/fraud/ready")
    assert status == 200


def test_drift_detector_end_to_end(
    reference_dir: Path, population: FraudPopulation, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with Receiver() as receiver:
        arguments = [
            "-m",
            "inference_services.drift_detector",
            "--http_port",
            str(port),
            "--reference_dir",
            str(reference_dir),
            "--window_size",
            "200",
            "--alert_url",
            receiver.url,
            "--alert_format",
            "webhook",
            "--state_file",
            str(tmp_path / "state.json"),
        ]
        with served(arguments, port, "/v2/health/ready", log=tmp_path / "drift.log"):
            rng = np.random.default_rng(31)
            normal = population.sample(200, rng).features
            festival = population.sample(200, rng, payment_mix=FESTIVAL_MIX).features
            for n, rows in enumerate(np.vstack([normal, festival]).reshape(-1, 10, 125)):
                scores = fraud_probability(population.schema, rows).tolist()
                status, _ = request(
                    "POST",
                    url + "/",
                    {"instances": _rows(rows)},
                    binary_headers("request", f"id-{n}", "fraud"),
                )
                assert status == 202
                status, _ = request(
                    "POST",
                    url + "/",
                    {"predictions": scores},
                    binary_headers("response", f"id-{n}", "fraud"),
                )
                assert status == 202
            status, answer = request(
                "POST", url + "/", b"garbage", binary_headers("request", "bad", "fraud")
            )
            assert status == 400
            assert answer["reason"] == "bad_json"
            status, document = request("GET", url + "/status")
            assert status == 200
            fraud = document["models"]["fraud"]
            assert fraud["windows_tested"] == 2
            assert fraud["history"][0]["is_drift"] is False
            assert fraud["last_result"]["is_drift"] is True
            assert document["events_dropped"] == {"bad_json": 1}
            status, one = request("GET", url + "/status/fraud")
            assert status == 200
            assert one["windows_tested"] == 2
            assert request("GET", url + "/status/nobody")[0] == 404
            status, metrics = request("GET", url + "/metrics")
            assert 'getit_ml_drift_is_drift{model="fraud"} 1.0' in metrics
            assert 'getit_ml_drift_events_dropped_total{reason="bad_json"} 1.0' in metrics
            alerts = receiver.wait(1)
    assert len(alerts) == 1
    assert alerts[0][1]["model"] == "fraud"
    assert "payment_method" in alerts[0][1]["drifted_features"]
    saved = json.loads((tmp_path / "state.json").read_text())
    assert len(saved["results"]["fraud"]) == 2


def test_walkthrough_normal_then_festival_traffic(
    predictor_url: str,
    explainer_url: str,
    reference_dir: Path,
    population: FraudPopulation,
    tmp_path: Path,
) -> None:
    """What `make demo` shows: traffic through the served model with the payload logger on,
    normal then a festival week; the drift alert, and the explanation of a flagged payment."""
    port = free_port()
    drift_url = f"http://127.0.0.1:{port}"
    rng = np.random.default_rng(43)
    normal = population.sample(400, rng).features
    festival = shifted_traffic(
        population.schema, population.sample(400, rng).features, rng, FESTIVAL_WEEK
    )
    with Receiver() as receiver:
        arguments = [
            "-m",
            "inference_services.drift_detector",
            "--http_port",
            str(port),
            "--model_name",
            "fraud",
            "--reference_dir",
            str(reference_dir),
            "--window_size",
            "200",
            "--predictor_url",
            predictor_url,
            "--alert_url",
            receiver.url,
        ]
        with served(arguments, port, "/v2/health/ready", log=tmp_path / "drift.log"):
            report = replay(
                predictor_url,
                "fraud",
                [normal, festival],
                logger_url=drift_url + "/",
                explainer_url=explainer_url,
                drift_url=drift_url,
            )
            alerts = receiver.wait(1)
    assert report.payments == 800
    assert report.log_failures == 0
    assert report.drift_status is not None
    assert report.drift_status["score_reference"].startswith("reference scored by")
    fraud = report.drift_status["models"]["fraud"]
    outcomes = [h["is_drift"] for h in fraud["history"]] + [fraud["last_result"]["is_drift"]]
    assert outcomes == [False, False, True, True], [
        (h["drifted_features"], h.get("score_p_value")) for h in fraud["history"]
    ]
    assert "payment_method" in fraud["last_result"]["drifted_features"]
    assert len(alerts) == 1
    headers, alert = alerts[0]
    assert headers["ce-type"] == "ai.getit.ml.drift.detected"
    assert alert["suggested_action"] == "retrain"
    assert report.explanation is not None
    assert report.explanation["score"] == pytest.approx(report.explained_score)
    assert report.explanation["reasons"]
