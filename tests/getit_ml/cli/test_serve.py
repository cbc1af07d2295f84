"""``getit-ml serve FAMILY``: its options, and a user's mistake as one line with exit status 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from getit_ml.cli.main import app

runner = CliRunner()


def test_help_lists_the_options() -> None:
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in (
        "--with-transformer",
        "--model",
        "--model-dir",
        "--expected-sha256",
        "--allow-unverified",
        "--http-port",
        "--grpc-port",
    ):
        assert option in result.output


def test_model_and_model_dir_together_is_a_user_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["serve", "fraud", "--model", "models:/fraud@champion", "--model-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "not both" in result.output
    assert "Traceback" not in result.output


def test_a_model_folder_that_does_not_load_is_reported(tmp_path: Path) -> None:
    """The scorer process exits at once; the command says so instead of waiting."""
    result = runner.invoke(
        app, ["serve", "churn", "--model-dir", str(tmp_path / "missing"), "--allow-unverified",
              "--http-port", "0", "--grpc-port", "0"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "exited with status 2" in result.output


def test_a_model_folder_needs_its_digest_or_an_explicit_waiver(tmp_path: Path) -> None:
    """Nothing is started: the command refuses before spawning a server."""
    result = runner.invoke(app, ["serve", "fraud", "--model-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--expected-sha256" in result.output
    assert "--allow-unverified" in result.output
    assert "Traceback" not in result.output
    both = runner.invoke(
        app,
        ["serve", "fraud", "--model-dir", str(tmp_path), "--expected-sha256", "ab" * 32,
         "--allow-unverified"],
    )  # fmt: skip
    assert both.exit_code == 2
    assert "not both" in both.output
    stray = runner.invoke(app, ["serve", "fraud", "--expected-sha256", "ab" * 32])
    assert stray.exit_code == 2
    assert "go with --model-dir" in stray.output


def test_an_unknown_family_is_a_user_error() -> None:
    result = runner.invoke(app, ["serve", "recommendation"])
    assert result.exit_code == 2
    assert "unknown model family 'recommendation'" in result.output
    assert "churn, fraud" in result.output
