"""Explanation latency and faithfulness: one instance, over HTTP, on this machine.

Starts a kserve 0.12.1 v2 predictor serving the synthetic population's true fraud probability (a
model driven only by new device, wallet change, amount against the usual and payments in the last
10 minutes; :data:`PREDICTOR_SERVER` below, a process of its own through
:class:`getit_ml.processes.ManagedProcess`), then explains the ``--instances`` highest-scored
payments of a fresh sample with :class:`TabularExplainer` calling that predictor over v2 HTTP —
AnchorTabular (alibi 0.9.4) and Kernel SHAP, as the explainer sidecar does. The population's
schema carries the fraud family's monitoring hints (``getit_ml.families.fraud.TASK.monitoring``),
so the reasons are the family's phrases, as a trained fraud model's schema gives them. Reports
seconds per explanation (goal: < 2 s for one instance on 2 cores), predictor calls and rows, and
faithfulness: the share of attribution on the model's four features and whether every anchor
names only them. The peer, on ``--peer`` of the same instances, anchors only: alibi's
AnchorTabular sampling as shipped (one predictor call per candidate rule) over the same candidate
features; with ``--peer-all-features`` also every feature a candidate, i.e. alibi exactly as
shipped (minutes per explanation with 125 features over HTTP: 309 s and 1,920 predictor calls for
one instance on our 2-core machine).

    .venv-monitoring/bin/python benchmarks/explainer.py [--instances 10] [--peer 3]

The load average (``os.getloadavg()``) is printed at the start and at the end. Ends with
``RESULT seconds_p50=<x> seconds_max=<x> known_share=<x> anchor_faithful=<x>
peer_seconds=<x>``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from getit_ml.families.fraud import TASK
from getit_ml.monitoring.explainer import ExplainerConfig, TabularExplainer
from getit_ml.monitoring.predictor import V2Predictor
from getit_ml.monitoring.schema import Reference
from getit_ml.monitoring.synthetic import FraudPopulation, fraud_probability
from getit_ml.processes import ManagedProcess
from getit_ml.services import free_port

ROOT = Path(__file__).resolve().parents[1]
MODEL_FEATURES = {"is_new_device", "is_wallet_change", "amount_vs_avg_30d", "payments_10m"}
MODEL_NAME = "fraud"
#: A kserve v2 predictor of the synthetic population's true fraud probability, in the platform
#: scorer's batch form: FP64 ``features`` [N, F] and an optional BOOL ``missing`` mask (NaN and
#: null are refused, as there). Run as ``python predictor.py --http_port N --model_name fraud``.
PREDICTOR_SERVER = r"""
import uuid

import kserve
import numpy as np
from kserve import InferOutput, InferRequest, InferResponse
from kserve.errors import InvalidInput

from getit_ml.monitoring.synthetic import fraud_probability, fraud_schema


class SyntheticFraudModel(kserve.Model):
    def __init__(self, name):
        super().__init__(name)
        self.schema = fraud_schema()

    def load(self):
        self.ready = True
        return True

    async def predict(self, payload, headers=None):
        if not isinstance(payload, InferRequest):
            raise InvalidInput("this predictor speaks v2 only")
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


