"""Traffic for the monitoring walkthrough: a payload logger, a traffic shift, and a replay.

On Kubernetes the KServe agent beside the predictor sends every request and response to the
drift detector (``logger: {mode: all}``). On one machine there is no agent, so
:class:`PayloadLogger` sends the same CloudEvents (HTTP binary mode, the same ``ce-*`` attributes)
from the client. :func:`shifted_traffic` applies a family's :class:`TrafficShift` to encoded rows
(fraud's festival week: the payment mix moves 20 points from cash on delivery to mobile wallets
and amounts go up), and :func:`replay` drives normal and shifted traffic through a served
predictor with logging on, then asks the explainer about the highest-scored row: what
``make demo`` shows.

Standard library and numpy only: this runs in the platform environment (the demo) as well.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from getit_ml.errors import UserError
from getit_ml.features.feature_schema import FeatureSchema, FloatArray
from getit_ml.monitoring.events import EventKind, binary_headers
from getit_ml.monitoring.predictor import DEFAULT_INPUT_NAME, MissingEncoding, encode_v2_request

logger = logging.getLogger(__name__)


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


@dataclass
class PayloadLogger:
    """Sends a request and its response to ``url`` as the KServe payload logger does."""

    url: str
    model: str
    namespace: str = "default"
    component: str = "predictor"
    timeout_s: float = 10.0
    sent: int = 0
    failed: int = 0

    def log(self, request_body: bytes, response_body: bytes, event_id: str | None = None) -> str:
        """Send both events (request first); returns the shared event id. A failure is logged and
        counted, never raised: logging must not break the caller's traffic."""
        identifier = event_id or str(uuid.uuid4())
        source = f"http://localhost/{self.namespace}/{self.model}"
        events: tuple[tuple[EventKind, bytes], ...] = (
            ("request", request_body),
            ("response", response_body),
        )
        for kind, body in events:
            headers = binary_headers(
                kind,
                identifier,
                self.model,
                source=source,
                namespace=self.namespace,
                component=self.component,
            )
            try:
                status, answer = _post(self.url, body, headers, self.timeout_s)
            except OSError as error:
                status, answer = 0, str(error)
            if 200 <= status < 300:
                self.sent += 1
            else:
                self.failed += 1
                logger.warning("payload logger: %s %s -> %s %s", kind, identifier, status, answer)
        return identifier


@dataclass(frozen=True)
class TrafficShift:
    """A change of live traffic, applied to encoded rows: what the drift detector must catch.

    A family declares its own (fraud: a festival week moves 20 points of the payment mix from
    cash on delivery to the wallets and raises amounts by half). Features the schema lacks are
    left alone.
    """

    #: Categorical feature -> {category: change of its share}; rows are re-drawn from the mix.
    mix: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: Categorical feature of ``mix`` -> {boolean feature: the categories for which it is true}
    #: (``is_wallet`` follows ``payment_method``).
    indicators: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    #: Numeric feature -> factor.
    scale: Mapping[str, float] = field(default_factory=dict)
    #: Numeric feature holding ``log1p(x)`` -> factor on ``x``.
    log1p_scale: Mapping[str, float] = field(default_factory=dict)
    #: Numeric feature -> an amount added to every value.
    add: Mapping[str, float] = field(default_factory=dict)


