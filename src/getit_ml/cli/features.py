"""``getit-ml features``: build, apply, materialize, read, serve and stream the feature store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from getit_ml.cli.common import settings_of, user_errors
from getit_ml.errors import UserError

if TYPE_CHECKING:  # Feast takes seconds to import: only when a command runs
    from feast import FeatureStore

    from getit_ml.settings import PlatformSettings

app = typer.Typer(
    help="The Feast feature store: build offline features, apply, materialize, get, serve, stream.",
    no_args_is_help=True,
)
stdout = Console()

Workdir = Annotated[
    Path | None,
    typer.Option(help="The store's folder (default: GETIT_ML_HOME/features)."),
]
ProfileOption = Annotated[
    str,
    typer.Option(help="embedded (SQLite + files) or production (Redis + PostgreSQL registry)."),
]


def _settings(ctx: typer.Context) -> PlatformSettings:
    from getit_ml.settings import PlatformSettings, load_settings

    settings = ctx.find_root().obj
    return settings if isinstance(settings, PlatformSettings) else load_settings()


def _store_root(ctx: typer.Context, workdir: Path | None) -> Path:
    return workdir or settings_of(ctx).home / "features"


def _open(ctx: typer.Context, workdir: Path | None, profile: str) -> FeatureStore:
    from getit_ml.features.store import Profile, open_store

    try:
        chosen = Profile(profile)
    except ValueError:
        raise UserError(f"--profile must be embedded or production (got {profile!r})") from None
    return open_store(settings_of(ctx), _store_root(ctx, workdir), chosen)


def _parse_time(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} must be an ISO date or time (got {text!r})") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_pairs(pairs: list[str] | None, option: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise UserError(f"{option} takes NAME=VALUE (got {pair!r})")
        value: Any = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        values[name] = value
    return values


@app.command()
@user_errors
def build(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="Marketplace folder (from `getit-ml data generate`).")],
    workdir: Workdir = None,
) -> None:
    """Compute the offline feature tables from the marketplace into the store's folder."""
    from getit_ml.features.engineering import build_offline_features
    from getit_ml.features.store import StoreLayout

    layout = StoreLayout(_store_root(ctx, workdir))
    rows = build_offline_features(data, layout.offline_dir)
    table = Table(title=f"offline features in {layout.offline_dir}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in rows.items():
        table.add_row(name, f"{count:,}")
    stdout.print(table)


@app.command()
@user_errors
def apply(ctx: typer.Context, workdir: Workdir = None, profile: ProfileOption = "embedded") -> None:
    """Register the feature repository's definitions and create the online tables."""
    from getit_ml.features.store import apply_definitions

    store = _open(ctx, workdir, profile)
    applied = apply_definitions(store, settings_of(ctx).feature_repo)
    kinds: dict[str, int] = {}
    for obj in applied:
        kinds[type(obj).__name__] = kinds.get(type(obj).__name__, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    stdout.print(f"applied to project {store.project}: {summary}", highlight=False)


@app.command()
@user_errors
def materialize(
    ctx: typer.Context,
    start: Annotated[str | None, typer.Option(help="Window start (ISO, UTC if naive).")] = None,
    end: Annotated[str | None, typer.Option(help="Window end (ISO; default: now).")] = None,
    incremental: Annotated[
        bool, typer.Option("--incremental", help="From where the last run stopped up to --end.")
    ] = False,
    view: Annotated[list[str] | None, typer.Option(help="Only these feature views.")] = None,
    workdir: Workdir = None,
    profile: ProfileOption = "embedded",
) -> None:
    """Load the newest offline values into the online store."""
    from getit_ml.features import store as feature_store

    store = _open(ctx, workdir, profile)
    until = _parse_time(end, "--end") if end else datetime.now(UTC)
    if incremental:
        if start:
            raise UserError("--incremental takes no --start: it resumes where the last run ended")
        feature_store.materialize_incremental(store, until, view)
    else:
        if not start:
            raise UserError("give --start (or --incremental)")
        feature_store.materialize(store, _parse_time(start, "--start"), until, view)
    stdout.print(f"materialized up to {until.isoformat()}", highlight=False)


@app.command()
@user_errors
def get(
    ctx: typer.Context,
    entity: Annotated[
        list[str], typer.Option(help="Entity key NAME=VALUE, e.g. customer_id=42 (repeatable).")
    ],
    service: Annotated[str, typer.Option(help="Feature service.")] = "fraud_scoring_v1",
    request: Annotated[
        list[str] | None,
        typer.Option(help="Request field NAME=VALUE, e.g. amount_bdt=1500 (repeatable)."),
    ] = None,
    workdir: Workdir = None,
    profile: ProfileOption = "embedded",
) -> None:
    """Read one online feature vector; missing values are shown as such."""
    from getit_ml.features.store import online_features

    row = _parse_pairs(entity, "--entity") | _parse_pairs(request, "--request")
    result = online_features(_open(ctx, workdir, profile), service, [row])
    table = Table(title=f"{service} for {row}")
    table.add_column("feature")
    table.add_column("value")
    for name in result.values.columns:
        value = result.values[name].iloc[0]
        is_missing = bool(result.missing[name].iloc[0]) if name in result.missing else False
        table.add_row(name, "[yellow]missing[/]" if is_missing else str(value))
    stdout.print(table)
    stdout.print(f"{result.missing_share:.0%} of the features are missing", highlight=False)


@app.command()
@user_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 6566,
    workers: Annotated[int, typer.Option(help="Server processes.", min=1)] = 1,
    workdir: Workdir = None,
    profile: ProfileOption = "embedded",
) -> None:
    """Run Feast's HTTP feature server (`POST /get-online-features`)."""
    store = _open(ctx, workdir, profile)
    store.serve(host=host, port=port, type_="http", workers=workers, no_access_log=True)


@app.command()
@user_errors
def stream(
    ctx: typer.Context,
    stream_key: Annotated[str, typer.Option("--stream", help="Redis Stream key.")] = "getit:events",
    group: Annotated[str, typer.Option(help="Consumer group.")] = "feature-stream",
    consumer: Annotated[str, typer.Option(help="This consumer's name.")] = "getit-ml",
    batch_size: Annotated[int, typer.Option(help="Entries per read.", min=1)] = 5_000,
    max_events: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
    idle_timeout: Annotated[
        float | None, typer.Option(help="Stop after this many idle seconds.")
    ] = None,
    workdir: Workdir = None,
    profile: ProfileOption = "embedded",
) -> None:
    """Consume payment and click events from a Redis Stream into the online store."""
    import redis

    from getit_ml.features.store import push_velocity
    from getit_ml.features.streaming import StreamConsumer

    settings = settings_of(ctx)
    store = _open(ctx, workdir, profile)
    client = redis.Redis.from_url(settings.redis_url)
    runner = StreamConsumer(
        client,
        stream_key,
        group,
        consumer,
        push=lambda rows: push_velocity(store, rows),
        batch_size=batch_size,
    )
    stats = runner.run(max_events=max_events, idle_timeout_s=idle_timeout)
    stdout.print(stats, highlight=False)
