"""``python -m inference_services.fraud_scorer``: KServe's flags plus ours (see --help)."""

from __future__ import annotations

import sys

from getit_ml.errors import UserError
from getit_ml.serving.entrypoints import (
    configure,
    scorer_loader,
    scorer_parser,
    serve_kserve,
    serve_models,
)
from inference_services.fraud_scorer.model import FraudScorerModel


def main(argv: list[str] | None = None) -> int:
    args = scorer_parser().parse_args(argv)
    configure(args)
    try:
        model = FraudScorerModel(args.model_name, scorer_loader(args))
        model.load()
        if args.server == "kserve":
            serve_kserve([model], args)
        else:
            serve_models([model], args, {args.model_name: lambda: _reloaded(model)})
    except UserError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return 0


def _reloaded(model: FraudScorerModel) -> FraudScorerModel:
    model.load()
    return model


if __name__ == "__main__":
    sys.exit(main())
