"""``getit-ml registry``: list a model's versions, promote one to champion, roll back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from getit_ml.cli.common import user_errors

if TYPE_CHECKING:  # MLflow takes seconds to import: only when a command runs
    from getit_ml.registry.mlflow_registry import RegistryConfig, VersionInfo

app = typer.Typer(
    help="The MLflow model registry: list versions, promote to champion, roll back.",
    no_args_is_help=True,
)
stdout = Console()

TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking/registry URI (sqlite:///..., postgresql://..., http://...); "
        "default: GETIT_ML_MLFLOW_TRACKING_URI, else the embedded SQLite registry under "
        "GETIT_ML_HOME.",
    ),
]
ModelName = Annotated[str, typer.Argument(help="Registered model name, e.g. fraud.")]


def _config(ctx: typer.Context, tracking_uri: str | None) -> RegistryConfig:
    from getit_ml.registry.mlflow_registry import RegistryConfig
    from getit_ml.settings import PlatformSettings, load_settings

    settings = ctx.find_root().obj
    if not isinstance(settings, PlatformSettings):  # the group invoked without the root callback
        settings = load_settings()
    if tracking_uri:
        return RegistryConfig.from_uri(tracking_uri, settings.mlflow_artifact_location)
    return RegistryConfig.from_settings(settings)


def render_versions(name: str, versions: list[VersionInfo]) -> Table:
    """One row per version, newest first: aliases, metric, checksum, age, last decision."""
    metric = versions[0].metric_name if versions else "metric"
    table = Table(title=f"{name}: {len(versions)} version(s)", box=box.SIMPLE)
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("aliases")
    table.add_column(metric, justify="right", no_wrap=True)
    table.add_column("sha256", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    table.add_column("last decision", ratio=1)
    for info in versions:
        aliases = ", ".join(f"[bold green]{a}[/]" if a == "champion" else a for a in info.aliases)
        value = "-" if info.metric is None else f"{info.metric:.4f}"
        decision = info.promotion or ""
        if info.promotion_reason:
            decision = f"{decision}: {info.promotion_reason}"
        if info.demotion_reason:
            decision = f"demoted: {info.demotion_reason}"
        table.add_row(
            info.version,
            aliases,
            value,
            (info.sha256 or "-")[:8],
            info.created.strftime("%Y-%m-%d %H:%M"),
            decision,
        )
    return table


@app.command("list")
@user_errors
def list_(
    ctx: typer.Context,
    name: ModelName,
    tracking_uri: TrackingUri = None,
    metric: Annotated[
        str | None,
        typer.Option(help="Run metric to show for each version (default: its promotion metric)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Show only the newest N.", min=1)] = None,
) -> None:
    """List the versions of a registered model, newest first."""
    from getit_ml.registry.mlflow_registry import list_versions

    versions = list_versions(_config(ctx, tracking_uri), name, metric=metric, limit=limit)
    stdout.print(render_versions(name, versions))


@app.command()
@user_errors
def promote(
    ctx: typer.Context,
    name: ModelName,
    version: Annotated[int, typer.Argument(help="Version to make champion.", min=1)],
    tracking_uri: TrackingUri = None,
    if_better: Annotated[
        bool,
        typer.Option(
            "--if-better",
            help="Promote only if METRIC beats the champion's by MARGIN; exit 1 if not.",
        ),
    ] = False,
    metric: Annotated[str, typer.Option(help="Metric compared by --if-better.")] = "test_auprc",
    margin: Annotated[
        float, typer.Option(help="Improvement --if-better requires.", min=0.0)
    ] = 0.005,
    lower_is_better: Annotated[
        bool, typer.Option("--lower-is-better", help="For --if-better on a loss metric.")
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why (stored on the version with the decision).")
    ] = None,
) -> None:
    """Make VERSION the champion (recorded); with --if-better, only if it wins by a margin."""
    from getit_ml.registry import mlflow_registry

    config = _config(ctx, tracking_uri)
    if if_better:
        decision = mlflow_registry.promote_if_better(
            config, name, version, metric=metric, margin=margin,
            higher_is_better=not lower_is_better,
        )  # fmt: skip
    else:
        decision = mlflow_registry.promote(config, name, version, reason=reason)
    if decision.promoted:
        stdout.print(
            f"[green]{name} version {decision.version} is now champion[/] ({decision.reason})",
            highlight=False,
            soft_wrap=True,
        )
        return
    stdout.print(
        f"[yellow]{name} version {decision.version} not promoted:[/] {decision.reason}",
        highlight=False,
        soft_wrap=True,
    )
    if if_better and decision.champion_version != decision.version:
        raise typer.Exit(code=1)


@app.command()
@user_errors
def rollback(
    ctx: typer.Context,
    name: ModelName,
    tracking_uri: TrackingUri = None,
    reason: Annotated[str | None, typer.Option(help="Why (stored on both versions).")] = None,
) -> None:
    """Move the champion alias back to the previous champion, in one step."""
    from getit_ml.registry.mlflow_registry import rollback as roll_back

    restored = roll_back(_config(ctx, tracking_uri), name, reason=reason)
    stdout.print(
        f"[green]{name}: champion is version {restored.version} again[/] "
        f"(sha256 {(restored.sha256 or '-')[:12]})",
        highlight=False,
        soft_wrap=True,
    )
