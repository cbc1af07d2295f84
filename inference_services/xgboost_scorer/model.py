"""``XGBoostScorerModel``: the binary tabular scorer as a ``kserve.Model`` (all logic in
getit_ml.serving)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kserve
from kserve.protocol.infer_type import InferRequest, InferResponse

from getit_ml.serving.kserve_adapter import from_kserve, kserve_error, to_kserve
from getit_ml.serving.protocol import InferenceRequest, InferenceResponse, ProtocolError
from getit_ml.serving.scorer import BinaryTabularScorer


class XGBoostScorerModel(kserve.Model):  # type: ignore[misc]
    """Loads with ``load()`` (registry reference or folder, sha256 checked by the loader) and
    answers v2 requests: ``predict`` on a stock ``kserve.ModelServer``, ``infer`` on ours."""

    def __init__(self, name: str, loader: Callable[[], BinaryTabularScorer]) -> None:
        super().__init__(name)
        self._loader = loader
        self.scorer: BinaryTabularScorer | None = None

    def load(self) -> bool:
        self.scorer = self._loader()
        self.ready = True
        return self.ready

    def _loaded(self) -> BinaryTabularScorer:
        if self.scorer is None:
            raise ProtocolError(503, f"model {self.name!r} is not loaded")
        return self.scorer

    # --- the served-model interface of getit_ml.serving (our fast REST and gRPC servers)
    @property
    def version(self) -> str:
        return self._loaded().version if self.scorer is not None else ""

    def metadata(self) -> dict[str, Any]:
        return self._loaded().metadata()

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        return self._loaded().infer_sync(request)

    # --- kserve.Model (a stock kserve.ModelServer)
    def predict(
        self,
        payload: InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        try:
            return to_kserve(self._loaded().infer_sync(from_kserve(payload)))
        except ProtocolError as error:
            raise kserve_error(error) from None
