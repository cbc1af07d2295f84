"""The platform's main job on the embedded default, as a sequence of stages.

``getit-ml demo`` runs the stages in the order data flows (data → features → training pipeline →
registry → serving → monitoring) on one machine: SQLite, local files and local processes, no
cluster. Each issue that builds a layer adds its stage to :func:`default_stages`. The first stages
prove the ground everything else stands on: both pinned environments and the embedded backends.

A stage returns a :class:`StageResult`; the runner stops at the first failure, because every later
stage consumes what the earlier ones produce. Rendering (progress bars, tables) belongs to the CLI:
the runner only reports through callbacks.
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from getit_ml.data.generator import MarketplaceConfig
from getit_ml.environments import EnvironmentReport, probe
from getit_ml.settings import PlatformSettings

logger = logging.getLogger(__name__)

#: The demo's marketplace: 60,000 customers over 90 days give about 20,000 payments and 150
#: frauds, enough that the time split's test part holds a few dozen (a smaller shop would leave
#: the held-out figures to chance).
DEMO_MARKETPLACE: Final = MarketplaceConfig(customers=60_000, days=90, seed=11)
#: Optuna trials in the demo's pipeline run: enough to show tuning, short enough to wait for.
DEMO_TRIALS: Final = 6

#: Sub-folders of the demo's working directory, one per layer that keeps state there.
WORKSPACE_LAYOUT = ("data", "features", "mlflow", "pipelines", "serving", "monitoring")


class StageStatus(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class StageResult:
    """What a stage did: a one-line summary plus named figures for the summary table."""

    status: StageStatus
    summary: str
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoContext:
    """What every stage gets: the settings and the folder that holds the run's state."""

    settings: PlatformSettings
    workdir: Path


class Stage(Protocol):
    """One step of the demo. ``run`` must not raise for expected failures: it returns a
    FAILED result that says what went wrong and what to do."""

    name: str
    description: str

    def run(self, context: DemoContext) -> StageResult: ...


@dataclass(frozen=True)
class StageOutcome:
    name: str
    description: str
    result: StageResult
    seconds: float


@dataclass(frozen=True)
class DemoReport:
    outcomes: list[StageOutcome]

    @property
    def ok(self) -> bool:
        return all(o.result.status is StageStatus.OK for o in self.outcomes)


def _environment_result(report: EnvironmentReport) -> StageResult:
    versions = {p.distribution: p.version or "missing" for p in report.packages}
    if not report.ok:
        return StageResult(StageStatus.FAILED, "; ".join(report.problems()), versions)
    slowest = max(report.packages, key=lambda p: p.import_seconds)
    summary = (
        f"Python {report.python}, {len(report.packages)} packages import "
        f"(slowest: {slowest.distribution} {slowest.import_seconds:.1f}s)"
    )
    return StageResult(StageStatus.OK, summary, versions)


class PlatformEnvironmentStage:
    """Imports everything the platform environment promises, in this process."""

    name = "platform environment"
    description = "torch, kfp, kserve, feast, mlflow, xgboost, optuna, transformers import"

    def run(self, context: DemoContext) -> StageResult:
        return _environment_result(probe("platform"))


class MonitoringEnvironmentStage:
    """Probes the monitoring environment from outside, in its own interpreter."""

    name = "monitoring environment"
    description = "alibi 0.9.4 and alibi-detect 0.11.4 (Apache-2.0) import on numpy 1.24"

    def run(self, context: DemoContext) -> StageResult:
        python = context.settings.monitoring_python
        if not python.exists():
            return StageResult(
                StageStatus.FAILED,
                f"no interpreter at {python}: run `make setup` to create .venv-monitoring "
                "(or set GETIT_ML_MONITORING_PYTHON)",
            )
        completed = subprocess.run(
            [str(python), "-m", "getit_ml.environments", "monitoring"],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            check=False,
        )
        try:
            report = EnvironmentReport.from_json(completed.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError, KeyError, TypeError):
            tail = (completed.stderr or completed.stdout).strip()[-500:]
            return StageResult(
                StageStatus.FAILED,
                f"{python} -m getit_ml.environments exited {completed.returncode}: {tail}",
            )
        return _environment_result(report)


