"""Clients for the transformer's hop to the model server: v2 REST or v2 gRPC.

The transformer learns the scorer's inputs from its metadata at start-up
(:meth:`PredictorClient.wait_for_metadata`) and sends every request to it
(:meth:`PredictorClient.infer`, bounded by the client's ``timeout_s`` or the call's own). Errors
map to what the transformer answers:

* the scorer unreachable (refused, reset, draining), not answering in time, answering 503 (not
  loaded yet, at its connection cap) or, over gRPC, ``UNAVAILABLE`` / ``DEADLINE_EXCEEDED`` /
  ``RESOURCE_EXHAUSTED``: **503** with ``Retry-After`` (:data:`RETRY_AFTER_S`) — temporary, and
  the caller should come back; a restarted scorer is back within seconds;
* any other 5xx of the scorer: **502** (bad gateway: the scorer failed, not this hop);
* a 4xx of the scorer: **500** (this transformer built a request its own scorer refuses: our bug,
  not the caller's).
"""

from __future__ import annotations

import time
from typing import Any, Final, Protocol

import httpx
import numpy as np
import orjson

from getit_ml.errors import UserError
from getit_ml.serving.http_client import (
    DEFAULT_IDLE_TIMEOUT_S,
    HttpError,
    HttpTimeoutError,
    KeepAliveClient,
)
from getit_ml.serving.protocol import (
    NUMPY_TYPES,
    InferenceResponse,
    OutputTensor,
    ProtocolError,
)

#: ``Retry-After`` of the 503s that blame the scorer being away (a restart takes seconds).
RETRY_AFTER_S: Final = 1.0


class PredictorClient(Protocol):
    def wait_for_metadata(self, model: str, timeout_s: float) -> dict[str, Any]: ...

    async def infer(
        self, model: str, document: dict[str, Any], *, timeout_s: float | None = None
    ) -> InferenceResponse:
        """The scorer's answer; ``timeout_s`` bounds this call (default: the client's)."""
        ...

    async def close(self) -> None: ...


def unavailable(message: str) -> ProtocolError:
    """The 503 of a scorer that is away for now (see the module docstring)."""
    return ProtocolError(503, message, retry_after_s=RETRY_AFTER_S)


