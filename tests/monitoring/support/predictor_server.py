"""A real kserve 0.12.1 v2 predictor for the tests: serves the synthetic population's true fraud
probability (``getit_ml.monitoring.synthetic.fraud_probability``), a model where only known
features matter. Run as ``python tests/monitoring/support/predictor_server.py --http_port N``.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import kserve
import numpy as np
from kserve import InferOutput, InferRequest, InferResponse
from kserve.errors import InvalidInput

from getit_ml.monitoring.synthetic import fraud_probability, fraud_schema


class SyntheticFraudModel(kserve.Model):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.schema = fraud_schema()
        self.calls = 0

    def load(self) -> bool:
        self.ready = True
        return True

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if not isinstance(payload, InferRequest):
            raise InvalidInput("this test predictor speaks v2 only")
        # The platform fraud scorer's form: FP64 `features` [N, F] and an optional BOOL
        # `missing` mask of the same shape (NaN and null are refused there, and here).
        tensors = {t.name: t for t in payload.inputs}
        if "features" not in tensors:
            raise InvalidInput("expected an input named `features`")
        rows = np.asarray(tensors["features"].as_numpy(), dtype=np.float64)
        rows = rows.reshape(-1, self.schema.width)
        if not np.isfinite(rows).all():
            raise InvalidInput("non-finite input: mark missing values in `missing`")
        if "missing" in tensors:
            mask = np.asarray(tensors["missing"].as_numpy(), dtype=np.bool_).reshape(rows.shape)
            rows = np.where(mask, np.nan, rows)
        scores = fraud_probability(self.schema, rows)
        output = InferOutput("fraud_probability", [len(scores)], "FP64")
        output.set_data_from_numpy(scores)
        return InferResponse(payload.id or uuid.uuid4().hex, self.name, [output])


def main() -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    args = parser.parse_args()
    model = SyntheticFraudModel(args.model_name)
    model.load()
    kserve.ModelServer(
        http_port=args.http_port, enable_grpc=False, workers=1, configure_logging=False
    ).start([model])


if __name__ == "__main__":
    main()
