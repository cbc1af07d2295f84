"""The demo's training stage: a family's pipeline run with kfp.local, the registry's decision."""

from __future__ import annotations

from getit_ml.demo.stages import DemoContext, StageResult, StageStatus
from getit_ml.demo.workspace import data_dir
from getit_ml.families.base import ModelFamily

#: Test figures shown when the family's evaluation has them.
SHOWN = {
    "test_auprc": "test AUPRC",
    "test_roc_auc": "test ROC-AUC",
    "test_recall_at_review_rate": "recall at the review rate",
    "test_brier": "test Brier score",
}


class TrainingPipelineStage:
    """Runs a family's training pipeline with kfp.local and reports the registry's decision."""

    description = (
        "kfp.local: validate → features → training set → Optuna → XGBoost → evaluation → "
        "MLflow (champion only if better)"
    )

    def __init__(self, family: ModelFamily) -> None:
        self.family = family
        self.name = f"training: {family.name}"

    def run(self, context: DemoContext) -> StageResult:
        from getit_ml.errors import UserError
        from getit_ml.orchestration import pipeline_arguments, project_root, run_local
        from getit_ml.registry.mlflow_registry import RegistryConfig, list_versions
        from getit_ml.training.family import read_evaluation

        family = self.family
        workdir = context.workdir.resolve()
        # The demo is the embedded default whatever the environment says: its registry, study
        # and run outputs all live in the working directory.
        settings = context.settings.model_copy(update={"home": workdir})
        registry = RegistryConfig.embedded(workdir)
        try:
            root = project_root()
        except UserError:
            root = project_root(context.settings.feature_repo)
        overrides = {
            "n_trials": family.demo.trials,
            "tracking_uri": registry.tracking_uri,
            **family.demo.pipeline_overrides,
        }
        log_file = workdir / "pipelines" / f"{family.name}-training.log"
        log_file.unlink(missing_ok=True)
        try:
            market = data_dir(workdir, family.demo.population)
            arguments = pipeline_arguments(settings, market, root, overrides)
            run = run_local(
                family.name,
                settings,
                arguments,
                root=root,
                pipeline_root=workdir / "pipelines",
                log_file=log_file,
            )
        except UserError as error:
            return StageResult(StageStatus.FAILED, str(error))
        version = str(run.output)
        info = next(
            v for v in list_versions(registry, family.registered_model) if v.version == version
        )
        found = sorted(run.pipeline_root.rglob("evaluate-model/evaluation"))
        if len(found) != 1:
            return StageResult(StageStatus.FAILED, f"no evaluation output in {run.pipeline_root}")
        evaluation = read_evaluation(found[0])
        metrics = evaluation["metrics"]
        promotion = str(evaluation.get("promotion_metric", ""))
        decision = info.tags.get("getit.promotion_reason", "")
        details = {"version": version, "aliases": ", ".join(info.aliases), "decision": decision}
        details.update(
            {label: f"{metrics[key]:.4f}" for key, label in SHOWN.items() if key in metrics}
        )
        if "test_expected_cost_bdt" in metrics:
            details["expected cost (test)"] = (
                f"{metrics['test_expected_cost_bdt']:,.0f} BDT of "
                f"{metrics['test_cost_without_model_bdt']:,.0f} BDT without the model"
            )
        for item in evaluation.get("per_pattern", []):
            details[f"AUPRC {item['pattern']}"] = f"{item['auprc']:.3f} ({item['positives']})"
        details["MLflow UI"] = f"mlflow ui --backend-store-uri {registry.tracking_uri}"
        details["steps' log"] = str(log_file)
        champion = "champion" in info.aliases
        shown = ", ".join(
            f"{SHOWN[k]} {metrics[k]:.4f}" for k in ("test_auprc", "test_roc_auc") if k in metrics
        )
        return StageResult(
            StageStatus.OK,
            f"{family.name} version {version} registered{' as champion' if champion else ''} "
            f"in {run.seconds:.0f} s: {shown} (promotion on {promotion}); {decision}",
            details,
        )
