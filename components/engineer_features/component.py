"""engineer_features: offline feature sources, the Feast repository applied and materialized."""

from kfp import dsl
from kfp.dsl import Artifact, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def engineer_features(
    data_dir: str,
    snapshot_id: str,
    feature_store: Output[Artifact],
    metrics: Output[Metrics],
) -> str:
    """Build the offline feature tables from the marketplace and stand up a feature store.

    The store (offline Parquet, registry, online SQLite) is written into the ``feature_store``
    artifact's folder, applied from the feature repository and materialized over the data's
    whole time range, so later steps (training-set joins, serving) read it as one unit. Returns
    the data's snapshot id, which the artifact also records in its metadata.
    """
    from pathlib import Path

    from getit_ml.features.store import build_feature_store
    from getit_ml.settings import load_settings

    store, rows = build_feature_store(load_settings(), Path(data_dir), Path(feature_store.path))
    for name, count in rows.items():
        metrics.log_metric(f"rows_{name.removesuffix('.parquet')}", count)
    feature_store.metadata["snapshot_id"] = snapshot_id
    feature_store.metadata["project"] = store.project
    return snapshot_id
