"""The demo's data stage: a family's synthetic marketplace, generated and validated."""

from __future__ import annotations

import shutil

from getit_ml.data.generator import MarketplaceConfig
from getit_ml.demo.stages import DemoContext, StageResult, StageStatus
from getit_ml.demo.workspace import data_dir


class MarketplaceDataStage:
    """Generates a synthetic marketplace (a family's demo population) and checks it against its
    contracts."""

    description = "synthetic GetIt marketplace generated and validated against the data contracts"

    def __init__(self, population: str, config: MarketplaceConfig) -> None:
        self.population = population
        self.config = config
        self.name = f"data: {population}"

    def run(self, context: DemoContext) -> StageResult:
        from getit_ml.data.generator import generate
        from getit_ml.data.validation import render_report, validate_dataset

        out = data_dir(context.workdir, self.population)
        if out.exists():  # the demo owns this folder: a re-run starts from a clean slate
            shutil.rmtree(out)
        summary = generate(self.config, out)
        details = {name: f"{rows:,}" for name, rows in summary.rows.items()}
        details["fraud rate"] = f"{summary.fraud_rate:.2%}"
        validation = validate_dataset(out)
        if not validation.ok:
            return StageResult(
                StageStatus.FAILED,
                "the generated marketplace breaks its own contracts:\n" + render_report(validation),
                details,
            )
        return StageResult(
            StageStatus.OK,
            f"{summary.rows['customers']:,} customers over {self.config.days} days, "
            f"{summary.rows['events']:,} events, {summary.rows['orders']:,} orders, fraud "
            f"{summary.fraud_rate:.2%} of payments; {validation.rows_in:,} rows valid against the "
            f"contracts → {out}",
            details,
        )
