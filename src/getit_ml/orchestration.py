"""Compile, run locally and submit the Kubeflow pipelines in ``pipelines/``.

The pipelines and their components are adapters that live beside this package, not in it (a
library must not import its adapters); they are loaded by path from the project root, the folder
that holds ``pipelines/`` and ``components/``. Locally, ``kfp.local``'s SubprocessRunner runs each
step as a process of this interpreter; on a cluster the same IR YAML runs in the component image.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import getit_ml
from getit_ml.errors import UserError
from getit_ml.settings import PlatformSettings, child_environment

logger = logging.getLogger(__name__)


#: The pipeline template every family's training pipeline is made from.
TEMPLATE_MODULE: Final = "pipelines/training/pipeline.py"
TEMPLATE_FUNCTION: Final = "training_pipeline"


@dataclass(frozen=True)
class PipelineSpec:
    """Where a family's pipeline is defined and where its compiled IR YAML is kept."""

    name: str
    module: str
    function: str
    compiled: str


def pipeline_names() -> tuple[str, ...]:
    """One training pipeline per model family."""
    from getit_ml.families import family_names

    return family_names()


def spec(name: str) -> PipelineSpec:
    """The pipeline of family ``name``, or a :class:`UserError` listing the known ones."""
    if name not in pipeline_names():
        raise UserError(f"unknown pipeline {name!r}; known: {', '.join(pipeline_names())}")
    return PipelineSpec(
        name=name,
        module=TEMPLATE_MODULE,
        function=TEMPLATE_FUNCTION,
        compiled=f"pipelines/compiled/{name}_training.yaml",
    )


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) that holds
    ``pipelines/`` and ``components/``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pipelines").is_dir() and (folder / "components").is_dir():
            return folder
    raise UserError(f"no getit-ml project (pipelines/ and components/) at or above {here}")


def load_pipeline(name: str, root: Path) -> Any:
    """The ``@dsl.pipeline`` function of family ``name``'s pipeline, made from the template
    under ``root``."""
    from getit_ml.families import get_family

    pipeline = spec(name)
    path = root / pipeline.module
    if not path.is_file():
        raise UserError(f"pipeline {name}: {path} does not exist")
    # The template imports ``components.<name>.component``: the project root must be importable.
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module_spec = importlib.util.spec_from_file_location("getit_training_pipeline", path)
    if module_spec is None or module_spec.loader is None:
        raise UserError(f"cannot import {path}")
    module: ModuleType = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    try:
        factory = getattr(module, pipeline.function)
    except AttributeError:
        raise UserError(f"{path} defines no {pipeline.function}()") from None
    return factory(get_family(name))


def compile_pipeline(name: str, root: Path, out: Path | None = None) -> Path:
    """Compile pipeline ``name`` to IR YAML (default: its file under ``pipelines/compiled``)."""
    from kfp import compiler

    target = out or root / spec(name).compiled
    target.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(load_pipeline(name, root), str(target))
    target.write_text(_sorted_header_defaults(target.read_text()))
    logger.info("compiled %s -> %s", name, target)
    return target


_DICT_DEFAULT = re.compile(r"^(#.*\[Default: )(\{.*\})(\])$")


def _sorted_header_defaults(text: str) -> str:
    """kfp's header comment renders a ``dict`` input's default from a protobuf ``Struct``, whose
    key order changes from one process to the next (the YAML body below it is sorted): write
    those defaults with sorted keys, so that the same pipeline always compiles to the same
    bytes and the golden files stay comparable."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            break  # the header ends at the first line of YAML
        match = _DICT_DEFAULT.match(line)
        if match is None:
            continue
        try:
            value = ast.literal_eval(match.group(2))
        except (ValueError, SyntaxError):
            continue  # not a literal kfp wrote: leave it as it is
        if isinstance(value, dict):
            ordered = {key: value[key] for key in sorted(value, key=str)}
            lines[i] = f"{match.group(1)}{ordered!r}{match.group(3)}"
    return "\n".join(lines)


def code_version(root: Path) -> str:
    """The git commit of ``root`` (``+dirty`` with uncommitted changes), else the package
    version: what the registry records as the training code's version."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return getit_ml.__version__
    return f"{commit}+dirty" if dirty else commit


def pipeline_arguments(
    settings: PlatformSettings,
    data_dir: Path,
    root: Path,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's arguments: the data folder, its snapshot id (the cache key), the code version
    and the settings' promotion rule when they set one (else the family's); ``overrides``
    last."""
    from getit_ml.data.snapshot import snapshot_id

    folder = data_dir.resolve()
    arguments: dict[str, Any] = {
        "data_dir": str(folder),
        "snapshot_id": snapshot_id(folder),
        "code_version": code_version(root),
    }
    arguments.update(promotion_arguments(settings))
    arguments.update(overrides or {})
    return arguments


def promotion_arguments(settings: PlatformSettings) -> dict[str, Any]:
    """The promotion rule the settings set (``GETIT_ML_PROMOTION_METRIC``/``_MARGIN``), as
    pipeline arguments; what they leave unset stays the family's."""
    arguments: dict[str, Any] = {}
    if settings.promotion_metric:
        arguments["promotion_metric"] = settings.promotion_metric
    if settings.promotion_margin is not None:
        arguments["promotion_margin"] = settings.promotion_margin
    return arguments


