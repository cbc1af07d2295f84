"""``getit-ml monitor explainer|drift``: start a monitoring sidecar on this machine.

The sidecars need the monitoring environment (alibi 0.9.4, alibi-detect 0.11.4, kserve 0.12.1,
numpy 1.24), not this one, so each command runs ``python -m inference_services.<sidecar>`` with
the interpreter of the ``monitoring_python`` setting (``GETIT_ML_MONITORING_PYTHON``) as a child
process in the repository root, and passes every option it does not know through to the
sidecar's own flags (``getit-ml monitor drift ... --window_size 200 --alert_url http://...``).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console

from getit_ml.cli.common import settings_of, user_errors

app = typer.Typer(
    help="Monitoring sidecars (monitoring environment): the explainer and the drift detector.",
    no_args_is_help=True,
)
stdout = Console()
stderr = Console(stderr=True)

PASS_THROUGH: Final = {"allow_extra_args": True, "ignore_unknown_options": True}

ReferenceDir = Annotated[
    Path,
    typer.Option(
        "--reference-dir",
        help="Folder with reference.parquet and feature_schema.json (the training pipeline's "
        "export).",
    ),
]
ModelName = Annotated[
    str, typer.Option("--model-name", help="InferenceService / model name, e.g. fraud.")
]
Port = Annotated[int, typer.Option("--port", help="HTTP port of the sidecar.", min=1, max=65535)]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the command instead of running it.")]


def _launch(ctx: typer.Context, sidecar: str, arguments: list[str], dry_run: bool) -> None:
    from getit_ml.monitoring.sidecars import monitoring_python, sidecar_command
    from getit_ml.processes import ManagedProcess

    settings = settings_of(ctx)
    python = monitoring_python(settings.monitoring_python)
    command = sidecar_command(python, sidecar, [*arguments, *ctx.args])
    if dry_run:
        stdout.print(shlex.join(command), highlight=False, soft_wrap=True)
        return
    stderr.print(
        f"starting the {sidecar} sidecar: {shlex.join(command)}", highlight=False, soft_wrap=True
    )
    process = ManagedProcess(
        command, name=f"{sidecar} sidecar", in_repository=True, stop_timeout_s=15.0
    ).spawn()
    try:
        code = process.wait()
    except KeyboardInterrupt:
        code = process.stop() or 0
    if code != 0:
        raise typer.Exit(code=code)


def _absolute(path: Path) -> str:
    # The sidecar runs in the repository root: relative paths are the caller's.
    return str(path.expanduser().resolve())


@app.command(context_settings=PASS_THROUGH)
@user_errors
def explainer(
    ctx: typer.Context,
    reference_dir: ReferenceDir,
    predictor_url: Annotated[
        str,
        typer.Option(
            "--predictor-url", help="Base URL of the v2 predictor, e.g. http://127.0.0.1:8080."
        ),
    ],
    model_name: ModelName,
    port: Port = 8081,
    dry_run: DryRun = False,
) -> None:
    """Start the explainer (AnchorTabular, Kernel SHAP, reason codes) against a v2 predictor.

    Other options go to the sidecar: see `python -m inference_services.explainer --help`.
    """
    arguments = [
        "--model_name",
        model_name,
        "--http_port",
        str(port),
        "--reference_dir",
        _absolute(reference_dir),
        "--predictor_url",
        predictor_url,
    ]
    _launch(ctx, "explainer", arguments, dry_run)


@app.command(context_settings=PASS_THROUGH)
@user_errors
def drift(
    ctx: typer.Context,
    reference_dir: ReferenceDir,
    model_name: ModelName,
    port: Port = 8082,
    alert_url: Annotated[
        str | None, typer.Option("--alert-url", help="Where drift alerts are POSTed.")
    ] = None,
    dry_run: DryRun = False,
) -> None:
    """Start the drift and outlier detector; point the predictor's payload logger at it.

    Other options go to the sidecar: see `python -m inference_services.drift_detector --help`.
    """
    arguments = [
        "--model_name",
        model_name,
        "--http_port",
        str(port),
        "--reference_dir",
        _absolute(reference_dir),
    ]
    if alert_url:
        arguments += ["--alert_url", alert_url]
    _launch(ctx, "drift", arguments, dry_run)
