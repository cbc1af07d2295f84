"""The feature transformer: request fields in, the model's answer out (Feast, then v2).

A caller knows ids and a few facts of the moment (a checkout's amount and payment rail), not the
model's hundred-odd features. The transformer (KServe's pre-processing step, in its own process in
front of the scorer) is the same for every family; it takes the family's request declaration
(:class:`~getit_ml.serving.runtime.ServingSpec`) and its Feast feature service:

1. decodes the request (v2 named inputs, ``[N]`` rows) against the declared inputs, filling the
   optional ones with their defaults;
2. reads the feature service's feature views online for each row's entity keys — the join keys
   of the service's views, found in the Feast registry (:class:`FeastLookup`: one
   ``get_online_features`` over the views' feature references, plus the view features the
   on-demand views consume);
3. adds the on-demand features with the very functions the feature repository's on-demand views
   run (:data:`getit_ml.features.context.ON_DEMAND_FUNCTIONS`, found by the name of each view's
   body), so serving equals training;
4. sends every model input by name to the scorer over v2 REST or gRPC, with the ``missing`` mask
   for values the store did not have (unknown customer, expired feature, null): the scorer turns
   them into NaN, the way the model was trained — never a crash, never a made-up value;
5. returns the scorer's outputs, adding ``parameters.missing_features`` (how many model inputs
   were missing, over all rows).

The model's inputs come from the scorer's v2 metadata at start-up, so the transformer needs no
copy of the model or its schema.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from getit_ml.errors import UserError
from getit_ml.serving.dependency_monitor import (
    PREDICTOR,
    DependencyMonitor,
    FreshnessCheck,
    TransformerCollector,
    TransformerCounters,
    predictor_probe,
)
from getit_ml.serving.domains import RequestColumns, validate_request
from getit_ml.serving.feature_lookup import FeastLookup, FeatureLookup, ReadOptions
from getit_ml.serving.predictor import PredictorClient
from getit_ml.serving.protocol import (
    INTEGER_TYPES,
    NUMERIC_TYPES,
    InferenceRequest,
    InferenceResponse,
    OutputTensor,
    ProtocolError,
    bad_request,
    model_metadata,
    select_outputs,
    tensor_metadata,
)
from getit_ml.serving.runtime import DegradedPolicy, RequestInput
from getit_ml.serving.scorer import DEFAULT_MODEL_NAME, MISSING_INPUT

logger = logging.getLogger(__name__)

TRANSFORMER_PLATFORM: Final = "getit-ml-feast-transformer"
#: The transformer's own output: per row, whether it was scored normally.
DECISION_STATUS: Final = "decision_status"
#: ``decision_status`` of a row scored with (enough of) its features.
SCORED: Final = "scored"
#: ``decision_status`` of a degraded row, by the family's action (``reject`` answers 503).
DEGRADED_STATUS: Final = {"review": "review", "flag": "flagged"}

__all__ = [
    "DECISION_STATUS",
    "FeastLookup",
    "FeatureLookup",
    "FeatureTransformer",
    "ReadOptions",
    "request_rows",
]


@dataclass(frozen=True)
class PredictorInput:
    name: str
    datatype: str


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, float) and not math.isfinite(value)


def _request_column(
    request: InferenceRequest, spec: RequestInput, rows: int | None
) -> list[Any] | None:
    tensor = request.input(spec.name)
    if tensor is None:
        return None
    name = spec.name
    shape = tensor.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise bad_request(f"input {name!r}: shape {list(shape)} must be [N] or [N, 1]")
    if rows is not None and shape[0] != rows:
        raise bad_request(f"input {name!r}: {shape[0]} rows, other inputs have {rows}")
    if spec.datatype == "INT64" and tensor.datatype not in INTEGER_TYPES:
        raise bad_request(f"input {name!r}: datatype must be an integer type")
    if spec.datatype == "FP64" and tensor.datatype not in NUMERIC_TYPES:
        raise bad_request(f"input {name!r}: datatype must be numeric")
    if spec.datatype in ("BYTES", "BOOL") and tensor.datatype != spec.datatype:
        raise bad_request(f"input {name!r}: datatype must be {spec.datatype}")
    values: list[Any] = tensor.data.reshape(-1).tolist()
    return values


def request_rows(request: InferenceRequest, spec: Sequence[RequestInput]) -> RequestColumns:
    """The request as columns, with defaults filled in; 400 for anything malformed (its
    ``unknown_categories``: the values a ``missing`` domain turned into ``None``)."""
    inputs = {field.name: field for field in spec}
    unknown = [t.name for t in request.inputs if t.name not in inputs]
    if unknown:
        raise bad_request(f"unknown input(s) {unknown}; the request takes {sorted(inputs)}")
    first = request.inputs[0]
    rows = first.shape[0] if first.shape else 0
    columns: dict[str, list[Any]] = {}
    for field in spec:
        column = _request_column(request, field, rows)
        if column is None and field.required:
            raise bad_request(f"input {field.name!r} is required")
        if column is not None:
            columns[field.name] = column
    if rows < 1:
        raise bad_request("the request has no rows")
    for field in spec:
        if field.name not in columns and field.default is not None:
            columns[field.name] = field.default.fill(columns, rows)
    return validate_request(columns, spec)  # business domains: 400 naming the input and row


@dataclass(frozen=True)
class ScorerRequest:
    """The scorer's v2 request for one transformer request, and what the transformer knows of
    its rows: how many model inputs were missing, each row's ``decision_status``, and how many
    request values were unknown categories sent to the model as missing."""

    document: dict[str, Any]
    missing: int
    statuses: list[str]
    unknown_categories: int = 0

    @property
    def degraded_rows(self) -> int:
        return sum(status != SCORED for status in self.statuses)


class FeatureTransformer:
    """Request -> features -> the scorer, over v2 (see the module docstring).

    ``degraded``: the family's :class:`~getit_ml.serving.runtime.DegradedPolicy`;
    ``freshness_check``: ``ttl`` makes a view older than its ttl a reason not to be ready,
    ``off`` only a missing watermark (historical demo data); ``predictor_timeout_s`` bounds each
    scorer call (its client's default when ``None``); ``probe_interval_s`` /
    ``probe_timeout_s``: the background monitor's pace and bound (started by :meth:`connect`,
    stopped by :meth:`aclose`)."""

    def __init__(
        self,
        lookup: FeatureLookup,
        predictor: PredictorClient,
        request: Sequence[RequestInput],
        *,
        name: str = DEFAULT_MODEL_NAME,
        max_rows: int = 1_000,
        degraded: DegradedPolicy | None = None,
        freshness_check: FreshnessCheck = "ttl",
        predictor_timeout_s: float | None = None,
        probe_interval_s: float = 1.0,
        probe_timeout_s: float = 0.5,
    ) -> None:
        names = {field.name for field in request}
        needed = [k for k in (*lookup.entity_keys, *lookup.request_fields) if k not in names]
        if needed:
            raise UserError(
                f"the feature service needs {needed} from the request, which declares only "
                f"{sorted(names)}"
            )
        self.lookup = lookup
        self.predictor = predictor
        self.request = tuple(request)
        self.name = name
        self.max_rows = max_rows
        self.policy = degraded or DegradedPolicy()
        self.freshness_check: FreshnessCheck = freshness_check
        self.predictor_timeout_s = predictor_timeout_s
        self.probe_interval_s = probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        self.version = ""
        self.ready = False
        self.counters = TransformerCounters()
        self.monitor: DependencyMonitor | None = None
        self._collector: TransformerCollector | None = None
        self._inputs: list[PredictorInput] = []
        self._outputs: list[dict[str, Any]] = []
        self._store_fed: list[int] = []

    def connect(self, timeout_s: float = 60.0) -> None:
        """Wait for the scorer (at most ``timeout_s``), then learn its inputs and outputs from
        its metadata, check the dependencies once and start the monitor."""
        meta = self.predictor.wait_for_metadata(self.name, timeout_s)
        self._inputs = [
            PredictorInput(t["name"], t["datatype"])
            for t in meta["inputs"]
            if t["name"] != MISSING_INPUT
        ]
        self._outputs = [o for o in meta["outputs"] if o.get("name") != DECISION_STATUS]
        self._outputs.append(tensor_metadata(DECISION_STATUS, "BYTES", [-1]))
        known = getattr(self.lookup, "feature_names", None)
        if known is not None:
            produced = set(known) | {field.name for field in self.request}
            never = [spec.name for spec in self._inputs if spec.name not in produced]
            if never:
                logger.warning(
                    "%d model input(s) are produced by neither the feature store nor the "
                    "request and will always be missing: %s",
                    len(never),
                    ", ".join(never[:10]),
                )
        requested = {field.name for field in self.request}
        store = self.lookup.store_features
        # What "missing from the store" counts: model inputs the views hold (a request field
        # of the same name is the caller's, never the store's).
        self._store_fed = [
            i
            for i, spec in enumerate(self._inputs)
            if spec.name in store and spec.name not in requested
        ]
        versions = meta.get("versions") or []
        self.version = str(versions[0]) if versions else "unknown"
        self._start_monitor()
        self.ready = True
        logger.info(
            "transformer for %s version %s: %d model inputs (%d from the store); degraded rows "
            "(over %.0f%% of them missing): %s",
            self.name,
            self.version,
            len(self._inputs),
            len(self._store_fed),
            self.policy.max_missing_share * 100,
            self.policy.action,
        )

    def _start_monitor(self) -> None:
        if self.monitor is not None:
            return
        watched = getattr(self.lookup, "watched_views", None)
        opener = getattr(self.lookup, "watermarks", None)
        self.monitor = DependencyMonitor(
            watched() if watched is not None else [],
            opener(self.probe_timeout_s) if opener is not None else None,
            predictor_probe(self.predictor, self.name, self.probe_timeout_s),
            interval_s=self.probe_interval_s,
            freshness_check=self.freshness_check,
        )
        self.monitor.start()

    def readiness(self) -> tuple[bool, str]:
        """Ready for traffic: connected to the scorer, the store reachable with every watched
        view's watermark (fresh, with ``freshness_check="ttl"``), the scorer ready — from the
        monitor's last check, never a probe of its own."""
        if not self.ready or self.monitor is None:
            return False, "not connected to the predictor yet"
        return self.monitor.readiness()

    @property
    def metrics_collector(self) -> TransformerCollector | None:
        """The transformer's Prometheus series (:class:`TransformerCollector`), once connected."""
        if self._collector is None and self.monitor is not None:
            guard = getattr(self.lookup, "guard", None)
            if guard is not None:
                self._collector = TransformerCollector(
                    self.name, self.monitor, guard.breaker, guard.failures, self.counters
                )
        return self._collector

    def metadata(self) -> dict[str, Any]:
        return model_metadata(
            self.name,
            [self.version],
            TRANSFORMER_PLATFORM,
            [tensor_metadata(field.name, field.datatype, [-1]) for field in self.request],
            self._outputs,
        )

    async def features(self, request: InferenceRequest) -> tuple[dict[str, list[Any]], int, int]:
        """Every column the model may need (request fields, store values, on-demand features),
        the row count and how many request values were unknown categories (now missing)."""
        columns = request_rows(request, self.request)
        rows = len(next(iter(columns.values())))
        if rows > self.max_rows:
            raise bad_request(f"{rows} rows in one request (at most {self.max_rows})")
        keys = self.lookup.entity_keys
        entity_rows = [{key: int(columns[key][i]) for key in keys} for i in range(rows)]
        values = await self.lookup.aread(entity_rows)
        merged: dict[str, list[Any]] = {**values, **columns}
        for body in self.lookup.on_demand:
            merged.update(body(merged))
        return merged, rows, columns.unknown_categories

    async def predictor_request(self, request: InferenceRequest) -> ScorerRequest:
        """The scorer's v2 request document, the missing count and the rows' statuses."""
        merged, rows, unknown_categories = await self.features(request)
        inputs: list[dict[str, Any]] = []
        flags: list[list[bool]] = []
        missing = 0
        for spec in self._inputs:
            column = merged.get(spec.name)
            placeholder = _placeholder(spec.datatype)
            if column is None:
                data: list[Any] = [placeholder] * rows
                column_flags = [True] * rows
            else:
                data, column_flags = [], []
                for value in column:
                    absent = _is_missing(value)
                    column_flags.append(absent)
                    data.append(placeholder if absent else _value(value, spec.datatype))
            missing += sum(column_flags)
            flags.append(column_flags)
            inputs.append(
                {"name": spec.name, "datatype": spec.datatype, "shape": [rows], "data": data}
            )
        inputs.append(
            {
                "name": MISSING_INPUT,
                "datatype": "BOOL",
                "shape": [rows, len(self._inputs)],
                "data": [column[i] for i in range(rows) for column in flags],
            }
        )
        document: dict[str, Any] = {"inputs": inputs}
        if request.id is not None:
            document["id"] = request.id
        return ScorerRequest(document, missing, self._statuses(flags, rows), unknown_categories)

    def _statuses(self, flags: Sequence[Sequence[bool]], rows: int) -> list[str]:
        """Each row's ``decision_status``: degraded when the store lost a view's watermark, or
        when more of the row's store-fed inputs are missing than the policy allows."""
        word = DEGRADED_STATUS.get(self.policy.action, self.policy.action)
        if self.monitor is not None and self.monitor.missing_views:
            return [word] * rows
        fed = self._store_fed
        if not fed:
            return [SCORED] * rows
        statuses = []
        for row in range(rows):
            share = sum(flags[i][row] for i in fed) / len(fed)
            statuses.append(word if self.policy.degraded(share) else SCORED)
        return statuses

    async def aclose(self) -> None:
        """Stop the monitor, close the store's and the predictor's connections (the server
        calls it when it stops)."""
        if self.monitor is not None:
            monitor, self.monitor = self.monitor, None
            await asyncio.to_thread(monitor.stop)
        close = getattr(self.lookup, "aclose", None)
        if close is not None:
            await close()
        await self.predictor.close()

    def admit(self, prepared: ScorerRequest) -> None:
        """Count the request's degraded rows and, under a ``reject`` policy, refuse them (503 +
        ``Retry-After``) — before the scorer is called, on every server the transformer runs on
        (ours in :meth:`infer`, a stock KServe ``preprocess``)."""
        degraded = prepared.degraded_rows
        if not degraded:
            return
        self.counters.degraded_rows += degraded
        if self.policy.action == "reject":
            raise ProtocolError(
                503,
                f"{degraded} of {len(prepared.statuses)} row(s) lack too many features "
                "from the online store to be scored (this model's policy refuses them)",
                retry_after_s=1.0,
            )

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        prepared = await self.predictor_request(request)
        self.admit(prepared)
        degraded = prepared.degraded_rows
        try:
            response = await self.predictor.infer(
                self.name, prepared.document, timeout_s=self.predictor_timeout_s
            )
        except ProtocolError as error:
            reason = {503: "unavailable", 502: "bad_gateway"}.get(error.status, "error")
            self.counters.failures[(PREDICTOR, reason)] += 1
            if error.status == 503 and error.retry_after_s is None:
                error.retry_after_s = 1.0
            raise
        return InferenceResponse(
            model_name=self.name,
            model_version=response.model_version,
            id=request.id,
            outputs=with_status(
                select_outputs(response.outputs, request.outputs), prepared.statuses
            ),
            parameters={
                **response.parameters,
                "missing_features": prepared.missing,
                "degraded_rows": degraded,
                "unknown_categories": prepared.unknown_categories,
            },
        )


def status_tensor(statuses: Sequence[str]) -> OutputTensor:
    data = np.empty(len(statuses), dtype=object)
    data[:] = list(statuses)
    return OutputTensor(DECISION_STATUS, "BYTES", data)


def with_status(
    outputs: Sequence[OutputTensor], statuses: Sequence[str]
) -> tuple[OutputTensor, ...]:
    """``outputs`` and ``decision_status`` — always, even when the request named only other
    outputs: a caller that asked for the probability alone must still learn that a row was not
    scored normally."""
    kept = [tensor for tensor in outputs if tensor.name != DECISION_STATUS]
    return (*kept, status_tensor(statuses))


def _placeholder(datatype: str) -> Any:
    if datatype == "BYTES":
        return ""
    if datatype == "BOOL":
        return False
    return 0


def _value(value: Any, datatype: str) -> Any:
    if datatype == "BYTES":
        return str(value)
    if datatype == "BOOL":
        return bool(value)
    if isinstance(value, bool):
        return int(value)
    if datatype in INTEGER_TYPES:
        return int(value)
    return float(value)