class EmbeddedBackendsStage:
    """Lays out the working directory and proves its SQLite backend works."""

    name = "embedded backends"
    description = "working directory laid out; SQLite (Feast online store, MLflow) writes and reads"

    def run(self, context: DemoContext) -> StageResult:
        for folder in WORKSPACE_LAYOUT:
            (context.workdir / folder).mkdir(parents=True, exist_ok=True)
        probe_db = context.workdir / "embedded-check.db"
        with sqlite3.connect(probe_db) as connection:
            stamp = str(time.time())
            connection.execute("CREATE TABLE IF NOT EXISTS probe (k TEXT PRIMARY KEY, v TEXT)")
            connection.execute("INSERT OR REPLACE INTO probe VALUES ('written', ?)", (stamp,))
            (read_back,) = connection.execute("SELECT v FROM probe WHERE k = 'written'").fetchone()
            # JSON functions are used by MLflow's and Feast's SQLite stores.
            (json_ok,) = connection.execute("SELECT json_valid('{\"a\": 1}')").fetchone()
        probe_db.unlink()
        if read_back != stamp:
            return StageResult(StageStatus.FAILED, f"SQLite at {probe_db} lost a write")
        if not json_ok:
            return StageResult(StageStatus.FAILED, "SQLite lacks the JSON1 functions")
        return StageResult(
            StageStatus.OK,
            f"{context.workdir} ready ({', '.join(WORKSPACE_LAYOUT)})",
            {"sqlite": sqlite3.sqlite_version, "workdir": str(context.workdir.resolve())},
        )


class MarketplaceDataStage:
    """Generates the default synthetic marketplace and checks it against its contracts."""

    name = "marketplace data"
    description = "synthetic GetIt marketplace generated and validated against the data contracts"

    def __init__(self, config: MarketplaceConfig | None = None) -> None:
        self.config = config or DEMO_MARKETPLACE

    def run(self, context: DemoContext) -> StageResult:
        from getit_ml.data.generator import generate
        from getit_ml.data.validation import render_report, validate_dataset

        out = marketplace_dir(context.workdir)
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
            f"{summary.rows['customers']:,} customers, {summary.rows['events']:,} events, "
            f"{summary.rows['orders']:,} orders, fraud {summary.fraud_rate:.2%} of payments; "
            f"{validation.rows_in:,} rows valid against the contracts → {out}",
            details,
        )


class FeatureStoreStage:
    """Builds the offline features, applies the Feast repository, materializes, reads online."""

    name = "feature store"
    description = "offline features built, Feast repo applied and materialized, one vector read"

    def run(self, context: DemoContext) -> StageResult:
        import pyarrow.dataset as ds

        from getit_ml.features.context import CHECKOUT_REQUEST_FIELDS
        from getit_ml.features.store import build_feature_store, online_features
        from getit_ml.orchestration import output_to
        from getit_ml.training.dataset import fraud_entity_frame

        root = context.workdir / "features"
        if root.exists():  # the demo owns this folder: a re-run starts from a clean slate
            shutil.rmtree(root)
        market = marketplace_dir(context.workdir)
        # Feast prints materialization progress bars: they go to a log, the screen is the
        # summary's.
        with output_to(context.workdir / "features.log"):
            store, rows = build_feature_store(context.settings, market, root)
        payments = ds.dataset(market / "payments", partitioning="hive").to_table().to_pandas()
        # The customer with the most payments, scored at their last payment's checkout.
        entities = fraud_entity_frame(payments)
        busiest = int(entities["customer_id"].value_counts().index[0])
        last = entities[entities["customer_id"] == busiest].iloc[-1]
        request_fields = ("customer_id", "device_id", *CHECKOUT_REQUEST_FIELDS)
        request: dict[str, Any] = {
            name: value.item() if hasattr(value, "item") else value
            for name, value in zip(request_fields, last[list(request_fields)], strict=True)
        }
        vector = online_features(store, "fraud_scoring_v1", [request])
        shown = ("orders_30d", "cod_share_90d", "payments_30d", "device_customers_30d",
                 "days_to_eid_ul_fitr", "amount_vs_avg_30d", "is_new_device")  # fmt: skip
        details = {
            name: str(vector.values[name].iloc[0]) for name in shown if name in vector.values
        }
        details.update({f"rows {name}": f"{count:,}" for name, count in rows.items()})
        n_features = vector.missing.shape[1]
        return StageResult(
            StageStatus.OK,
            f"{sum(rows.values()):,} offline rows; fraud_scoring_v1 online for customer "
            f"{busiest}: {n_features} features, {1 - vector.missing_share:.0%} present "
            f"({', '.join(f'{k}={v}' for k, v in list(details.items())[:4])})",
            details,
        )


