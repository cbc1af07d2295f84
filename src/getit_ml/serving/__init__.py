"""Serving: every family's models and the Feast feature transformer on the Open Inference
Protocol v2, generic over families (a family declares a :class:`~getit_ml.serving.runtime.
ServingSpec`: its runtime, its request and its output head).

* :mod:`~getit_ml.serving.protocol`: the v2 data model, its strict JSON / binary-tensor codec and
  the validation every request goes through (a malformed request is a :class:`ProtocolError`
  with an HTTP status, never a crash).
* :mod:`~getit_ml.serving.runtime`: the serving declaration of a family.
* :mod:`~getit_ml.serving.scorer`: the xgboost-binary runtime's scorer — named or batch inputs, a
  ``missing`` mask, the positive class's probability (named by the model's schema), decision at
  a threshold, model version; loaded from the registry (sha256 checked) or a folder.
  :mod:`~getit_ml.serving.forest` is its fast path for small batches (the trees as numpy
  arrays, verified against XGBoost at load).
* :mod:`~getit_ml.serving.transformer`: the family's request in, its feature service's features
  from the online store plus the on-demand views, the model called over v2 REST
  (:mod:`~getit_ml.serving.http_client`) or gRPC.
* :mod:`~getit_ml.serving.repository`, :mod:`~getit_ml.serving.app` (lean ASGI v2 REST),
  :mod:`~getit_ml.serving.grpc_server` (v2 gRPC) and :mod:`~getit_ml.serving.server` (both in one
  event loop; SIGTERM drains in-flight requests).
* :mod:`~getit_ml.serving.entrypoints` (command lines on KServe's own argument parser),
  :mod:`~getit_ml.serving.kserve_adapter` (KServe's request types for the ``kserve.Model``
  adapters in ``inference_services/``), :mod:`~getit_ml.serving.launcher` (a runtime's server and
  the transformer as local processes, through their one entry point each) and
  :mod:`~getit_ml.serving.metrics` (per-model Prometheus metrics at ``GET /metrics``).

Nothing here imports KServe, gRPC or MLflow at import time of the package.
"""
