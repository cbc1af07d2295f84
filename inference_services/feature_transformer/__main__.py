"""``python -m inference_services.feature_transformer``: the one entry point of the Feast
feature transformer, in its container and on one machine (KServe's flags plus ours: --help).
The family (``--family``, default ``--model_name``) gives the request and the feature service."""

from __future__ import annotations

import sys

from getit_ml.errors import UserError
from getit_ml.families import get_family
from getit_ml.serving.entrypoints import (
    build_transformer,
    configure,
    family_name,
    serve,
    transformer_parser,
)
from inference_services.feature_transformer.model import FeatureTransformerModel


def main(argv: list[str] | None = None) -> int:
    args = transformer_parser().parse_args(argv)
    configure(args)
    try:
        family = get_family(family_name(args))
        transformer = build_transformer(args, family.serving)
        model = FeatureTransformerModel(
            transformer.name, transformer, connect_timeout_s=args.predictor_timeout
        )
        model.load()
        serve([model], args)
    except UserError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
