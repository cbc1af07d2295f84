"""``getit-ml serve fraud``: the fraud scorer (and its feature transformer) on this machine."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from getit_ml.cli.common import settings_of, user_errors

app = typer.Typer(
    help="Serve models locally over the Open Inference Protocol v2 (REST and gRPC).",
    no_args_is_help=True,
)
stdout = Console()


@app.callback()
def serve() -> None:
    """Serve models locally over the Open Inference Protocol v2 (REST and gRPC)."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command("fraud")
@user_errors
def fraud(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Registry reference (default models:/fraud@champion)."),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="A saved model folder instead of the registry."),
    ] = None,
    with_transformer: Annotated[
        bool,
        typer.Option(
            "--with-transformer",
            help="Put the Feast feature transformer in front (takes the public ports).",
        ),
    ] = False,
    http_port: Annotated[int, typer.Option("--http-port", help="v2 REST port.")] = 8080,
    grpc_port: Annotated[int, typer.Option("--grpc-port", help="v2 gRPC port.")] = 8081,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="MLflow tracking/registry URI.")
    ] = None,
    feature_store: Annotated[
        Path | None,
        typer.Option(
            "--feature-store", help="Feature store folder (default GETIT_ML_HOME/features)."
        ),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Decision threshold (default: model's).")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the fraud model until Ctrl-C or SIGTERM (in-flight requests are drained)."""
    from getit_ml.errors import UserError
    from getit_ml.serving.launcher import LaunchOptions, LocalServing

    if model is not None and model_dir is not None:
        raise UserError("give --model or --model-dir, not both")
    settings = settings_of(ctx)
    options = LaunchOptions(
        model_uri=None if model_dir is not None else (model or "models:/fraud@champion"),
        model_dir=model_dir,
        tracking_uri=tracking_uri,
        with_transformer=with_transformer,
        http_port=http_port,
        grpc_port=grpc_port,
        feature_store=feature_store,
        threshold=threshold,
        host=host,
        log_level=settings.log_level,
    )
    serving = LocalServing(options)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        serving.start()
        entry = serving.entry
        stdout.print(
            f"[green]serving[/] fraud ({entry.role}): REST http://{host}:{entry.http_port}/v2, "
            f"gRPC {host}:{entry.grpc_port}; Ctrl-C stops"
        )
        code = serving.wait()
        if code:
            raise UserError(f"a model server exited with status {code}")
    except KeyboardInterrupt:
        pass
    finally:
        serving.stop()
