"""Loading, parameterising and locating the Kubeflow pipelines (no pipeline is run here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from getit_ml.cli.main import app
from getit_ml.cli.pipeline import parse_parameters
from getit_ml.errors import UserError
from getit_ml.orchestration import (
    _environment,
    code_version,
    load_pipeline,
    pipeline_arguments,
    project_root,
    spec,
)
from getit_ml.settings import child_environment, load_settings

ROOT = project_root(Path(__file__))


def test_project_root_is_found_from_below_and_refused_elsewhere(tmp_path: Path) -> None:
    assert project_root(ROOT / "src" / "getit_ml") == ROOT
    with pytest.raises(UserError, match="no getit-ml project"):
        project_root(tmp_path)


def test_unknown_pipeline_names_the_known_ones() -> None:
    with pytest.raises(UserError, match="known: churn, fraud"):
        spec("recommendations")
    assert spec("churn").compiled == "pipelines/compiled/churn_training.yaml"


def test_pipeline_is_loaded_by_path() -> None:
    pipeline = load_pipeline("fraud", ROOT)
    assert pipeline.name == "fraud-training"


def test_parameters_are_typed_like_their_defaults() -> None:
    known = {"n_trials": 20, "promotion_margin": 0.005, "model_name": "fraud"}
    parsed = parse_parameters(["n_trials=5", "promotion_margin=0.01", "model_name=fraud_v2"], known)
    assert parsed == {"n_trials": 5, "promotion_margin": 0.01, "model_name": "fraud_v2"}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("n_trials", "expected NAME=VALUE"),
        ("=3", "expected NAME=VALUE"),
        ("trials=3", "no such pipeline parameter"),
        ("n_trials=many", "is not a int"),
    ],
)
def test_bad_parameters_are_refused(pair: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_parameters([pair], {"n_trials": 20})


def test_arguments_carry_the_snapshot_code_version_and_promotion_rule(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "payments.parquet").write_bytes(b"one")
    settings = load_settings(promotion_margin=0.02)
    first = pipeline_arguments(settings, data, ROOT, {"n_trials": 3})
    assert first["snapshot_id"].startswith("sha256:")
    assert first["promotion_margin"] == 0.02
    assert first["n_trials"] == 3
    assert first["data_dir"] == str(data.resolve())
    (data / "payments.parquet").write_bytes(b"two")
    assert pipeline_arguments(settings, data, ROOT)["snapshot_id"] != first["snapshot_id"]


def test_code_version_is_the_commit_or_the_package_version(tmp_path: Path) -> None:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    if head:
        assert code_version(ROOT).removesuffix("+dirty") == head
    assert code_version(tmp_path) == __import__("getit_ml").__version__


def test_child_environment_reproduces_the_settings(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", promotion_margin=0.03)
    variables = child_environment(settings)
    assert variables["GETIT_ML_HOME"] == str((tmp_path / "home").resolve())
    assert "GETIT_ML_MLFLOW_TRACKING_URI" not in variables  # unset stays unset
    with _environment(variables):
        again = load_settings()
    assert again.home == (tmp_path / "home").resolve()
    assert again.promotion_margin == 0.03
    assert "GETIT_ML_PROMOTION_MARGIN" not in os.environ  # restored afterwards


def test_cli_refuses_a_run_without_local_and_a_missing_data_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["pipeline", "run", "fraud"])
    assert result.exit_code == 2
    assert "add --local" in result.output
    result = runner.invoke(app, ["pipeline", "run", "fraud", "--local", "--data-dir",
                                 str(tmp_path / "nowhere")])  # fmt: skip
    assert result.exit_code == 2
    assert "does not exist" in result.output
    result = runner.invoke(app, ["pipeline", "run", "nope", "--local"])
    assert result.exit_code == 2
    assert "unknown pipeline 'nope'; known: churn, fraud" in result.output


def test_cli_submit_reports_an_unreachable_host(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.parquet").write_bytes(b"x")
    result = CliRunner().invoke(app, ["pipeline", "submit", "fraud", "--host",
                                      "http://127.0.0.1:9", "--data-dir", str(data)])  # fmt: skip
    assert result.exit_code == 2
    assert "cannot submit to http://127.0.0.1:9" in result.output


def test_a_local_run_names_the_feature_store_its_engineer_features_step_built(
    tmp_path: Path,
) -> None:
    from getit_ml.orchestration import LocalRun

    run = LocalRun("local-1", tmp_path, "3", 1.0)
    assert run.feature_store is None  # no step wrote one
    store = tmp_path / "fraud-training-2026" / "engineer-features" / "feature_store"
    (store / "offline").mkdir(parents=True)
    assert run.feature_store is None  # a folder without the store's data is not a store
    (store / "data").mkdir()
    assert run.feature_store == store


def test_dict_defaults_in_the_compiled_header_are_written_in_sorted_order() -> None:
    """kfp renders a dict default from a protobuf Struct in an order that changes per process."""
    from getit_ml.orchestration import _sorted_header_defaults

    text = (
        "# Inputs:\n"
        "#    options: dict [Default: {'b': 1.0, 'a': {'y': 2, 'x': 1}}]\n"
        "#    name: str [Default: 'x']\n"
        "root:\n"
        "#    options: dict [Default: {'b': 1.0, 'a': 2}]\n"
    )
    assert _sorted_header_defaults(text) == (
        "# Inputs:\n"
        "#    options: dict [Default: {'a': {'y': 2, 'x': 1}, 'b': 1.0}]\n"
        "#    name: str [Default: 'x']\n"
        "root:\n"
        "#    options: dict [Default: {'b': 1.0, 'a': 2}]\n"  # below the header: untouched
    )
