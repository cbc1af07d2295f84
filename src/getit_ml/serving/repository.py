"""What the v2 servers serve: models behind a small interface, and the repository that holds them.

A served model is anything with a ``name``, a ``version``, a ``ready`` flag, v2 ``metadata()`` and
an ``async infer(request)``: the fraud scorer, the feature transformer, and the ``kserve.Model``
adapters in ``inference_services/`` (which delegate to those two).

Two questions, two answers. ``ready`` means *loaded*: it gates inference
(:meth:`ModelRepository.ready_model`), so a transformer whose online store is empty still answers
(degraded, flagged) instead of failing every request. Readiness for traffic is the optional
``readiness() -> (bool, reason)``: a model whose dependencies are down says so there, and the
health endpoints (``/v2/health/ready``, ``/v2/models/<m>/ready``, gRPC ``ServerReady`` /
``ModelReady``) answer "not ready" with the reason, so Kubernetes takes the pod out of rotation
while it keeps serving what reaches it. ``readiness()`` is called on the event loop for every
probe: it must answer from state the model already holds (a cached dependency check), never
open a connection itself. A model without it is ready when it is loaded.

The repository extension (``/v2/repository/models/<m>/load|unload``) is off unless the server is
started with it enabled: stock KServe lets anyone unload a production model without
authentication. Enabled, ``unload`` takes the model out of service (404 afterwards) and ``load``
builds it again from its loader (the registry or the folder it came from).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from getit_ml.serving.protocol import InferenceRequest, InferenceResponse, ProtocolError

logger = logging.getLogger(__name__)


class ServedModel(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def ready(self) -> bool: ...

    def metadata(self) -> dict[str, Any]: ...

    async def infer(self, request: InferenceRequest) -> InferenceResponse: ...


Loader = Callable[[], ServedModel]


class ModelRepository:
    """The models a server answers for, by name."""

    def __init__(
        self,
        models: Sequence[ServedModel],
        *,
        loaders: Mapping[str, Loader] | None = None,
        enable_load_unload: bool = False,
    ) -> None:
        self._models: dict[str, ServedModel] = {}
        for model in models:
            if model.name in self._models:
                raise ValueError(f"two models named {model.name!r}")
            self._models[model.name] = model
        self._loaders = dict(loaders or {})
        self.enable_load_unload = enable_load_unload
        self._lock = asyncio.Lock()

    def get(self, name: str, version: str | None = None) -> ServedModel:
        """The model called ``name`` (and, if given, of that version); 404 otherwise."""
        model = self._models.get(name)
        if model is None:
            raise ProtocolError(404, f"unknown model {name!r}")
        if version is not None and version != model.version:
            raise ProtocolError(404, f"model {name!r} has no version {version!r}")
        return model

    def ready_model(self, name: str, version: str | None = None) -> ServedModel:
        model = self.get(name, version)
        if not model.ready:
            raise ProtocolError(503, f"model {name!r} is not ready")
        return model

    @property
    def ready(self) -> bool:
        """True when at least one model is served and every served model is loaded."""
        return bool(self._models) and all(m.ready for m in self._models.values())

    def model_readiness(self, name: str, version: str | None = None) -> tuple[bool, str]:
        """Whether the model called ``name`` should get traffic, and why not (404 if unknown)."""
        return _readiness(self.get(name, version))

    def readiness(self) -> tuple[bool, str]:
        """Whether this server should get traffic: some model served, every one ready (the
        first reason otherwise)."""
        if not self._models:
            return False, "not ready: no model is loaded"
        for model in self._models.values():
            ready, reason = _readiness(model)
            if not ready:
                return False, reason
        return True, ""

    def models(self) -> list[ServedModel]:
        return list(self._models.values())

    def index(self) -> list[dict[str, str]]:
        names = sorted(set(self._models) | set(self._loaders))
        rows = []
        for name in names:
            model = self._models.get(name)
            state = "UNAVAILABLE" if model is None else ("READY" if model.ready else "LOADING")
            row = {"name": name, "state": state}
            if model is not None:
                row["version"] = model.version
            rows.append(row)
        return rows

    def _check_enabled(self) -> None:
        if not self.enable_load_unload:
            raise ProtocolError(
                403, "the model repository extension (load/unload) is disabled on this server"
            )

    async def load(self, name: str) -> ServedModel:
        self._check_enabled()
        loader = self._loaders.get(name)
        if loader is None:
            raise ProtocolError(404, f"no loader for model {name!r}")
        async with self._lock:
            model = await asyncio.to_thread(loader)
            self._models[name] = model
        logger.info("loaded model %s version %s", name, model.version)
        return model

    async def unload(self, name: str) -> None:
        self._check_enabled()
        async with self._lock:
            if self._models.pop(name, None) is None:
                raise ProtocolError(404, f"unknown model {name!r}")
        logger.info("unloaded model %s", name)


def _readiness(model: ServedModel) -> tuple[bool, str]:
    if not model.ready:
        return False, f"model {model.name!r} is not ready (not loaded)"
    check = getattr(model, "readiness", None)
    if check is None:
        return True, ""
    ready, reason = check()
    if ready:
        return True, ""
    return False, f"model {model.name!r} is not ready: {reason or 'no reason given'}"