@contextlib.contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` set in this process (and so in its children) for the block's duration."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class LocalRun:
    """A finished local run: its id, the folder of its outputs and what the pipeline returned."""

    run_id: str
    pipeline_root: Path
    output: Any
    seconds: float

    @property
    def feature_store(self) -> Path | None:
        """The feature store the run's ``engineer_features`` step built, applied and
        materialized (what ``getit-ml serve FAMILY --with-transformer --feature-store`` takes);
        ``None`` when the run has none."""
        found = sorted(self.pipeline_root.glob("*/engineer-features/feature_store"))
        stores = [path for path in found if (path / "data").is_dir()]
        return stores[-1] if stores else None


def run_local(
    name: str,
    settings: PlatformSettings,
    arguments: Mapping[str, Any],
    *,
    root: Path,
    pipeline_root: Path | None = None,
    log_file: Path | None = None,
) -> LocalRun:
    """Run pipeline ``name`` with ``kfp.local``'s SubprocessRunner in this environment.

    Each step is a child process that reads its settings from the environment, so the caller's
    settings are exported to it for the run (:func:`~getit_ml.settings.child_environment`).
    A failed step raises :class:`UserError` naming it; its log goes to stderr, or to
    ``log_file`` when one is given (the demo keeps its screen for the summary).
    """
    from kfp import local

    pipeline = load_pipeline(name, root)
    run_id = f"local-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    outputs = (pipeline_root or settings.home / "pipelines").resolve() / run_id
    outputs.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(outputs))
    started = time.perf_counter()
    with _environment(child_environment(settings)), output_to(log_file):
        try:
            task = pipeline(**arguments)
        except RuntimeError as error:  # kfp.local: "Pipeline ... finished with status FAILURE"
            message = _plain(" ".join(str(error).split()))
            where = f" (log: {log_file})" if log_file is not None else ""
            raise UserError(
                f"pipeline {name} failed: {message}{where}{_failure_reports(outputs)}"
            ) from None
    seconds = time.perf_counter() - started
    output = task.output if task.outputs else None
    logger.info("pipeline %s finished in %.0f s: %s", name, seconds, output)
    return LocalRun(run_id, outputs, output, seconds)


#: Lines of a failed step's report shown in the error (the whole report stays on disk).
REPORT_LINES: Final = 40


def _failure_reports(outputs: Path) -> str:
    """The reports a failed step left (``validate_data`` writes its report before it fails)."""
    shown = []
    for report in sorted(outputs.rglob("report")):
        if report.is_file():
            lines = report.read_text(encoding="utf-8", errors="replace").splitlines()
            body = "\n".join(lines[:REPORT_LINES])
            more = (
                f"\n... ({len(lines) - REPORT_LINES} more lines)"
                if len(lines) > REPORT_LINES
                else ""
            )
            shown.append(f"\n{report}:\n{body}{more}")
    return "".join(shown)


def _plain(text: str) -> str:
    """``text`` without ANSI colour codes (kfp.local colours its messages)."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def submit(
    name: str,
    arguments: Mapping[str, Any],
    *,
    root: Path,
    host: str,
    experiment: str,
    namespace: str | None = None,
    run_name: str | None = None,
    enable_caching: bool = True,
) -> str:
    """Submit pipeline ``name`` to the Kubeflow Pipelines API at ``host``; returns the run id.

    The compiled YAML under ``pipelines/compiled`` is what gets submitted (compiled afresh into
    a temporary file first, so a stale checked-in file can never be what runs).
    """
    import tempfile

    import kfp

    with tempfile.TemporaryDirectory() as folder:
        package = compile_pipeline(name, root, Path(folder) / f"{name}.yaml")
        try:
            client = kfp.Client(host=host, namespace=namespace)
            run = client.create_run_from_pipeline_package(
                str(package),
                arguments=dict(arguments),
                run_name=run_name,
                experiment_name=experiment,
                namespace=namespace,
                enable_caching=enable_caching,
            )
        except Exception as error:  # kfp_server_api, urllib3 and requests errors alike
            raise UserError(f"cannot submit to {host}: {type(error).__name__}: {error}") from None
    return str(run.run_id)


@contextlib.contextmanager
def output_to(log_file: Path | None) -> Iterator[None]:
    """Send this process's stdout and stderr, and so its children's, to ``log_file`` for the
    block (file-descriptor level: kfp.local's task logs and Feast's progress bars included)."""
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log_file.open("ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