args = kserve.model_server.parser.parse_args()
model = SyntheticFraudModel(args.model_name)
model.load()
kserve.ModelServer(
    http_port=args.http_port, enable_grpc=False, workers=1, configure_logging=False
).start([model])
"""


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def predictor_process(script: Path, port: int, log: Path) -> ManagedProcess:
    return ManagedProcess(
        [sys.executable, str(script), "--http_port", str(port), "--model_name", MODEL_NAME],
        name="synthetic fraud predictor",
        ready_url=f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/ready",
        cwd=ROOT,
        log=log,
        start_timeout_s=60.0,
        stop_timeout_s=15.0,
    )


def _measure(explainer: TabularExplainer, rows: np.ndarray) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        started = time.perf_counter()
        explanation = explainer.explain_one(row)
        explanation["wall"] = time.perf_counter() - started
        out.append(explanation)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--peer", type=int, default=3, help="Instances for the peer (0: skip).")
    parser.add_argument(
        "--peer-all-features",
        action="store_true",
        help="The peer searches every feature, as alibi does (slow).",
    )
    parser.add_argument("--reference", type=int, default=5_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(f"start: {load_average()}")
    population = FraudPopulation(seed=0, hints=TASK.monitoring)
    reference = population.reference(args.reference)
    sample = population.sample(20_000, np.random.default_rng(7)).features
    scores = fraud_probability(population.schema, sample)
    flagged = sample[np.argsort(-scores)[: max(args.instances, args.peer)]]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="explainer-bench-") as tmp:
        script = Path(tmp) / "predictor.py"
        script.write_text(PREDICTOR_SERVER, encoding="utf-8")
        with predictor_process(script, port, Path(tmp) / "predictor.log"):
            results, peer_results = explain(args, reference, flagged, port)
    report(args, population, results, peer_results)


def explain(
    args: argparse.Namespace, reference: Reference, flagged: np.ndarray, port: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Ours on ``--instances`` rows, the peer on ``--peer`` of them, over v2 HTTP."""
    predictor = V2Predictor(f"http://127.0.0.1:{port}", MODEL_NAME)
    ours = TabularExplainer(reference, predictor, ExplainerConfig()).fit()
    results = _measure(ours, flagged[: args.instances])
    peer_results: list[dict[str, Any]] = []
    if args.peer:
        candidates = 0 if args.peer_all_features else ExplainerConfig().anchor_candidates
        peer = TabularExplainer(
            reference,
            predictor,
            ExplainerConfig(methods=("anchor",), anchor_candidates=candidates),
        )
        peer.fit()
        for sampler in peer._anchor.samplers:
            sampler.batch = False
        peer_results = _measure(peer, flagged[: args.peer])
    return results, peer_results


def report(
    args: argparse.Namespace,
    population: FraudPopulation,
    results: list[dict[str, Any]],
    peer_results: list[dict[str, Any]],
) -> None:
    print(
        f"explainer over v2 HTTP: {population.schema.width} features, reference "
        f"{args.reference}, {os.cpu_count()} CPUs"
    )
    print()
    header = (
        f"{'#':>2} {'score':>6} {'seconds':>8} {'calls':>6} {'rows':>7} {'known':>6} "
        f"{'prec':>5}  anchor"
    )
    print(header)
    print("-" * 100)
    shares, faithful = [], []
    for i, e in enumerate(results):
        values = e["attributions"]["values"]
        total = sum(abs(v["contribution"]) for v in values) or 1.0
        share = sum(abs(v["contribution"]) for v in values if v["feature"] in MODEL_FEATURES)
        shares.append(share / total)
        faithful.append(set(e["anchor"]["features"]) <= MODEL_FEATURES)
        print(
            f"{i:>2} {e['score']:>6.3f} {e['wall']:>8.3f} {e['predictor_calls']:>6} "
            f"{e['predictor_rows']:>7} {share / total:>6.2f} {e['anchor']['precision']:>5.2f}  "
            f"{e['anchor']['rule']}"
        )
        print(f"{'':>38}reasons: {', '.join(e['reasons'])}")
    seconds = [e["wall"] for e in results]
    print()
    peer_seconds = float(np.mean([e["wall"] for e in peer_results])) if peer_results else 0.0
    if peer_results:
        calls = np.mean([e["predictor_calls"] for e in peer_results])
        scope = "every feature" if args.peer_all_features else "the same candidate features"
        print(
            f"peer (alibi's per-rule sampling, {scope}, anchors only): {peer_seconds:.2f} s and "
            f"{calls:.0f} predictor calls per explanation over {len(peer_results)} instances"
        )
    print(f"end: {load_average()}")
    print(
        f"RESULT seconds_p50={float(np.median(seconds)):.3f} seconds_max={max(seconds):.3f} "
        f"known_share={float(np.mean(shares)):.3f} anchor_faithful={np.mean(faithful):.2f} "
        f"peer_seconds={peer_seconds:.2f}"
    )


if __name__ == "__main__":
    main()
