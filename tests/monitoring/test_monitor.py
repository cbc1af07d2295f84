"""The drift monitor: pairing, bounded windows, metrics, alerts, restarts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from getit_ml.monitoring.alerts import ALERT_TYPE, AlertConfig, AlertSender
from getit_ml.monitoring.detectors import DetectorConfig, Detectors
from getit_ml.monitoring.events import binary_headers
from getit_ml.monitoring.metrics import DriftMetrics
from getit_ml.monitoring.monitor import DriftMonitor, MonitorConfig
from getit_ml.monitoring.schema import Reference
from getit_ml.monitoring.synthetic import FESTIVAL_MIX, FraudPopulation, fraud_probability
from tests.monitoring.support.servers import Receiver


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def detectors(reference: Reference, population: FraudPopulation) -> Detectors:
    scores = fraud_probability(population.schema, reference.features)
    return Detectors(reference, DetectorConfig(outlier="iforest"), reference_scores=scores)


def _rows(matrix: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(v) else float(v) for v in row] for row in matrix]


def _send(
    monitor: DriftMonitor,
    population: FraudPopulation,
    matrix: np.ndarray,
    first_id: int,
    per_request: int = 5,
    response_first: bool = False,
) -> list[Any]:
    outcomes = []
    scores = fraud_probability(population.schema, matrix)
    for k, start in enumerate(range(0, len(matrix), per_request)):
        event_id = f"e{first_id + k}"
        part = slice(start, start + per_request)
        request = (
            binary_headers("request", event_id, "fraud"),
            json.dumps({"instances": _rows(matrix[part])}).encode(),
        )
        response = (
            binary_headers("response", event_id, "fraud"),
            json.dumps({"predictions": scores[part].tolist()}).encode(),
        )
        for headers, body in (response, request) if response_first else (request, response):
            outcomes.append(monitor.handle(headers, body))
    return outcomes


def test_pairs_by_id_in_either_order_and_tests_full_windows(
    detectors: Detectors, population: FraudPopulation
) -> None:
    monitor = DriftMonitor(detectors, MonitorConfig(window_size=100))
    rng = np.random.default_rng(1)
    outcomes = _send(monitor, population, population.sample(60, rng).features, 0)
    outcomes += _send(
        monitor, population, population.sample(60, rng).features, 100, response_first=True
    )
    assert [o.status for o in outcomes[:2]] == ["accepted", "paired"]
    assert sum(o.windows_tested for o in outcomes) == 1
    status = monitor.status()
    fraud = status["models"]["fraud"]
    assert fraud["instances_seen"] == 120
    assert fraud["window_filled"] == 100
    assert fraud["windows_tested"] == 1
    assert fraud["is_drift"] is False
    assert status["pending"] == 0
    assert status["events_received"] == 48


def test_drift_is_measured_exported_and_alerted(
    detectors: Detectors, population: FraudPopulation
) -> None:
    metrics = DriftMetrics()
    with Receiver() as receiver:
        alerts = AlertSender(
            AlertConfig(url=receiver.url, format="cloudevent", cooldown_s=3600),
            lambda outcome: metrics.alerts.labels(outcome=outcome).inc(),
        )
        monitor = DriftMonitor(
            detectors, MonitorConfig(window_size=200), metrics=metrics, alerts=alerts
        )
        rng = np.random.default_rng(2)
        _send(monitor, population, population.sample(200, rng).features, 0)
        festival = population.sample(600, rng, payment_mix=FESTIVAL_MIX).features
        _send(monitor, population, festival, 1000)
        alerts.flush()
        received = receiver.wait(1)
        alerts.close()
    history = monitor.status()["models"]["fraud"]
    assert history["windows_tested"] == 4
    assert [h["is_drift"] for h in history["history"]] == [False, True, True]
    assert history["last_result"]["is_drift"] is True
    assert "payment_method" in history["last_result"]["drifted_features"]
    # One alert: the drift started once, and the cooldown holds the repeats back.
    assert len(received) == 1
    headers, body = received[0]
    assert headers["ce-type"] == ALERT_TYPE
    assert headers["ce-specversion"] == "1.0"
    assert body["model"] == "fraud"
    assert "payment_method" in body["drifted_features"]
    assert body["p_values"]["payment_method"] < 0.05
    exposition = metrics.exposition().decode()
    assert 'getit_ml_drift_is_drift{model="fraud"} 1.0' in exposition
    assert 'getit_ml_drift_feature_p_value{feature="payment_method",model="fraud"}' in exposition
    assert 'getit_ml_drift_window_size{model="fraud"} 200.0' in exposition
    assert 'getit_ml_drift_events_received_total{kind="request"} 160.0' in exposition
    assert 'getit_ml_drift_alerts_total{outcome="sent"} 1.0' in exposition
    assert "getit_ml_drift_outlier_rate" in exposition
    assert "getit_ml_drift_score_p_value" in exposition


def test_webhook_alerts_are_plain_json(detectors: Detectors, population: FraudPopulation) -> None:
    with Receiver() as receiver:
        alerts = AlertSender(AlertConfig(url=receiver.url, format="webhook"))
        monitor = DriftMonitor(detectors, MonitorConfig(window_size=200), alerts=alerts)
        shifted = population.sample(
            200, np.random.default_rng(3), mean_shift={"amount_log": 1.0}
        ).features
        _send(monitor, population, shifted, 0)
        alerts.flush()
        received = receiver.wait(1)
        alerts.close()
    assert len(received) == 1
    headers, body = received[0]
    assert "ce-type" not in headers
    assert body["event"] == "drift_detected"
    assert body["drifted_features"][0] == "amount_log"


def test_bad_events_are_counted_and_never_raise(
    detectors: Detectors, population: FraudPopulation
) -> None:
    monitor = DriftMonitor(detectors, MonitorConfig(window_size=50))
    bad = [
        ({"content-type": "application/json"}, b"{}"),
        (binary_headers("request", "1", "fraud"), b"\xff\xfe"),
        (binary_headers("request", "2", "fraud"), b'{"instances": [[1, 2]]}'),
        (binary_headers("response", "3", "fraud"), b'{"predictions": "high"}'),
        (binary_headers("request", "4", "fraud"), b'{"instances": "x"}'),
        ({"ce-type": "org.kubeflow.serving.inference.request", "ce-id": "5"}, b"{}"),
    ]
    outcomes = [monitor.handle(headers, body) for headers, body in bad]
    assert all(o.status == "dropped" for o in outcomes)
    dropped = monitor.status()["events_dropped"]
    assert dropped == {
        "not_cloudevent": 1,
        "bad_json": 1,
        "bad_request": 2,
        "bad_response": 1,
        "no_model": 1,
    }
    # The monitor still works afterwards.
    _send(monitor, population, population.sample(50, np.random.default_rng(4)).features, 10)
    assert monitor.status()["models"]["fraud"]["windows_tested"] == 1


def test_a_response_with_another_number_of_rows_is_dropped(
    detectors: Detectors, population: FraudPopulation
) -> None:
    monitor = DriftMonitor(detectors, MonitorConfig(window_size=50))
    rows = population.sample(3, np.random.default_rng(5)).features
    monitor.handle(
        binary_headers("request", "x", "fraud"), json.dumps({"instances": _rows(rows)}).encode()
    )
    outcome = monitor.handle(binary_headers("response", "x", "fraud"), b'{"predictions": [0.1]}')
    assert (outcome.status, outcome.reason) == ("dropped", "size_mismatch")


def test_memory_is_bounded(detectors: Detectors, population: FraudPopulation) -> None:
    clock = Clock()
    monitor = DriftMonitor(
        detectors,
        MonitorConfig(window_size=20, max_pending=10, pending_ttl_s=5, max_models=2),
        clock=clock,
    )
    row = json.dumps({"instances": _rows(population.sample(1, np.random.default_rng(6)).features)})
    for i in range(25):  # requests whose responses never come
        monitor.handle(binary_headers("request", f"r{i}", "fraud"), row.encode())
    assert monitor.status()["pending"] == 10
    assert monitor.status()["events_dropped"]["pending_overflow"] == 15
    clock.now = 10.0  # past the time-to-live: the next event clears the stale halves
    monitor.handle(binary_headers("request", "late", "fraud"), row.encode())
    assert monitor.status()["pending"] == 1
    assert monitor.status()["events_dropped"]["unpaired"] == 10
    for model in ("a", "b", "c"):
        monitor.handle(binary_headers("request", "m", model), row.encode())
        monitor.handle(binary_headers("response", "m", model), b'{"predictions": [0.5]}')
    assert sorted(monitor.status()["models"]) == ["a", "b"]
    assert monitor.status()["events_dropped"]["too_many_models"] == 1


def test_a_restart_keeps_the_last_results_and_loses_only_the_window(
    detectors: Detectors, population: FraudPopulation, tmp_path: Path
) -> None:
    state = tmp_path / "state" / "drift.json"
    first = DriftMonitor(detectors, MonitorConfig(window_size=50, state_path=state))
    rng = np.random.default_rng(7)
    _send(first, population, population.sample(50, rng, payment_mix=FESTIVAL_MIX).features, 0)
    _send(first, population, population.sample(30, rng).features, 100)  # a partial window
    assert state.is_file()
    second = DriftMonitor(detectors, MonitorConfig(window_size=50, state_path=state))
    fraud = second.status()["models"]["fraud"]
    assert fraud["windows_tested"] == 1
    assert fraud["last_result"]["restored"] is True
    assert fraud["is_drift"] == first.status()["models"]["fraud"]["is_drift"]
    assert fraud["window_filled"] == 0  # the partial window is what a restart loses
    assert b'getit_ml_drift_is_drift{model="fraud"}' in second.metrics.exposition()


def test_a_damaged_state_file_is_ignored(detectors: Detectors, tmp_path: Path) -> None:
    state = tmp_path / "drift.json"
    state.write_text("{broken")
    monitor = DriftMonitor(detectors, MonitorConfig(window_size=50, state_path=state))
    assert monitor.status()["models"] == {}


def test_without_reference_scores_the_first_window_is_the_reference(
    reference: Reference, population: FraudPopulation
) -> None:
    detectors = Detectors(reference, DetectorConfig(outlier="none"))
    monitor = DriftMonitor(detectors, MonitorConfig(window_size=100))
    rng = np.random.default_rng(8)
    _send(monitor, population, population.sample(200, rng).features, 0)
    status = monitor.status()
    assert status["score_reference"] == "first window of fraud"
    history = status["models"]["fraud"]
    assert history["history"][0]["is_drift"] is False
    assert history["last_result"]["score_p_value"] is not None
