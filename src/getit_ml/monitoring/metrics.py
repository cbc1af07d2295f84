"""Prometheus metrics of the drift detector, on a registry of its own (one per monitor)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "getit_ml_drift"


class DriftMetrics:
    """Every series the drift detector exposes at ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.is_drift = Gauge(
            f"{PREFIX}_is_drift", "1 when the last full window drifted.", ["model"], registry=r
        )
        self.feature_p_value = Gauge(
            f"{PREFIX}_feature_p_value",
            "p-value of the last window's test per input feature.",
            ["model", "feature"],
            registry=r,
        )
        self.score_p_value = Gauge(
            f"{PREFIX}_score_p_value",
            "p-value of the last window's KS test on the output scores.",
            ["model"],
            registry=r,
        )
        self.outlier_rate = Gauge(
            f"{PREFIX}_outlier_rate",
            "Share of outlier instances in the last window.",
            ["model"],
            registry=r,
        )
        self.window_size = Gauge(
            f"{PREFIX}_window_size",
            "Instances in the model's current window.",
            ["model"],
            registry=r,
        )
        self.window_capacity = Gauge(
            f"{PREFIX}_window_capacity", "Instances a full window holds.", registry=r
        )
        self.windows = Counter(
            f"{PREFIX}_windows", "Windows tested, by outcome.", ["model", "outcome"], registry=r
        )
        self.events_received = Counter(
            f"{PREFIX}_events_received",
            "Logger events received, by CloudEvent kind.",
            ["kind"],
            registry=r,
        )
        self.events_dropped = Counter(
            f"{PREFIX}_events_dropped", "Events not used, by reason.", ["reason"], registry=r
        )
        self.instances = Counter(
            f"{PREFIX}_instances", "Paired instances added to windows.", ["model"], registry=r
        )
        self.outliers = Counter(
            f"{PREFIX}_outliers", "Instances flagged as outliers.", ["model"], registry=r
        )
        self.alerts = Counter(
            f"{PREFIX}_alerts", "Drift alerts, by delivery outcome.", ["outcome"], registry=r
        )
        self.pending = Gauge(
            f"{PREFIX}_pending_events",
            "Requests or responses waiting for their partner.",
            registry=r,
        )
        self.detection_seconds = Histogram(
            f"{PREFIX}_detection_seconds",
            "Time to test one window.",
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
