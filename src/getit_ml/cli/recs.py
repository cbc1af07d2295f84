"""``getit-ml recs``: recommenders on your own interactions.

``getit-ml recs evaluate --interactions DIR`` reads what ``getit-ml data import interactions FILE
--out DIR`` wrote, splits it by a protocol (``stratified``: Microsoft Recommenders' per-user 75/25,
seed 42; ``leave-last-out``; ``temporal``), tunes each model on a validation part carved from the
training part, refits it and scores the test part once (:mod:`getit_ml.training.recs_protocol`).
The popularity baseline is always in the table.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from getit_ml.cli.common import user_errors
from getit_ml.errors import UserError

if TYPE_CHECKING:
    from getit_ml.training.recs_protocol import ModelResult, RecsEvaluation

app = typer.Typer(help="Recommenders: evaluate retrieval models on imported interactions.",
                  no_args_is_help=True)  # fmt: skip
#: The table has a dozen columns: piped to a file or a CI log (no terminal, rich's 80 columns)
#: it would be cut to ellipses, so it gets room; a terminal keeps its own width.
stdout = Console(width=None if Console().is_terminal else 160)

#: The models evaluated when ``--models`` is not given (the neural one is opt-in: slower).
DEFAULT_MODELS = "popularity,ease,als,bpr"


def _parse_models(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UserError("--models: name at least one model")
    return names


def _cell(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.4f}"


@app.command()
@user_errors
def evaluate(
    interactions: Annotated[
        Path,
        typer.Option(help="Folder `getit-ml data import interactions` wrote (or its parquet)."),
    ],
    protocol: Annotated[
        str, typer.Option(help="stratified, leave-last-out or temporal.")
    ] = "stratified",
    k: Annotated[int, typer.Option("--k", help="Length of each top-k list.", min=1)] = 10,
    models: Annotated[
        str, typer.Option(help="Comma-separated model names (popularity is always added).")
    ] = DEFAULT_MODELS,
    trials: Annotated[
        int, typer.Option(help="Optuna trials per model on validation (0: defaults).", min=0)
    ] = 10,
    negatives: Annotated[
        int,
        typer.Option(
            help="Leave-last-out: also rank the held-out item among N sampled negatives.", min=0
        ),
    ] = 0,
    fraction: Annotated[
        float, typer.Option(help="Training share (stratified: per user; temporal: by time).")
    ] = 0.75,
    seed: Annotated[int, typer.Option(help="Seed of the split, sampling, tuning, models.")] = 42,
    out: Annotated[
        Path | None, typer.Option(help="Also write every figure to this JSON file.")
    ] = None,
) -> None:
    """Compare retrieval models on imported interactions: MAP, nDCG@k, P@k, R@k, coverage,
    novelty; ends with a RESULT line."""
    # Imported here: the protocol pulls in scipy, optuna and (when built) implicit and torch.
    from getit_ml.training.recs_protocol import best_row
    from getit_ml.training.recs_protocol import evaluate as run_evaluation
    from getit_ml.training.recs_splits import PROTOCOLS, load_interactions

    if protocol not in PROTOCOLS:
        raise UserError(f"--protocol must be one of {', '.join(PROTOCOLS)} (got {protocol!r})")
    log = load_interactions(interactions)
    stdout.print(
        f"{log.n_pairs:,} (user, item) pairs of {len(log.user_ids):,} users and "
        f"{len(log.item_ids):,} items from {interactions}",
        highlight=False,
    )

    def progress(row: ModelResult) -> None:
        stdout.print(
            f"  {row.model}: test nDCG@{k} {row.test['ndcg']:.4f} "
            f"(validation {row.validation_ndcg:.4f}, {row.seconds:.1f}s)",
            highlight=False,
        )

    result = run_evaluation(
        log,
        _parse_models(models),
        protocol=protocol,
        k=k,
        trials=trials,
        negatives=negatives,
        fraction=fraction,
        seed=seed,
        on_model=progress,
    )
    stdout.print(result.describe(), highlight=False, soft_wrap=True)
    table = Table(title=f"{protocol}: test figures at k={k} (full ranking)", box=box.SIMPLE)
    for column in ("model", "MAP", f"nDCG@{k}", f"P@{k}", f"R@{k}", "coverage", "novelty"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    if negatives:
        table.add_column(f"sampled HR@{k} (1+{negatives})", justify="right")
        table.add_column(f"sampled nDCG@{k} (1+{negatives})", justify="right")
    table.add_column(f"valid nDCG@{k}", justify="right")
    table.add_column("seconds", justify="right")
    for row in result.rows:
        figures = row.test
        cells = [figures[name] for name in ("map", "ndcg", "precision", "recall", "coverage")]
        sampled = [figures["sampled_hr"], figures["sampled_ndcg"]] if negatives else []
        table.add_row(
            row.model,
            *(_cell(v) for v in cells),
            "—" if math.isnan(figures["novelty"]) else f"{figures['novelty']:.2f}",
            *(_cell(v) for v in sampled),
            _cell(row.validation_ndcg),
            f"{row.seconds:.1f}",
        )
    # A table cut to an 80-column pipe would hide the figures: it keeps its own width.
    stdout.print(table, width=max(stdout.width, 132))
    for row in result.rows:
        chosen = f"tuned ({row.trials} trials)" if row.tuned else "defaults"
        if row.trials and not row.tuned:
            chosen += f" (no trial of {row.trials} beat them on validation)"
        params = ", ".join(f"{key}={_short(value)}" for key, value in row.params.items())
        stdout.print(f"{row.model}: {params or 'no parameters'} — {chosen}", highlight=False)
    for note in result.notes:
        stdout.print(note, highlight=False, soft_wrap=True)
    if out is not None:
        _write_json(out, result)
        stdout.print(f"figures: {out}", highlight=False)
    best = best_row(result)
    baseline = result.rows[0]
    fields = {
        "protocol": protocol,
        "best_model": best.model,
        f"ndcg_at_{k}": best.test["ndcg"],
        "map": best.test["map"],
        f"precision_at_{k}": best.test["precision"],
        f"recall_at_{k}": best.test["recall"],
        "coverage": best.test["coverage"],
    }
    if negatives:
        fields[f"sampled_hr_at_{k}"] = best.test["sampled_hr"]
        fields[f"sampled_ndcg_at_{k}"] = best.test["sampled_ndcg"]
    fields.update({f"{row.model}_ndcg_at_{k}": row.test["ndcg"] for row in result.rows})
    fields[f"popularity_ndcg_at_{k}"] = baseline.test["ndcg"]
    line = " ".join(f"{key}={_short(value)}" for key, value in fields.items())
    stdout.print(f"RESULT {line}", highlight=False, soft_wrap=True)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.4g}"
    return str(value)


def _write_json(path: Path, result: RecsEvaluation) -> None:
    """Every figure of the evaluation (a UserError when the file cannot be written)."""
    document = {
        "protocol": result.protocol,
        "description": result.describe(),
        "k": result.ranking.k,
        "negatives": result.ranking.negatives,
        "trials": result.trials,
        "seed": result.seed,
        "test_split": asdict(result.test_split),
        "validation_split": asdict(result.validation_split),
        "models": [
            {
                "model": row.model,
                "params": row.params,
                "test": {key: (None if math.isnan(v) else v) for key, v in row.test.items()},
                "validation_ndcg": row.validation_ndcg,
                "default_validation_ndcg": row.default_validation_ndcg,
                "tuned": row.tuned,
                "trials": row.trials,
                "fit_seconds": row.fit_seconds,
                "seconds": row.seconds,
            }
            for row in result.rows
        ],
        "notes": result.notes,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    except OSError as error:
        raise UserError(f"cannot write {path}: {error}") from None
