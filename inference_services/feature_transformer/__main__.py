"""``python -m inference_services.feature_transformer``: KServe's flags plus ours (--help)."""

from __future__ import annotations

import sys

from getit_ml.errors import UserError
from getit_ml.serving.entrypoints import (
    configure,
    open_feature_store,
    serve_kserve,
    serve_models,
    transformer_parser,
)
from getit_ml.serving.transformer import FeastLookup, FeatureTransformer, predictor_client
from inference_services.feature_transformer.model import FeatureTransformerModel


def main(argv: list[str] | None = None) -> int:
    args = transformer_parser().parse_args(argv)
    configure(args)
    try:
        if not args.predictor_host:
            raise UserError("give the scorer: --predictor_host HOST:PORT")
        transformer = FeatureTransformer(
            FeastLookup(open_feature_store(args), args.feature_service),
            predictor_client(args.predictor_host, args.predictor_protocol),
            name=args.model_name,
        )
        model = FeatureTransformerModel(args.model_name, transformer)
        model.load()
        if args.server == "kserve":
            serve_kserve([model], args)
        else:
            serve_models([model], args)
    except UserError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
