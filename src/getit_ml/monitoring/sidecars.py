"""The monitoring sidecars' command lines: one set of flags for talking to the predictor, the
explainer's and the drift detector's own, and how to start either as a process.

Both sidecars call the served model as a black box over v2 REST (the explainer for every
explanation, the drift detector to score its reference at start-up), so they share one set of
predictor flags with one meaning (:func:`add_predictor_flags`). Flags are all there is: the
sidecars read no settings (the monitoring environment has no pydantic-settings); what they need
of the model family comes from the reference export's ``feature_schema.json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from getit_ml.errors import UserError
from getit_ml.processes import module_command

#: Sidecar name -> package under inference_services/.
SIDECARS: Final[dict[str, str]] = {"explainer": "explainer", "drift": "drift_detector"}


def sidecar_command(python: Path, sidecar: str, arguments: Sequence[str]) -> list[str]:
    """The command line that starts ``sidecar`` with the monitoring interpreter ``python``."""
    if sidecar not in SIDECARS:
        raise UserError(f"unknown sidecar {sidecar!r}; choose from {sorted(SIDECARS)}")
    return module_command(f"inference_services.{SIDECARS[sidecar]}", arguments, python)


def monitoring_python(configured: Path) -> Path:
    """The monitoring interpreter (``GETIT_ML_MONITORING_PYTHON``), or a clear error."""
    python = configured if configured.is_absolute() else Path.cwd() / configured
    if not python.exists():
        raise UserError(
            f"the monitoring interpreter {python} does not exist: run `make setup`, or set "
            "GETIT_ML_MONITORING_PYTHON to the python of an environment with alibi 0.9.4 and "
            "alibi-detect 0.11.4"
        )
    return python


def add_reference_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reference_dir",
        type=Path,
        required=True,
        help="Folder with reference.parquet and feature_schema.json (the training pipeline's "
        "export_reference).",
    )
    parser.add_argument(
        "--schema", type=Path, default=None, help="feature_schema.json, if not in --reference_dir."
    )


def add_predictor_flags(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """The flags of the v2 predictor a sidecar calls, the same for both sidecars."""
    parser.add_argument(
        "--predictor_url",
        required=required,
        default=None,
        help="Base URL of the v2 predictor, e.g. http://fraud-predictor.default (or its full "
        ".../infer URL)"
        + (
            "."
            if required
            else "; the drift detector scores its reference with it at start-up "
            "(the score test's reference), else the first full window is the reference."
        ),
    )
    parser.add_argument(
        "--predictor_model",
        default=None,
        help="Model name at the predictor (default: --model_name).",
    )
    parser.add_argument(
        "--predictor_input_name",
        default="features",
        help="The predictor's batch input tensor (the xgboost-binary scorer's: features).",
    )
    parser.add_argument(
        "--missing",
        choices=["mask", "null"],
        default="mask",
        help="How missing values reach the predictor: a BOOL `missing` input (the platform's "
        "scorer) or JSON null.",
    )
    parser.add_argument(
        "--output_name",
        default=None,
        help="The response output holding the score, in the predictor's answers and in the "
        "payload log (default: the schema's monitoring hints, else found by name).",
    )
    parser.add_argument(
        "--predictor_timeout", type=float, default=10.0, help="Seconds for one predictor call."
    )
    parser.add_argument(
        "--predictor_wait",
        type=float,
        default=120.0,
        help="Seconds to wait at start-up for the predictor to be ready.",
    )


def kserve_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser on kserve 0.12.1's (``--http_port``, ``--model_name``, ...)."""
    from kserve.model_server import parser as kserve_base  # type: ignore[import-untyped]

    parser = argparse.ArgumentParser(parents=[kserve_base], description=description)
    parser.add_argument("--host", default="0.0.0.0", help="Address to listen on.")
    parser.add_argument("--log_level", default="INFO")
    parser.add_argument("--seed", type=int, default=0)
    return parser
