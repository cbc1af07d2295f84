"""``python -m inference_services.xgboost_scorer``: the one entry point of the xgboost-binary
runtime, in its container and on one machine (KServe's flags plus ours: see --help)."""

from __future__ import annotations

import sys

from getit_ml.errors import UserError
from getit_ml.serving.entrypoints import configure, model_name, scorer_loader, scorer_parser, serve
from inference_services.xgboost_scorer.model import XGBoostScorerModel


def main(argv: list[str] | None = None) -> int:
    args = scorer_parser().parse_args(argv)
    configure(args)
    try:
        model = XGBoostScorerModel(model_name(args), scorer_loader(args))
        model.load()
        serve([model], args, {model.name: lambda: _reloaded(model)})
    except UserError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return 0


def _reloaded(model: XGBoostScorerModel) -> XGBoostScorerModel:
    model.load()
    return model


if __name__ == "__main__":
    sys.exit(main())
