"""``getit-ml serve FAMILY``: a family's model server (and its feature transformer) here, kept
running: a server that dies is restarted with a backoff (and logged) while the other serves on."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from getit_ml.cli.common import settings_of, user_errors

stdout = Console()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _default_store(home: Path, population: str) -> Path:
    """The family's demo store (``home/features/<population>``) when the demo built it, else the
    store ``getit-ml features build`` writes (``home/features``)."""
    from getit_ml.demo.workspace import store_dir

    demo = store_dir(home, population)
    return demo if (demo / "data").is_dir() else home / "features"


@user_errors
def serve(
    ctx: typer.Context,
    family: Annotated[str, typer.Argument(help="Model family to serve: fraud, churn, ...")],
    model: Annotated[
        str | None,
        typer.Option("--model", help="Registry reference (default models:/FAMILY@champion)."),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model-dir",
            help="A saved model folder instead of the registry (needs --expected-sha256 or "
            "--allow-unverified).",
        ),
    ] = None,
    expected_sha256: Annotated[
        str | None,
        typer.Option(
            "--expected-sha256",
            help="With --model-dir: the artefact's SHA-256 (the registry's getit.sha256); other "
            "bytes are refused.",
        ),
    ] = None,
    allow_unverified: Annotated[
        bool,
        typer.Option(
            "--allow-unverified",
            help="With --model-dir: serve the folder without checking its bytes (development).",
        ),
    ] = False,
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
            "--feature-store",
            help="Feature store folder (default: the family's demo store, "
            "GETIT_ML_HOME/features/<population>, else GETIT_ML_HOME/features).",
        ),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Decision threshold (default: model's).")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve a family's model over v2 REST and gRPC until Ctrl-C or SIGTERM (in-flight requests
    are drained); a server that crashes is restarted (0.5 s backoff, doubling to 30 s)."""
    from getit_ml.errors import UserError
    from getit_ml.families import get_family
    from getit_ml.serving.launcher import LaunchOptions, LocalServing

    if model is not None and model_dir is not None:
        raise UserError("give --model or --model-dir, not both")
    if model_dir is None and (expected_sha256 or allow_unverified):
        raise UserError("--expected-sha256 and --allow-unverified go with --model-dir")
    if model_dir is not None and not (expected_sha256 or allow_unverified):
        raise UserError(
            "--model-dir needs --expected-sha256 HEX (the artefact's SHA-256, as the registry "
            "records it) or --allow-unverified to serve the folder unchecked"
        )
    if expected_sha256 and allow_unverified:
        raise UserError("give --expected-sha256 or --allow-unverified, not both")
    spec = get_family(family)
    settings = settings_of(ctx)
    options = LaunchOptions(
        family=spec.name,
        runtime=spec.serving.runtime,
        model_uri=None if model_dir is not None else (model or spec.champion_uri),
        model_dir=model_dir,
        expected_sha256=expected_sha256,
        allow_unverified=allow_unverified,
        tracking_uri=tracking_uri,
        with_transformer=with_transformer,
        http_port=http_port,
        grpc_port=grpc_port,
        feature_store=feature_store or _default_store(settings.home, spec.demo.population),
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
            f"[green]serving[/] {spec.name} ({entry.role}): REST http://{host}:{entry.http_port}"
            f"/v2, gRPC {host}:{entry.grpc_port}; Ctrl-C stops"
        )
        serving.supervise()  # until Ctrl-C / SIGTERM (KeyboardInterrupt)
    except KeyboardInterrupt:
        pass
    finally:
        serving.stop()
