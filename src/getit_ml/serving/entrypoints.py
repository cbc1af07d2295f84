"""Command lines of the model servers, built on KServe's own argument parser.

``kserve.model_server.parser`` brings KServe's flags (``--http_port``, ``--grpc_port``,
``--model_name``, ``--predictor_host``, ``--predictor_protocol``, ``--enable_grpc``, ...), so the
servers take the arguments the KServe controller passes to any predictor or transformer; ours are
added on top. ``--server fast`` (the default) serves through :mod:`getit_ml.serving.server`;
``--server kserve`` hands the ``kserve.Model`` to a stock ``kserve.ModelServer`` instead (same
model code, KServe's REST/gRPC front ends, for comparison or as a fallback).

The one entry point of each server is its ``inference_services/<server>/__main__.py`` (what the
containers run and what :mod:`getit_ml.serving.launcher` starts on one machine): it parses with
the parser here, builds its ``kserve.Model`` adapter around what :func:`scorer_loader` or
:func:`build_transformer` make, and calls :func:`serve`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from getit_ml.errors import UserError
from getit_ml.serving.http_protocol import DEFAULT_MAX_CONNECTIONS, DEFAULT_READ_TIMEOUT_S
from getit_ml.serving.protocol import DEFAULT_MAX_BODY_BYTES
from getit_ml.serving.repository import ModelRepository, ServedModel
from getit_ml.serving.runtime import ServingSpec
from getit_ml.serving.scorer import (
    DEFAULT_MODEL_NAME,
    BinaryTabularScorer,
    ScorerOptions,
    load_scorer,
)
from getit_ml.serving.server import ServerOptions, run_forever

logger = logging.getLogger(__name__)

#: KServe's parser defaults ``--model_name`` to this; ours then take the family's name.
KSERVE_DEFAULT_NAME = "model"


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--family",
        default=None,
        help="Model family served (getit_ml.families): its request, feature service and head; "
        "default: --model_name.",
    )
    parser.add_argument(
        "--server",
        choices=["fast", "kserve"],
        default="fast",
        help="fast: getit-ml's lean v2 REST + gRPC servers; kserve: a stock kserve.ModelServer.",
    )
    parser.add_argument(
        "--max_body_bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="Largest request body (REST) or message (gRPC) accepted; larger gets 413.",
    )
    parser.add_argument(
        "--enable_repository_extension",
        type=_flag,
        default=False,
        help="Allow /v2/repository/models/<m>/load|unload (off: 403).",
    )
    parser.add_argument(
        "--grace_period", type=int, default=30, help="Seconds to drain requests on SIGTERM."
    )
    parser.add_argument(
        "--read_timeout",
        type=float,
        default=DEFAULT_READ_TIMEOUT_S,
        help="Seconds a REST request (head and body) may take to arrive; slower: 408, closed.",
    )
    parser.add_argument(
        "--max_connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help="Open REST connections at most (more: 503 + Retry-After), and concurrent gRPC "
        "calls; 0: no cap.",
    )
    parser.add_argument(
        "--metrics",
        type=_flag,
        default=True,
        help="Per-model Prometheus metrics at GET /metrics (--server fast).",
    )
    parser.add_argument("--host", default="0.0.0.0", help="Address to listen on.")
    parser.add_argument("--log_level", default="INFO", help="getit_ml log level.")


def model_name(args: argparse.Namespace) -> str:
    """The served model's name: ``--model_name``, else the family's, else ``model``."""
    name = str(args.model_name)
    if name == KSERVE_DEFAULT_NAME and args.family:
        return str(args.family)
    return name or DEFAULT_MODEL_NAME


def family_name(args: argparse.Namespace) -> str:
    """``--family``, else the model's name (an InferenceService is named after its family)."""
    return str(args.family or args.model_name)


