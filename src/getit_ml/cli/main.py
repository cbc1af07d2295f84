"""``getit-ml``: the one entry point of the platform.

Each layer adds its command group here (``data``, ``features``, ``pipeline``, ``serve``,
``monitor``, ``recs``). Commands are thin: they load the settings, call into :mod:`getit_ml`, and
render the result. A :class:`~getit_ml.errors.UserError` becomes one red line on stderr and exit
status 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from getit_ml import __version__
from getit_ml.cli import data, evaluate, features, monitor, pipeline, recs, registry, serve
from getit_ml.cli.common import settings_of, user_errors
from getit_ml.log import configure_logging
from getit_ml.settings import describe_settings, load_settings

app = typer.Typer(
    name="getit-ml",
    help="GetIt's ML platform: features (Feast), pipelines (Kubeflow), registry (MLflow), "
    "serving (KServe) and monitoring (Alibi), on one machine or on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(data.app, name="data")
app.add_typer(features.app, name="features")
app.add_typer(registry.app, name="registry")
app.add_typer(pipeline.app, name="pipeline")
app.command("serve")(serve.serve)
app.command("evaluate")(evaluate.evaluate)
app.add_typer(monitor.app, name="monitor")
app.add_typer(recs.app, name="recs")

stdout = Console()

_STATUS_STYLE = {"ok": "green", "failed": "bold red", "not run": "yellow"}


@app.callback()
@user_errors
def main(
    ctx: typer.Context,
    log_level: Annotated[
        str | None,
        typer.Option(help="Override GETIT_ML_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR)."),
    ] = None,
) -> None:
    """Load the settings once for every command."""
    overrides = {"log_level": log_level.upper()} if log_level else {}
    settings = load_settings(**overrides)
    configure_logging(settings.log_level)
    # Nothing may fetch models or data at run time; libraries that honour these stay offline.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    ctx.obj = settings


@app.command()
def version() -> None:
    """Print the getit-ml version."""
    stdout.print(__version__)


@app.command("settings")
@user_errors
def show_settings(ctx: typer.Context) -> None:
    """List every setting: its environment variable, current value and meaning."""
    table = Table(title="getit-ml settings", show_lines=False)
    table.add_column("variable", style="cyan", no_wrap=True)
    table.add_column("value")
    table.add_column("meaning")
    for variable, value, meaning in describe_settings(settings_of(ctx)):
        table.add_row(variable, value, meaning)
    stdout.print(table)


@app.command()
@user_errors
def demo(
    ctx: typer.Context,
    workdir: Annotated[
        Path | None,
        typer.Option(help="Folder for the run's state (default: GETIT_ML_HOME)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", help="Run only this model family's path (repeatable), e.g. --only churn."
        ),
    ] = None,
) -> None:
    """Run the platform's main job end to end on the embedded default (no cluster)."""
    # Imported here: the demo's stages pull in the platform's heavy libraries.
    from getit_ml.demo import DemoContext, Stage, StageOutcome, default_stages, run_demo

    settings = settings_of(ctx)
    context = DemoContext(settings=settings, workdir=workdir or settings.home)
    stages = default_stages(only)
    stdout.print(f"[bold]getit-ml demo[/] — {len(stages)} stages, state in {context.workdir}")
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=stdout,
    ) as progress:
        overall = progress.add_task("starting", total=len(stages))

        def on_start(stage: Stage) -> None:
            progress.update(overall, description=f"{stage.name}: {stage.description}")

        def on_finish(stage: Stage, outcome: StageOutcome) -> None:
            status = outcome.result.status.value
            style = _STATUS_STYLE[status]
            progress.console.print(
                f"[{style}]{status:>7}[/] {stage.name} ({outcome.seconds:.1f}s): "
                f"{outcome.result.summary}",
                highlight=False,
            )
            progress.advance(overall)

        report = run_demo(stages, context, on_start=on_start, on_finish=on_finish)
        progress.update(overall, description="done" if report.ok else "stopped")

    table = Table(title="demo summary")
    for column in ("stage", "status", "seconds", "result"):
        table.add_column(column)
    for outcome in report.outcomes:
        status = outcome.result.status.value
        table.add_row(
            outcome.name,
            f"[{_STATUS_STYLE[status]}]{status}[/]",
            f"{outcome.seconds:.1f}",
            outcome.result.summary,
        )
    stdout.print(table)
    if not report.ok:
        raise typer.Exit(code=1)


def run() -> None:
    """Console-script entry point."""
    app()
