"""Offline tooling for the deployment artefacts: render the Helm chart (Helm v4 Go SDK through
``helm-python-sdk``, no helm binary), build the kustomize overlays (``kubectl kustomize``),
generate the kustomize base from the chart, and keep the chart README's values table in step with
the ``## @param`` lines of ``values.yaml``. Used by ``tests/deploy`` and ``python -m
getit_ml.deploy``; nothing here talks to a cluster."""
