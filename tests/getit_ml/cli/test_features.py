"""`getit-ml features ...` driven as a user would, on the embedded store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from getit_ml.cli.main import app
from getit_ml.features.store import StoreLayout
from tests.getit_ml.features.offline_fixtures import value_of, write_offline

runner = CliRunner()
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _prepared(tmp_path: Path) -> Path:
    root = tmp_path / "features"
    rows = [(5, T0 + timedelta(days=1), 1), (5, T0 + timedelta(days=2), 2)]
    write_offline(StoreLayout(root).offline_dir, {"customer_features": rows, "customer_risk": rows})
    return root


def test_apply_materialize_get(tmp_path: Path) -> None:
    root = _prepared(tmp_path)
    applied = runner.invoke(app, ["features", "apply", "--workdir", str(root)])
    assert applied.exit_code == 0, applied.output
    assert "FeatureView" in applied.output
    done = runner.invoke(
        app,
        ["features", "materialize", "--workdir", str(root), "--start", "2025-03-01",
         "--end", "2025-03-10"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    got = runner.invoke(
        app,
        ["features", "get", "--workdir", str(root), "--entity", "customer_id=5",
         "--entity", "device_id=1", "--request", "amount_bdt=2500", "--request",
         "payment_method=bkash", "--request", "request_ts_us=1741000000000000",
         "--request", "checkout_device_id=1", "--request", "checkout_wallet_account_id=-1"],
    )  # fmt: skip
    assert got.exit_code == 0, got.output
    assert str(value_of(5, 2)) in got.output
    assert "missing" in got.output  # the device and velocity views have nothing for it


def test_incremental_materialization(tmp_path: Path) -> None:
    root = _prepared(tmp_path)
    assert runner.invoke(app, ["features", "apply", "--workdir", str(root)]).exit_code == 0
    result = runner.invoke(
        app, ["features", "materialize", "--workdir", str(root), "--incremental", "--end",
              "2025-03-10T00:00:00"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_user_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    root = _prepared(tmp_path)
    runner.invoke(app, ["features", "apply", "--workdir", str(root)])
    cases = [
        (["features", "materialize", "--workdir", str(root)], "--start"),
        (["features", "materialize", "--workdir", str(root), "--start", "yesterday"], "ISO"),
        (["features", "get", "--workdir", str(root), "--entity", "customer_id"], "NAME=VALUE"),
        (["features", "get", "--workdir", str(root), "--entity", "customer_id=1",
          "--service", "nope"], "unknown feature service"),
        (["features", "apply", "--workdir", str(root), "--profile", "cloud"], "--profile"),
    ]  # fmt: skip
    for args, expected in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert expected in result.output, (args, result.output)
        assert "Traceback" not in result.output
