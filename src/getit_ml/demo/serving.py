"""The demo's serving stage: a family's champion and its transformer up, requests scored over
REST and gRPC, clean shutdown.

:class:`ServingStage` starts ``models:/<family>@champion`` from the demo's embedded registry
behind the feature transformer (two processes, free ports), scores a handful of the family's
sample requests — some positive, some negative — through v2 REST and the same requests through
v2 gRPC (the scores must agree), times a short burst of single-row requests, then stops both
with SIGTERM and expects exit status 0 from each (in-flight requests drained).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from getit_ml.demo.stages import DemoContext, StageResult, StageStatus
from getit_ml.demo.workspace import data_dir, store_dir
from getit_ml.errors import UserError
from getit_ml.families.base import ModelFamily
from getit_ml.services import free_port

logger = logging.getLogger(__name__)

#: Requests scored through REST and gRPC, and single-row requests timed.
DEMO_REQUESTS: Final = 6
TIMED_REQUESTS: Final = 50


class ServingStage:
    """A family's scorer + feature transformer on the embedded default, over REST and gRPC."""

    description = (
        "KServe v2: champion scorer + Feast transformer as processes; requests scored over "
        "REST and gRPC; SIGTERM drains"
    )

    def __init__(self, family: ModelFamily) -> None:
        self.family = family
        self.name = f"serving: {family.name}"

    def run(self, context: DemoContext) -> StageResult:
        try:
            return self._run(context)
        except UserError as error:
            return StageResult(StageStatus.FAILED, str(error))
        except Exception as error:
            logger.exception("serving stage failed")
            return StageResult(
                StageStatus.FAILED,
                f"serving failed: {error!r} (see the log; did the earlier stages make the "
                f"{self.family.name} champion?)",
            )

    def _run(self, context: DemoContext) -> StageResult:
        import httpx
        import numpy as np
        import orjson

        from getit_ml.registry.mlflow_registry import RegistryConfig
        from getit_ml.serving.launcher import LaunchOptions, LocalServing

        family = self.family
        head = family.serving.head
        workdir = context.workdir.resolve()
        market = data_dir(workdir, family.demo.population)
        if not market.is_dir():
            raise UserError(f"no marketplace at {market}: the earlier demo stages make it")
        samples = family.demo.sample_requests(market, DEMO_REQUESTS)
        inputs = family.serving.inputs
        rows = [{k: v for k, v in sample.items() if k in inputs} for sample in samples]
        document = family.serving.request_document(rows, "demo-1")
        ports = [free_port() for _ in range(4)]
        serving = LocalServing(
            LaunchOptions(
                family=family.name,
                runtime=family.serving.runtime,
                tracking_uri=RegistryConfig.embedded(workdir).tracking_uri,
                with_transformer=True,
                http_port=ports[0],
                grpc_port=ports[1],
                predictor_http_port=ports[2],
                predictor_grpc_port=ports[3],
                feature_store=store_dir(workdir, family.demo.population),
                log_level="WARNING",
                extra_env={"GETIT_ML_HOME": str(workdir)},
            )
        )
        started = time.perf_counter()
        serving.start()
        try:
            startup_s = time.perf_counter() - started
            url = f"{serving.entry.url}/v2/models/{family.name}/infer"
            json_type = {"Content-Type": "application/json"}
            with httpx.Client(timeout=30, headers=json_type) as client:
                response = client.post(url, content=orjson.dumps(document))
                if response.status_code != 200:
                    raise UserError(f"REST scoring failed: {response.status_code} {response.text}")
                body = response.json()
                rest = {o["name"]: o["data"] for o in body["outputs"]}
                grpc_scores = _score_over_grpc(
                    f"127.0.0.1:{ports[1]}", family.name, document, head.probability
                )
                payload = orjson.dumps(family.serving.request_document(rows[:1]))
                latencies = []
                for _ in range(TIMED_REQUESTS):
                    began = time.perf_counter()
                    client.post(url, content=payload).raise_for_status()
                    latencies.append((time.perf_counter() - began) * 1000)
        finally:
            codes = serving.stop()
        probabilities = [float(p) for p in rest[head.probability]]
        if not np.allclose(probabilities, grpc_scores, rtol=1e-9, atol=1e-12):
            return StageResult(StageStatus.FAILED, "REST and gRPC scores differ")
        if any(code != 0 for code in codes.values()):
            return StageResult(StageStatus.FAILED, f"unclean shutdown: exit codes {codes}")
        details = {
            "model version": str(body.get("model_version")),
            "threshold": str(body.get("parameters", {}).get("threshold")),
            "start-up (both processes)": f"{startup_s:.1f} s",
            f"latency, {TIMED_REQUESTS} sequential requests (p50 / max)": (
                f"{np.percentile(latencies, 50):.1f} / {max(latencies):.1f} ms"
            ),
            "shutdown (SIGTERM)": ", ".join(f"{k} exit {v}" for k, v in codes.items()),
        }
        negative, positive = family.demo.labels
        for sample, p, d in zip(samples, probabilities, rest[head.decision], strict=True):
            truth = positive if sample.get("label") else negative
            details[f"{family.demo.describe_request(sample)} ({truth})"] = (
                f"p={p:.4f}, decision {'flag' if d else 'pass'}"
            )
        flagged = sum(bool(d) for d in rest[head.decision])
        return StageResult(
            StageStatus.OK,
            f"{family.name} version {body.get('model_version')} served: {len(samples)} requests "
            f"scored over REST and gRPC (identical), {flagged} flagged; p50 "
            f"{np.percentile(latencies, 50):.1f} ms end to end; both servers drained and exited 0",
            details,
        )


def _score_over_grpc(target: str, model: str, document: dict[str, Any], output: str) -> list[float]:
    import grpc  # type: ignore[import-untyped]
    import numpy as np
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc  # type: ignore[import-untyped]

    from getit_ml.serving.grpc_server import request_message, response_outputs

    with grpc.insecure_channel(target) as channel:
        reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            request_message(model, document), timeout=30
        )
    outputs = {o.name: o.data for o in response_outputs(reply)}
    return [float(v) for v in np.asarray(outputs[output]).ravel()]
