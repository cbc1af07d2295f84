"""register_model as a plain function and as a kfp.local task."""

from __future__ import annotations

import shutil
from pathlib import Path

from kfp.dsl import Artifact, Dataset, Markdown, Model

from components.conftest import TrainingRun, run_locally
from components.register_model.component import register_model
from getit_ml.registry.mlflow_registry import RegistryConfig, list_versions, resolve


def _register(
    training_run: TrainingRun, tmp_path: Path, tracking_uri: str, model: Path, margin: float = 0.005
) -> tuple[str, Markdown]:
    decision = Markdown(uri=str(tmp_path / f"decision-{model.name}.md"))
    version = register_model.python_func(
        family="fraud",
        model=Model(uri=str(model), metadata={"framework": "xgboost"}),
        evaluation=Artifact(uri=str(training_run.evaluation)),
        training_set=Dataset(uri=str(training_run.training_set)),
        snapshot_id=training_run.snapshot,
        pipeline_run_id="local-test-run",
        decision=decision,
        code_version="abc123",
        tracking_uri=tracking_uri,
        promotion_margin=margin,
    )
    return version, decision


def test_first_version_becomes_champion_then_an_equal_one_does_not(
    training_run: TrainingRun, tmp_path: Path
) -> None:
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = RegistryConfig.from_uri(tracking_uri)
    first, decision = _register(training_run, tmp_path, tracking_uri, training_run.model)
    assert first == "1"
    assert decision.metadata["promoted"] is True
    assert "no current champion" in Path(decision.path).read_text()
    # The same model again: re-scored on the same test set it ties, below the margin.
    copy = tmp_path / "same-model"
    shutil.copytree(training_run.model, copy)
    second, decision = _register(training_run, tmp_path, tracking_uri, copy)
    assert second == "2"
    assert decision.metadata["promoted"] is False
    text = Path(decision.path).read_text()
    assert "below the margin 0.005" in text
    assert "version 1 re-scored on this test set" in text
    versions = {v.version: v for v in list_versions(config, "fraud")}
    assert "champion" in versions["1"].aliases
    assert "challenger" in versions["2"].aliases
    tags = versions["2"].tags
    assert tags["getit.data_snapshot"] == training_run.snapshot
    assert tags["getit.feature_service"] == "fraud_scoring_v1"
    assert tags["getit.pipeline_run_id"] == "local-test-run"
    assert tags["getit.code_version"] == "abc123"
    assert tags["getit.signature"] == "present"
    resolved = resolve(config, "models:/fraud@champion")  # checks the sha256 too
    assert (resolved.path / "model.json").is_file()
    # With no margin a tie is enough: the operator's rule is applied as stated.
    third, decision = _register(training_run, tmp_path, tracking_uri, copy, margin=0.0)
    assert decision.metadata["promoted"] is True
    assert third == "3"


def test_runs_as_a_kfp_local_task(training_run: TrainingRun, tmp_path: Path) -> None:
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    outputs = run_locally(
        register_model,
        tmp_path / "kfp",
        {
            "model": (training_run.model, Model),
            "evaluation": (training_run.evaluation, Artifact),
            "training_set": (training_run.training_set, Dataset),
        },
        snapshot_id=training_run.snapshot,
        pipeline_run_id="local-kfp-run",
        tracking_uri=tracking_uri,
    )
    assert "Promoted to champion" in (outputs / "decision").read_text()
    versions = list_versions(RegistryConfig.from_uri(tracking_uri), "fraud")
    assert [v.version for v in versions] == ["1"]
    assert versions[0].tags["getit.pipeline_run_id"] == "local-kfp-run"
