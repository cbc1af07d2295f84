"""`getit-ml monitor explainer|drift`: the command line that starts a sidecar (platform env)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from getit_ml.cli.monitor import app
from getit_ml.errors import UserError
from getit_ml.monitoring.sidecars import SIDECARS, sidecar_command
from getit_ml.processes import repository_root

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[3]


def _command(output: str) -> list[str]:
    return shlex.split(output.strip().splitlines()[-1])


def test_explainer_runs_the_sidecar_module_with_the_monitoring_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = tmp_path / "python"
    python.touch()
    monkeypatch.setenv("GETIT_ML_MONITORING_PYTHON", str(python))
    result = runner.invoke(
        app,
        ["explainer", "--reference-dir", "ref", "--predictor-url", "http://127.0.0.1:9000",
         "--model-name", "churn", "--port", "9100", "--dry-run", "--methods", "anchor",
         "--threshold", "0.3"],
        env={"COLUMNS": "400"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    command = _command(result.output)
    assert command[:3] == [str(python), "-m", "inference_services.explainer"]
    flags = dict(zip(command[3::2], command[4::2], strict=False))
    assert flags["--model_name"] == "churn"
    assert flags["--http_port"] == "9100"
    assert flags["--predictor_url"] == "http://127.0.0.1:9000"
    assert Path(flags["--reference_dir"]).is_absolute()  # the sidecar runs in the repo root
    # Options the CLI does not know pass through to the sidecar's own flags.
    assert flags["--methods"] == "anchor"
    assert flags["--threshold"] == "0.3"


def test_drift_passes_the_alert_url_and_extra_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = tmp_path / "python"
    python.touch()
    monkeypatch.setenv("GETIT_ML_MONITORING_PYTHON", str(python))
    result = runner.invoke(
        app,
        ["drift", "--reference-dir", str(tmp_path), "--model-name", "fraud",
         "--alert-url", "http://hooks/x", "--dry-run", "--window_size", "200"],
        env={"COLUMNS": "400"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    command = _command(result.output)
    assert command[2] == "inference_services.drift_detector"
    flags = dict(zip(command[3::2], command[4::2], strict=False))
    assert flags["--alert_url"] == "http://hooks/x"
    assert flags["--window_size"] == "200"
    assert flags["--http_port"] == "8082"


def test_a_missing_monitoring_interpreter_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GETIT_ML_MONITORING_PYTHON", str(tmp_path / "nowhere" / "python"))
    result = runner.invoke(app, ["drift", "--reference-dir", str(tmp_path), "--model-name", "x"])
    assert result.exit_code == 2
    assert "monitoring interpreter" in result.output
    assert "make setup" in result.output


def test_the_sidecar_runs_in_the_repository_root_and_its_status_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real child process: a stand-in interpreter records its arguments, working directory
    and PYTHONPATH, and exits with status 3."""
    record = tmp_path / "record.txt"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\n{{ echo "$@"; pwd; echo "$PYTHONPATH"; }} > {record}\nexit 3\n')
    python.chmod(0o755)
    monkeypatch.setenv("GETIT_ML_MONITORING_PYTHON", str(python))
    result = runner.invoke(
        app, ["drift", "--reference-dir", str(tmp_path), "--model-name", "fraud", "--outlier",
              "none"]
    )  # fmt: skip
    assert result.exit_code == 3
    arguments, cwd, pythonpath = record.read_text().splitlines()[:3]
    assert arguments.startswith("-m inference_services.drift_detector ")
    assert arguments.endswith("--outlier none")
    assert Path(cwd).resolve() == ROOT
    assert str(ROOT) in pythonpath.split(":")


def test_sidecar_command_refuses_an_unknown_sidecar() -> None:
    with pytest.raises(UserError, match="unknown sidecar"):
        sidecar_command(Path("python"), "profiler", [])


def test_the_sidecar_packages_exist_in_the_checkout() -> None:
    root = repository_root()
    assert root == ROOT
    for package in SIDECARS.values():
        assert (root / "inference_services" / package / "__main__.py").is_file()
