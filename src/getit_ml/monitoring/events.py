"""The KServe payload logger's CloudEvents, parsed.

An InferenceService with ``logger: {mode: all, url: ...}`` POSTs every request and every response
of the predictor to the logger URL as a CloudEvent in HTTP binary mode: the attributes are
headers — ``ce-type`` (``org.kubeflow.serving.inference.request`` or ``...response``), ``ce-id``
(the same for a request and its response), ``ce-source``, ``ce-specversion``,
``ce-inferenceservicename``, ``ce-namespace``, ``ce-component``, ``ce-endpoint`` — and the body
is the request or response body as the predictor saw it (v1 or v2 JSON). Structured mode
(``Content-Type: application/cloudevents+json``, attributes and ``data`` in one JSON document)
is accepted as well.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

REQUEST_TYPE: Final = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE: Final = "org.kubeflow.serving.inference.response"
STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json"
#: Largest body accepted (bytes): a logger event bigger than this is dropped, not parsed.
MAX_BODY_BYTES: Final = 8 * 1024 * 1024

EventKind = Literal["request", "response"]


class EventError(ValueError):
    """An event the detector cannot use; ``reason`` is a short label for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class InferenceEvent:
    """One logged request or response: its kind, id, the InferenceService and the JSON body."""

    kind: EventKind
    event_id: str
    model: str
    body: Any
    namespace: str | None = None
    component: str | None = None
    endpoint: str | None = None


def _kind(event_type: str | None) -> EventKind:
    if event_type == REQUEST_TYPE:
        return "request"
    if event_type == RESPONSE_TYPE:
        return "response"
    raise EventError(
        "unknown_type",
        f"unknown CloudEvent type {event_type!r} (want {REQUEST_TYPE} or {RESPONSE_TYPE})",
    )


def _json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EventError("bad_json", f"the event body is not JSON: {error}") from None


def parse_event(
    headers: Mapping[str, str], body: bytes, *, default_model: str | None = None
) -> InferenceEvent:
    """Parse one HTTP delivery of a payload-logger CloudEvent (binary or structured mode).

    ``default_model`` names the model when the event lacks ``inferenceservicename``."""
    if len(body) > MAX_BODY_BYTES:
        raise EventError("too_large", f"event body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    if content_type == STRUCTURED_CONTENT_TYPE:
        envelope = _json(body)
        if not isinstance(envelope, dict):
            raise EventError("bad_envelope", "a structured CloudEvent must be a JSON object")
        attributes = {str(k).lower(): v for k, v in envelope.items()}
        if "data_base64" in attributes:
            try:
                data = _json(base64.b64decode(str(attributes["data_base64"])))
            except ValueError as error:
                raise EventError("bad_json", f"data_base64 is not base64 JSON: {error}") from None
        else:
            data = attributes.get("data")
            if isinstance(data, str | bytes):
                data = _json(data)
    else:
        attributes = {k[3:]: v for k, v in lowered.items() if k.startswith("ce-")}
        if not attributes:
            raise EventError("not_cloudevent", "no ce-* headers: not a binary-mode CloudEvent")
        data = _json(body)
    kind = _kind(attributes.get("type"))
    event_id = attributes.get("id")
    if not event_id:
        raise EventError("no_id", "the CloudEvent has no id")
    model = attributes.get("inferenceservicename") or default_model
    if not model:
        raise EventError("no_model", "the CloudEvent has no inferenceservicename")
    return InferenceEvent(
        kind=kind,
        event_id=str(event_id),
        model=str(model),
        body=data,
        namespace=_text(attributes.get("namespace")),
        component=_text(attributes.get("component")),
        endpoint=_text(attributes.get("endpoint")),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def binary_headers(
    kind: EventKind,
    event_id: str,
    model: str,
    *,
    source: str = "http://localhost/",
    namespace: str = "default",
    component: str = "predictor",
) -> dict[str, str]:
    """The headers the KServe logger sends with a request or response (for clients and tests)."""
    return {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-type": REQUEST_TYPE if kind == "request" else RESPONSE_TYPE,
        "ce-id": event_id,
        "ce-source": source,
        "ce-inferenceservicename": model,
        "ce-namespace": namespace,
        "ce-component": component,
        "ce-endpoint": model,
    }
