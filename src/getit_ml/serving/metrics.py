"""Per-model Prometheus metrics for the fast v2 servers' inference requests (REST and gRPC).

Why our own: the gateway's metrics see a URL and a status, not which model and version answered,
and they do not see gRPC calls the way we map them. Kubernetes alerts on error rate and p99
latency read these instead, one expression for both protocols:

* ``getit_ml_inference_requests_total`` (counter) and
* ``getit_ml_inference_request_duration_seconds`` (histogram, buckets :data:`BUCKETS` for a
  service that answers in ~0.1-50 ms),

both labelled ``model``, ``version``, ``code`` and ``protocol``:

* ``model`` / ``version``: the served model's name and version (``version`` is the served one,
  ``sha256-...`` for the scorer, also when the request named none). A request for a model the
  server does not serve counts under ``model="_unknown", version="_unknown"``, and one for an
  unknown version of a served model under ``version="_unknown"`` (:data:`UNKNOWN`): the label
  values come from what the server serves, never from the request, so a scanner cannot create
  unbounded series. (``"_unknown"`` rather than ``""``: Prometheus treats an empty label as an
  absent one, which makes such requests hard to select.)
* ``code``: the HTTP status as a string (``"200"``, ``"400"``, ``"404"``, ``"413"``, ``"503"``,
  ``"500"``). For gRPC it is the HTTP status the servicer maps to its gRPC status code (the same
  :class:`~getit_ml.serving.protocol.ProtocolError` status), so ``code=~"5.."`` means the same on
  both. A call cancelled before it was answered (the client went away or its deadline passed)
  counts as ``"499"`` (nginx's "client closed request"), so slow requests that clients give up on
  still show in the latency histogram instead of vanishing from it.
* ``protocol``: ``rest`` or ``grpc``.

Only inference is counted (``POST /v2/models/{m}[/versions/{v}]/infer`` and ``ModelInfer``):
health probes and scrapes would otherwise swamp the rates. The duration runs from the matched
route to the answer being ready to send (body read, decode, model, encode), not the network
transfer, which the server does not control and gRPC does not let a handler see.

Each :class:`InferenceMetrics` has its own ``CollectorRegistry`` and its own numbers (one per
server: tests and several servers in one process do not collide, whatever mode Feast puts
prometheus_client in), exposed by the REST app at ``GET /metrics``. The per-request cost is two
``perf_counter`` calls, one dict lookup and three additions; the micro-benchmark in
``tests/getit_ml/serving/test_metrics.py`` measures it.

Example alert expressions::

    sum by (model) (rate(getit_ml_inference_requests_total{code=~"5.."}[5m]))
      / sum by (model) (rate(getit_ml_inference_requests_total[5m])) > 0.01
    histogram_quantile(0.99, sum by (model, le)
      (rate(getit_ml_inference_request_duration_seconds_bucket[5m]))) > 0.05
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from getit_ml.serving.protocol import ProtocolError

if TYPE_CHECKING:  # prometheus_client is imported when metrics are first made (~50 ms cold)
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from getit_ml.serving.repository import ModelRepository, ServedModel

REQUESTS_TOTAL: Final = "getit_ml_inference_requests_total"
REQUEST_DURATION: Final = "getit_ml_inference_request_duration_seconds"
LABELS: Final = ("model", "version", "code", "protocol")
#: Seconds; the scorer answers in ~0.1-1 ms, the transformer (feature lookup + scorer) in ~5-50.
BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: The ``model`` / ``version`` label of a request for a model or version that is not served.
UNKNOWN: Final = "_unknown"
#: The ``code`` of a call cancelled before it was answered (client gone, deadline passed).
CANCELLED: Final = 499
#: Prometheus' text exposition format, which :func:`prometheus_client.generate_latest` writes.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


class _Series:
    """One label set's count, sum and per-bucket counts (not cumulative: summed when scraped)."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.buckets[bisect_left(BUCKETS, seconds)] += 1


