"""The v2 REST data plane as a lean ASGI application (no framework, orjson both ways).

Why not KServe's FastAPI app: per request it builds pydantic models, an ``InferRequest``, runs
``preprocess``/``predict``/``postprocess`` through ``inspect`` checks and Prometheus timers, and its
error handling answers 422/500 for malformed input. This app routes by splitting the path, reads
the body under a size limit, decodes it with :mod:`getit_ml.serving.protocol` and calls the
model's ``infer`` directly: the fraud scorer's whole request costs tens of microseconds of Python
around a ~100 µs ``inplace_predict``.

Routes (``{m}`` a model name, ``{v}`` its version; ``/versions/{v}`` is optional everywhere):

=======  ===========================================  ==========================================
GET      ``/v2/health/live``                          200 ``{"live": true}``
GET      ``/v2/health/ready``                         200 when every model is ready, else 400
GET      ``/v2``                                      server metadata
GET      ``/v2/models/{m}``                           model metadata (404 unknown)
GET      ``/v2/models/{m}/ready``                     200 ready, 400 not ready, 404 unknown
POST     ``/v2/models/{m}/infer``                     inference
POST     ``/v2/repository/index``                     the repository's models and states
POST     ``/v2/repository/models/{m}/load|unload``    403 unless the extension is enabled
GET      ``/metrics``                                 Prometheus text format (404 when off)
=======  ===========================================  ==========================================

Health "false" is a 4xx, as the protocol says, with the reason: readiness is the repository's
(:meth:`~getit_ml.serving.repository.ModelRepository.readiness`: loaded, and the model's own
``readiness()`` where it has one: its dependencies). Liveness looks at nothing but the event loop.
Inference on a model that is not *loaded* is 503 (retry later); a loaded model whose dependencies
are unwell still gets its requests (it answers them, degraded or 503, itself). Every error body
is ``{"error": "<message>"}`` (the HTTP layer's too:
:class:`~getit_ml.serving.http_protocol.GuardedHttpProtocol`).

The JSON endpoints (``infer``, ``repository/...``) take ``application/json`` bodies (parameters
such as ``charset`` allowed); an inference request in the binary tensor extension (it carries
``Inference-Header-Content-Length``) may say ``application/octet-stream`` instead. Any other
declared type is 415. A request that declares no type is read as JSON: Triton's HTTP client,
one of the protocol's two reference clients, sends none, and rejecting it would lock it out.
Every client in this repository declares ``application/json``.

``/metrics`` (on the same port, so a pod's one ``prometheus.io/port`` covers it) exposes the
server's :class:`~getit_ml.serving.metrics.InferenceMetrics`: per-model counts and durations of
inference requests only (not of probes or scrapes), REST and gRPC together; see
:mod:`getit_ml.serving.metrics` for the names and labels. It is answered only when the app is
given metrics (:class:`~getit_ml.serving.server.V2Server` does, unless ``ServerOptions.metrics``
is off).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import Any, Final

import orjson

from getit_ml import __version__
from getit_ml.serving.metrics import CANCELLED, CONTENT_TYPE, InferenceMetrics
from getit_ml.serving.protocol import (
    BINARY_HEADER,
    DEFAULT_MAX_BODY_BYTES,
    ProtocolError,
    decode_rest,
    encode_rest,
    error_body,
)
from getit_ml.serving.repository import ModelRepository, ServedModel

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SERVER_NAME: Final = "getit-ml"
_JSON: Final = (b"content-type", b"application/json")
_LIVE: Final = orjson.dumps({"live": True})
_READY: Final = orjson.dumps({"ready": True})
_METRICS_TYPE: Final = (b"content-type", CONTENT_TYPE.encode())
_RETRY_NOW: Final = (b"retry-after", b"1")
_JSON_TYPE: Final = b"application/json"
_BINARY_TYPE: Final = b"application/octet-stream"
_BINARY_KEY: Final = BINARY_HEADER.encode()


class V2App:
    """ASGI callable serving ``repository`` over the v2 REST protocol.

    ``metrics``: where inference requests are counted and timed (and what ``GET /metrics``
    exposes); ``None``, the default, counts nothing and answers 404 there. The owner passes them
    so that one registry covers its REST app and its gRPC service.
    """

    def __init__(
        self,
        repository: ModelRepository,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        server_name: str = SERVER_NAME,
        metrics: InferenceMetrics | None = None,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive (got {max_body_bytes})")
        self.repository = repository
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self._metrics = None if metrics is None else metrics.rest
        extensions = ["binary_tensor_data"]
        if repository.enable_load_unload:
            extensions.append("model_repository")
        self._server_metadata = orjson.dumps(
            {"name": server_name, "version": __version__, "extensions": extensions}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    # ------------------------------------------------------------------------------- plumbing
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/metrics" and self.metrics is not None:
            await self._scrape(scope, self.metrics, send)
            return
        try:
            status, body, extra = await self._route(scope, receive)
        except ProtocolError as error:
            status, body, extra = error.status, error_body(error.message), []
            retry_after = error.retry_after_header
            if retry_after is not None:
                extra = [(b"retry-after", retry_after.encode())]
        except asyncio.CancelledError:
            # The drain's grace period ran out with this request unfinished: uvicorn cancels it
            # and would answer a text/plain 500. Say, in JSON, that this is ours and temporary
            # (the send does not suspend: the connection's buffer is not full).
            body = error_body("the server stopped before the request finished; retry")
            headers = [_JSON, (b"content-length", str(len(body)).encode()), _RETRY_NOW]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            raise
        except Exception as error:  # a bug: answer 500 with a message, keep the traceback in logs
            logger.exception("unhandled error for %s %s", scope["method"], scope["path"])
            status = 500
            body = error_body(f"internal server error ({type(error).__name__})")
            extra = []
        headers = [_JSON, (b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _scrape(self, scope: Scope, metrics: InferenceMetrics, send: Send) -> None:
        """``GET /metrics``: the text exposition, outside ``_route`` so it is never counted."""
        if scope["method"] == "GET":
            status, body, content_type = 200, metrics.exposition(), _METRICS_TYPE
        else:
            status, content_type = 405, _JSON
            body = error_body(f"method {scope['method']} is not allowed here (use GET)")
        headers = [content_type, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                raise ProtocolError(400, "Content-Length is not a number") from None
            if length > limit:
                raise ProtocolError(413, f"request body of {length} bytes exceeds {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ProtocolError(400, "the client disconnected before sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ProtocolError(413, f"request body exceeds {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # -------------------------------------------------------------------------------- routing
    async def _route(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        method: str = scope["method"]
        parts = [p for p in scope["path"].split("/") if p]
        if not parts or parts[0] != "v2":
            raise ProtocolError(404, f"no such endpoint: {scope['path']}")
        rest = parts[1:]
        if not rest:
            _allow(method, "GET")
            return 200, self._server_metadata, []
        if rest[0] == "health" and len(rest) == 2 and rest[1] in ("live", "ready"):
            _allow(method, "GET")
            if rest[1] == "live":
                return 200, _LIVE, []
            ready, reason = self.repository.readiness()
            if not ready:
                raise ProtocolError(400, reason)
            return 200, _READY, []
        if rest[0] == "models" and len(rest) >= 2:
            return await self._model_route(method, rest[1], rest[2:], scope, receive)
        if rest[0] == "repository":
            return await self._repository_route(method, rest[1:], scope, receive)
        raise ProtocolError(404, f"no such endpoint: {scope['path']}")

    async def _model_route(
        self, method: str, name: str, tail: list[str], scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        version: str | None = None
        if len(tail) >= 2 and tail[0] == "versions":
            version, tail = tail[1], tail[2:]
        if not tail:
            _allow(method, "GET")
            return 200, orjson.dumps(self.repository.get(name, version).metadata()), []
        if tail == ["ready"]:
            _allow(method, "GET")
            ready, reason = self.repository.model_readiness(name, version)
            if not ready:
                raise ProtocolError(400, reason)
            return 200, orjson.dumps({"name": name, "ready": True}), []
        if tail == ["infer"]:
            _allow(method, "POST")
            return await self._infer(name, version, scope, receive)
        raise ProtocolError(404, f"no such endpoint: {scope['path']}")

    async def _infer(
        self, name: str, version: str | None, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """One inference request, counted and timed when the app has metrics: the status is the
        one ``_http`` will answer (a :class:`ProtocolError`'s, 500 for any other exception)."""
        start = perf_counter()
        model: ServedModel | None = None
        status = 500
        try:
            model = self.repository.ready_model(name, version)
            binary_length = _header(scope, _BINARY_KEY)
            _check_json(scope, binary=binary_length is not None)
            body = await self._read_body(scope, receive)
            request = decode_rest(body, binary_length)
            response = await model.infer(request)
            payload, json_length = encode_rest(response, request.outputs, request.binary_outputs)
            status = 200
            if json_length is None:
                return 200, payload, []
            return 200, payload, [(BINARY_HEADER.encode(), str(json_length).encode())]
        except ProtocolError as error:
            status = error.status
            raise
        except asyncio.CancelledError:
            status = CANCELLED
            raise
        finally:
            if self._metrics is not None:
                self._metrics.observe_request(
                    self.repository, model, name, version, status, perf_counter() - start
                )

    async def _repository_route(
        self, method: str, tail: list[str], scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        if tail == ["index"]:
            _allow(method, "POST")
            _check_json(scope, binary=False)
            return 200, orjson.dumps(self.repository.index()), []
        if len(tail) == 3 and tail[0] == "models" and tail[2] in ("load", "unload"):
            _allow(method, "POST")
            _check_json(scope, binary=False)
            await self._read_body(scope, receive)  # honour the size limit; the body is unused
            name = tail[1]
            if tail[2] == "load":
                await self.repository.load(name)
                return 200, orjson.dumps({"name": name, "load": True}), []
            await self.repository.unload(name)
            return 200, orjson.dumps({"name": name, "unload": True}), []
        raise ProtocolError(404, f"no such endpoint: {scope['path']}")


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise ProtocolError(405, f"method {method} is not allowed here (use {allowed})")


def _check_json(scope: Scope, *, binary: bool) -> None:
    """415 unless the body is declared JSON (or, for ``binary``, octet-stream) or undeclared."""
    for key, value in scope["headers"]:
        if key == b"content-type":
            media = bytes(value).split(b";", 1)[0].strip().lower()
            if media == _JSON_TYPE or (binary and media == _BINARY_TYPE):
                return
            shown = bytes(value)[:80].decode("latin-1")
            accepted = "application/json" + (" or application/octet-stream" if binary else "")
            raise ProtocolError(
                415, f"Content-Type {shown!r} is not accepted here (send {accepted})"
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
