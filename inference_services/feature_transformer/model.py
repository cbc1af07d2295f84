"""``FeatureTransformerModel``: the feature transformer as a ``kserve.Model`` (a KServe
transformer: ``preprocess`` builds the scorer's request, KServe's client sends it)."""

from __future__ import annotations

from typing import Any

import kserve
from kserve.protocol.infer_type import InferRequest, InferResponse

from getit_ml.serving.kserve_adapter import from_kserve, kserve_error
from getit_ml.serving.protocol import InferenceRequest, InferenceResponse, ProtocolError
from getit_ml.serving.transformer import FeatureTransformer


class FeatureTransformerModel(kserve.Model):  # type: ignore[misc]
    def __init__(
        self, name: str, transformer: FeatureTransformer, *, connect_timeout_s: float = 60.0
    ) -> None:
        super().__init__(name)
        self.transformer = transformer
        self.connect_timeout_s = connect_timeout_s

    def load(self) -> bool:
        """Wait (at most ``connect_timeout_s``: the chart's ``--predictor_timeout``) for the
        scorer and learn its inputs."""
        self.transformer.connect(self.connect_timeout_s)
        self.ready = self.transformer.ready
        return self.ready

    # --- the served-model interface of getit_ml.serving (our fast REST and gRPC servers)
    @property
    def version(self) -> str:
        return self.transformer.version

    def metadata(self) -> dict[str, Any]:
        return self.transformer.metadata()

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        return await self.transformer.infer(request)

    async def aclose(self) -> None:
        await self.transformer.aclose()

    # --- kserve.Model on a stock kserve.ModelServer (predictor call by KServe's own client)
    def preprocess(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> InferRequest:
        try:
            document, _missing = self.transformer.predictor_request(from_kserve(payload))
        except ProtocolError as error:
            raise kserve_error(error) from None
        inputs = [
            kserve.InferInput(i["name"], i["shape"], i["datatype"], i["data"])
            for i in document["inputs"]
        ]
        return InferRequest(self.name, inputs, request_id=payload.id)

    def postprocess(
        self,
        result: InferResponse,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        return result
