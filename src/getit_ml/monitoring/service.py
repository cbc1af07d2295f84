"""The drift detector as a service: its flags, and the monitor they describe.

``inference_services/drift_detector/__main__.py`` parses :func:`drift_parser`, calls
:func:`build_drift_service` and serves the result's HTTP application: the adapter holds no logic.
What a model family contributes — the features the input test leaves out (constant within a
window, like the local hour), the output that holds the score — comes from the reference's
feature schema (its monitoring hints), written by training.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from getit_ml.errors import UserError
from getit_ml.monitoring.alerts import AlertConfig, AlertSender
from getit_ml.monitoring.detectors import DetectorConfig, Detectors
from getit_ml.monitoring.metrics import DriftMetrics
from getit_ml.monitoring.monitor import DriftMonitor, MonitorConfig
from getit_ml.monitoring.predictor import PredictorError, V2Predictor
from getit_ml.monitoring.schema import load_reference
from getit_ml.monitoring.sidecars import add_predictor_flags, add_reference_flags, kserve_parser

logger = logging.getLogger(__name__)

#: ``--ignore_features`` value meaning "what the schema's monitoring hints say".
FROM_SCHEMA = "schema"


def drift_parser() -> argparse.ArgumentParser:
    parser = kserve_parser(
        "Drift and outlier detector for a served model, fed by the KServe payload logger's "
        "CloudEvents."
    )
    add_reference_flags(parser)
    add_predictor_flags(parser, required=False)
    parser.add_argument("--window_size", type=int, default=500, help="Instances per window.")
    parser.add_argument(
        "--step",
        type=int,
        default=None,
        help="New instances between tests of a full window (default: the window size: windows "
        "do not overlap).",
    )
    parser.add_argument(
        "--p_val", type=float, default=0.05, help="Family-wise significance of a window's tests."
    )
    parser.add_argument("--correction", choices=["bonferroni", "fdr"], default="bonferroni")
    parser.add_argument(
        "--ignore_features",
        default=FROM_SCHEMA,
        help="Comma-separated features left out of the input test; 'schema' (the default): the "
        "features the family's monitoring hints name; '' for none.",
    )
    parser.add_argument(
        "--no_score_test",
        action="store_true",
        help="Do not compare the output scores with the reference's.",
    )
    parser.add_argument("--outlier", choices=["iforest", "mahalanobis", "none"], default="iforest")
    parser.add_argument("--outlier_percentile", type=float, default=99.0)
    parser.add_argument(
        "--payload_input_name",
        default=None,
        help="The logged request's feature tensor, when it has several inputs.",
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
        type=__import__("pathlib").Path,
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
    return parser


@dataclass
class DriftService:
    """What the drift detector's process runs: the monitor, its metrics and its alert sender."""

    monitor: DriftMonitor
    detectors: Detectors
    alerts: AlertSender | None

    def close(self) -> None:
        if self.alerts is not None:
            self.alerts.flush(5.0)
            self.alerts.close()


def build_drift_service(args: argparse.Namespace) -> DriftService:
    """The monitor the parsed :func:`drift_parser` arguments describe (a :class:`UserError`
    for anything the operator can fix)."""
    reference = load_reference(args.reference_dir, args.schema)
    hints = reference.schema.monitoring
    ignored: tuple[str, ...] | None = None  # the schema's hints
    if args.ignore_features != FROM_SCHEMA:
        ignored = tuple(n.strip() for n in args.ignore_features.split(",") if n.strip())
    output_name = args.output_name or hints.output
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
    if args.predictor_url and not args.no_score_test:
        predictor = V2Predictor(
            args.predictor_url,
            args.predictor_model or args.model_name,
            input_name=args.predictor_input_name,
            missing=args.missing,
            output_name=output_name,
            timeout_s=args.predictor_timeout,
        )
        try:
            predictor.wait_ready(args.predictor_wait)
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
            input_name=args.payload_input_name,
            output_name=output_name,
            state_path=args.state_file,
        ),
        metrics=metrics,
        alerts=alerts,
    )
    logger.info(
        "drift detector on port %d: window %d, %d of %d features tested, alerts to %s",
        args.http_port,
        args.window_size,
        len(detectors.tested),
        reference.schema.width,
        args.alert_url or "nowhere",
    )
    return DriftService(monitor, detectors, alerts)
