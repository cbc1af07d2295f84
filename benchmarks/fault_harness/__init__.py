"""Fault injection for the fraud transformer and scorer: the harness behind
``benchmarks/faults.py`` and ``tests/integration/test_serving_faults.py``.

What an SRE does to a serving stack, reproducibly and on one machine:

* :class:`RedisServer`: a private ``redis-server`` (no persistence, its own folder, a free port)
  that can be frozen (SIGSTOP), thawed (SIGCONT), killed (SIGKILL), saved to an RDB file and
  restarted from it, or restarted empty;
* :func:`build_fixture`: a small fraud marketplace (dates ending today, so nothing is older than a
  view's TTL), its offline feature tables, a small XGBoost model over the fraud family's inputs
  and one checkout of a known customer;
* :class:`Stack`: one source tree's servers, each a process of its own
  (:class:`getit_ml.processes.ManagedProcess`) with ``PYTHONPATH`` pointing at that tree, so
  today's code and an older commit (a ``git worktree``) run side by side: the Feast registry in
  the real PostgreSQL under a project of its own (a copy of the tree's ``feature_repo/`` with the
  project renamed; runs never collide), ``apply`` and ``materialize`` with the tree's own CLI, the
  scorer (``python -m inference_services.xgboost_scorer --model_dir ... --expected_sha256 ...``)
  and the transformer (``python -m inference_services.feature_transformer
  --feature_store_profile production ...``);
* :class:`Traffic`: a background asyncio loop with steady load (a few keep-alive clients), a
  liveness prober (``/v2/health/live`` every 100 ms, 1 s timeout, a fresh connection each time,
  as a kubelet probes) and a readiness prober; every answer is a :class:`Sample`;
* the faults (:func:`freeze_redis`, :func:`kill_redis`, :func:`restart_redis_empty`,
  :func:`kill_scorer`, :func:`terminate_scorer`, :func:`idle_pool`) inject one failure under that
  load, bring the dependency back and return a :class:`FaultReport` (codes seen, latency during
  the fault, the longest stall, liveness timeouts, time to recover, requests lost, blind scores);
  :func:`business_cases` sends the invalid business values and protocol abuse.

An answer is *flagged* when the transformer says it did not score normally: a
``decision_status`` (in ``parameters`` or as an output) other than ``scored``, or
``degraded_rows`` > 0. A 200 that is not flagged while the online store is empty is a *blind
score*: the model answered on defaults and nobody was told.

The benchmarks never import from ``tests/``; the tests import this module (the repository root is
on their ``sys.path``). Standard library plus what the platform environment has.
"""

from __future__ import annotations

from .scenarios import (
    RECOVERED_AFTER,
    Case,
    FaultReport,
    business_cases,
    freeze_redis,
    idle_pool,
    kill_redis,
    kill_scorer,
    percentile,
    recovered,
    restart_redis_empty,
    terminate_scorer,
    wait_until,
)
from .servers import (
    REPO,
    Fixture,
    RedisServer,
    SourceTree,
    Stack,
    build_fixture,
    checkout_with,
    worktree,
)
from .traffic import (
    FAMILY,
    PROBE_TIMEOUT_S,
    RawAnswer,
    Sample,
    Traffic,
    infer_bytes,
    infer_once,
    raw_exchange,
    response_flags,
)

__all__ = [
    "FAMILY",
    "PROBE_TIMEOUT_S",
    "RECOVERED_AFTER",
    "REPO",
    "Case",
    "FaultReport",
    "Fixture",
    "RawAnswer",
    "RedisServer",
    "Sample",
    "SourceTree",
    "Stack",
    "Traffic",
    "build_fixture",
    "business_cases",
    "checkout_with",
    "freeze_redis",
    "idle_pool",
    "infer_bytes",
    "infer_once",
    "kill_redis",
    "kill_scorer",
    "percentile",
    "raw_exchange",
    "recovered",
    "response_flags",
    "restart_redis_empty",
    "terminate_scorer",
    "wait_until",
    "worktree",
]
