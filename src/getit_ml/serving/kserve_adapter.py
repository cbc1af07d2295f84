"""Between KServe's own request/response types and ours, for the ``kserve.Model`` adapters.

With ``--server kserve`` the adapters in ``inference_services/`` run inside a stock
``kserve.ModelServer``: KServe decodes the request into an ``InferRequest``, the adapter turns it
into our :class:`~getit_ml.serving.protocol.InferenceRequest` through the same checks as our own
servers (so non-finite input is still refused), and the answer goes back as an ``InferResponse``.
Errors become KServe's ``InvalidInput`` (400 on its REST server) or ``InferenceError``.
"""

from __future__ import annotations

from typing import Any

from getit_ml.serving.protocol import (
    InferenceRequest,
    InferenceResponse,
    ProtocolError,
    decode_document,
)


def _values(tensor: Any) -> list[Any]:
    array = tensor.as_numpy()
    values: list[Any] = array.ravel().tolist()
    if tensor.datatype == "BYTES":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
    return values


def from_kserve(request: Any) -> InferenceRequest:
    """A KServe ``InferRequest`` as our request, validated like a REST body."""
    try:
        inputs = [
            {
                "name": tensor.name,
                "datatype": tensor.datatype,
                "shape": [int(d) for d in tensor.shape],
                "data": _values(tensor),
            }
            for tensor in request.inputs
        ]
    except (ValueError, TypeError) as error:
        raise ProtocolError(400, f"cannot read the request's tensors: {error}") from None
    document: dict[str, Any] = {"inputs": inputs}
    if request.id:
        document["id"] = str(request.id)
    if request.parameters:
        document["parameters"] = dict(request.parameters)
    return decode_document(document)


def to_kserve(response: InferenceResponse) -> Any:
    """Our response as a KServe ``InferResponse``."""
    from kserve.protocol.infer_type import InferOutput, InferResponse  # type: ignore[import-untyped]

    outputs = [
        InferOutput(
            name=tensor.name,
            shape=tensor.shape,
            datatype=tensor.datatype,
            data=tensor.data.ravel().tolist(),
        )
        for tensor in response.outputs
    ]
    return InferResponse(
        response_id=response.id or "",
        model_name=response.model_name,
        model_version=response.model_version,
        infer_outputs=outputs,
        parameters=dict(response.parameters) or None,
    )


def kserve_error(error: ProtocolError) -> Exception:
    """The KServe exception its servers map to the nearest status of ``error``."""
    from kserve.errors import InferenceError, InvalidInput  # type: ignore[import-untyped]

    if error.status < 500:
        return InvalidInput(error.message)  # type: ignore[no-any-return]
    return InferenceError(error.message)  # type: ignore[no-any-return]