def _response_from_document(document: Any) -> InferenceResponse:
    try:
        outputs = tuple(
            OutputTensor(
                o["name"],
                o["datatype"],
                np.asarray(o["data"], dtype=NUMPY_TYPES[o["datatype"]]).reshape(o["shape"]),
            )
            for o in document["outputs"]
        )
        return InferenceResponse(
            model_name=str(document["model_name"]),
            outputs=outputs,
            model_version=document.get("model_version"),
            parameters=dict(document.get("parameters") or {}),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ProtocolError(502, f"the predictor's response is malformed: {error!r}") from None


class RestPredictor:
    """The scorer over v2 REST: keep-alive connections (:class:`KeepAliveClient`: stale ones
    dropped, one retry on a fresh one), orjson."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.idle_timeout_s = idle_timeout_s
        self._client: KeepAliveClient | None = None

    def wait_for_metadata(self, model: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                try:
                    ready = client.get(f"/v2/models/{model}/ready")
                    if ready.status_code == 200:
                        meta: dict[str, Any] = client.get(f"/v2/models/{model}").json()
                        return meta
                    last = f"{ready.status_code} {ready.text}"
                except httpx.HTTPError as error:
                    last = str(error)
                time.sleep(0.2)
        raise UserError(f"the predictor at {self.base_url} is not ready for {model!r}: {last}")

    async def infer(
        self, model: str, document: dict[str, Any], *, timeout_s: float | None = None
    ) -> InferenceResponse:
        if self._client is None:
            self._client = KeepAliveClient(
                self.base_url, timeout_s=self.timeout_s, idle_timeout_s=self.idle_timeout_s
            )
        try:
            response = await self._client.post(
                f"/v2/models/{model}/infer", orjson.dumps(document), timeout_s=timeout_s
            )
        except HttpTimeoutError as error:
            raise unavailable(f"the predictor did not answer in time: {error}") from None
        except HttpError as error:
            raise unavailable(f"the predictor is unreachable: {error}") from None
        if response.status != 200:
            raise _predictor_error(response.status, response.body)
        try:
            parsed = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            raise ProtocolError(502, "the predictor's response is not JSON") from None
        return _response_from_document(parsed)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _predictor_error(status: int, body: bytes) -> ProtocolError:
    try:
        message = str(orjson.loads(body).get("error", body[:200]))
    except (orjson.JSONDecodeError, AttributeError):
        message = body[:200].decode("utf-8", "replace")
    # A 4xx from the scorer means this transformer built a bad request: our bug, not the
    # client's. A 503 is the scorer's "not now" (loading, at its cap): passed on, retry later.
    # Any other 5xx is the scorer's failure, passed on as a bad gateway.
    text = f"the predictor answered {status}: {message}"
    if status == 503:
        return unavailable(text)
    return ProtocolError(500 if status < 500 else 502, text)


class GrpcPredictor:
    """The scorer over v2 gRPC (``grpc.aio``; the request built as for REST, then converted)."""

    def __init__(self, target: str, *, timeout_s: float = 10.0) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._channel: Any = None
        self._stub: Any = None

    def wait_for_metadata(self, model: str, timeout_s: float) -> dict[str, Any]:
        import grpc  # type: ignore[import-untyped]
        from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
        from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb  # type: ignore[import-untyped]
        from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

        deadline = time.monotonic() + timeout_s
        last = "no answer"
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            while time.monotonic() < deadline:
                try:
                    if stub.ModelReady(pb.ModelReadyRequest(name=model), timeout=5).ready:
                        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=model), timeout=5)
                        out: dict[str, Any] = MessageToDict(meta, preserving_proto_field_name=True)
                        for key in ("inputs", "outputs"):
                            for tensor in out.get(key, []):
                                tensor["shape"] = [int(d) for d in tensor.get("shape", [])]
                        return out
                    last = "not ready"
                except grpc.RpcError as error:
                    last = f"{error.code()}: {error.details()}"
                time.sleep(0.2)
        raise UserError(f"the predictor at {self.target} is not ready for {model!r}: {last}")

    async def infer(
        self, model: str, document: dict[str, Any], *, timeout_s: float | None = None
    ) -> InferenceResponse:
        import grpc
        from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

        from getit_ml.serving.grpc_server import request_message, response_outputs

        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.target)
            self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        message = request_message(model, document)
        try:
            reply = await self._stub.ModelInfer(
                message, timeout=self.timeout_s if timeout_s is None else timeout_s
            )
        except grpc.RpcError as error:
            code = error.code()
            text = f"the predictor answered {code}: {error.details()}"
            if code in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            ):
                raise unavailable(text) from None
            status = 500 if code == grpc.StatusCode.INVALID_ARGUMENT else 502
            raise ProtocolError(status, text) from None
        return InferenceResponse(
            model_name=reply.model_name,
            outputs=response_outputs(reply),
            model_version=reply.model_version or None,
            parameters={
                k: getattr(v, v.WhichOneof("parameter_choice"))
                for k, v in reply.parameters.items()
                if v.WhichOneof("parameter_choice")
            },
        )

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None


def predictor_client(
    host: str,
    protocol: str,
    *,
    timeout_s: float = 10.0,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
) -> PredictorClient:
    """A client for the scorer at ``host`` (``host:port``, or a URL for REST) speaking
    ``protocol``: ``v2`` (REST) or ``grpc-v2``, as KServe's ``--predictor_protocol`` names them.
    ``timeout_s``: each call's default bound; ``idle_timeout_s`` (REST): pooled connections
    idle longer are not reused (keep it below the scorer's keep-alive, 65 s)."""
    if protocol == "v2":
        url = host if "://" in host else f"http://{host}"
        return RestPredictor(url, timeout_s=timeout_s, idle_timeout_s=idle_timeout_s)
    if protocol == "grpc-v2":
        return GrpcPredictor(host.split("://")[-1], timeout_s=timeout_s)
    raise UserError(f"predictor protocol must be v2 or grpc-v2 (got {protocol!r})")
