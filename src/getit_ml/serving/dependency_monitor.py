"""The transformer's view of its dependencies, kept fresh off the request path.

A background thread (:class:`DependencyMonitor`) checks, about once a second:

* the **online store**: reachable (a read of the watermarks is the probe), and each feature
  view's materialization watermark (:mod:`getit_ml.features.watermark`): missing means the store
  was emptied or never loaded (a Redis restarted without persistence); older than the view's ttl
  (with ``freshness_check="ttl"``) means nothing has refreshed it for longer than its values are
  meant to live;
* the **predictor**: its v2 ``ready`` endpoint (REST ``GET /v2/models/<m>/ready`` or gRPC
  ``ModelReady``), with a short timeout.

Requests never wait for a probe: :meth:`DependencyMonitor.readiness` and
:attr:`DependencyMonitor.missing_views` answer from the last check (a thread of its own, so a
probe stuck in a frozen dependency cannot block the event loop; every probe has a timeout).
The transformer's ``readiness()`` is this, and a request answered while a watermark is missing
is marked degraded (never a silent blind score).

:class:`TransformerCollector` hands the state to Prometheus at scrape time, under the names the
chart's alerts use (listed in its docstring).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from getit_ml.features.watermark import Watermarks
    from getit_ml.serving.predictor import PredictorClient
    from getit_ml.serving.resilience import CircuitBreaker

logger = logging.getLogger(__name__)

FreshnessCheck = Literal["ttl", "off"]
FRESHNESS_CHECKS: Final = ("ttl", "off")
ONLINE_STORE: Final = "online_store"
PREDICTOR: Final = "predictor"
#: ``reason`` of a failed background probe in ``getit_ml_dependency_failures_total``.
PROBE: Final = "probe"

#: A probe: ``None`` when the dependency is well, else why not.
Probe = Callable[[], "str | None"]


@dataclass(frozen=True)
class WatchedView:
    """A feature view the service reads (on-demand views' sources included) and its ttl."""

    name: str
    ttl_s: float | None


@dataclass(frozen=True)
class HealthSnapshot:
    """What one round of probes found."""

    checked_at: datetime
    store_error: str | None = None
    predictor_error: str | None = None
    #: Each watched view's watermark (``None``: missing); empty when the store did not answer.
    watermarks: dict[str, datetime | None] = field(default_factory=dict)

    def missing(self) -> list[str]:
        return [view for view, mark in self.watermarks.items() if mark is None]

    def age_s(self, view: str) -> float | None:
        mark = self.watermarks.get(view)
        return None if mark is None else (self.checked_at - mark).total_seconds()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class DependencyMonitor:
    """Probes the online store and the predictor in a thread (see the module docstring)."""

    def __init__(
        self,
        views: Sequence[WatchedView],
        watermarks: Watermarks | None,
        predictor_probe: Probe | None,
        *,
        interval_s: float = 1.0,
        freshness_check: FreshnessCheck = "ttl",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if freshness_check not in FRESHNESS_CHECKS:
            raise ValueError(f"freshness_check must be one of {FRESHNESS_CHECKS}")
        self.views = list(views)
        self.watermarks = watermarks
        self.predictor_probe = predictor_probe
        self.interval_s = interval_s
        self.freshness_check = freshness_check
        self._clock = clock
        self._snapshot: HealthSnapshot | None = None
        #: Failed probes by dependency, for ``getit_ml_dependency_failures_total``.
        self.probe_failures: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------- probing
    def check_once(self) -> HealthSnapshot:
        """Probe everything now (blocking; each probe bounded by its timeout)."""
        store_error: str | None = None
        marks: dict[str, datetime | None] = {}
        if self.watermarks is not None:
            try:
                marks = self.watermarks.read([view.name for view in self.views])
            except Exception as error:  # any failure of the store is "unreachable", logged
                store_error = _describe(error)
        predictor_error: str | None = None
        if self.predictor_probe is not None:
            try:
                predictor_error = self.predictor_probe()
            except Exception as error:
                predictor_error = _describe(error)
        snapshot = HealthSnapshot(self._clock(), store_error, predictor_error, marks)
        self._log_changes(self._snapshot, snapshot)
        if store_error is not None:
            self.probe_failures[ONLINE_STORE] += 1
        if predictor_error is not None:
            self.probe_failures[PREDICTOR] += 1
        self._snapshot = snapshot
        return snapshot

    def _log_changes(self, before: HealthSnapshot | None, after: HealthSnapshot) -> None:
        was = self._reasons(before) if before is not None else []
        now = self._reasons(after)
        if now != was:
            if now:
                logger.warning("transformer not ready: %s", "; ".join(now))
            else:
                logger.info("transformer dependencies are well again")

    def start(self) -> None:
        """Probe once now, then in the background every ``interval_s`` until :meth:`stop` (or
        until the monitor is garbage: the thread holds it only weakly between checks, so a
        transformer dropped without ``aclose`` does not leave a thread probing forever)."""
        self.check_once()
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=_watch,
            args=(weakref.ref(self), self._stop, self.interval_s),
            name="dependency-monitor",
            daemon=True,
        )
        weakref.finalize(self, self._stop.set)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)
        if self.watermarks is not None:
            self.watermarks.close()

    # ------------------------------------------------------------------------- the answers
    @property
    def snapshot(self) -> HealthSnapshot | None:
        return self._snapshot

    @property
    def missing_views(self) -> list[str]:
        """Views whose watermark the last check did not find (their values cannot be trusted)."""
        snapshot = self._snapshot
        return [] if snapshot is None else snapshot.missing()

    def _reasons(self, snapshot: HealthSnapshot) -> list[str]:
        reasons = []
        if snapshot.store_error is not None:
            reasons.append(f"the online store is unreachable ({snapshot.store_error})")
        missing = snapshot.missing()
        if missing:
            reasons.append(
                f"no materialization watermark for feature view(s) {', '.join(missing)}: the "
                "online store is empty or was never loaded (run `getit-ml features materialize`)"
            )
        if self.freshness_check == "ttl":
            for view in self.views:
                age = snapshot.age_s(view.name)
                if age is not None and view.ttl_s is not None and age > view.ttl_s:
                    mark = snapshot.watermarks[view.name]
                    assert mark is not None
                    reasons.append(
                        f"feature view {view.name} is stale: materialized up to "
                        f"{mark.isoformat()}, {_duration(age)} ago, beyond its ttl of "
                        f"{_duration(view.ttl_s)}"
                    )
        if snapshot.predictor_error is not None:
            reasons.append(f"the predictor is not ready ({snapshot.predictor_error})")
        return reasons

    def readiness(self) -> tuple[bool, str]:
        snapshot = self._snapshot
        if snapshot is None:
            return False, "dependencies not checked yet"
        reasons = self._reasons(snapshot)
        return (not reasons), "; ".join(reasons)


