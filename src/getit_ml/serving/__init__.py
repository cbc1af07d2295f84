"""Serving: the fraud scorer and its Feast feature transformer on the Open Inference Protocol v2.

* :mod:`~getit_ml.serving.protocol`: the v2 data model, its strict JSON / binary-tensor codec and
  the validation every request goes through (a malformed request is a :class:`ProtocolError`
  with an HTTP status, never a crash).
* :mod:`~getit_ml.serving.scorer`: the fraud scorer — named or batch inputs, a ``missing`` mask,
  fraud probability, decision at a threshold, model version; loaded from the registry (sha256
  checked) or a folder. :mod:`~getit_ml.serving.forest` is its fast path for small batches (the
  trees as numpy arrays, verified against XGBoost at load).
* :mod:`~getit_ml.serving.transformer`: checkout fields in, ``fraud_scoring_v1`` features from the
  online store plus the on-demand context, the scorer called over v2 REST
  (:mod:`~getit_ml.serving.http_client`) or gRPC.
* :mod:`~getit_ml.serving.repository`, :mod:`~getit_ml.serving.app` (lean ASGI v2 REST),
  :mod:`~getit_ml.serving.grpc_server` (v2 gRPC) and :mod:`~getit_ml.serving.server` (both in one
  event loop; SIGTERM drains in-flight requests).
* :mod:`~getit_ml.serving.entrypoints` (command lines on KServe's own argument parser),
  :mod:`~getit_ml.serving.kserve_adapter` (KServe's request types for the ``kserve.Model``
  adapters in ``inference_services/``), :mod:`~getit_ml.serving.launcher` (scorer and transformer
  as local processes) and :mod:`~getit_ml.serving.demo_stage` (the demo's serving stage).

Nothing here imports KServe, gRPC or MLflow at import time of the package.
"""
