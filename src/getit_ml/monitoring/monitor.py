"""The drift monitor: logger events in, paired instances, windows per model, drift results out.

``handle(headers, body)`` takes one HTTP delivery of the KServe payload logger. Requests and
responses share a CloudEvent id; the monitor keeps each half until its partner arrives (at most
``max_pending`` halves, each for at most ``pending_ttl_s``: the oldest is dropped and counted),
then adds the pair — the request's encoded rows, the response's fraud scores and an outlier flag
per row — to the model's window. A window is a ring of the last ``window_size`` instances; every
``step`` new instances once it is full, it is tested against the reference
(:class:`~getit_ml.monitoring.detectors.Detectors`), the metrics are updated, and a drift alert is
sent when the window drifts (then again only after the cooldown).

Memory is bounded: windows are fixed arrays, at most ``max_models`` models, the pending map is
capped, results keep a short history. An event that cannot be used is counted by reason and
logged, never raised. With ``state_path`` the last result per model survives a restart (written
atomically after every window), so a restart loses at most the window being filled.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from getit_ml.errors import UserError
from getit_ml.monitoring.alerts import AlertSender
from getit_ml.monitoring.detectors import BoolArray, Detectors, DriftResult
from getit_ml.monitoring.events import EventError, InferenceEvent, parse_event
from getit_ml.monitoring.metrics import DriftMetrics
from getit_ml.monitoring.payloads import PayloadError, request_matrix, response_scores
from getit_ml.monitoring.schema import FeatureSchema, FloatArray

logger = logging.getLogger(__name__)

HISTORY: Final = 20
STATE_FORMAT: Final = "getit-ml/drift-state"


@dataclass(frozen=True)
class MonitorConfig:
    window_size: int = 500
    #: New instances between two tests of a full window (default: the window size, so windows
    #: do not overlap).
    step: int | None = None
    max_pending: int = 10_000
    pending_ttl_s: float = 120.0
    max_models: int = 32
    #: Accept only these InferenceServices (empty: all).
    models: tuple[str, ...] = ()
    default_model: str | None = None
    input_name: str | None = None
    output_name: str | None = None
    state_path: Path | None = None

    def __post_init__(self) -> None:
        if self.window_size < 10:
            raise UserError(f"window size must be at least 10 (got {self.window_size})")
        if self.step is not None and not 1 <= self.step <= self.window_size:
            raise UserError(f"step must be between 1 and the window size (got {self.step})")
        if self.max_pending < 1 or self.max_models < 1 or self.pending_ttl_s <= 0:
            raise UserError("max_pending, max_models and pending_ttl_s must be positive")

    @property
    def every(self) -> int:
        return self.step or self.window_size


@dataclass(frozen=True)
class Outcome:
    """What ``handle`` did with one delivery: ``accepted`` (half of a pair kept), ``paired``
    (instances added to a window), ``dropped`` (with the reason)."""

    status: str
    reason: str | None = None
    model: str | None = None
    windows_tested: int = 0


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, infinity) as None: strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | deque):
        return [json_safe(v) for v in value]
    return value


class ModelWindow:
    """The last ``size`` paired instances of one model, as fixed arrays (a ring)."""

    def __init__(self, size: int, width: int) -> None:
        self.size = size
        self.features = np.full((size, width), np.nan, dtype=np.float64)
        self.scores = np.full(size, np.nan, dtype=np.float64)
        self.outliers = np.zeros(size, dtype=np.bool_)
        self.total = 0
        self.since_test = 0
        self.lock = threading.Lock()  # one test at a time per model

    @property
    def filled(self) -> int:
        return min(self.total, self.size)

    def add(self, rows: FloatArray, scores: FloatArray, outliers: BoolArray) -> None:
        for start in range(0, rows.shape[0], self.size):
            chunk = slice(start, start + self.size)
            n = rows[chunk].shape[0]
            at = (self.total + np.arange(n)) % self.size
            self.features[at] = rows[chunk]
            self.scores[at] = scores[chunk]
            self.outliers[at] = outliers[chunk]
            self.total += n
            self.since_test += n

    def snapshot(self) -> tuple[FloatArray, FloatArray, BoolArray]:
        """The window's instances, oldest first."""
        order = (self.total + np.arange(self.size)) % self.size
        return self.features[order].copy(), self.scores[order].copy(), self.outliers[order].copy()


@dataclass
class _Half:
    kind: str
    payload: Any
    at: float


