"""A black-box predictor over the v2 REST protocol (Open Inference Protocol).

The explainer (and the drift detector, to score its reference data) calls the served model as
any client would: ``POST {url}/v2/models/{model}/infer`` with the rows as one FP64 tensor, so it
works with every model the platform serves. Standard library HTTP (``http.client``) with one
kept-alive connection per thread; large batches are split into requests of ``max_batch`` rows.
"""

from __future__ import annotations

import http.client
import logging
import math
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import orjson

from getit_ml.errors import UserError
from getit_ml.monitoring.payloads import MISSING_INPUT, PayloadError, response_scores
from getit_ml.monitoring.schema import FloatArray

logger = logging.getLogger(__name__)

#: The platform's fraud scorer (``getit_ml.serving.scorer``): its batch input, its output, and
#: missing values as a BOOL mask input (it refuses NaN and null).
DEFAULT_INPUT_NAME: Final = "features"
MissingEncoding = Literal["mask", "null"]


class PredictorError(RuntimeError):
    """The predictor could not be reached or answered with an error."""


@dataclass
class V2Predictor:
    """Fraud probabilities from a served model: ``predictor(matrix) -> (rows,)`` scores.

    ``url`` is the predictor's base URL (``http://host:port``) or a full ``.../infer`` URL.
    """

    url: str
    model_name: str
    input_name: str = DEFAULT_INPUT_NAME
    #: ``mask``: missing values as 0.0 plus a BOOL input ``missing``; ``null``: JSON null.
    missing: MissingEncoding = "mask"
    output_name: str | None = None
    timeout_s: float = 10.0
    max_batch: int = 2048
    calls: int = 0
    rows: int = 0
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _counter_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UserError(f"predictor URL {self.url!r} must be http(s)://host[:port][/path]")
        if self.missing not in ("mask", "null"):
            raise UserError(f"missing-value encoding must be mask or null (got {self.missing!r})")
        if self.max_batch < 1:
            raise UserError(f"max_batch must be positive (got {self.max_batch})")
        path = parsed.path.rstrip("/")
        if not path.endswith("/infer"):
            path = f"{path}/v2/models/{urllib.parse.quote(self.model_name)}/infer"
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._path = path

    @property
    def infer_url(self) -> str:
        port = f":{self._port}" if self._port else ""
        return f"{self._scheme}://{self._host}{port}{self._path}"

    def __call__(self, matrix: FloatArray) -> FloatArray:
        rows = np.asarray(matrix, dtype=np.float64)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        parts = [
            self._infer(rows[start : start + self.max_batch])
            for start in range(0, rows.shape[0], self.max_batch)
        ]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            factory = (
                http.client.HTTPSConnection
                if self._scheme == "https"
                else http.client.HTTPConnection
            )
            connection = factory(self._host, self._port, timeout=self.timeout_s)
            self._local.connection = connection
        return connection

    def _infer(self, rows: FloatArray) -> FloatArray:
        body = encode_v2_request(rows, self.input_name, uuid.uuid4().hex, self.missing)
        headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            connection = self._connection()
            try:
                connection.request("POST", self._path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                break
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise PredictorError(f"predictor {self.infer_url}: {error}") from error
        if response.status != 200:
            text = payload[:300].decode(errors="replace")
            raise PredictorError(f"predictor {self.infer_url} answered {response.status}: {text}")
        try:
            scores = response_scores(orjson.loads(payload), output_name=self.output_name)
        except (orjson.JSONDecodeError, PayloadError) as error:
            raise PredictorError(
                f"predictor {self.infer_url}: unusable response ({error})"
            ) from None
        if scores.shape[0] != rows.shape[0]:
            raise PredictorError(
                f"predictor returned {scores.shape[0]} scores for {rows.shape[0]} rows"
            )
        if np.isnan(scores).any():
            raise PredictorError("predictor returned a missing score")
        with self._counter_lock:
            self.calls += 1
            self.rows += int(rows.shape[0])
        return scores

    def wait_ready(self, timeout_s: float = 60.0, interval_s: float = 0.5) -> None:
        """Block until the model answers ``GET .../ready`` with 200; :class:`PredictorError`
        after ``timeout_s`` (a sidecar may start before its predictor)."""
        path = self._path.rsplit("/infer", 1)[0] + "/ready"
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while True:
            factory = (
                http.client.HTTPSConnection
                if self._scheme == "https"
                else http.client.HTTPConnection
            )
            connection = factory(self._host, self._port, timeout=min(self.timeout_s, 5.0))
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    return
                last = f"status {response.status}"
            except (OSError, http.client.HTTPException) as error:
                last = str(error)
            finally:
                connection.close()
            if time.monotonic() >= deadline:
                raise PredictorError(
                    f"predictor {self.infer_url} not ready after {timeout_s:g} s ({last})"
                )
            time.sleep(interval_s)

    def close(self) -> None:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def encode_v2_request(
    rows: FloatArray, input_name: str, request_id: str, missing: MissingEncoding = "mask"
) -> bytes:
    """The v2 request body for ``rows`` as one FP64 tensor. Missing values: with ``mask``, 0.0 in
    the tensor and ``true`` in a BOOL input ``missing`` of the same shape (sent only when a value
    is missing); with ``null``, JSON null (orjson writes NaN as null)."""
    data = np.ascontiguousarray(rows, dtype=np.float64)
    shape = list(data.shape)
    tensors: list[dict[str, Any]] = []
    absent = np.isnan(data)
    if missing == "mask" and absent.any():
        tensors.append(
            {"name": MISSING_INPUT, "shape": shape, "datatype": "BOOL", "data": absent.reshape(-1)}
        )
        data = np.where(absent, 0.0, data)
    tensors.insert(
        0, {"name": input_name, "shape": shape, "datatype": "FP64", "data": data.reshape(-1)}
    )
    return orjson.dumps({"id": request_id, "inputs": tensors}, option=orjson.OPT_SERIALIZE_NUMPY)


def scores_to_proba(scores: FloatArray) -> FloatArray:
    """``(rows,)`` fraud probabilities as ``(rows, 2)`` class probabilities."""
    clipped = np.clip(scores, 0.0, 1.0)
    return np.column_stack([1.0 - clipped, clipped])


def check_threshold(threshold: float) -> float:
    if not 0.0 < threshold < 1.0 or math.isnan(threshold):
        raise UserError(f"the decision threshold must be in (0, 1) (got {threshold})")
    return threshold
