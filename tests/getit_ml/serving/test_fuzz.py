"""Fuzzing the v2 REST API from the Open Inference Protocol's own OpenAPI document.

schemathesis generates requests for every operation of ``rest_predict_v2.yaml`` (at least 2,000
in all, most of them inference bodies with random tensors); the server may refuse them (4xx) but
must never answer 5xx. The spec's path templates are written ``${MODEL_NAME}``; they are read as
``{MODEL_NAME}`` with the model name and version pinned to the served model, so that the
inference operation reaches the model instead of stopping at 404. Sizes are capped (4 inputs,
8 data elements per level, 4 dimensions): generating large random documents costs hypothesis
tens of milliseconds each, and the size limits are the table-driven tests' job (413).

About a minute on two shared cores (hypothesis generation dominates): marked ``slow``, and it
runs in ``make test``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from getit_ml.serving.scorer import BinaryTabularScorer
from getit_ml.serving.server import ServerThread

SPEC = Path(__file__).resolve().parents[3] / ".." / "shared" / "specs" / "open-inference-protocol"
SPEC_FILE = SPEC / "rest_predict_v2.yaml"
#: Cases per operation: the inference operation carries the bulk.
INFER_CASES = 2_000
OTHER_CASES = 40
MIN_TOTAL = 2_000


def _pinned_spec(model: str, version: str) -> dict[str, Any]:
    text = SPEC_FILE.read_text(encoding="utf-8").replace("${", "{")
    raw: dict[str, Any] = yaml.safe_load(text)
    for item in raw["paths"].values():
        for parameter in item.get("parameters", []):
            value = model if parameter["name"] == "MODEL_NAME" else version
            parameter["schema"] = {"type": "string", "enum": [value]}
    schemas = raw["components"]["schemas"]
    schemas["inference_request"]["properties"]["inputs"]["maxItems"] = 4
    schemas["inference_request"]["properties"]["outputs"]["maxItems"] = 3
    schemas["request_input"]["properties"]["shape"]["maxItems"] = 4
    schemas["tensor_data"]["maxItems"] = 8
    schemas["parameters"]["maxProperties"] = 3
    return raw


def _load(raw: dict[str, Any]) -> Any:
    schemathesis = pytest.importorskip("schemathesis")
    openapi = getattr(schemathesis, "openapi", None)
    if openapi is not None and hasattr(openapi, "from_dict"):  # schemathesis 4
        return openapi.from_dict(raw)
    return schemathesis.from_dict(raw)  # schemathesis 3


@pytest.mark.slow
@pytest.mark.skipif(not SPEC_FILE.is_file(), reason=f"no OIP spec at {SPEC} (../shared absent)")
def test_no_fuzzed_request_gets_a_server_error(
    server: ServerThread, scorer: BinaryTabularScorer
) -> None:
    hypothesis = pytest.importorskip("hypothesis")
    schema = _load(_pinned_spec(scorer.name, scorer.version))
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for path, item in schema.raw_schema["paths"].items():
        for method in ("get", "post"):
            if method not in item:
                continue
            operation = schema[path][method.upper()]
            examples = INFER_CASES if path.endswith("/infer") else OTHER_CASES

            @hypothesis.settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[hypothesis.Phase.generate],
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            @hypothesis.given(case=operation.as_strategy())
            def call(case: Any) -> None:
                response = case.call(base_url=server.http_url)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.path}: {response.status_code} {response.text[:200]}"
                    )

            call()
    total = sum(statuses.values())
    assert not failures, failures[:5]
    assert total >= MIN_TOTAL, statuses
    # The fuzzing reached the model: some bodies were valid enough to score or be refused.
    assert statuses[400] > 0
    assert all(code < 500 for code in statuses)
