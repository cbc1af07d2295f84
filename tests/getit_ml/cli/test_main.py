"""The `getit-ml` command line, driven the way a user drives it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from getit_ml.cli.main import app
from getit_ml.families import family_names
from getit_ml.registry.mlflow_registry import RegistryConfig, resolve

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "settings", "version"):
        assert command in result.output


@pytest.mark.parametrize("command", ["demo", "settings", "version"])
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_console_script_is_installed() -> None:
    script = shutil.which("getit-ml", path=str(Path(sys.executable).parent))
    assert script is not None, "getit-ml is not installed in this environment"
    completed = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "demo" in completed.stdout


def test_settings_lists_variables() -> None:
    result = runner.invoke(app, ["settings"], env={"GETIT_ML_HOME": "/srv/getit"})
    assert result.exit_code == 0
    assert "GETIT_ML_REDIS_URL" in result.output
    assert "/srv/getit" in result.output


def test_bad_setting_is_an_error_line_not_a_traceback() -> None:
    result = runner.invoke(app, ["settings"], env={"GETIT_ML_LOG_LEVEL": "LOUD"})
    assert result.exit_code == 2
    assert "GETIT_ML_LOG_LEVEL" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_bad_log_level_option_is_an_error_line() -> None:
    result = runner.invoke(app, ["--log-level", "chatty", "version"])
    assert result.exit_code == 2
    assert "GETIT_ML_LOG_LEVEL" in result.output


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    assert "demo summary" in result.output
    for stage in ("platform environment", "monitoring environment", "embedded backends"):
        assert stage in result.output
    # Every family's path: data, features, training, serving, monitoring, all ok.
    for family in family_names():
        for layer in ("training", "serving", "monitoring"):
            assert re.search(rf"ok {layer}: {family} \(", result.output), (family, layer)
    # The main job ends with a champion of every family in the embedded registry, plots beside.
    config = RegistryConfig.embedded(workdir)
    for family in family_names():
        champion = resolve(config, f"models:/{family}@champion")
        assert (champion.path / "model.json").is_file()
    assert len(list((workdir / "mlflow" / "artifacts").rglob("evaluation/pr.png"))) >= 2


def test_demo_failure_exits_nonzero_and_says_why(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["demo", "--workdir", str(tmp_path)],
        env={"GETIT_ML_MONITORING_PYTHON": str(tmp_path / "missing-python")},
    )
    assert result.exit_code == 1
    assert "make setup" in result.output
    assert "not run" in result.output
