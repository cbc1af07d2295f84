"""Start the explainer: ``python -m inference_services.explainer --model_name fraud
--reference_dir DIR --predictor_url http://fraud-predictor``.

kserve 0.12.1's parser gives the standard flags (``--http_port``, ``--model_name``, ...); the
predictor flags are the ones the drift detector shares (:mod:`getit_ml.monitoring.sidecars`).
Class names and reason phrases come from the reference's feature schema. Flags only.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from getit_ml.errors import UserError
from getit_ml.log import LOG_FORMAT


def build_parser() -> argparse.ArgumentParser:
    from getit_ml.monitoring.sidecars import add_predictor_flags, add_reference_flags, kserve_parser

    parser = kserve_parser(
        "KServe explainer for a served model: AnchorTabular rules and Kernel SHAP attributions "
        "with reason codes, over a v2 HTTP predictor."
    )
    add_reference_flags(parser)
    add_predictor_flags(parser, required=True)
    parser.add_argument(
        "--methods", default="anchor,kernel_shap", help="Comma-separated: anchor, kernel_shap."
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="Scores at or above this are the positive class (the anchor's class).",
    )
    parser.add_argument("--top_k", type=int, default=3, help="Reason codes per explanation.")
    parser.add_argument("--anchor_precision", type=float, default=0.95)
    parser.add_argument("--anchor_max_size", type=int, default=4)
    parser.add_argument(
        "--anchor_candidates",
        type=int,
        default=8,
        help="Features the anchor search may use (the most influential); 0 = all.",
    )
    parser.add_argument("--shap_nsamples", type=int, default=256)
    parser.add_argument("--shap_background", type=int, default=12)
    parser.add_argument("--shap_backend", choices=["auto", "alibi", "numpy"], default="auto")
    parser.add_argument(
        "--max_instances",
        type=int,
        default=16,
        help="Most instances one explain request may carry.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    try:
        import uvicorn

        from getit_ml.monitoring.explainer import ExplainerConfig
        from getit_ml.monitoring.predictor import V2Predictor
        from getit_ml.monitoring.schema import SCHEMA_FILE, FeatureSchema
        from inference_services.explainer.model import TabularExplainerModel, create_application

        schema = FeatureSchema.read(args.schema or args.reference_dir / SCHEMA_FILE)
        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        config = ExplainerConfig(
            methods=methods,
            threshold=args.threshold,
            top_k=args.top_k,
            anchor_precision=args.anchor_precision,
            anchor_max_size=args.anchor_max_size or None,
            anchor_candidates=args.anchor_candidates,
            shap_nsamples=args.shap_nsamples,
            shap_background=args.shap_background,
            shap_backend=args.shap_backend,
            seed=args.seed,
        )
        predictor = V2Predictor(
            args.predictor_url,
            args.predictor_model or args.model_name,
            input_name=args.predictor_input_name,
            missing=args.missing,
            output_name=args.output_name or schema.monitoring.output,
            timeout_s=args.predictor_timeout,
        )
        model = TabularExplainerModel(
            args.model_name,
            args.reference_dir,
            predictor,
            config,
            schema_path=args.schema,
            max_instances=args.max_instances,
            predictor_wait_s=args.predictor_wait,
        )
        model.load()
    except UserError as error:
        logging.getLogger("getit_ml").error("%s", error)
        return 2
    logging.getLogger(__name__).info(
        "explainer %s on port %d, predictor %s",
        args.model_name,
        args.http_port,
        predictor.infer_url,
    )
    uvicorn.run(
        create_application(model),
        host=args.host,
        port=args.http_port,
        log_level=args.log_level.lower(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
