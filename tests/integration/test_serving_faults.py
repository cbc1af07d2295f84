"""The fraud transformer and scorer survive their dependencies: fault injection under load.

One stack for the module (the harness of ``benchmarks/faults.py``: ``benchmarks.fault_harness``):
a private ``redis-server`` on a free port, the Feast registry in the real PostgreSQL under a
project of its own, a small marketplace and model, the scorer and the transformer as processes
of their own (production profile), four keep-alive clients sending checkouts, a liveness prober
(every 100 ms, 1 s timeout) and a readiness prober. Each test injects one fault, brings the
dependency back and asserts what the issue asks: the codes, the time bounds, liveness staying
responsive, readiness following the dependency, and recovery without restarting anything. The
tests run in file order on one stack; each leaves its dependency restored.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.fault_harness import (
    Case,
    FaultReport,
    RedisServer,
    Sample,
    SourceTree,
    Stack,
    Traffic,
    build_fixture,
    business_cases,
    freeze_redis,
    idle_pool,
    infer_once,
    kill_redis,
    kill_scorer,
    percentile,
    recovered,
    restart_redis_empty,
    wait_until,
)
from getit_ml.settings import PlatformSettings
from tests.support.services import require_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
#: The issue's bounds.
ANSWER_BOUND_S = 0.5  # a request while the store hangs: 503 within this of its start
#: The bounds sit well under what a failure would cost (a kubelet's 1 s probe timeout; the
#: 200 ms feature-read deadline a closed circuit waits out) and well over a shared CI machine's
#: scheduling noise (a probe took 117 ms once at load average 5): each fails on the bug, not
#: on a busy neighbour.
LIVE_BOUND_S = 0.5  # a liveness probe, whatever the dependencies do
OPEN_CIRCUIT_COST_S = 0.15  # p95 of a request while the store is down and the circuit open
RECOVERY_BOUND_S = 5.0  # from the dependency's return to normal answers
READY_AGAIN_S = 5.0  # readiness back after the dependency
#: The scorer's keep-alive asked for (KServe's --timeout-keep-alive), to idle the pool briefly.
SHORT_KEEP_ALIVE_S = 2
#: The server's body-read timeout is 15 s; the half-sent body must be closed well within this.
HALF_SENT_BOUND_S = 20.0


@dataclass
class Faults:
    stack: Stack
    traffic: Traffic
    checkout: dict[str, object]
    pid: int


@pytest.fixture(scope="module")
def faults(
    tmp_path_factory: pytest.TempPathFactory,
    platform_settings: PlatformSettings,
    postgres_dsn: str,
) -> Iterator[Faults]:
    missing = None if shutil.which("redis-server") else "redis-server is not on PATH"
    require_service(missing, platform_settings.ci)
    root = tmp_path_factory.mktemp("serving-faults")
    fixture = build_fixture(root / "fixture", customers=500, days=10)
    redis = RedisServer(root / "redis").start()
    stack = Stack(SourceTree(REPO, "working tree"), fixture, redis, postgres_dsn,
                  root / "stack", keep_alive_s=SHORT_KEEP_ALIVE_S)  # fmt: skip
    try:
        stack.start()
        with Traffic(stack.http_port, fixture.checkout) as traffic:
            assert wait_until(lambda: recovered(traffic, time.monotonic() - 1), 20), (
                f"the stack does not answer normally: {_last(traffic)}\n{stack.logs()}"
            )
            yield Faults(stack, traffic, fixture.checkout, stack.transformer_pid)
    finally:
        stack.stop()
        stack.drop_project()
        redis.stop()


def _last(traffic: Traffic, n: int = 5) -> list[Sample]:
    return [s for s in list(traffic.samples) if s.kind == "infer"][-n:]


def _healthy(faults: Faults) -> None:
    """The previous fault is over: normal answers again (else the test's premise fails)."""
    ok = wait_until(lambda: recovered(faults.traffic, time.monotonic() - 0.5), 15)
    assert ok, f"not answering normally before the fault: {_last(faults.traffic)}"


def _ready_after(report: FaultReport, since: float) -> float | None:
    """Seconds from ``since`` to the first readiness probe that answered 200."""
    ready = [s for s in report.of("ready", since, report.ended) if s.status == 200]
    return ready[0].end - since if ready else None


def _assert_liveness(report: FaultReport) -> None:
    probes = report.of("live")
    assert probes, "no liveness probe ran"
    failed = [s for s in probes if s.status != 200]
    assert not failed, f"{len(failed)} liveness probes failed: {failed[:3]}"
    slowest = max(s.latency_s for s in probes)
    assert slowest < LIVE_BOUND_S, f"a liveness probe took {slowest * 1000:.0f} ms"


def _assert_not_ready_while_away(report: FaultReport, detect_s: float = 2.0) -> None:
    """Readiness goes false within ``detect_s`` of the fault and stays false until the
    dependency returns."""
    assert report.returned is not None
    away = report.of("ready", report.injected + detect_s, report.returned)
    assert away, "no readiness probe while the dependency was away"
    ready = [s for s in away if s.status == 200]
    assert not ready, f"{len(ready)} of {len(away)} readiness probes said ready while it was away"


def _assert_recovered(report: FaultReport, faults: Faults) -> None:
    recovery = report.recovery_s
    assert recovery is not None, f"no recovery: {report.summary()}"
    assert recovery <= RECOVERY_BOUND_S, report.summary()
    assert faults.stack.transformer_pid == faults.pid, "the transformer was restarted"
    assert report.non_503_5xx == 0, report.summary()
    assert report.lost == 0, report.summary()


def test_frozen_redis_gets_fast_503s_and_liveness_stays_up(faults: Faults) -> None:
    _healthy(faults)
    report = freeze_redis(faults.stack, faults.traffic, seconds=5)
    assert report.returned is not None
    hung = report.of("infer", report.injected, report.returned - ANSWER_BOUND_S)
    assert hung, "no request while Redis was frozen"
    assert {s.status for s in hung} <= {200, 503}, report.summary()
    assert any(s.status == 503 for s in hung), report.summary()
    slow = [s for s in hung if s.latency_s > ANSWER_BOUND_S]
    assert not slow, f"{len(slow)} requests waited > {ANSWER_BOUND_S} s: {slow[:3]}"
    assert report.retry_after_missing == 0, "a 503 without Retry-After"
    _assert_liveness(report)
    _assert_not_ready_while_away(report)
    ready_in = _ready_after(report, report.returned)
    assert ready_in is not None, "readiness never came back after SIGCONT"
    assert ready_in <= READY_AGAIN_S, f"ready again {ready_in:.1f} s after SIGCONT"
    _assert_recovered(report, faults)


def test_killed_redis_opens_the_circuit_and_recovers_without_restarts(faults: Faults) -> None:
    _healthy(faults)
    report = kill_redis(faults.stack, faults.traffic, down_s=4)
    assert report.returned is not None
    opened = report.of("infer", report.injected + 1.0, report.returned)
    assert opened, "no request while Redis was down"
    assert {s.status for s in opened} == {503}, report.summary()
    assert report.retry_after_missing == 0, "a 503 without Retry-After"
    cost = percentile([s.latency_s for s in opened], 0.95)
    assert cost < OPEN_CIRCUIT_COST_S, f"p95 {cost * 1000:.0f} ms per request, circuit open"
    assert max(s.latency_s for s in opened) < ANSWER_BOUND_S, report.summary()
    _assert_liveness(report)
    _assert_not_ready_while_away(report)
    ready_in = _ready_after(report, report.returned)
    assert ready_in is not None, "readiness never came back after the restart"
    assert ready_in <= READY_AGAIN_S, f"ready again {ready_in:.1f} s after the restart"
    _assert_recovered(report, faults)


def test_an_empty_store_is_flagged_never_scored_blind(faults: Faults) -> None:
    _healthy(faults)
    report = restart_redis_empty(faults.stack, faults.traffic, empty_s=4)
    assert report.blind_window is not None
    empty_from, materializing = report.blind_window
    answers = report.of("infer", empty_from, materializing)
    assert answers, "no request while the store was empty"
    assert report.blind_scores == 0, (
        f"{report.blind_scores} answers scored blind (200, not flagged) from an empty store"
    )
    assert {s.status for s in answers} <= {200, 503}, report.summary()
    assert any(s.status == 200 and s.flagged for s in answers), (
        f"no flagged answer from the empty store (degraded mode): {answers[-3:]}"
    )
    not_ready = report.of("ready", empty_from + 2.0, materializing)
    assert not_ready, "no readiness probe while the store was empty"
    assert all(s.status != 200 for s in not_ready), "ready with an empty online store"
    _assert_liveness(report)
    assert report.returned is not None
    ready_in = _ready_after(report, report.returned)
    assert ready_in is not None, "readiness never came back after materialize"
    assert ready_in <= READY_AGAIN_S, f"ready again {ready_in:.1f} s after materialize"
    _assert_recovered(report, faults)


def test_a_killed_scorer_gets_503_with_retry_after_and_recovers(faults: Faults) -> None:
    _healthy(faults)
    report = kill_scorer(faults.stack, faults.traffic, down_s=3)
    assert report.returned is not None
    down = report.of("infer", report.injected + 0.2, report.returned - 0.5)
    assert down, "no request while the scorer was down"
    assert {s.status for s in down} == {503}, report.summary()
    assert report.retry_after_missing == 0, "a 503 without Retry-After"
    assert max(s.latency_s for s in down) < ANSWER_BOUND_S, report.summary()
    _assert_liveness(report)
    _assert_not_ready_while_away(report)
    _assert_recovered(report, faults)


def test_a_pool_idle_past_the_scorers_keep_alive_answers_200(faults: Faults) -> None:
    _healthy(faults)
    keep_alive = faults.stack.scorer_keep_alive_s(SHORT_KEEP_ALIVE_S + 2)
    # A scorer that ignores --timeout-keep-alive keeps its built-in 65 s: idle past that.
    idle_s = (keep_alive or 65) + 3
    report = idle_pool(faults.stack, faults.traffic, idle_s)
    after_idle: list[Sample] = report.extra["after_idle"]
    assert len(after_idle) == 32
    failed = [s for s in after_idle if s.status != 200]
    assert not failed, f"{len(failed)} of 32 failed after {idle_s:.0f} s idle: {failed[:3]}"
    _assert_liveness(report)


@pytest.fixture(scope="module")
def cases(faults: Faults) -> dict[str, Case]:
    _healthy(faults)
    found = business_cases(faults.stack.http_port, faults.checkout, HALF_SENT_BOUND_S)
    return {case.name: case for case in found}


@pytest.mark.parametrize(
    "name",
    [
        "amount -5000",
        "amount 0",
        "amount 1e308",
        "payment_method paypal",
        "payment_method ''",
        "payment_method 1 MB",
        "request_ts_us 2**62",
        "text/plain body",
        "bad Content-Length",
        "half-sent body",
    ],
)
def test_invalid_business_values_get_a_json_4xx(cases: dict[str, Case], name: str) -> None:
    case = cases[name]
    assert case.ok, f"{name}: {case.describe()} {case.answer.body[:300]!r}"


def test_the_checkout_still_scores_after_the_invalid_values(faults: Faults) -> None:
    answer = infer_once(faults.stack.http_port, faults.checkout)
    assert answer.scored, answer


def test_liveness_never_failed_and_nothing_restarted(faults: Faults) -> None:
    live = [s for s in list(faults.traffic.samples) if s.kind == "live"]
    failed = [s for s in live if s.status != 200]
    assert not failed, f"{len(failed)} of {len(live)} liveness probes failed: {failed[:3]}"
    assert faults.stack.transformer_pid == faults.pid
