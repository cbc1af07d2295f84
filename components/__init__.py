"""Kubeflow Pipelines components of the platform: thin adapters over getit_ml, one folder each."""

#: Image every component runs in on a cluster: getit_ml, kfp and the feature repository installed
#: (built by `make images`). Locally, kfp.local runs the same functions in this environment.
BASE_IMAGE = "getit-ml/components:0.1.0"
