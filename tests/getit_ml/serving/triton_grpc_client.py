"""Run Triton's gRPC client in a process of its own and print what it got, as JSON.

``tritonclient.grpc`` and KServe register the same ``inference.*`` protobuf messages in
protobuf's default pool, so the two cannot be imported into one process; the test runs this.
Usage: ``python triton_grpc_client.py HOST:PORT ROWS_JSON``.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tritonclient.grpc as tgrpc
from tritonclient.utils import InferenceServerException


def main(target: str, rows: str) -> None:
    matrix = np.asarray(json.loads(rows), dtype=np.float64)
    client = tgrpc.InferenceServerClient(url=target)
    out: dict[str, object] = {
        "ready": client.is_server_ready() and client.is_model_ready("fraud"),
    }
    try:
        tensor = tgrpc.InferInput("features", list(matrix.shape), "FP64")
        tensor.set_data_from_numpy(matrix)
        result = client.infer("fraud", [tensor])
        out["probability"] = result.as_numpy("fraud_probability").tolist()
        out["decision"] = result.as_numpy("decision").tolist()
        out["model_version"] = result.get_response().model_version
        bad = tgrpc.InferInput("features", [1, matrix.shape[1]], "FP64")
        bad.set_data_from_numpy(np.full((1, matrix.shape[1]), np.inf))
        try:
            client.infer("fraud", [bad])
            out["error"] = None
        except InferenceServerException as error:
            out["error"] = str(error.status())
    finally:
        client.close()
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
