"""Start the drift detector: ``python -m inference_services.drift_detector --reference_dir DIR``
and point the InferenceService's ``logger.url`` at it.

kserve 0.12.1's ``kserve.model_server.parser`` gives the standard flags (``--http_port``,
``--model_name``, ...); the detector adds its own. Configuration is flags only.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from getit_ml.errors import UserError
from getit_ml.log import LOG_FORMAT


def build_parser() -> argparse.ArgumentParser:
    from kserve.model_server import parser as kserve_parser

    from getit_ml.monitoring.detectors import CALENDAR_FEATURES

    parser = argparse.ArgumentParser(
        parents=[kserve_parser],
        description="Drift and outlier detector for the fraud model, fed by the KServe payload "
        "logger's CloudEvents.",
    )
    parser.add_argument(
        "--reference_dir",
        type=Path,
        required=True,
        help="Folder with reference.parquet and feature_schema.json.",
    )
    parser.add_argument(
        "--schema", type=Path, default=None, help="feature_schema.json, if not in --reference_dir."
    )
    parser.add_argument("--window_size", type=int, default=500, help="Instances per window.")
    parser.add_argument(
        "--step",
        type=int,
        default=None,
        help="New instances between tests of a full window (default: the window "
        "size: windows do not overlap).",
    )
    parser.add_argument(
        "--p_val", type=float, default=0.05, help="Family-wise significance of a window's tests."
    )
    parser.add_argument("--correction", choices=["bonferroni", "fdr"], default="bonferroni")
    parser.add_argument(
        "--ignore_features",
        default=",".join(CALENDAR_FEATURES),
        help="Comma-separated features left out of the input test (default: the "
        "calendar context, constant within a window); '' for none.",
    )
    parser.add_argument(
        "--no_score_test",
        action="store_true",
        help="Do not compare the output scores with the reference's.",
    )
    parser.add_argument("--outlier", choices=["iforest", "mahalanobis", "none"], default="iforest")
    parser.add_argument("--outlier_percentile", type=float, default=99.0)
    parser.add_argument(
        "--reference_scores_url",
        default=None,
        help="v2 predictor URL to score the reference data at start-up (the score "
        "test's reference); without it the first full window is.",
    )
    parser.add_argument(
        "--input_name",
        default=None,
        help="The request's feature tensor, when it has several inputs.",
    )
    parser.add_argument(
        "--predictor_input_name",
        default="features",
        help="Input tensor name for --reference_scores_url.",
    )
    parser.add_argument(
        "--missing",
        choices=["mask", "null"],
        default="mask",
        help="How missing values reach the predictor of --reference_scores_url.",
    )
    parser.add_argument(
        "--output_name",
        default=None,
        help="The response's fraud-probability output (default: found by name).",
    )
    parser.add_argument(
        "--models", default="", help="Comma-separated InferenceServices to monitor (default: all)."
    )
    parser.add_argument("--max_pending", type=int, default=10_000)
    parser.add_argument(
        "--pending_ttl",
        type=float,
        default=120.0,
        help="Seconds a request waits for its response (and vice versa).",
    )
    parser.add_argument("--max_models", type=int, default=32)
    parser.add_argument(
        "--state_file",
        type=Path,
        default=None,
        help="JSON file keeping the last results across restarts.",
    )
    parser.add_argument(
        "--alert_url", default=None, help="Where drift alerts go (none: no alerts)."
    )
    parser.add_argument("--alert_format", choices=["cloudevent", "webhook"], default="cloudevent")
    parser.add_argument(
        "--alert_cooldown",
        type=float,
        default=300.0,
        help="Seconds before a model that keeps drifting alerts again.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--host", default="0.0.0.0", help="Address to listen on.")
    parser.add_argument("--log_level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    log = logging.getLogger(__name__)
    try:
        import uvicorn

        from getit_ml.monitoring.alerts import AlertConfig, AlertSender
        from getit_ml.monitoring.detectors import DetectorConfig, Detectors
        from getit_ml.monitoring.metrics import DriftMetrics
        from getit_ml.monitoring.monitor import DriftMonitor, MonitorConfig
        from getit_ml.monitoring.predictor import PredictorError, V2Predictor
        from getit_ml.monitoring.schema import load_reference
        from inference_services.drift_detector.model import create_application

        reference = load_reference(args.reference_dir, args.schema)
        ignored = tuple(n.strip() for n in args.ignore_features.split(",") if n.strip())
        detectors = Detectors(
            reference,
            DetectorConfig(
                p_val=args.p_val,
                correction=args.correction,
                ignore_features=ignored,
                compare_scores=not args.no_score_test,
                outlier=args.outlier,
                outlier_percentile=args.outlier_percentile,
                seed=args.seed,
            ),
        )
        if args.reference_scores_url and not args.no_score_test:
            predictor = V2Predictor(
                args.reference_scores_url,
                args.model_name,
                input_name=args.predictor_input_name,
                missing=args.missing,
                output_name=args.output_name,
            )
            try:
                predictor.wait_ready(60.0)
                scores = predictor(reference.features)
            except PredictorError as error:
                raise UserError(f"could not score the reference data: {error}") from None
            detectors.set_reference_scores(scores, f"reference scored by {predictor.infer_url}")
        metrics = DriftMetrics()
        alerts = None
        if args.alert_url:
            alert_config = AlertConfig(
                url=args.alert_url, format=args.alert_format, cooldown_s=args.alert_cooldown
            )
            alerts = AlertSender(
                alert_config, lambda outcome: metrics.alerts.labels(outcome=outcome).inc()
            )
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
        monitor = DriftMonitor(
            detectors,
            MonitorConfig(
                window_size=args.window_size,
                step=args.step,
                max_pending=args.max_pending,
                pending_ttl_s=args.pending_ttl,
                max_models=args.max_models,
                models=models,
                input_name=args.input_name,
                output_name=args.output_name,
                state_path=args.state_file,
            ),
            metrics=metrics,
            alerts=alerts,
        )
    except UserError as error:
        logging.getLogger("getit_ml").error("%s", error)
        return 2
    log.info(
        "drift detector on port %d: window %d, %d features tested, alerts to %s",
        args.http_port,
        args.window_size,
        len(detectors.tested),
        args.alert_url or "nowhere",
    )
    uvicorn.run(
        create_application(monitor),
        host=args.host,
        port=args.http_port,
        log_level=args.log_level.lower(),
    )
    if alerts is not None:
        alerts.flush(5.0)
        alerts.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
