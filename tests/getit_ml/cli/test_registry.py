"""`getit-ml registry ...` driven as a user would, on a temporary SQLite registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from getit_ml.cli.registry import app
from getit_ml.registry.mlflow_registry import (
    CHAMPION,
    Lineage,
    RegistryConfig,
    client,
    promote_if_better,
    register_model_version,
)

runner = CliRunner()
LINEAGE = Lineage("snap-1", "fraud_v1", "local-1", "abc1234")


@pytest.fixture(scope="module")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with `fraud` versions 1-3 (test_auprc 0.90, 0.93, 0.80); version 1 is champion.
    Built once: a fresh MLflow database takes seconds to create."""
    home = tmp_path_factory.mktemp("registry-home")
    config = RegistryConfig.embedded(home)
    model_dir = home / "model-src"
    model_dir.mkdir()
    (model_dir / "model.txt").write_text("a tiny model")
    for auprc in (0.90, 0.93, 0.80):
        register_model_version(
            config, name="fraud", model_dir=model_dir, metrics={"test_auprc": auprc},
            params={}, lineage=LINEAGE, experiment="fraud-training",
        )  # fmt: skip
    promote_if_better(config, "fraud", "1")
    return home


@pytest.fixture
def home(tmp_path: Path, template_home: Path) -> Path:
    # Artefact paths are absolute, so the copy's versions still point at the template's files:
    # fine for list/promote/rollback, which only touch the database.
    copy = tmp_path / "home"
    shutil.copytree(template_home, copy)
    return copy


def _uri(home: Path) -> list[str]:
    return ["--tracking-uri", RegistryConfig.embedded(home).tracking_uri]


def _champion(home: Path) -> str:
    mlflow_client = client(RegistryConfig.embedded(home))
    return str(mlflow_client.get_model_version_by_alias("fraud", CHAMPION).version)


def test_list_shows_versions_aliases_and_metrics(home: Path) -> None:
    result = runner.invoke(app, ["list", "fraud", *_uri(home)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "fraud: 3 version(s)" in result.output
    assert "champion" in result.output
    assert "challenger" in result.output
    for value in ("0.9000", "0.9300", "0.8000"):
        assert value in result.output
    assert "no current champion" in result.output


def test_list_defaults_to_the_registry_under_getit_ml_home(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GETIT_ML_HOME", str(home))
    result = runner.invoke(app, ["list", "fraud", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "fraud: 1 version(s)" in result.output


def test_promote_then_rollback(home: Path) -> None:
    promoted = runner.invoke(app, ["promote", "fraud", "3", *_uri(home), "--reason", "hotfix"])
    assert promoted.exit_code == 0, promoted.output
    assert "version 3 is now champion" in promoted.output
    assert _champion(home) == "3"

    rolled = runner.invoke(app, ["rollback", "fraud", *_uri(home)])
    assert rolled.exit_code == 0, rolled.output
    assert "champion is version 1 again" in rolled.output
    assert _champion(home) == "1"


def test_promote_if_better(home: Path) -> None:
    worse = runner.invoke(app, ["promote", "fraud", "3", "--if-better", *_uri(home)])
    assert worse.exit_code == 1, worse.output
    assert "not promoted" in worse.output
    assert "below the margin" in worse.output
    better = runner.invoke(
        app, ["promote", "fraud", "2", "--if-better", "--margin", "0.01", *_uri(home)]
    )
    assert better.exit_code == 0, better.output
    assert _champion(home) == "2"


def test_user_mistakes_are_one_line_errors(home: Path, tmp_path: Path) -> None:
    cases = [
        (["list", "churn", *_uri(home)], "no registered model named 'churn'"),
        (["promote", "fraud", "9", *_uri(home)], "has no version 9"),
        (["rollback", "fraud", *_uri(home)], "no previous champion"),
        (["list", "fraud", *_uri(tmp_path / "empty")], "no MLflow registry"),
        (["list", "bad name'", *_uri(home)], "invalid model name"),
    ]
    for args, expected in cases:
        result = runner.invoke(app, args, env={"COLUMNS": "300"})
        assert result.exit_code == 2, (args, result.output)
        assert expected in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
