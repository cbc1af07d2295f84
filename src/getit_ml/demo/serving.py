"""The demo's serving stage: scorer and transformer up, a few payments scored, clean shutdown.

:class:`ServingStage` follows :class:`getit_ml.demo.Stage`: it starts ``models:/fraud@champion``
from the demo's embedded registry behind the feature transformer (two processes, free ports),
scores a handful of the marketplace's payments — some of them fraud — through v2 REST and the
same checkouts through v2 gRPC (the scores must agree), times a short burst of single-payment
requests, then stops both with SIGTERM and expects exit status 0 from each (in-flight requests
drained). It imports :mod:`getit_ml.demo` only inside :meth:`run`, so the demo can import it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from getit_ml.services import free_port

if TYPE_CHECKING:
    from getit_ml.demo import DemoContext, StageResult

logger = logging.getLogger(__name__)

#: Payments scored through REST and gRPC, and single-payment requests timed.
DEMO_PAYMENTS: Final = 6
TIMED_REQUESTS: Final = 50


def sample_checkouts(marketplace: Path, n: int = DEMO_PAYMENTS) -> list[dict[str, Any]]:
    """``n`` payments of the marketplace as checkout requests, half of them fraud when there
    are that many (the latest ones, so the store has their customers' features)."""
    import pyarrow.dataset as ds

    from getit_ml.errors import UserError
    from getit_ml.training.dataset import LABEL, fraud_entity_frame

    if not (marketplace / "payments").is_dir():
        raise UserError(f"no marketplace at {marketplace}: the earlier demo stages make it")
    payments = ds.dataset(marketplace / "payments", partitioning="hive").to_table().to_pandas()
    entities = fraud_entity_frame(payments).sort_values("event_timestamp")
    fraud = entities[entities[LABEL]].tail(n // 2)
    genuine = entities[~entities[LABEL]].tail(n - len(fraud))
    chosen = [*fraud.to_dict("records"), *genuine.to_dict("records")]
    fields = ("customer_id", "device_id", "request_ts_us", "amount_bdt", "payment_method",
              "checkout_device_id", "checkout_wallet_account_id")  # fmt: skip
    return [{key: row[key] for key in fields} | {LABEL: bool(row[LABEL])} for row in chosen]


class ServingStage:
    """Scorer + feature transformer on the embedded default, scored over REST and gRPC."""

    name = "serving"
    description = (
        "KServe v2: champion scorer + Feast transformer as processes; payments scored over "
        "REST and gRPC; SIGTERM drains"
    )

    def run(self, context: DemoContext) -> StageResult:
        from getit_ml.demo import StageResult, StageStatus, marketplace_dir
        from getit_ml.errors import UserError

        try:
            return self._run(context)
        except UserError as error:
            return StageResult(StageStatus.FAILED, str(error))
        except Exception as error:
            logger.exception("serving stage failed")
            return StageResult(
                StageStatus.FAILED,
                f"serving failed: {error!r} (see the log; is {marketplace_dir(context.workdir)} "
                "and the champion there?)",
            )

    def _run(self, context: DemoContext) -> StageResult:
        import httpx
        import numpy as np
        import orjson

        from getit_ml.demo import StageResult, StageStatus, marketplace_dir
        from getit_ml.errors import UserError
        from getit_ml.registry.mlflow_registry import RegistryConfig
        from getit_ml.serving.launcher import LaunchOptions, LocalServing
        from getit_ml.serving.transformer import CHECKOUT_INPUTS, checkout_document

        workdir = context.workdir.resolve()
        checkouts = sample_checkouts(marketplace_dir(workdir))
        document = checkout_document(
            [{k: v for k, v in c.items() if k in CHECKOUT_INPUTS} for c in checkouts], "demo-1"
        )
        ports = [free_port() for _ in range(4)]
        options = LaunchOptions(
            model_uri="models:/fraud@champion",
            tracking_uri=RegistryConfig.embedded(workdir).tracking_uri,
            with_transformer=True,
            http_port=ports[0],
            grpc_port=ports[1],
            predictor_http_port=ports[2],
            predictor_grpc_port=ports[3],
            feature_store=workdir / "features",
            log_level="WARNING",
            extra_env={"GETIT_ML_HOME": str(workdir)},
        )
        serving = LocalServing(options)
        started = time.perf_counter()
        serving.start()
        try:
            startup_s = time.perf_counter() - started
            url = f"{serving.entry.url}/v2/models/fraud/infer"
            with httpx.Client(timeout=30) as client:
                response = client.post(url, content=orjson.dumps(document))
                if response.status_code != 200:
                    raise UserError(f"REST scoring failed: {response.status_code} {response.text}")
                body = response.json()
                rest = {o["name"]: o["data"] for o in body["outputs"]}
                grpc_scores = _score_over_grpc(f"127.0.0.1:{ports[1]}", document)
                single = checkout_document(
                    [{k: v for k, v in checkouts[0].items() if k in CHECKOUT_INPUTS}]
                )
                payload = orjson.dumps(single)
                latencies = []
                for _ in range(TIMED_REQUESTS):
                    began = time.perf_counter()
                    client.post(url, content=payload).raise_for_status()
                    latencies.append((time.perf_counter() - began) * 1000)
        finally:
            codes = serving.stop()
        probabilities = [float(p) for p in rest["fraud_probability"]]
        if not np.allclose(probabilities, grpc_scores, rtol=1e-9, atol=1e-12):
            return StageResult(StageStatus.FAILED, "REST and gRPC scores differ")
        if any(code != 0 for code in codes.values()):
            return StageResult(StageStatus.FAILED, f"unclean shutdown: exit codes {codes}")
        details = {
            "model version": str(body.get("model_version")),
            "threshold": str(body.get("parameters", {}).get("threshold")),
            "start-up (both processes)": f"{startup_s:.1f} s",
            f"latency, {TIMED_REQUESTS} sequential checkouts (p50 / max)": (
                f"{np.percentile(latencies, 50):.1f} / {max(latencies):.1f} ms"
            ),
            "shutdown (SIGTERM)": ", ".join(f"{k} exit {v}" for k, v in codes.items()),
        }
        for checkout, p, d in zip(checkouts, probabilities, rest["decision"], strict=True):
            label = "fraud" if checkout["is_fraud"] else "genuine"
            details[f"payment of customer {checkout['customer_id']} ({label})"] = (
                f"{checkout['payment_method']} {checkout['amount_bdt']:,.0f} BDT: "
                f"p={p:.4f}, decision {'review' if d else 'pass'}"
            )
        flagged = sum(bool(d) for d in rest["decision"])
        return StageResult(
            StageStatus.OK,
            f"fraud version {body.get('model_version')} served: {len(checkouts)} payments scored "
            f"over REST and gRPC (identical), {flagged} flagged; p50 "
            f"{np.percentile(latencies, 50):.1f} ms end to end; both servers drained and exited 0",
            details,
        )


def _score_over_grpc(target: str, document: dict[str, Any]) -> list[float]:
    import grpc  # type: ignore[import-untyped]
    import numpy as np
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc  # type: ignore[import-untyped]

    from getit_ml.serving.grpc_server import request_message, response_outputs

    with grpc.insecure_channel(target) as channel:
        reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            request_message("fraud", document), timeout=30
        )
    outputs = {o.name: o.data for o in response_outputs(reply)}
    return [float(v) for v in np.asarray(outputs["fraud_probability"]).ravel()]