def _watch(
    monitor_ref: weakref.ReferenceType[DependencyMonitor], stop: threading.Event, interval_s: float
) -> None:
    while not stop.wait(interval_s):
        monitor = monitor_ref()
        if monitor is None:
            return
        try:
            monitor.check_once()
        except Exception:  # never let the monitor die silently
            logger.exception("dependency check failed")
        del monitor


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


# ------------------------------------------------------------------------ predictor probes
def rest_ready_probe(base_url: str, model: str, timeout_s: float) -> Probe:
    """``GET /v2/models/<model>/ready`` on a client of the probe's own; a failure on a pooled
    connection is tried once more on a fresh one (the scorer restarted under it)."""
    import httpx

    url = f"{base_url.rstrip('/')}/v2/models/{model}/ready"
    state: dict[str, httpx.Client] = {}

    def probe() -> str | None:
        for attempt in (1, 2):
            client = state.get("client")
            if client is None:
                client = state["client"] = httpx.Client(timeout=timeout_s)
            try:
                response = client.get(url)
            except httpx.HTTPError as error:
                client.close()
                state.pop("client", None)
                if attempt == 2 or isinstance(error, httpx.TimeoutException):
                    return _describe(error)
                continue
            if response.status_code == 200:
                return None
            return f"{url} answered {response.status_code}: {response.text[:200]}"
        return None  # unreachable: the loop returns

    return probe


def grpc_ready_probe(target: str, model: str, timeout_s: float) -> Probe:
    """gRPC ``ModelReady`` over a channel of the probe's own (gRPC reconnects by itself)."""
    import grpc  # type: ignore[import-untyped]
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb  # type: ignore[import-untyped]
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    channel = grpc.insecure_channel(target)
    stub = pb_grpc.GRPCInferenceServiceStub(channel)

    def probe() -> str | None:
        try:
            if stub.ModelReady(pb.ModelReadyRequest(name=model), timeout=timeout_s).ready:
                return None
            return f"ModelReady({model}) is false"
        except grpc.RpcError as error:
            return f"{error.code()}: {error.details()}"

    return probe


def predictor_probe(client: PredictorClient, model: str, timeout_s: float) -> Probe | None:
    """The ready probe for the scorer behind ``client`` (``None`` for a client we do not know:
    its readiness then is not watched)."""
    from getit_ml.serving.predictor import GrpcPredictor, RestPredictor

    if isinstance(client, RestPredictor):
        return rest_ready_probe(client.base_url, model, timeout_s)
    if isinstance(client, GrpcPredictor):
        return grpc_ready_probe(client.target, model, timeout_s)
    return None


