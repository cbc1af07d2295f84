"""``getit-ml evaluate FAMILY DATA_DIR``: a family's method on your own data, beside a baseline.

``DATA_DIR`` is what ``getit-ml data import`` wrote (``getit-ml data import tabular FILE --label
COLUMN --out DATA_DIR`` for any labelled table; ``creditcard`` for the ULB set). The family's
trainer runs its published protocol there — for a binary family a stratified hold-out read once
at the end, everything else chosen on a validation part carved from the training rows — and a
baseline from the same run is shown beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from getit_ml.cli.common import user_errors

stdout = Console()


@user_errors
def evaluate(
    family: Annotated[str, typer.Argument(help="Model family: fraud, churn, ...")],
    data_dir: Annotated[Path, typer.Argument(help="Folder written by `getit-ml data import`.")],
    out: Annotated[
        Path | None, typer.Option(help="Write evaluation.json (every figure) here.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and of the model.", min=0)] = 42,
    test_fraction: Annotated[
        float, typer.Option("--test-fraction", help="Share held out for the reported figure.")
    ] = 0.2,
    trials: Annotated[
        int, typer.Option(help="Optuna trials on the validation part first (0: defaults).", min=0)
    ] = 0,
) -> None:
    """Evaluate a family's method on your own imported data, with a baseline beside it."""
    from getit_ml.families import get_family

    trainer = get_family(family).trainer
    result = trainer.evaluate_dataset(
        data_dir, out, seed=seed, test_fraction=test_fraction, trials=trials
    )
    stdout.print(result.protocol, highlight=False, soft_wrap=True)
    table = Table(title=f"{result.family}: held-out figures", box=box.SIMPLE)
    table.add_column("method")
    for name, direction in result.columns.items():
        arrow = "↑" if direction == "maximize" else "↓"
        table.add_column(f"{name.replace('_', ' ')} {arrow}", justify="right")
    table.add_column("seconds", justify="right")
    for method, figures in result.rows.items():
        table.add_row(
            method,
            *(f"{figures[name]:,.4f}" if abs(figures[name]) < 100 else f"{figures[name]:,.0f}"
              for name in result.columns),
            f"{figures.get('seconds', 0.0):.1f}",
        )  # fmt: skip
    stdout.print(table)
    for note in result.notes:
        stdout.print(note, highlight=False, soft_wrap=True)
    ours, *baselines = result.rows.values()
    metric = result.headline_metric
    line = f"RESULT {metric}={ours[metric]:.4f}"
    if baselines:
        line += f" baseline_{metric}={baselines[0][metric]:.4f}"
    stdout.print(line, highlight=False)
    if result.report is not None:
        stdout.print(f"report: {result.report}", highlight=False)
