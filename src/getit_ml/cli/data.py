"""``getit-ml data``: generate the synthetic marketplace, validate data, import public sets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from getit_ml.cli.common import user_errors

if TYPE_CHECKING:  # the data layer imports numpy and pyarrow: only when a command runs
    from getit_ml.data.generator import GenerationSummary

app = typer.Typer(help="The marketplace data: generate, validate, import.", no_args_is_help=True)
stdout = Console()


def render_generation_summary(summary: GenerationSummary) -> Table:
    """A table of rows per table plus the mixes that matter (events, payments, fraud)."""
    table = Table(title=f"marketplace written to {summary.out_dir} in {summary.seconds:.1f}s")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("breakdown")
    breakdowns = {
        "events": summary.events_by_type,
        "payments": summary.payments_by_method,
    }
    for name, rows in summary.rows.items():
        parts = breakdowns.get(name, {})
        text = ", ".join(f"{k} {v:,}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
        if name == "payments":
            text += f"; fraud {summary.fraud_rate:.2%}"
        table.add_row(name, f"{rows:,}", text)
    return table


@app.command()
@user_errors
def generate(
    out: Annotated[
        Path, typer.Option(help="Folder to write the Parquet tables to (new or empty).")
    ],
    customers: Annotated[int, typer.Option(help="Number of customers.", min=100)] = 2_000,
    days: Annotated[int, typer.Option(help="Days to simulate.", min=1, max=3650)] = 30,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.", min=0)] = 7,
    start: Annotated[
        str, typer.Option(help="First simulated day, YYYY-MM-DD (Asia/Dhaka).")
    ] = "2025-03-10",
) -> None:
    """Generate the synthetic GetIt marketplace with ground truth (fraud, demand, sentiment)."""
    from getit_ml.data.generator import MarketplaceConfig
    from getit_ml.data.generator import generate as run_generation
    from getit_ml.errors import UserError

    try:
        first_day = date.fromisoformat(start)
    except ValueError:
        raise UserError(f"--start must be a date as YYYY-MM-DD (got {start!r})") from None
    config = MarketplaceConfig(customers=customers, days=days, seed=seed, start=first_day)
    with Progress(
        TextColumn("simulating days"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=stdout,
    ) as progress:  # fmt: skip
        task = progress.add_task("days", total=days)
        summary = run_generation(
            config, out, progress=lambda done, total: progress.update(task, completed=done)
        )
    stdout.print(render_generation_summary(summary))


@app.command("import")
@user_errors
def import_(
    format: Annotated[
        str,
        typer.Argument(
            help="One of: movielens, creditcard, diginetica, walmart, cdnow, tabular (your own "
            "labelled .csv or .parquet table), interactions (your own user-item table)."
        ),
    ],
    path: Annotated[Path, typer.Argument(help="The data set's file or folder.")],
    out: Annotated[Path, typer.Option(help="Folder to write the contract tables to.")],
    label: Annotated[
        str | None,
        typer.Option(
            metavar="COLUMN",
            help="tabular: the label column (default: the first column named churn, churned, "
            "exited, label, target, y, class, is_fraud or fraud, in any case).",
        ),
    ] = None,
    positive: Annotated[
        list[str] | None,
        typer.Option(
            metavar="VALUE",
            help="tabular: a label value that means True (repeatable; default: yes/true/1/y/t/"
            "churned... are True and no/false/0/n/f/stayed... False, in any case).",
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id",
            metavar="COLUMN",
            help="tabular: the id column (default: the 0-based row number).",
        ),
    ] = None,
    time_column: Annotated[
        str | None,
        typer.Option(
            "--time", metavar="COLUMN", help="tabular: the time column, ISO 8601 (default: none)."
        ),
    ] = None,
    user_column: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="COLUMN",
            help="interactions: the user column (default: the column named user_id, user, "
            "customer_id, visitor_id... in any case).",
        ),
    ] = None,
    item_column: Annotated[
        str | None,
        typer.Option(
            "--item",
            metavar="COLUMN",
            help="interactions: the item column (default: item_id, item, product_id, movie_id, "
            "asin, sku...).",
        ),
    ] = None,
    timestamp_column: Annotated[
        str | None,
        typer.Option(
            "--timestamp",
            metavar="COLUMN",
            help="interactions: the time column, unix s/ms/µs/ns (detected), yyyymmdd or ISO "
            "8601 (default: timestamp, ts, time, date...; none: every row at 1970-01-01).",
        ),
    ] = None,
    rating_column: Annotated[
        str | None,
        typer.Option(
            "--rating",
            metavar="COLUMN",
            help="interactions: the rating column, numbers >= 0 (default: rating, score, stars...; "
            "none: implicit feedback).",
        ),
    ] = None,
    event_column: Annotated[
        str | None,
        typer.Option(
            "--event",
            metavar="COLUMN",
            help="interactions: the event-type column: view, add_to_cart, purchase... or click, "
            "cart, buy, order (default: event_type, event, action...; none: rating, or view "
            "without a rating).",
        ),
    ] = None,
) -> None:
    """Map a public data set, or your own labelled table, onto the platform's data contracts.

    Your own table (tabular): a .csv or .parquet file, or a folder holding exactly one.
    It writes DIR/labelled_examples.parquet: example_id, example_ts, label, then every other
    column as a feature, for a family's `getit-ml evaluate`; import.json records the mapping.
    Example: getit-ml data import tabular churn.csv --out DIR --label Churn --id customerID
    The options --label, --positive, --id and --time are for tabular only.

    Your own interactions (interactions): a .csv or .parquet file, or a folder holding exactly
    one, of user, item and optionally timestamp, rating and event type. It writes
    DIR/interactions.parquet for the recommenders; ids that are not integers are mapped to
    integers, the mapping written as DIR/user_ids.parquet / DIR/item_ids.parquet.
    Example: getit-ml data import interactions events.csv --out DIR --user visitorid
    The options --user, --item, --timestamp, --rating and --event are for interactions only.
    """
    from getit_ml.data.importers import import_dataset

    options = {
        "label": label,
        "positive": positive or None,
        "id_column": id_column,
        "time_column": time_column,
        "user_column": user_column,
        "item_column": item_column,
        "timestamp_column": timestamp_column,
        "rating_column": rating_column,
        "event_column": event_column,
    }
    given = {name: value for name, value in options.items() if value is not None}
    result = import_dataset(format, path, out, given)
    stdout.print(
        f"{format}: read {result.rows_read:,} rows, wrote {result.rows_written:,} to "
        f"{out / (result.table_name + '.parquet')}",
        highlight=False,
        soft_wrap=True,
    )
    details = result.details
    if "label_column" in details:
        stdout.print(
            f"label {details['label_column']}: {details['rows_positive']:,} true "
            f"({', '.join(details['label_true_values'][:5])}), {details['rows_negative']:,} false "
            f"({', '.join(details['label_false_values'][:5])}); "
            f"{len(details['feature_types'])} feature columns",
            highlight=False,
            soft_wrap=True,
        )
    if "user_ids" in details:
        for line in _interactions_lines(details, out):
            stdout.print(line, highlight=False, soft_wrap=True)
    if result.rows_rejected:
        reasons = ", ".join(f"{k} ({v:,})" for k, v in result.rejected_reasons().items())
        stdout.print(
            f"[yellow]rejected {result.rows_rejected:,} rows[/] → {out / 'rejected'}: {reasons}",
            highlight=False,
            soft_wrap=True,
        )


def _interactions_lines(details: Mapping[str, Any], out: Path) -> list[str]:
    """What an interactions import decided: ids, time format, event types, duplicates."""

    def ids(role: str, kind: str) -> str:
        column = details[f"{kind}_column"]
        if details[f"{kind}_ids"] == "mapped":
            return f"{role} {column} (mapped to integers: {out / details[f'{kind}_id_map']})"
        return f"{role} {column}"

    lines = [
        f"{details['n_users']:,} users, {details['n_items']:,} items; "
        f"{ids('users', 'user')}, {ids('items', 'item')}"
    ]
    if details["timestamp_column"] is None:
        lines.append(
            f"no timestamp column: every row is at {details['timestamp_constant']} (time-based "
            "splits cannot be used)"
        )
    else:
        lines.append(f"time {details['timestamp_column']}: {details['timestamp_format']}")
    events = ", ".join(f"{kind} {n:,}" for kind, n in details["event_types"].items())
    lines.append(f"events: {events or 'none'}")
    if details["duplicate_rows"]:
        lines.append(
            f"{details['duplicate_rows']:,} rows repeat an earlier row: kept (repeated feedback)"
        )
    return lines


@app.command()
@user_errors
def validate(
    directory: Annotated[Path, typer.Argument(help="Folder holding the tables to check.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Write valid/, quarantine/ and report.json here."),
    ] = None,
    table: Annotated[
        list[str] | None,
        typer.Option(help="Only these tables (repeatable); default: every table found."),
    ] = None,
) -> None:
    """Check tables against the data contracts; quarantine bad rows with their reasons.

    Exits 1 when any row was quarantined or an expected table is missing. Nothing is dropped:
    valid plus quarantined rows always equal the rows read.
    """
    from getit_ml.data.validation import render_report, validate_dataset, write_outputs

    result = validate_dataset(directory, table)
    typer.echo(render_report(result))
    if out is not None:
        report = write_outputs(result, out)
        typer.echo(f"report: {report}")
    if not result.ok:
        raise typer.Exit(code=1)