class DriftMonitor:
    """Ingests payload-logger events and tests full windows; thread-safe."""

    def __init__(
        self,
        detectors: Detectors,
        config: MonitorConfig | None = None,
        *,
        metrics: DriftMetrics | None = None,
        alerts: AlertSender | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.detectors = detectors
        self.schema: FeatureSchema = detectors.schema
        self.config = config or MonitorConfig()
        self.metrics = metrics or DriftMetrics()
        self.alerts = alerts
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: OrderedDict[tuple[str, str], _Half] = OrderedDict()
        self._windows: dict[str, ModelWindow] = {}
        self._results: dict[str, deque[dict[str, Any]]] = {}
        self._last_alert: dict[str, float] = {}
        self._dropped: dict[str, int] = {}
        self._received = 0
        self.metrics.window_capacity.set(self.config.window_size)
        self._restore()

    # ------------------------------------------------------------------------------ ingestion
    def handle(self, headers: Mapping[str, str], body: bytes) -> Outcome:
        """One HTTP delivery of the payload logger; never raises for a bad event."""
        try:
            event = parse_event(headers, body, default_model=self.config.default_model)
        except EventError as error:
            self.metrics.events_received.labels(kind="invalid").inc()
            return self._drop(error.reason, str(error))
        self.metrics.events_received.labels(kind=event.kind).inc()
        try:
            return self.ingest(event)
        except Exception as error:  # a bug or an odd payload must not take the sidecar down
            logger.exception("event %s of %s could not be processed", event.event_id, event.model)
            return self._drop("error", f"{type(error).__name__}: {error}", event.model)

    def ingest(self, event: InferenceEvent) -> Outcome:
        if self.config.models and event.model not in self.config.models:
            return self._drop("other_model", f"model {event.model!r} is not monitored", event.model)
        try:
            if event.kind == "request":
                payload: Any = request_matrix(
                    event.body, self.schema, input_name=self.config.input_name
                )
            else:
                payload = response_scores(event.body, output_name=self.config.output_name)
        except PayloadError as error:
            return self._drop(f"bad_{event.kind}", str(error), event.model)
        key = (event.model, event.event_id)
        now = self._clock()
        with self._lock:
            self._received += 1
            self._expire(now)
            partner = self._pending.pop(key, None)
            if partner is None or partner.kind == event.kind:
                if partner is not None:
                    self._count_drop("duplicate")
                self._pending[key] = _Half(event.kind, payload, now)
                while len(self._pending) > self.config.max_pending:
                    self._pending.popitem(last=False)
                    self._count_drop("pending_overflow")
                self.metrics.pending.set(len(self._pending))
                return Outcome("accepted", model=event.model)
            self.metrics.pending.set(len(self._pending))
        rows, scores = (
            (payload, partner.payload) if event.kind == "request" else (partner.payload, payload)
        )
        if rows.shape[0] != scores.shape[0]:
            return self._drop(
                "size_mismatch",
                f"{rows.shape[0]} instances but {scores.shape[0]} scores",
                event.model,
            )
        return self._add(event.model, rows, scores)

    def _expire(self, now: float) -> None:
        while self._pending:
            key, half = next(iter(self._pending.items()))
            if now - half.at <= self.config.pending_ttl_s:
                break
            del self._pending[key]
            self._count_drop("unpaired")

    def _add(self, model: str, rows: FloatArray, scores: FloatArray) -> Outcome:
        flags = self.detectors.outliers(rows)
        outliers = np.zeros(rows.shape[0], dtype=np.bool_) if flags is None else flags
        with self._lock:
            window = self._windows.get(model)
            if window is None and len(self._windows) < self.config.max_models:
                window = self._windows[model] = ModelWindow(
                    self.config.window_size, self.schema.width
                )
            if window is not None:
                self._fill(model, window, rows, scores, outliers)
        if window is None:
            return self._drop("too_many_models", f"already {self.config.max_models} models", model)
        tested = 0
        while True:  # test outside the monitor's lock; one test at a time per model
            with window.lock:
                with self._lock:
                    due = window.total >= window.size and window.since_test >= self.config.every
                    if not due:
                        break
                    window.since_test = 0
                    snapshot = window.snapshot()
                    number = window.total
                self._test(model, number, *snapshot)
                tested += 1
        return Outcome("paired", model=model, windows_tested=tested)

    def _fill(
        self,
        model: str,
        window: ModelWindow,
        rows: FloatArray,
        scores: FloatArray,
        outliers: BoolArray,
    ) -> None:
        window.add(rows, scores, outliers)
        self.metrics.instances.labels(model=model).inc(rows.shape[0])
        self.metrics.outliers.labels(model=model).inc(int(outliers.sum()))
        self.metrics.window_size.labels(model=model).set(window.filled)

    def _drop(self, reason: str, message: str, model: str | None = None) -> Outcome:
        with self._lock:
            self._count_drop(reason)
        logger.warning("dropped an event (%s): %s", reason, message)
        return Outcome("dropped", reason, model)

    def _count_drop(self, reason: str) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + 1
        self.metrics.events_dropped.labels(reason=reason).inc()

    # -------------------------------------------------------------------------------- testing
    def _test(
        self, model: str, number: int, features: FloatArray, scores: FloatArray, outliers: BoolArray
    ) -> None:
        started = time.perf_counter()
        bootstrapped = False
        if self.detectors.config.compare_scores and not self.detectors.has_reference_scores:
            # No reference scores given: the first full window becomes the score reference.
            self.detectors.set_reference_scores(scores, f"first window of {model}")
            bootstrapped = True
        result = self.detectors.run(features, None if bootstrapped else scores, outliers)
        seconds = time.perf_counter() - started
        self.metrics.detection_seconds.observe(seconds)
        self._record(model, number, result, seconds)

    def _record(self, model: str, number: int, result: DriftResult, seconds: float) -> None:
        m = self.metrics
        m.is_drift.labels(model=model).set(1 if result.is_drift else 0)
        for feature, p_value in result.feature_p_values.items():
            m.feature_p_value.labels(model=model, feature=feature).set(p_value)
        if result.score_p_value is not None:
            m.score_p_value.labels(model=model).set(result.score_p_value)
        if result.outlier_rate is not None:
            m.outlier_rate.labels(model=model).set(result.outlier_rate)
        m.windows.labels(model=model, outcome="drift" if result.is_drift else "ok").inc()
        document = {
            "model": model,
            "tested_at": datetime.now(UTC).isoformat(),
            "instances_seen": number,
            "seconds": round(seconds, 4),
            **result.to_dict(),
        }
        with self._lock:
            history = self._results.setdefault(model, deque(maxlen=HISTORY))
            was_drifting = bool(history) and bool(history[-1].get("is_drift"))
            history.append(document)
            now = self._clock()
            alert_due = result.is_drift and (
                not was_drifting or now - self._last_alert.get(model, -np.inf) >= self._cooldown()
            )
            if alert_due:
                self._last_alert[model] = now
        if result.is_drift:
            logger.warning(
                "%s: drift in window ending at instance %d: %s",
                model,
                number,
                ", ".join(result.drifted_features[:10]),
            )
        if alert_due and self.alerts is not None:
            self.alerts.submit(self._alert(document))
        self._persist()

    def _cooldown(self) -> float:
        return self.alerts.config.cooldown_s if self.alerts is not None else 0.0

    def _alert(self, document: Mapping[str, Any]) -> dict[str, Any]:
        p_values = document["feature_p_values"]
        drifted = document["drifted_features"]
        return {
            "event": "drift_detected",
            "model": document["model"],
            "detected_at": document["tested_at"],
            "instances_seen": document["instances_seen"],
            "window_rows": document["window_rows"],
            "threshold": document["threshold"],
            "correction": document["correction"],
            "drifted_features": drifted,
            "p_values": {f: p_values[f] for f in drifted if f in p_values},
            "score_p_value": document["score_p_value"],
            "outlier_rate": document["outlier_rate"],
            "suggested_action": "retrain",
        }

    # ---------------------------------------------------------------------------------- state
    def status(self) -> dict[str, Any]:
        """Everything the JSON status endpoint shows."""
        with self._lock:
            models = sorted(set(self._windows) | set(self._results))
            return {
                "window_size": self.config.window_size,
                "step": self.config.every,
                "features_tested": len(self.detectors.tested),
                "features_ignored": self.detectors.ignored,
                "score_reference": self.detectors.reference_scores_source,
                "outlier_detector": self.detectors.config.outlier,
                "events_received": self._received,
                "events_dropped": dict(self._dropped),
                "pending": len(self._pending),
                "models": {m: self._model_status(m) for m in models},
            }

    def model_status(self, model: str) -> dict[str, Any] | None:
        with self._lock:
            if model not in self._windows and model not in self._results:
                return None
            return self._model_status(model)

    def _model_status(self, model: str) -> dict[str, Any]:
        window = self._windows.get(model)
        history = list(self._results.get(model, ()))
        last = history[-1] if history else None
        return {
            "window_filled": window.filled if window else 0,
            "instances_seen": window.total if window else 0,
            "windows_tested": len(history),
            "is_drift": None if last is None else last["is_drift"],
            "last_result": last,
            "history": [
                {k: h[k] for k in ("tested_at", "is_drift", "drifted_features", "outlier_rate")}
                for h in history[:-1]
            ],
        }

    def _persist(self) -> None:
        path = self.config.state_path
        if path is None:
            return
        with self._lock:
            state = {
                "format": STATE_FORMAT,
                "results": {m: list(h) for m, h in self._results.items()},
                "dropped": dict(self._dropped),
            }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            temporary.write_text(json.dumps(json_safe(state), default=str), encoding="utf-8")
            os.replace(temporary, path)
        except OSError as error:
            logger.warning("could not save the drift state to %s: %s", path, error)

    def _restore(self) -> None:
        path = self.config.state_path
        if path is None or not path.is_file():
            return
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if state.get("format") != STATE_FORMAT:
                raise ValueError(f"not a {STATE_FORMAT} document")
            for model, history in state["results"].items():
                restored = deque((dict(h, restored=True) for h in history), maxlen=HISTORY)
                self._results[str(model)] = restored
                if restored:
                    self.metrics.is_drift.labels(model=model).set(
                        1 if restored[-1].get("is_drift") else 0
                    )
            self._dropped = {str(k): int(v) for k, v in state.get("dropped", {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            logger.warning("ignoring the drift state in %s: %s", path, error)
            return
        logger.info("restored the last results of %d model(s) from %s", len(self._results), path)
