"""`getit-ml recs evaluate`, driven the way a user drives it, on a small imported folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from getit_ml.cli.main import app

runner = CliRunner()


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    """An interactions folder as the import writes it: two blocks of users and items."""
    rng = np.random.default_rng(1)
    users, items = [], []
    for user in range(30):
        low = 0 if user < 15 else 20
        chosen = rng.choice(np.arange(low, low + 20), size=8, replace=False)
        users += [user + 100] * 8
        items += (chosen + 500).tolist()
    times = (np.arange(len(users)) * 60_000_000).astype(np.int64)
    table = pa.table(
        {
            "customer_id": pa.array(users, pa.int64()),
            "product_id": pa.array(items, pa.int64()),
            "interaction_ts": pa.array(times).cast(pa.timestamp("us", tz="UTC")),
            "rating": pa.nulls(len(users), pa.float64()),
            "event_type": ["view"] * len(users),
        }
    )
    folder = tmp_path / "imported"
    folder.mkdir()
    pq.write_table(table, folder / "interactions.parquet")
    return folder


def _result(output: str) -> dict[str, str]:
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return dict(re.findall(r"(\S+)=(\S+)", line))


def test_evaluate_prints_the_table_and_a_result_line(imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    result = runner.invoke(
        app,
        ["recs", "evaluate", "--interactions", str(imported), "--models", "ease", "--trials",
         "1", "--k", "5", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "nDCG@5" in result.output
    assert "popularity" in result.output
    fields = _result(result.output)
    assert fields["protocol"] == "stratified"
    assert fields["best_model"] in {"popularity", "ease"}
    assert float(fields["ease_ndcg_at_5"]) > float(fields["popularity_ndcg_at_5"])
    document = json.loads(out.read_text())
    assert [m["model"] for m in document["models"]] == ["popularity", "ease"]
    assert document["test_split"]["test_users"] == 30


def test_leave_last_out_with_sampled_negatives_says_so(imported: Path) -> None:
    result = runner.invoke(
        app,
        ["recs", "evaluate", "--interactions", str(imported), "--protocol", "leave-last-out",
         "--models", "popularity", "--trials", "0", "--negatives", "10"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 + 10 negatives" in result.output
    fields = _result(result.output)
    assert 0.0 <= float(fields["sampled_hr_at_10"]) <= 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--protocol", "random"], "--protocol must be one of"),
        (["--negatives", "5"], "leave-last-out"),
        (["--models", "nope"], "unknown recommender"),
    ],
)
def test_bad_requests_are_one_line_errors(imported: Path, extra: list[str], message: str) -> None:
    result = runner.invoke(app, ["recs", "evaluate", "--interactions", str(imported), *extra])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_folder_without_interactions_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["recs", "evaluate", "--interactions", str(tmp_path)])
    assert result.exit_code == 2
    assert "interactions.parquet" in result.output
