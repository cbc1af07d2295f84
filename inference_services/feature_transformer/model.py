"""``FeatureTransformerModel``: the feature transformer as a ``kserve.Model`` (a KServe
transformer: ``preprocess`` builds the scorer's request, KServe's client sends it,
``postprocess`` adds the transformer's ``decision_status``)."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Any, Final

import kserve
from kserve.protocol.infer_type import InferRequest, InferResponse

from getit_ml.serving.kserve_adapter import from_kserve, kserve_error
from getit_ml.serving.protocol import InferenceRequest, InferenceResponse, ProtocolError
from getit_ml.serving.transformer import DECISION_STATUS, SCORED, FeatureTransformer

#: Requests between ``preprocess`` and ``postprocess`` remembered at most (a call that fails in
#: between never reaches ``postprocess``: the oldest entries are dropped).
_PENDING_LIMIT: Final = 10_000


class FeatureTransformerModel(kserve.Model):  # type: ignore[misc]
    def __init__(
        self, name: str, transformer: FeatureTransformer, *, connect_timeout_s: float = 60.0
    ) -> None:
        super().__init__(name)
        self.transformer = transformer
        self.connect_timeout_s = connect_timeout_s
        # KServe passes nothing from preprocess to postprocess but the scorer's response: the
        # rows' statuses wait here under the id the scorer echoes.
        self._pending: OrderedDict[str, tuple[str | None, list[str]]] = OrderedDict()

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

    def readiness(self) -> tuple[bool, str]:
        """The transformer's dependencies (store, watermarks, scorer), from its monitor.

        Not wired into KServe's ``healthy()``: a stock ModelServer *reloads* a model whose
        ``healthy()`` is false on every request, which would block its event loop."""
        return self.transformer.readiness()

    @property
    def metrics_collector(self) -> Any:
        return self.transformer.metrics_collector

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        return await self.transformer.infer(request)

    async def aclose(self) -> None:
        await self.transformer.aclose()

    # --- kserve.Model on a stock kserve.ModelServer (predictor call by KServe's own client)
    async def preprocess(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> InferRequest:
        try:
            prepared = await self.transformer.predictor_request(from_kserve(payload))
            self.transformer.admit(prepared)
        except ProtocolError as error:
            raise kserve_error(error) from None
        inputs = [
            kserve.InferInput(i["name"], i["shape"], i["datatype"], i["data"])
            for i in prepared.document["inputs"]
        ]
        token = uuid.uuid4().hex
        self._pending[token] = (payload.id, prepared.statuses)
        while len(self._pending) > _PENDING_LIMIT:
            self._pending.popitem(last=False)
        return InferRequest(self.name, inputs, request_id=token)

    def postprocess(
        self,
        result: InferResponse,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        entry = self._pending.pop(str(result.id), None)
        if entry is None:
            return result
        original_id, statuses = entry
        result.id = original_id or ""
        outputs = [o for o in result.outputs if o.name != DECISION_STATUS]
        outputs.append(kserve.InferOutput(DECISION_STATUS, [len(statuses)], "BYTES", statuses))
        result.outputs = outputs
        degraded = sum(status != SCORED for status in statuses)
        result.parameters = {**(result.parameters or {}), "degraded_rows": degraded}
        return result