# ------------------------------------------------------------------------------- metrics
@dataclass
class TransformerCounters:
    """Counts the transformer keeps for its collector (event-loop updates, scrape reads)."""

    degraded_rows: int = 0
    #: Failed calls by ``(dependency, reason)`` (beyond the breaker's own reasons).
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)


class TransformerCollector:
    """The transformer's series, built from its state at each scrape (a collector of our own,
    for the reason :mod:`getit_ml.serving.metrics` gives).

    ``getit_ml_dependency_up{model,dependency}``, ``getit_ml_circuit_open{model,dependency}``,
    ``getit_ml_feature_view_watermark_present{model,view}``,
    ``getit_ml_feature_view_watermark_age_seconds{model,view}`` (absent without a watermark),
    ``getit_ml_feature_view_ttl_seconds{model,view}``, ``getit_ml_degraded_rows_total{model}``,
    ``getit_ml_dependency_failures_total{model,dependency,reason}``."""

    def __init__(
        self,
        model: str,
        monitor: DependencyMonitor,
        breaker: CircuitBreaker,
        store_failures: Counter[str],
        counters: TransformerCounters,
    ) -> None:
        self.model = model
        self.monitor = monitor
        self.breaker = breaker
        self.store_failures = store_failures
        self.counters = counters

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        model = self.model
        snapshot = self.monitor.snapshot
        up = GaugeMetricFamily(
            "getit_ml_dependency_up",
            "1 when the dependency answered the transformer's last probe, else 0.",
            labels=("model", "dependency"),
        )
        if snapshot is not None:
            up.add_metric([model, ONLINE_STORE], float(snapshot.store_error is None))
            if self.monitor.predictor_probe is not None:
                up.add_metric([model, PREDICTOR], float(snapshot.predictor_error is None))
        yield up
        circuit = GaugeMetricFamily(
            "getit_ml_circuit_open",
            "1 while the transformer's circuit breaker refuses calls to the dependency.",
            labels=("model", "dependency"),
        )
        circuit.add_metric([model, ONLINE_STORE], float(self.breaker.is_open))
        yield circuit
        present = GaugeMetricFamily(
            "getit_ml_feature_view_watermark_present",
            "1 when the online store holds the feature view's materialization watermark.",
            labels=("model", "view"),
        )
        age = GaugeMetricFamily(
            "getit_ml_feature_view_watermark_age_seconds",
            "Seconds from the feature view's materialization watermark to the last check.",
            labels=("model", "view"),
        )
        ttl = GaugeMetricFamily(
            "getit_ml_feature_view_ttl_seconds",
            "The feature view's time-to-live in seconds (stale beyond it).",
            labels=("model", "view"),
        )
        for view in self.monitor.views:
            if view.ttl_s is not None:
                ttl.add_metric([model, view.name], view.ttl_s)
            if snapshot is None or snapshot.store_error is not None:
                continue  # unknown, not absent: the store did not answer
            seconds = snapshot.age_s(view.name)
            present.add_metric([model, view.name], float(seconds is not None))
            if seconds is not None:
                age.add_metric([model, view.name], seconds)
        yield present
        yield age
        yield ttl
        degraded = CounterMetricFamily(
            "getit_ml_degraded_rows",
            "Rows answered in degraded mode (too many features missing, or a view's watermark "
            "missing), by model.",
            labels=("model",),
        )
        degraded.add_metric([model], self.counters.degraded_rows)
        yield degraded
        failures = CounterMetricFamily(
            "getit_ml_dependency_failures",
            "Failed calls and probes of the transformer's dependencies, by reason.",
            labels=("model", "dependency", "reason"),
        )
        counts: Counter[tuple[str, str]] = Counter(self.counters.failures)
        for reason, count in self.store_failures.items():
            counts[(ONLINE_STORE, reason)] += count
        for dependency, count in self.monitor.probe_failures.items():
            counts[(dependency, PROBE)] += count
        for (dependency, reason), count in sorted(counts.items()):
            failures.add_metric([model, dependency, reason], count)
        yield failures


def view_ttls(views: Sequence[Any]) -> list[WatchedView]:
    """Watched views from Feast feature views (a ttl of zero or none: no ttl)."""
    watched = []
    for view in views:
        ttl = getattr(view, "ttl", None)
        seconds = ttl.total_seconds() if ttl is not None else 0.0
        watched.append(WatchedView(view.name, seconds if seconds > 0 else None))
    return watched
