"""KServe adapter of the explainer: a ``kserve.Model`` whose ``explain`` runs
:class:`getit_ml.monitoring.explainer.TabularExplainer`, and the REST application.

Routes: everything ``kserve.ModelServer`` 0.12.1 serves (health, ``/metrics``, ``/v1/models``,
``POST /v1/models/{name}:explain``) plus ``POST /v2/models/{name}/explain``, the v2-style
equivalent, which kserve 0.12.1 lacks. Both take the instances the predictor takes (v1
``instances`` or v2 ``inputs``) and return ``{"model_name", "id", "explanations": [...]}``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import kserve
from fastapi import FastAPI, Request
from kserve.errors import InferenceError, InvalidInput, ModelNotReady
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer

from getit_ml.errors import UserError
from getit_ml.monitoring.explainer import ExplainerConfig, TabularExplainer
from getit_ml.monitoring.payloads import PayloadError, request_matrix
from getit_ml.monitoring.predictor import PredictorError, V2Predictor
from getit_ml.monitoring.schema import load_reference

logger = logging.getLogger(__name__)


class TabularExplainerModel(kserve.Model):
    """Explains the predictor's decisions; the predictor is called over v2 HTTP."""

    def __init__(
        self,
        name: str,
        reference_dir: Path,
        predictor: V2Predictor,
        config: ExplainerConfig,
        *,
        schema_path: Path | None = None,
        input_name: str | None = None,
        max_instances: int = 16,
        predictor_wait_s: float = 120.0,
    ) -> None:
        super().__init__(name)
        self.reference_dir = reference_dir
        self.schema_path = schema_path
        self.predictor = predictor
        self.config = config
        self.input_name = input_name
        self.max_instances = max_instances
        self.predictor_wait_s = predictor_wait_s
        self.explainer: TabularExplainer | None = None

    def load(self) -> bool:
        reference = load_reference(self.reference_dir, self.schema_path)
        # Alibi calls the predictor while fitting: wait for it (a sidecar may start first).
        try:
            self.predictor.wait_ready(self.predictor_wait_s)
        except PredictorError as error:
            raise UserError(str(error)) from None
        self.explainer = TabularExplainer(reference, self.predictor, self.config).fit()
        self.ready = True
        return self.ready

    async def explain(self, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
        if self.explainer is None:
            raise ModelNotReady(self.name)
        try:
            matrix = request_matrix(payload, self.explainer.schema, input_name=self.input_name)
        except PayloadError as error:
            raise InvalidInput(str(error)) from None
        if matrix.shape[0] > self.max_instances:
            raise InvalidInput(
                f"{matrix.shape[0]} instances: at most {self.max_instances} per explain request"
            )
        loop = asyncio.get_running_loop()
        try:
            explanations = await loop.run_in_executor(None, self.explainer.explain, matrix)
        except PredictorError as error:
            raise InferenceError(f"the predictor failed: {error}") from None
        except UserError as error:
            raise InvalidInput(str(error)) from None
        request_id = payload.get("id") if isinstance(payload, dict) else None
        return {"model_name": self.name, "id": request_id, "explanations": explanations}


def create_application(model: TabularExplainerModel) -> FastAPI:
    """kserve's REST application for ``model`` plus the v2-style explain route."""
    repository = ModelRepository()
    repository.update(model)
    dataplane = DataPlane(model_registry=repository)
    server = RESTServer(dataplane, ModelRepositoryExtension(model_registry=repository))
    app: FastAPI = server.create_application()
    # kserve 0.12.1 always mounts the repository extension, unauthenticated: anyone who reaches
    # the pod could unload the explainer. A NetworkPolicy cannot filter URL paths, so the routes
    # go (404); the explainer serves its one model for the pod's life.
    app.router.routes = [
        route
        for route in app.router.routes
        if not str(getattr(route, "path", "")).startswith("/v2/repository")
    ]

    async def v2_explain(model_name: str, request: Request) -> Any:
        if not dataplane.model_ready(model_name):
            raise ModelNotReady(model_name)
        body = await request.body()
        headers = dict(request.headers.items())
        decoded, _ = dataplane.decode(body=body, headers=headers)
        response, _ = await dataplane.explain(
            model_name=model_name, request=decoded, headers=headers
        )
        return response

    app.add_api_route(
        "/v2/models/{model_name}/explain",
        v2_explain,
        methods=["POST"],
        tags=["V2"],
        response_model=None,
    )
    return app
