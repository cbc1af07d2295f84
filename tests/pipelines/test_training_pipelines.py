"""The training pipelines, one per family from one template: the compiled YAML of each, a full
local run (fraud, small), and a run on bad data. The churn pipeline runs end to end in the
demo's test."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from getit_ml.cli.main import app
from getit_ml.data.generator import MarketplaceConfig, generate
from getit_ml.errors import UserError
from getit_ml.families import family_names, get_family
from getit_ml.orchestration import (
    compile_pipeline,
    pipeline_arguments,
    project_root,
    run_local,
    spec,
)
from getit_ml.registry.mlflow_registry import RegistryConfig, list_versions, resolve
from getit_ml.settings import load_settings

ROOT = project_root(Path(__file__))
STEPS = ("validate-data", "engineer-features", "build-training-set", "tune-hyperparameters",
         "train-model", "evaluate-model", "export-reference-data", "register-model")  # fmt: skip
#: Steps that run the family's trainer: the family's name is a constant input of each.
FAMILY_STEPS = ("build-training-set", "tune-hyperparameters", "train-model", "evaluate-model",
                "export-reference-data", "register-model")  # fmt: skip


def test_one_compiled_pipeline_per_family() -> None:
    compiled = sorted(p.name for p in (ROOT / "pipelines" / "compiled").glob("*.yaml"))
    assert compiled == sorted(f"{name}_training.yaml" for name in family_names())
    assert {"fraud", "churn"} <= set(family_names())


@pytest.mark.parametrize("family", family_names())
def test_checked_in_yaml_is_what_the_pipeline_compiles_to(family: str, tmp_path: Path) -> None:
    fresh = compile_pipeline(family, ROOT, tmp_path / f"{family}.yaml")
    assert fresh.read_text() == (ROOT / spec(family).compiled).read_text(), (
        f"{spec(family).compiled} is stale: run `getit-ml pipeline compile`"
    )


@pytest.mark.parametrize("family", family_names())
def test_compiled_pipeline_shape(family: str) -> None:
    ir = yaml.safe_load((ROOT / spec(family).compiled).read_text())
    assert ir["pipelineInfo"]["name"] == f"{family}-training"
    tasks = ir["root"]["dag"]["tasks"]
    assert set(tasks) == set(STEPS)
    # Every step that reads the data takes the snapshot id: the cache key changes with the data.
    for step in ("validate-data", "engineer-features", "build-training-set",
                 "tune-hyperparameters", "register-model"):  # fmt: skip
        parameters = tasks[step]["inputs"]["parameters"]
        assert parameters["snapshot_id"]["componentInputParameter"] == "snapshot_id"
    # The family is baked into the steps, not a parameter a run could change.
    for step in FAMILY_STEPS:
        constant = tasks[step]["inputs"]["parameters"]["family"]["runtimeValue"]["constant"]
        assert constant == family
    assert "family" not in ir["root"]["inputDefinitions"]["parameters"]
    defaults = ir["root"]["inputDefinitions"]["parameters"]
    expected = get_family(family).pipeline_defaults
    for name, value in expected.items():
        assert defaults[name]["defaultValue"] == value, name
    assert defaults["model_name"]["defaultValue"] == family
    assert tasks["register-model"]["cachingOptions"] == {}  # caching off for the registry write
    assert tasks["tune-hyperparameters"]["cachingOptions"] == {"enableCache": True}
    # No DAG condition anywhere: promotion is decided in register_model (kfp PR #13313).
    assert all("triggerPolicy" not in task for task in tasks.values())
    executors = ir["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {"getit-ml/components:0.1.0"}


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pipeline") / "marketplace"
    # Small (the full-size run is the demo's): about 6,000 payments, a few dozen frauds.
    generate(MarketplaceConfig(customers=20_000, days=45, seed=3), out)
    return out


@pytest.mark.slow
def test_local_run_ends_with_a_registered_champion(
    market: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GETIT_ML_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(
        app,
        [
            "pipeline",
            "run",
            "fraud",
            "--local",
            "--data-dir",
            str(market),
            "-p",
            "n_trials=2",
            "-p",
            "reference_rows=1000",
        ],
    )
    assert result.exit_code == 0, result.output
    config = RegistryConfig.embedded(tmp_path / "home")
    versions = list_versions(config, "fraud")
    assert [v.version for v in versions] == ["1"]
    assert {"champion", "challenger"} <= set(versions[0].aliases)
    assert versions[0].metric_name == "test_auprc"  # the family's promotion metric
    assert versions[0].metric is not None
    assert versions[0].metric > 0.5
    champion = resolve(config, "models:/fraud@champion")
    assert (champion.path / "model.json").is_file()
    runs = list((tmp_path / "home" / "pipelines").iterdir())
    assert len(runs) == 1
    assert versions[0].tags["getit.pipeline_run_id"].strip()  # kfp.local's job id
    # The evaluation's plots travel with the run in MLflow.
    run_artifacts = Path(champion.path).parent / "evaluation"
    assert (run_artifacts / "pr.png").is_file()
    assert (run_artifacts / "calibration.html").is_file()
    # The reference data for the sidecars is among the run's outputs.
    references = list(runs[0].rglob("export-reference-data/reference/reference.parquet"))
    assert len(references) == 1


def test_bad_data_stops_the_pipeline_at_validate_data(tmp_path: Path) -> None:
    market = tmp_path / "marketplace"
    generate(MarketplaceConfig(customers=300, days=3), market)
    products = pd.read_parquet(market / "products.parquet")
    products.loc[0, "price_bdt"] = -5.0
    products.to_parquet(market / "products.parquet", index=False)
    settings = load_settings(home=tmp_path / "home")
    arguments = pipeline_arguments(settings, market, ROOT, {"n_trials": 1})
    with pytest.raises(UserError, match="validate-data") as failure:
        run_local("fraud", settings, arguments, root=ROOT)
    # The contract report is in the error: table, column and rule of the broken row.
    assert "products" in str(failure.value)
    assert "price_bdt" in str(failure.value)
    outputs = next((tmp_path / "home" / "pipelines").iterdir())
    assert list(outputs.rglob("validate-data")), "validate_data did not run"
    assert not list(outputs.rglob("engineer-features")), "a step ran after the failed validation"
    assert not (tmp_path / "home" / "mlflow" / "mlflow.db").exists()