class InferenceMetrics:
    """The inference counter and histogram of one server, in a registry of their own.

    ``rest`` and ``grpc`` are the recorders the REST app and the gRPC servicer call per request.
    The values are plain numbers held here and handed to ``prometheus_client`` only when scraped
    (a collector of our own), not prometheus_client's metric objects: importing Feast switches
    the process to prometheus_client's multiprocess mode (``feast.metrics`` sets
    ``PROMETHEUS_MULTIPROC_DIR``), where every counter of one name shares one memory-mapped value
    across registries — two servers in one process would count each other's requests — and an
    increment is a write to a file mapping.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry() if registry is None else registry
        self._series: dict[tuple[str, str, str, str], _Series] = {}
        self.registry.register(_Collector(self._series))
        self.rest = ProtocolMetrics(self._series, "rest")
        self.grpc = ProtocolMetrics(self._series, "grpc")

    def exposition(self) -> bytes:
        """The registry in the text exposition format (:data:`CONTENT_TYPE`)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _Collector:
    """Hands the series to prometheus_client as a counter and a histogram family per scrape."""

    def __init__(self, series: dict[tuple[str, str, str, str], _Series]) -> None:
        self._series = series

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        requests = CounterMetricFamily(
            REQUESTS_TOTAL.removesuffix("_total"),
            "Inference requests answered, by model, version, HTTP(-like) status and protocol.",
            labels=LABELS,
        )
        duration = HistogramMetricFamily(
            REQUEST_DURATION,
            "Seconds from the matched inference route to the answer being ready to send.",
            labels=LABELS,
        )
        for labels, series in list(self._series.items()):
            requests.add_metric(list(labels), series.count)
            cumulative, buckets = 0, []
            for bound, count in zip((*BUCKETS, float("inf")), series.buckets, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            duration.add_metric(list(labels), buckets, series.total)
        yield requests
        yield duration


class ProtocolMetrics:
    """One protocol's view of :class:`InferenceMetrics`: ``observe`` per inference request.

    Series are kept per ``(model, version, status)``: their number is bounded by the served
    models and versions times the handful of statuses the server answers. A server's REST app
    and gRPC servicer run in one event loop, so updates need no lock.
    """

    __slots__ = ("_mine", "_series", "protocol")

    def __init__(self, series: dict[tuple[str, str, str, str], _Series], protocol: str) -> None:
        self._series = series
        self.protocol = protocol
        self._mine: dict[tuple[str, str, int], _Series] = {}

    def observe(self, model: str, version: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration (``model``/``version`` already bounded:
        a served model's, or :data:`UNKNOWN` from :func:`model_labels`)."""
        series = self._mine.get((model, version, status))
        if series is None:
            series = self._series.setdefault((model, version, str(status), self.protocol),
                                             _Series())  # fmt: skip
            self._mine[(model, version, status)] = series
        series.observe(seconds)

    def observe_request(
        self,
        repository: ModelRepository,
        served: ServedModel | None,
        name: str,
        version: str | None,
        status: int,
        seconds: float,
    ) -> None:
        """Count one request for ``name``/``version``: under the model that answered it
        (``served``), else under bounded labels (:func:`model_labels`)."""
        if served is not None:
            self.observe(served.name, served.version, status, seconds)
        else:
            self.observe(*model_labels(repository, name, version), status, seconds)


def model_labels(repository: ModelRepository, name: str, version: str | None) -> tuple[str, str]:
    """The bounded ``(model, version)`` labels of a request for ``name`` / ``version`` that did
    not reach a model (it was refused before): the served model's own, or :data:`UNKNOWN`."""
    try:
        model = repository.get(name, version)
    except ProtocolError:
        try:
            return repository.get(name).name, UNKNOWN
        except ProtocolError:
            return UNKNOWN, UNKNOWN
    return model.name, model.version
