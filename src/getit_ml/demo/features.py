"""The demo's feature stage: offline features, the Feast repository applied and materialized,
and one of the family's requests read online through its feature service."""

from __future__ import annotations

import shutil
from typing import Any

from getit_ml.demo.stages import DemoContext, StageResult, StageStatus
from getit_ml.demo.workspace import data_dir, store_dir
from getit_ml.errors import UserError
from getit_ml.families.base import ModelFamily

#: Features shown in the stage's summary when the service has them.
SHOWN = (
    "orders_30d",
    "cod_share_90d",
    "payments_30d",
    "device_customers_30d",
    "days_to_eid_ul_fitr",
    "amount_vs_avg_30d",
    "is_new_device",
    "days_since_last_order",
    "spend_90d_bdt",
    "sessions_30d",
)


class FeatureStoreStage:
    """Builds the offline features of a population, applies the Feast repository, materializes,
    and reads the family's feature service online for one sample request."""

    description = "offline features built, Feast repo applied and materialized, one vector read"

    def __init__(self, family: ModelFamily) -> None:
        self.family = family
        self.population = family.demo.population
        self.name = f"features: {self.population}"

    def run(self, context: DemoContext) -> StageResult:
        from getit_ml.features.store import build_feature_store, online_features
        from getit_ml.orchestration import output_to

        root = store_dir(context.workdir, self.population)
        if root.exists():  # the demo owns this folder: a re-run starts from a clean slate
            shutil.rmtree(root)
        market = data_dir(context.workdir, self.population)
        # Feast prints materialization progress bars: they go to a log, the screen is the
        # summary's.
        try:
            with output_to(context.workdir / f"features-{self.population}.log"):
                store, rows = build_feature_store(context.settings, market, root)
            sample = self.family.demo.sample_requests(market, 1)
        except UserError as error:
            return StageResult(StageStatus.FAILED, str(error))
        request = _feast_request(self.family, sample[0])
        service = self.family.feature_service
        vector = online_features(store, service, [request])
        details = {
            name: str(vector.values[name].iloc[0]) for name in SHOWN if name in vector.values
        }
        details.update({f"rows {name}": f"{count:,}" for name, count in rows.items()})
        n_features = vector.missing.shape[1]
        return StageResult(
            StageStatus.OK,
            f"{sum(rows.values()):,} offline rows; {service} online for "
            f"{self.family.demo.describe_request(sample[0])}: {n_features} features, "
            f"{1 - vector.missing_share:.0%} present "
            f"({', '.join(f'{k}={v}' for k, v in list(details.items())[:4])})",
            details,
        )


def _feast_request(family: ModelFamily, row: dict[str, Any]) -> dict[str, Any]:
    """A sample request as Feast's online read takes it: the request inputs, defaults filled."""
    columns = {k: [v] for k, v in row.items() if k in family.serving.inputs}
    for spec in family.serving.request:
        if spec.name not in columns and spec.default is not None:
            columns[spec.name] = spec.default.fill(columns, 1)
    return {name: values[0] for name, values in columns.items()}
