"""``getit-ml pipeline``: compile Kubeflow pipelines, run one locally, submit one to a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from getit_ml.cli.common import settings_of, user_errors
from getit_ml.errors import UserError

app = typer.Typer(
    help="Kubeflow pipelines: compile to IR YAML, run on this machine (kfp.local), submit.",
    no_args_is_help=True,
)
stdout = Console()

PipelineName = Annotated[
    str, typer.Argument(help="Model family whose training pipeline to run: fraud, churn, ...")
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Marketplace folder to train on (on a cluster: the path as the pods see it); "
        "default: the family's demo population under GETIT_ML_HOME/data, where `getit-ml demo` "
        "writes it.",
    ),
]
Parameters = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="Pipeline parameter NAME=VALUE (repeatable), e.g. -p n_trials=40.",
    ),
]


def parse_parameters(pairs: list[str] | None, known: dict[str, Any]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs typed like the pipeline parameter's default (int, float, str)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        name, separator, raw = pair.partition("=")
        name = name.strip()
        if not separator or not name:
            raise UserError(f"--param {pair!r}: expected NAME=VALUE")
        if name not in known:
            raise UserError(f"--param {name}: no such pipeline parameter; known: "
                            f"{', '.join(sorted(known))}")  # fmt: skip
        kind = type(known[name])
        try:
            out[name] = kind(raw) if kind in (int, float) else raw
        except ValueError:
            raise UserError(f"--param {name}: {raw!r} is not a {kind.__name__}") from None
    return out


def _parameters(name: str, root: Path) -> dict[str, Any]:
    """The pipeline's parameters with their defaults ('' for the required ones)."""
    import inspect

    from getit_ml.orchestration import load_pipeline

    function = load_pipeline(name, root).pipeline_func
    return {
        p.name: "" if p.default is inspect.Parameter.empty else p.default
        for p in inspect.signature(function).parameters.values()
    }


def _data_dir(data_dir: Path | None, home: Path, family: str) -> Path:
    from getit_ml.families import get_family

    folder = data_dir or home / "data" / get_family(family).demo.population
    if not folder.is_dir():
        raise UserError(f"{folder} does not exist: pass --data-dir, or run `getit-ml demo` first")
    return folder


@app.command("compile")
@user_errors
def compile_(
    name: Annotated[str, typer.Argument(help="Pipeline name (default: every pipeline).")] = "",
    out: Annotated[
        Path | None, typer.Option(help="Write here instead of pipelines/compiled/.")
    ] = None,
) -> None:
    """Compile to IR YAML for the Kubeflow Pipelines UI: one file per model family
    (pipelines/compiled/<family>_training.yaml)."""
    from getit_ml.orchestration import compile_pipeline, pipeline_names, project_root

    root = project_root()
    if out is not None and not name:
        raise UserError("--out needs a pipeline name")
    for pipeline in [name] if name else list(pipeline_names()):
        path = compile_pipeline(pipeline, root, out)
        stdout.print(f"compiled [bold]{pipeline}[/] → {path}")


@app.command("run")
@user_errors
def run(
    ctx: typer.Context,
    name: PipelineName,
    local: Annotated[
        bool, typer.Option("--local", help="Run on this machine with kfp.local (required).")
    ] = False,
    data_dir: DataDir = None,
    param: Parameters = None,
) -> None:
    """Run a pipeline on this machine with kfp.local, against the settings' registry."""
    from getit_ml.orchestration import pipeline_arguments, project_root, run_local

    if not local:
        raise UserError("`pipeline run` runs on this machine: add --local (or use `submit`)")
    settings = settings_of(ctx)
    root = project_root()
    # The registry is not passed as a parameter: parameters are logged in the clear, and a
    # PostgreSQL URI carries a password. Each step reads it from the settings it inherits.
    overrides = parse_parameters(param, _parameters(name, root))
    folder = _data_dir(data_dir, settings.home, name)
    arguments = pipeline_arguments(settings, folder, root, overrides)
    stdout.print(f"running [bold]{name}[/] locally on {arguments['data_dir']} "
                 f"({arguments['snapshot_id'][:19]})")  # fmt: skip
    result = run_local(name, settings, arguments, root=root)
    model = arguments.get("model_name", name)
    stdout.print(
        f"[green]done[/] in {result.seconds:.0f} s: registered {model} version "
        f"[bold]{result.output}[/]; outputs in {result.pipeline_root}; "
        f"see `getit-ml registry list {model}`"
    )
    if result.feature_store is not None:
        # The step's store is built, applied and materialized: the transformer can serve from it.
        stdout.print(
            f"serve it: getit-ml serve {name} --with-transformer --feature-store "
            f"{result.feature_store}"
        )


@app.command("submit")
@user_errors
def submit(
    ctx: typer.Context,
    name: PipelineName,
    host: Annotated[str, typer.Option(help="Kubeflow Pipelines API, e.g. http://localhost:8080.")],
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Marketplace folder as the pipeline's pods see it.")
    ],
    experiment: Annotated[str, typer.Option(help="Kubeflow experiment.")] = "getit-ml",
    namespace: Annotated[str | None, typer.Option(help="Kubeflow namespace.")] = None,
    snapshot_id: Annotated[
        str | None,
        typer.Option(help="The data's snapshot id; default: computed from --data-dir here."),
    ] = None,
    param: Parameters = None,
) -> None:
    """Submit a pipeline run to a Kubeflow Pipelines endpoint."""
    from getit_ml.orchestration import code_version, project_root, promotion_arguments
    from getit_ml.orchestration import submit as submit_run

    settings = settings_of(ctx)
    root = project_root()
    arguments: dict[str, Any] = {
        "data_dir": str(data_dir),
        "code_version": code_version(root),
        **promotion_arguments(settings),
    }
    if snapshot_id:
        arguments["snapshot_id"] = snapshot_id
    else:  # the folder is mounted here too: take its id as a local run would
        from getit_ml.data.snapshot import snapshot_id as take_snapshot

        arguments["snapshot_id"] = take_snapshot(data_dir)
    arguments.update(parse_parameters(param, _parameters(name, root)))
    run_id = submit_run(name, arguments, root=root, host=host, experiment=experiment,
                        namespace=namespace)  # fmt: skip
    stdout.print(f"submitted [bold]{name}[/] to {host}: run {run_id}")