def shifted_traffic(
    schema: FeatureSchema, matrix: FloatArray, rng: np.random.Generator, shift: TrafficShift
) -> FloatArray:
    """``matrix`` (encoded rows) as the traffic after ``shift``."""
    out = np.array(matrix, dtype=np.float64, copy=True)
    names = set(schema.feature_names)
    for feature, changes in shift.mix.items():
        if feature not in names:
            continue
        column = schema.index(feature)
        categories = schema.feature(feature).categories
        codes = out[:, column]
        present = ~np.isnan(codes)
        counts = np.bincount(codes[present].astype(int), minlength=len(categories))
        mix = counts / max(1, counts.sum())
        for category, change in changes.items():
            if category in categories:
                mix[categories.index(category)] += change
        mix = np.clip(mix, 0.0, None)
        if mix.sum() <= 0:
            raise UserError(f"traffic shift: the mix of {feature} is empty after the shift")
        mix /= mix.sum()
        codes[present] = rng.choice(len(categories), size=int(present.sum()), p=mix)
        out[:, column] = codes
        chosen = np.array([categories[int(c)] if not np.isnan(c) else "" for c in codes])
        for flag, members in shift.indicators.get(feature, {}).items():
            if flag in names:
                out[present, schema.index(flag)] = np.isin(chosen[present], members)
    for feature, factor in shift.scale.items():
        if feature in names:
            out[:, schema.index(feature)] *= factor
    for feature, factor in shift.log1p_scale.items():
        if feature in names:
            column = schema.index(feature)
            out[:, column] = np.log1p(np.expm1(out[:, column]) * factor)
    for feature, amount in shift.add.items():
        if feature in names:
            out[:, schema.index(feature)] += amount
    return out


@dataclass
class ReplayReport:
    """What a replay did and found."""

    requests: int = 0
    payments: int = 0
    scores: list[float] = field(default_factory=list)
    logged: int = 0
    log_failures: int = 0
    drift_status: dict[str, Any] | None = None
    explanation: dict[str, Any] | None = None
    explained_score: float | None = None


def replay(
    predictor_url: str,
    model: str,
    phases: list[FloatArray],
    *,
    logger_url: str | None = None,
    explainer_url: str | None = None,
    drift_url: str | None = None,
    batch: int = 10,
    input_name: str = DEFAULT_INPUT_NAME,
    missing: MissingEncoding = "mask",
    output_name: str | None = None,
    timeout_s: float = 30.0,
) -> ReplayReport:
    """Send each phase's payments (encoded rows) to the predictor in requests of ``batch`` rows,
    logging every request and response to ``logger_url`` (the drift detector); then fetch the
    drift detector's status and ask the explainer about the highest-scored payment."""
    from getit_ml.monitoring.payloads import response_scores

    infer = f"{predictor_url.rstrip('/')}/v2/models/{model}/infer"
    payload_logger = PayloadLogger(logger_url, model, timeout_s=timeout_s) if logger_url else None
    report = ReplayReport()
    best: tuple[float, FloatArray] | None = None
    for rows in phases:
        for start in range(0, rows.shape[0], batch):
            part = rows[start : start + batch]
            identifier = str(uuid.uuid4())
            body = encode_v2_request(part, input_name, identifier, missing)
            status, answer = _post(infer, body, {"Content-Type": "application/json"}, timeout_s)
            if status != 200:
                raise UserError(f"the predictor at {infer} answered {status}: {answer}")
            scores = response_scores(answer, output_name=output_name)
            report.requests += 1
            report.payments += part.shape[0]
            report.scores.extend(float(s) for s in scores)
            top = int(np.argmax(scores))
            if best is None or scores[top] > best[0]:
                best = (float(scores[top]), part[top].copy())
            if payload_logger is not None:
                payload_logger.log(body, json.dumps(answer).encode(), identifier)
    if payload_logger is not None:
        report.logged, report.log_failures = payload_logger.sent, payload_logger.failed
    if drift_url:
        report.drift_status = _get_json(f"{drift_url.rstrip('/')}/status", timeout_s)
    if explainer_url and best is not None:
        url = f"{explainer_url.rstrip('/')}/v2/models/{model}/explain"
        body = encode_v2_request(best[1][None, :], input_name, str(uuid.uuid4()), missing)
        started = time.perf_counter()
        status, answer = _post(url, body, {"Content-Type": "application/json"}, timeout_s)
        if status != 200:
            raise UserError(f"the explainer at {url} answered {status}: {answer}")
        report.explanation = answer["explanations"][0]
        report.explained_score = best[0]
        logger.info("explained the top payment in %.2f s", time.perf_counter() - started)
    return report


def _get_json(url: str, timeout_s: float) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        document = json.loads(response.read())
    if not isinstance(document, dict):
        raise UserError(f"{url} did not answer a JSON object")
    return document
