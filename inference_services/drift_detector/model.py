"""The drift detector's HTTP application around :class:`getit_ml.monitoring.monitor.DriftMonitor`.

Routes:

* ``POST /`` (and ``POST /events``): the KServe payload logger's CloudEvents (the InferenceService's
  ``logger.url`` points here). Answers 202 for a used event, 400 (with the reason) for one it
  cannot use; never fails on a bad event.
* ``GET /status`` and ``GET /status/{model}``: JSON — window fill, last result per model (p-values,
  drifted features, score test, outlier rate), history, events received and dropped.
* ``GET /metrics``: Prometheus (``getit_ml_drift_*``).
* ``GET /v2/health/live``, ``GET /v2/health/ready`` (and ``GET /``): health, as kserve's servers.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from getit_ml.monitoring.monitor import DriftMonitor, json_safe

logger = logging.getLogger(__name__)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def create_application(monitor: DriftMonitor, name: str = "drift-detector") -> FastAPI:
    app = FastAPI(title=f"getit-ml {name}", docs_url=None, redoc_url=None)

    # Plain `def` handlers: FastAPI runs them in its thread pool, so a window's test (tens of
    # milliseconds) never blocks the event loop; the monitor is thread-safe.
    def receive(request_body: bytes, headers: dict[str, str]) -> JSONResponse:
        outcome = monitor.handle(headers, request_body)
        document: dict[str, Any] = {"status": outcome.status, "model": outcome.model}
        if outcome.reason:
            document["reason"] = outcome.reason
        if outcome.windows_tested:
            document["windows_tested"] = outcome.windows_tested
        code = (
            400
            if outcome.status == "dropped"
            and outcome.reason not in ("other_model", "too_many_models", "duplicate")
            else 202
        )
        return JSONResponse(document, status_code=code)

    async def events(request: Request) -> JSONResponse:
        body = await request.body()
        headers = dict(request.headers.items())
        response: JSONResponse = await run_in_threadpool(receive, body, headers)
        return response

    def status() -> JSONResponse:
        return JSONResponse(json_safe(monitor.status()))

    def model_status(model: str) -> JSONResponse:
        found = monitor.model_status(model)
        if found is None:
            return JSONResponse({"error": f"no events seen for model {model!r}"}, status_code=404)
        return JSONResponse(json_safe(found))

    def metrics() -> Response:
        return Response(monitor.metrics.exposition(), media_type=PROMETHEUS_CONTENT_TYPE)

    def live() -> dict[str, Any]:
        return {"live": True}

    def ready() -> dict[str, Any]:
        return {"ready": True}

    app.add_api_route("/", events, methods=["POST"])
    app.add_api_route("/events", events, methods=["POST"])
    app.add_api_route("/", live, methods=["GET"])
    app.add_api_route("/status", status, methods=["GET"])
    app.add_api_route("/status/{model}", model_status, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])
    app.add_api_route("/v2/health/live", live, methods=["GET"])
    app.add_api_route("/v2/health/ready", ready, methods=["GET"])
    return app