def scorer_parser() -> argparse.ArgumentParser:
    """KServe's parser plus the binary tabular scorer's flags."""
    from kserve import model_server  # type: ignore[import-untyped]

    parser = argparse.ArgumentParser(
        prog="xgboost_scorer",
        parents=[model_server.parser],
        description="The xgboost-binary runtime: a KServe v2 predictor for a registered binary "
        "XGBoost model of any family (fraud, churn).",
    )
    _common(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model_uri", help="Registry reference, e.g. models:/fraud@champion.")
    source.add_argument("--model_dir", help="A saved model folder (model.json + metadata/).")
    parser.add_argument(
        "--tracking_uri",
        help="MLflow tracking/registry URI for --model_uri (default: GETIT_ML_MLFLOW_TRACKING_URI, "
        "else the embedded registry under GETIT_ML_HOME).",
    )
    parser.add_argument(
        "--expected_sha256",
        help="With --model_dir: the folder's artefact SHA-256 (the registry's getit.sha256 tag); "
        "other bytes are refused.",
    )
    parser.add_argument(
        "--allow_unverified",
        type=_flag,
        default=False,
        help="With --model_dir: serve the folder without --expected_sha256 (development only).",
    )
    parser.add_argument("--threshold", type=float, help="Decision threshold (default: model's).")
    parser.add_argument("--max_rows", type=int, default=10_000, help="Rows per request, at most.")
    parser.add_argument("--xgb_nthread", type=int, default=1, help="XGBoost threads per predict.")
    parser.add_argument(
        "--engine",
        choices=["auto", "xgboost"],
        default="auto",
        help="auto: the verified flat forest for small batches, XGBoost otherwise.",
    )
    return parser


def transformer_parser() -> argparse.ArgumentParser:
    """KServe's parser plus the feature transformer's flags."""
    from kserve import model_server

    parser = argparse.ArgumentParser(
        prog="feature_transformer",
        parents=[model_server.parser],
        description="The Feast feature transformer in front of a family's model.",
    )
    _common(parser)
    parser.set_defaults(predictor_protocol="v2")
    parser.add_argument(
        "--feature_store",
        help="Folder of the embedded feature store (default: the family's demo store under "
        "GETIT_ML_HOME/features).",
    )
    parser.add_argument(
        "--feature_store_profile",
        choices=["embedded", "production"],
        default="embedded",
        help="production: Redis online store and PostgreSQL registry from the settings.",
    )
    parser.add_argument(
        "--feature_service", default=None, help="Feast feature service (default: the family's)."
    )
    parser.add_argument(
        "--predictor_timeout",
        type=float,
        default=60.0,
        help="Seconds to wait at start-up for the scorer to be ready.",
    )
    parser.add_argument(
        "--predictor_call_timeout",
        type=float,
        default=None,
        help="Seconds one scorer call may take before the request gets 503 (default: "
        "GETIT_ML_PREDICTOR_CALL_TIMEOUT_S).",
    )
    parser.add_argument(
        "--feature_read_deadline",
        type=float,
        default=None,
        help="Seconds one online feature read may take before the request gets 503 (default: "
        "GETIT_ML_FEATURE_READ_DEADLINE_S).",
    )
    parser.add_argument(
        "--freshness_check",
        choices=["ttl", "off"],
        default="ttl",
        help="ttl: not ready while a feature view's materialization watermark is older than "
        "its ttl; off: only a missing watermark counts (historical demo data).",
    )
    return parser


def scorer_options(args: argparse.Namespace) -> ScorerOptions:
    name = model_name(args)
    return ScorerOptions(
        # Neither --model_name nor --family: the model is named after its family.
        name=None if name == KSERVE_DEFAULT_NAME else name,
        threshold=args.threshold,
        max_rows=args.max_rows,
        nthread=args.xgb_nthread,
        engine=args.engine,
    )


def scorer_loader(args: argparse.Namespace) -> Callable[[], BinaryTabularScorer]:
    """What loads the scorer the arguments name (also the repository extension's loader)."""
    options = scorer_options(args)
    if not args.model_dir and (args.expected_sha256 or args.allow_unverified):
        # A registry reference is always verified (against the registry's record).
        raise UserError("--expected_sha256 and --allow_unverified apply to --model_dir only")
    if args.model_uri:
        from getit_ml.registry.mlflow_registry import RegistryConfig
        from getit_ml.settings import load_settings

        settings = load_settings()
        registry = (
            RegistryConfig.from_uri(args.tracking_uri, settings.mlflow_artifact_location)
            if args.tracking_uri
            else RegistryConfig.from_settings(settings)
        )
        return lambda: load_scorer(model_uri=args.model_uri, registry=registry, options=options)
    if args.model_dir:
        model_dir = Path(args.model_dir)
        if not args.expected_sha256 and not args.allow_unverified:
            # A folder is whatever bytes are on disk now: serve it only if they are the ones
            # registered, or if the operator says in so many words that they need not be.
            raise UserError(
                f"--model_dir {model_dir} needs --expected_sha256 HEX (the artefact's SHA-256, "
                "as the registry records it) or, to serve it unverified, --allow_unverified true"
            )
        if args.expected_sha256 and args.allow_unverified:
            raise UserError("give --expected_sha256 or --allow_unverified true, not both")
        return lambda: load_scorer(
            model_dir=model_dir, expected_sha256=args.expected_sha256, options=options
        )
    raise UserError("give the model: --model_uri models:/<family>@champion or --model_dir PATH")


def open_feature_store(args: argparse.Namespace, default_root: Path | None = None) -> Any:
    """The Feast store the arguments name: ``--feature_store`` (else ``default_root``, else
    ``GETIT_ML_HOME/features``) with the ``--feature_store_profile``; a Redis online store
    with the serving socket timeouts (``GETIT_ML_ONLINE_STORE_*_TIMEOUT_S``)."""
    from getit_ml.features.store import Profile, RedisTimeouts, open_store
    from getit_ml.settings import load_settings

    settings = load_settings()
    root = Path(args.feature_store) if args.feature_store else default_root
    root = root if root is not None else settings.home / "features"
    if not (root / "data").is_dir() and args.feature_store_profile == "embedded":
        raise UserError(
            f"no feature store at {root}: build one (getit-ml features build / apply / "
            "materialize, or run the demo) or pass --feature_store"
        )
    timeouts = RedisTimeouts(
        connect_s=settings.online_store_connect_timeout_s,
        read_s=settings.online_store_read_timeout_s,
    )
    return open_store(settings, root, Profile(args.feature_store_profile), redis_timeouts=timeouts)


def build_transformer(
    args: argparse.Namespace, serving: ServingSpec, default_store: Path | None = None
) -> Any:
    """The feature transformer the arguments describe, for a family's serving declaration
    (not yet connected: the caller's ``load`` waits for the scorer)."""
    from dataclasses import replace

    from getit_ml.serving.predictor import predictor_client
    from getit_ml.serving.transformer import FeastLookup, FeatureTransformer, ReadOptions
    from getit_ml.settings import load_settings

    if not args.predictor_host:
        raise UserError("give the scorer: --predictor_host HOST:PORT")
    for flag in ("predictor_timeout", "predictor_call_timeout", "feature_read_deadline"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise UserError(f"--{flag} must be positive (got {value})")
    settings = load_settings()
    options = ReadOptions.from_settings(settings)
    if args.feature_read_deadline is not None:
        options = replace(options, deadline_s=args.feature_read_deadline)
    call_timeout_s = args.predictor_call_timeout or settings.predictor_call_timeout_s
    service = args.feature_service or serving.feature_service
    return FeatureTransformer(
        FeastLookup(open_feature_store(args, default_store), service, options),
        predictor_client(args.predictor_host, args.predictor_protocol, timeout_s=call_timeout_s),
        serving.request,
        name=model_name(args),
        degraded=serving.degraded,
        freshness_check=args.freshness_check,
        predictor_timeout_s=call_timeout_s,
        probe_interval_s=settings.dependency_probe_interval_s,
        probe_timeout_s=settings.dependency_probe_timeout_s,
    )


def server_options(args: argparse.Namespace) -> ServerOptions:
    if args.read_timeout <= 0:
        raise UserError(f"--read_timeout must be positive (got {args.read_timeout})")
    if args.max_connections < 0:
        raise UserError(
            f"--max_connections must be 0 (no cap) or more (got {args.max_connections})"
        )
    if args.timeout_keep_alive <= 0:
        raise UserError(
            f"--timeout-keep-alive must be positive seconds (got {args.timeout_keep_alive})"
        )
    return ServerOptions(
        http_port=args.http_port,
        grpc_port=args.grpc_port if args.enable_grpc else None,
        host=args.host,
        max_body_bytes=args.max_body_bytes,
        grace_period_s=args.grace_period,
        # KServe's own flag (its parser's): the idle keep-alive a pooled client must stay under.
        timeout_keep_alive_s=args.timeout_keep_alive,
        read_timeout_s=args.read_timeout,
        max_connections=args.max_connections or None,
        metrics=args.metrics,
    )


def serve(
    models: Sequence[Any],
    args: argparse.Namespace,
    loaders: dict[str, Callable[[], ServedModel]] | None = None,
) -> None:
    """Serve ``kserve.Model`` adapters until SIGTERM: on our fast servers, or with
    ``--server kserve`` on a stock ``kserve.ModelServer``."""
    if args.server == "kserve":
        serve_kserve(models, args)
    else:
        serve_models(models, args, loaders)


def serve_models(
    models: Sequence[ServedModel],
    args: argparse.Namespace,
    loaders: dict[str, Callable[[], ServedModel]] | None = None,
) -> None:
    """Serve on our fast servers until SIGTERM."""
    if args.workers != 1:
        raise UserError(
            "--workers must be 1 with --server fast (one process per replica; scale replicas, "
            "or use --server kserve)"
        )
    repository = ModelRepository(
        models, loaders=loaders, enable_load_unload=args.enable_repository_extension
    )
    run_forever(repository, server_options(args))


def serve_kserve(models: Sequence[Any], args: argparse.Namespace) -> None:
    """Serve ``kserve.Model`` objects on a stock ``kserve.ModelServer``."""
    from kserve import ModelServer

    ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        enable_grpc=args.enable_grpc,
        grace_period=args.grace_period,
    ).start(list(models))


def configure(args: argparse.Namespace) -> None:
    from getit_ml.log import configure_logging

    configure_logging(str(args.log_level).upper())