class TrainingPipelineStage:
    """Runs the fraud-training pipeline with kfp.local and reports the registry's decision."""

    name = "training pipeline"
    description = (
        "kfp.local: validate → features → training set → Optuna → XGBoost → evaluation → "
        "MLflow (champion only if better)"
    )

    def run(self, context: DemoContext) -> StageResult:
        from getit_ml.errors import UserError
        from getit_ml.orchestration import pipeline_arguments, project_root, run_local
        from getit_ml.registry.mlflow_registry import RegistryConfig, list_versions
        from getit_ml.training.steps import read_evaluation

        workdir = context.workdir.resolve()
        # The demo is the embedded default whatever the environment says: its registry, study
        # and run outputs all live in the working directory.
        settings = context.settings.model_copy(update={"home": workdir})
        registry = RegistryConfig.embedded(workdir)
        try:
            root = project_root()
        except UserError:
            root = project_root(context.settings.feature_repo)
        overrides = {"n_trials": DEMO_TRIALS, "tracking_uri": registry.tracking_uri}
        log_file = workdir / "pipelines" / "fraud-training.log"
        log_file.unlink(missing_ok=True)
        try:
            arguments = pipeline_arguments(settings, marketplace_dir(workdir), root, overrides)
            run = run_local(
                "fraud",
                settings,
                arguments,
                root=root,
                pipeline_root=workdir / "pipelines",
                log_file=log_file,
            )
        except UserError as error:
            return StageResult(StageStatus.FAILED, str(error))
        version = str(run.output)
        info = next(v for v in list_versions(registry, "fraud") if v.version == version)
        found = sorted(run.pipeline_root.rglob("evaluate-model/evaluation"))
        if len(found) != 1:
            return StageResult(StageStatus.FAILED, f"no evaluation output in {run.pipeline_root}")
        evaluation = read_evaluation(found[0])
        metrics = evaluation["metrics"]
        decision = info.tags.get("getit.promotion_reason", "")
        details = {
            "version": version,
            "aliases": ", ".join(info.aliases),
            "decision": decision,
            "test AUPRC": f"{metrics['test_auprc']:.4f}",
            "test ROC-AUC": f"{metrics['test_roc_auc']:.4f}",
            "recall at 1% reviewed": f"{metrics['test_recall_at_review_rate']:.3f}",
            "expected cost (test)": f"{metrics['test_expected_cost_bdt']:,.0f} BDT of "
            f"{metrics['test_cost_without_model_bdt']:,.0f} BDT without the model",
        }
        for item in evaluation.get("per_pattern", []):
            details[f"AUPRC {item['pattern']}"] = f"{item['auprc']:.3f} ({item['positives']} fraud)"
        details["MLflow UI"] = f"mlflow ui --backend-store-uri {registry.tracking_uri}"
        details["steps' log"] = str(log_file)
        champion = "champion" in info.aliases
        return StageResult(
            StageStatus.OK,
            f"fraud version {version} registered{' as champion' if champion else ''} in "
            f"{run.seconds:.0f} s: test AUPRC {metrics['test_auprc']:.4f}, ROC-AUC "
            f"{metrics['test_roc_auc']:.4f}; {decision}",
            details,
        )


def marketplace_dir(workdir: Path) -> Path:
    """Where the demo keeps its generated marketplace."""
    return workdir / "data" / "marketplace"


def default_stages() -> list[Stage]:
    """The demo's stages, in data-flow order. Later layers append theirs here."""
    # Imported here: those modules import this one (inside their stages' run methods).
    from getit_ml.monitoring.demo_stage import MonitoringStage
    from getit_ml.serving.demo_stage import ServingStage

    return [
        PlatformEnvironmentStage(),
        MonitoringEnvironmentStage(),
        EmbeddedBackendsStage(),
        MarketplaceDataStage(),
        FeatureStoreStage(),
        TrainingPipelineStage(),
        ServingStage(),
        MonitoringStage(),
    ]


def run_demo(
    stages: Sequence[Stage],
    context: DemoContext,
    on_start: Callable[[Stage], None] | None = None,
    on_finish: Callable[[Stage, StageOutcome], None] | None = None,
) -> DemoReport:
    """Run ``stages`` in order; after a failure the remaining stages are reported NOT_RUN."""
    context.workdir.mkdir(parents=True, exist_ok=True)
    outcomes: list[StageOutcome] = []
    failed = False
    for stage in stages:
        if failed:
            result = StageResult(StageStatus.NOT_RUN, "skipped: an earlier stage failed")
            outcome = StageOutcome(stage.name, stage.description, result, 0.0)
        else:
            if on_start is not None:
                on_start(stage)
            started = time.perf_counter()
            result = stage.run(context)
            outcome = StageOutcome(
                stage.name, stage.description, result, time.perf_counter() - started
            )
            failed = result.status is not StageStatus.OK
            logger.debug("stage %s: %s (%s)", stage.name, result.status, result.summary)
        outcomes.append(outcome)
        if on_finish is not None:
            on_finish(stage, outcome)
    return DemoReport(outcomes)
