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
    from datetime import timedelta
    from pathlib import Path

    import pyarrow.dataset as ds

    from getit_ml.features.engineering import build_offline_features
    from getit_ml.features.store import StoreLayout, apply_definitions, materialize, open_store
    from getit_ml.settings import load_settings

    settings = load_settings()
    root = Path(feature_store.path)
    rows = build_offline_features(Path(data_dir), StoreLayout(root).offline_dir)
    store = open_store(settings, root)
    apply_definitions(store, settings.feature_repo)
    times = ds.dataset(Path(data_dir) / "payments", partitioning="hive").to_table(
        columns=["payment_ts"]
    )["payment_ts"]
    start = times.to_pandas().min().to_pydatetime() - timedelta(days=1)
    end = times.to_pandas().max().to_pydatetime() + timedelta(days=1)
    materialize(store, start, end)
    for name, count in rows.items():
        metrics.log_metric(f"rows_{name.removesuffix('.parquet')}", count)
    feature_store.metadata["snapshot_id"] = snapshot_id
    feature_store.metadata["project"] = store.project
    return snapshot_id
