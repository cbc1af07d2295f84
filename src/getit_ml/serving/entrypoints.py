"""Command lines of the two model servers, built on KServe's own argument parser.

``kserve.model_server.parser`` brings KServe's flags (``--http_port``, ``--grpc_port``,
``--model_name``, ``--predictor_host``, ``--predictor_protocol``, ``--enable_grpc``, ...), so the
servers take the arguments the KServe controller passes to any predictor or transformer; ours are
added on top. ``--server fast`` (the default) serves through :mod:`getit_ml.serving.server`;
``--server kserve`` hands the ``kserve.Model`` to a stock ``kserve.ModelServer`` instead (same
model code, KServe's REST/gRPC front ends, for comparison or as a fallback).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from getit_ml.errors import UserError
from getit_ml.serving.protocol import DEFAULT_MAX_BODY_BYTES
from getit_ml.serving.repository import ModelRepository, ServedModel
from getit_ml.serving.scorer import DEFAULT_MODEL_NAME, FraudScorer, ScorerOptions, load_scorer
from getit_ml.serving.server import ServerOptions, run_forever

logger = logging.getLogger(__name__)


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(model_name=DEFAULT_MODEL_NAME)
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
    parser.add_argument("--host", default="0.0.0.0", help="Address to listen on.")
    parser.add_argument("--log_level", default="INFO", help="getit_ml log level.")


def scorer_parser() -> argparse.ArgumentParser:
    """KServe's parser plus the fraud scorer's flags."""
    from kserve import model_server  # type: ignore[import-untyped]

    parser = argparse.ArgumentParser(
        prog="fraud_scorer",
        parents=[model_server.parser],
        description="The fraud scorer: a KServe v2 predictor for the registered XGBoost model.",
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
    parser.add_argument("--expected_sha256", help="With --model_dir: refuse other bytes.")
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
        description="The Feast feature transformer in front of the fraud scorer.",
    )
    _common(parser)
    parser.set_defaults(predictor_protocol="v2")
    parser.add_argument(
        "--feature_store",
        help="Folder of the embedded feature store (default: GETIT_ML_HOME/features).",
    )
    parser.add_argument(
        "--feature_store_profile",
        choices=["embedded", "production"],
        default="embedded",
        help="production: Redis online store and PostgreSQL registry from the settings.",
    )
    parser.add_argument("--feature_service", default="fraud_scoring_v1")
    parser.add_argument(
        "--predictor_timeout", type=float, default=60.0, help="Seconds to wait for the scorer."
    )
    return parser


def scorer_options(args: argparse.Namespace) -> ScorerOptions:
    return ScorerOptions(
        name=args.model_name,
        threshold=args.threshold,
        max_rows=args.max_rows,
        nthread=args.xgb_nthread,
        engine=args.engine,
    )


def scorer_loader(args: argparse.Namespace) -> Callable[[], FraudScorer]:
    """What loads the scorer the arguments name (also the repository extension's loader)."""
    options = scorer_options(args)
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
        return lambda: load_scorer(
            model_dir=model_dir, expected_sha256=args.expected_sha256, options=options
        )
    raise UserError("give the model: --model_uri models:/fraud@champion or --model_dir PATH")


def open_feature_store(args: argparse.Namespace) -> Any:
    from getit_ml.features.store import Profile, open_store
    from getit_ml.settings import load_settings

    settings = load_settings()
    root = Path(args.feature_store) if args.feature_store else settings.home / "features"
    if not (root / "data").is_dir() and args.feature_store_profile == "embedded":
        raise UserError(
            f"no feature store at {root}: build one (getit-ml features build / apply / "
            "materialize, or run the demo) or pass --feature_store"
        )
    return open_store(settings, root, Profile(args.feature_store_profile))


def server_options(args: argparse.Namespace) -> ServerOptions:
    return ServerOptions(
        http_port=args.http_port,
        grpc_port=args.grpc_port if args.enable_grpc else None,
        host=args.host,
        max_body_bytes=args.max_body_bytes,
        grace_period_s=args.grace_period,
    )


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


def run_scorer(argv: Sequence[str] | None = None) -> None:
    """``python -m getit_ml.serving scorer ...``: the fraud scorer on the fast servers."""
    args = scorer_parser().parse_args(argv)
    configure(args)
    loader = scorer_loader(args)
    serve_models([loader()], args, {args.model_name: loader})


def run_transformer(argv: Sequence[str] | None = None) -> None:
    """``python -m getit_ml.serving transformer ...``: the feature transformer."""
    from getit_ml.serving.transformer import FeastLookup, FeatureTransformer, predictor_client

    args = transformer_parser().parse_args(argv)
    configure(args)
    if not args.predictor_host:
        raise UserError("give the scorer: --predictor_host HOST:PORT")
    lookup = FeastLookup(open_feature_store(args), args.feature_service)
    transformer = FeatureTransformer(
        lookup,
        predictor_client(args.predictor_host, args.predictor_protocol),
        name=args.model_name,
    )
    transformer.connect(args.predictor_timeout)
    serve_models([transformer], args)
