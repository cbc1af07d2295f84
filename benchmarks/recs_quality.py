"""Quality of the retrieval models on MovieLens-100k with Microsoft Recommenders' protocol.

The data (``movielens-100k/ratings.csv``: 100,000 ratings of 1,682 movies by 943 users, in the
order of GroupLens' ``u.data``) is read in file order and evaluated by
:func:`getit_ml.training.recs_protocol.evaluate`, the loop ``getit-ml recs evaluate`` runs, with
the protocol of Recommenders' published MovieLens-100k table:

* ``python_stratified_split`` semantics: per user, 75% of the ratings to train and 25% to test,
  seed 42 (reproduced exactly: same draws, same order, hence the same split);
* every test rating relevant (binary relevance), models trained on the binary matrix;
* each user's training items removed from the ranking, k = 10;
* MAP with Recommenders' ``map`` (divided by every relevant item), nDCG@10, precision@10 and
  recall@10 averaged over the 943 test users.

Models, in one run on one split: the popularity baseline, BPR (the ``implicit`` library), and our
best model (``--best``; the registry's defaults unless ``--trials`` asks for Optuna trials on a
validation part carved from the training part by the same stratified split). Published figures
(Recommenders' benchmark table, MovieLens-100k, same protocol): BiVAE nDCG@10 0.4751, MAP 0.1461,
P@10 0.4118, R@10 0.2191; BPR nDCG@10 0.4420; LightGCN 0.4198; SAR 0.3825. The goal: ours
nDCG@10 >= 0.48.

The load average (``os.getloadavg()``) is printed at the start and at the end. Ends with

    RESULT ndcg_at_10=<x> map=<x> precision_at_10=<x> recall_at_10=<x> bpr_ndcg_at_10=<x>
    popularity_ndcg_at_10=<x>

(one line; the first four are the best model's). When the file is absent it prints a SKIPPED
line and exits 0. Usage:

    .venv/bin/python benchmarks/recs_quality.py [--data PATH] [--best ease] [--trials 10]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from getit_ml.log import configure_logging
from getit_ml.training.recommenders import MODEL_NAMES
from getit_ml.training.recs_protocol import ModelResult, RecsEvaluation, evaluate
from getit_ml.training.recs_splits import InteractionLog

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
RATINGS_FILE = "movielens-100k/ratings.csv"
SEED = 42
K = 10
GOAL_NDCG = 0.48
#: Recommenders' published MovieLens-100k rows (nDCG@10, MAP, P@10, R@10; None: not quoted).
PUBLISHED: dict[str, tuple[float, float | None, float | None, float | None]] = {
    "BiVAE": (0.4751, 0.1461, 0.4118, 0.2191),
    "BPR (cornac)": (0.4420, None, None, None),
    "LightGCN": (0.4198, None, None, None),
    "SAR": (0.3825, None, None, None),
}


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def locate(data: Path | None) -> Path:
    """The CSV: ``--data`` as the file, the ``movielens-100k`` folder or the datasets folder."""
    path = data or DEFAULT_DATA / RATINGS_FILE
    if path.is_dir():
        for candidate in (path / Path(RATINGS_FILE).name, path / RATINGS_FILE):
            if candidate.is_file():
                return candidate
    return path


def read_ratings(csv: Path) -> InteractionLog:
    """Every rating as one interaction, in file order (the order the split's draws follow)."""
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(csv)
    missing = {"user_id", "item_id", "timestamp"} - set(table.schema.names)
    if missing:
        raise SystemExit(f"{csv} lacks the column(s) {', '.join(sorted(missing))}")
    seconds = np.asarray(table.column("timestamp").to_numpy(), dtype=np.int64)
    return InteractionLog.from_rows(
        table.column("user_id").to_numpy(),
        table.column("item_id").to_numpy(),
        times=seconds * 1_000_000,
    )


def _cell(value: float | None) -> str:
    return f"{'—':>8}" if value is None or math.isnan(value) else f"{value:>8.4f}"


#: How the table names the models run beside ours: the baseline and the peer library.
_ROLES = {"popularity": "baseline: ", "bpr": "peer (implicit): "}


def print_table(result: RecsEvaluation) -> None:
    width = 34
    print(f"{'model':<{width}} {'nDCG@10':>8} {'MAP':>8} {'P@10':>8} {'R@10':>8} {'seconds':>8}")
    print("-" * (width + 45))
    for row in result.rows:
        t = row.test
        cells = "".join(f" {_cell(t[key])}" for key in ("ndcg", "map", "precision", "recall"))
        role = _ROLES.get(row.model, "ours: ")
        print(f"{role + row.model:<{width}}{cells} {row.seconds:>8.1f}")
    for name, figures in PUBLISHED.items():
        cells = "".join(f" {_cell(value)}" for value in figures)
        print(f"{'published: ' + name:<{width}}{cells}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None,
                        help=f"ratings.csv, its folder or the datasets folder (default "
                        f"{DEFAULT_DATA.resolve()}/{RATINGS_FILE})")  # fmt: skip
    parser.add_argument("--best", default="ease", choices=MODEL_NAMES,
                        help="our model to compare (default ease: best measured)")  # fmt: skip
    parser.add_argument("--trials", type=int, default=10,
                        help="Optuna trials per model on validation (0: defaults)")  # fmt: skip
    args = parser.parse_args(argv)
    configure_logging("WARNING")

    csv = locate(args.data)
    if not csv.is_file():
        print(f"SKIPPED: MovieLens-100k is not at {csv} (pass --data PATH); nothing measured.")
        return 0
    print(f"start: {load_average()}")
    started = time.perf_counter()
    log = read_ratings(csv)
    print(
        f"MovieLens-100k ({csv}): {log.n_pairs:,} ratings, {len(log.user_ids):,} users, "
        f"{len(log.item_ids):,} items"
    )

    def progress(row: ModelResult) -> None:
        print(f"  {row.model}: nDCG@{K} {row.test['ndcg']:.4f} in {row.seconds:.1f} s", flush=True)

    models = list(dict.fromkeys(["bpr", args.best]))
    result = evaluate(log, models, protocol="stratified", k=K, trials=args.trials, seed=SEED,
                      on_model=progress)  # fmt: skip
    print(result.describe())
    print()
    print_table(result)
    print()
    for row in result.rows:
        params = ", ".join(f"{key}={value}" for key, value in row.params.items()) or "none"
        chosen = f"tuned, {row.trials} trials" if row.tuned else "registry defaults"
        print(f"  {row.model}: {params} ({chosen})")
    for note in result.notes:
        print(f"  {note}")
    rows = {row.model: row for row in result.rows}
    ours = rows[args.best].test
    verdict = "meets" if ours["ndcg"] >= GOAL_NDCG else "misses"
    print(f"{args.best} nDCG@{K} {ours['ndcg']:.4f} {verdict} the goal of {GOAL_NDCG}")
    print(f"took {time.perf_counter() - started:.1f} s")
    print(f"end: {load_average()}")
    print(
        f"RESULT ndcg_at_10={ours['ndcg']:.4f} map={ours['map']:.4f} "
        f"precision_at_10={ours['precision']:.4f} recall_at_10={ours['recall']:.4f} "
        f"bpr_ndcg_at_10={rows['bpr'].test['ndcg']:.4f} "
        f"popularity_ndcg_at_10={rows['popularity'].test['ndcg']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
