"""Monitoring: explanations and drift detection beside a served model (the KServe sidecars).

The sidecars run in the monitoring environment (``.venv-monitoring``: alibi 0.9.4,
alibi-detect 0.11.4, kserve 0.12.1, numpy 1.24, pydantic 1). Their contract with the training
pipeline is two files written by ``getit_ml.training.dataset.export_reference``:
``reference.parquet`` and ``feature_schema.json``, read here by :mod:`getit_ml.monitoring.schema`
(through the one schema reader, :mod:`getit_ml.features.feature_schema`) without importing the
training code. What a model family contributes — reason phrases, the features the drift test
leaves out, the output and class names — is in that schema's monitoring hints: no family's code
or tables live here (an ``import-linter`` contract holds it).

Every module of this package imports only the standard library, numpy and pandas/pyarrow at
module level, so it also imports in the platform environment; alibi and alibi-detect are
imported inside the functions that use them.

* :mod:`~getit_ml.monitoring.schema` — the feature schema and the reference data.
* :mod:`~getit_ml.monitoring.payloads` — v1/v2 inference bodies to matrices and scores.
* :mod:`~getit_ml.monitoring.predictor` — a black-box predictor over the v2 REST protocol.
* :mod:`~getit_ml.monitoring.kernel_shap` — Kernel SHAP in numpy.
* :mod:`~getit_ml.monitoring.reasons` — reason codes a checkout service can show.
* :mod:`~getit_ml.monitoring.explainer` — AnchorTabular and Kernel SHAP explanations.
* :mod:`~getit_ml.monitoring.events` — the KServe payload logger's CloudEvents.
* :mod:`~getit_ml.monitoring.detectors` — TabularDrift, KSDrift and outlier detectors.
* :mod:`~getit_ml.monitoring.monitor` — pairing, windows per model, results, state.
* :mod:`~getit_ml.monitoring.metrics` and :mod:`~getit_ml.monitoring.alerts` — Prometheus
  series, CloudEvent / webhook alerts.
* :mod:`~getit_ml.monitoring.service` and :mod:`~getit_ml.monitoring.sidecars` — the drift
  detector built from its flags; the flags both sidecars share; how to start one.
* :mod:`~getit_ml.monitoring.traffic` — a client-side payload logger, a family's traffic shift,
  a replay of traffic through the served model (the walkthrough).
* :mod:`~getit_ml.monitoring.synthetic` — payments of the fraud model's input shape for
  benchmarks and tests.
"""
