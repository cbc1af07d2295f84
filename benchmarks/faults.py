"""Serving under dependency faults: the fraud transformer and scorer, today's code against an
older commit, the same faults, side by side.

One run, on loopback, in a temporary folder (the harness: ``benchmarks/fault_harness/``):

1. a small marketplace ending today (1,000 customers, 14 days), its offline feature tables, a
   30-tree XGBoost model over the fraud family's inputs and the checkout of a known customer;
2. per side (``before``: a ``git worktree`` of ``--before``, default ``ca91e9b``, the code the
   SRE tried; ``after``: this working tree), the production profile as the SRE ran it: a private
   ``redis-server`` (no persistence, its own folder, a free port), the Feast registry in the real
   PostgreSQL under a project of its own (dropped at the end), ``features apply`` and
   ``materialize`` with the side's own CLI, the scorer (``python -m
   inference_services.xgboost_scorer --model_dir ... --expected_sha256 ... --timeout-keep-alive
   3``) and the transformer (``python -m inference_services.feature_transformer
   --feature_store_profile production``) as processes of their own with ``PYTHONPATH`` on the
   side's tree (the line ``imports getit_ml from`` proves which code ran);
3. steady load (4 keep-alive clients, each a checkout, 50 ms think time, 30 s client timeout), a
   liveness prober (``/v2/health/live`` every 100 ms, 1 s timeout, a fresh connection each, as a
   kubelet) and a readiness prober (``/v2/health/ready`` every 200 ms); then, one after the
   other:

   a. Redis frozen (SIGSTOP, 8 s, then SIGCONT);
   b. Redis killed (SIGKILL), down 12 s, restarted from the RDB file saved just before;
   c. Redis restarted empty (nothing re-materializes) for 6 s, then ``features materialize``;
      an unflagged 200 in between is a *blind score*;
   d. the scorer killed (SIGKILL), restarted after 3 s;
   e. the scorer's rolling restart: SIGTERM while 16 more connections send requests through
      the transformer; the failures among the requests in flight at the SIGTERM;
   f. a 16-connection burst, the pool idle past the scorer's keep-alive (the keep-alive the
      scorer really applies, measured; 65 s when it ignores the flag, so 70 s of idle), then 16
      requests one after the other and the burst again (a burst alone hides a client that
      retries on another stale connection: see ``idle_pool``);
   g. invalid business values (amount -5000, 0, 1e308; payment method ``paypal``, empty, 1 MB;
      ``request_ts_us`` 2**62), a ``text/plain`` body, a bad ``Content-Length`` and a half-sent
      body: each should get a JSON 4xx (the half-sent body: closed within 20 s).

   Before each fault the stack must be answering normally again; when it is not within 15 s,
   the transformer is restarted (said in the notes: the fault was not survived).

Per fault: the status codes seen, p99 and max latency of the requests that began while the
dependency was away, the longest stall (the longest any request or liveness probe waited),
liveness probes that failed, readiness probes that said "not ready" while it was away, the
time to recover (from the dependency's return to the first of 5 consecutive normal answers),
requests lost (no answer: connection errors, client timeouts) and blind scores. Prints the load
average (``os.getloadavg()``) at the start and at the end, one table (rows: faults; each column
before / after) and ends with, for the after side,

    RESULT non_503_5xx=<n> max_stall_ms=<x> live_timeouts=<n> recovery_s=<x> blind_scores=<n>

(over the whole after run: 5xx other than 503 among every answer, the faults' longest stall,
every failed liveness probe, the slowest recovery of faults a-e, every blind score). Goals: 0,
<= 500, 0, <= 5, 0. ``--quick`` shortens the faults (4 s freeze and outage, 3 s empty).
Needs ``redis-server`` on PATH and PostgreSQL (``GETIT_ML_POSTGRES_DSN``).

Usage:

    .venv/bin/python benchmarks/faults.py                  # before (ca91e9b) and after, ~6 min
    .venv/bin/python benchmarks/faults.py --skip-before --quick
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the harness is benchmarks.fault_harness
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fault_harness import (
    REPO,
    Case,
    FaultReport,
    Fixture,
    RedisServer,
    SourceTree,
    Stack,
    Traffic,
    build_fixture,
    business_cases,
    freeze_redis,
    idle_pool,
    kill_redis,
    kill_scorer,
    recovered,
    restart_redis_empty,
    terminate_scorer,
    wait_until,
    worktree,
)

DEFAULT_BEFORE = "ca91e9b"
#: The keep-alive asked of the scorer (KServe's ``--timeout-keep-alive``).
SHORT_KEEP_ALIVE_S = 3
#: The scorer's built-in keep-alive, for a scorer that ignores the flag.
DEFAULT_KEEP_ALIVE_S = 65
GOALS = {"non_503_5xx": 0, "max_stall_ms": 500, "live_timeouts": 0, "recovery_s": 5,
         "blind_scores": 0}  # fmt: skip


def describe_load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


@dataclass
class Side:
    """One side's run: the faults' reports, the business cases, the whole run's samples."""

    label: str
    imported_from: str = ""
    keep_alive_s: float | None = None
    reports: list[FaultReport] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    traffic: Traffic | None = None
    notes: list[str] = field(default_factory=list)

    def report(self, prefix: str) -> FaultReport | None:
        return next((r for r in self.reports if r.name.startswith(prefix)), None)


@dataclass(frozen=True)
class Durations:
    freeze_s: float
    redis_down_s: float
    empty_s: float
    scorer_down_s: float
    half_sent_bound_s: float

    @classmethod
    def of(cls, quick: bool) -> Durations:
        return cls(4, 4, 3, 3, 20) if quick else cls(8, 12, 6, 3, 20)


def healthy(stack: Stack, traffic: Traffic, side: Side, before: str) -> None:
    """Normal answers again before the next fault, or a restarted transformer (noted)."""
    if wait_until(lambda: recovered(traffic, time.monotonic() - 0.5), 15):
        return
    side.notes.append(f"not answering normally before {before!r}: transformer restarted")
    stack.restart_transformer()
    if not wait_until(lambda: recovered(traffic, time.monotonic() - 0.5), 30):
        side.notes.append(f"still not answering normally before {before!r}")


def run_side(
    tree: SourceTree, fixture: Fixture, root: Path, durations: Durations, dsn: str
) -> Side:
    side = Side(tree.describe(), imported_from=tree.imported_from())
    print(f"\n{side.label}: imports getit_ml from {side.imported_from}", flush=True)
    redis = RedisServer(root / "redis").start()
    stack = Stack(tree, fixture, redis, dsn, root / "stack", keep_alive_s=SHORT_KEEP_ALIVE_S)
    try:
        began = time.monotonic()
        stack.start()
        side.keep_alive_s = stack.scorer_keep_alive_s(SHORT_KEEP_ALIVE_S + 2)
        idle_s = (side.keep_alive_s or DEFAULT_KEEP_ALIVE_S) + 5
        shown = "ignored: 65 s" if side.keep_alive_s is None else f"{side.keep_alive_s:.1f} s"
        print(f"  servers up in {time.monotonic() - began:.0f} s (materialize "
              f"{stack.materialize_s:.0f} s); scorer keep-alive {shown}", flush=True)  # fmt: skip
        with Traffic(stack.http_port, fixture.checkout) as traffic:
            side.traffic = traffic
            time.sleep(2)
            faults: list[tuple[str, Callable[[], FaultReport]]] = [
                ("a", lambda: freeze_redis(stack, traffic, durations.freeze_s)),
                ("b", lambda: kill_redis(stack, traffic, durations.redis_down_s)),
                ("c", lambda: restart_redis_empty(stack, traffic, durations.empty_s)),
                ("d", lambda: kill_scorer(stack, traffic, durations.scorer_down_s)),
                ("e", lambda: terminate_scorer(stack, traffic)),
                ("f", lambda: idle_pool(stack, traffic, idle_s)),
            ]
            for name, fault in faults:
                healthy(stack, traffic, side, name)
                report = fault()
                side.reports.append(report)
                print(f"  {report.summary()}", flush=True)
            healthy(stack, traffic, side, "g")
            side.cases = business_cases(
                stack.http_port, fixture.checkout, durations.half_sent_bound_s
            )
            ok = sum(case.ok for case in side.cases)
            print(f"  g. business values: {ok} of {len(side.cases)} got a JSON 4xx", flush=True)
            time.sleep(0.5)
        if stack.transformer_restarts:
            side.notes.append(f"transformer restarted {stack.transformer_restarts} time(s)")
    finally:
        stack.stop()
        stack.drop_project()
        redis.stop()
    return side


# ------------------------------------------------------------------------------- the table
def _codes(report: FaultReport | None) -> str:
    if report is None:
        return "-"
    return " ".join(f"{code}:{n}" for code, n in sorted(report.codes.items()))


def _number(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def print_table(before: Side | None, after: Side) -> None:
    metrics: list[tuple[str, Callable[[FaultReport], str]]] = [
        ("p99 ms", lambda r: _number(r.p99_ms)),
        ("max ms", lambda r: _number(r.max_ms)),
        ("stall ms", lambda r: _number(r.max_stall_ms)),
        ("live fail", lambda r: str(r.live_timeouts)),
        ("not ready", lambda r: str(r.ready_false)),
        ("recover s", lambda r: _number(r.recovery_s, 2)),
        ("lost", lambda r: str(r.lost)),
        ("blind", lambda r: str(r.blind_scores)),
    ]
    names = [r.name for r in after.reports]
    print()
    print("each cell: before / after" if before else "after only (--skip-before)")
    header = f"{'fault':26} {'codes before':24} {'codes after':24}"
    header += "".join(f" {title:>13}" for title, _ in metrics)
    print(header)
    for name in names:
        prefix = name.split(".")[0] + "."
        b, a = (before.report(prefix) if before else None), after.report(prefix)
        line = f"{name:26} {_codes(b):24} {_codes(a):24}"
        for _, metric in metrics:
            cell = f"{metric(b) if b else '-'} / {metric(a) if a else '-'}"
            line += f" {cell:>13}"
        print(line)
    ok_b = sum(c.ok for c in before.cases) if before else 0
    ok_a = sum(c.ok for c in after.cases)
    cases = f"{ok_b}/{len(before.cases)}" if before else "-"
    print(f"{'g. business values':26} {'JSON 4xx: ' + cases:24} "
          f"{'JSON 4xx: ' + f'{ok_a}/{len(after.cases)}':24}")  # fmt: skip
    for index, case in enumerate(after.cases):
        was = before.cases[index].describe() if before else "-"
        print(f"    {case.name:22} {was:30} {case.describe():30}")
    for side in (before, after):
        if side is None:
            continue
        notes = [*side.notes, *(f"{r.name}: {'; '.join(r.notes)}" for r in side.reports if r.notes)]
        if notes:
            print(f"notes, {side.label}:")
            for note in notes:
                print(f"    {note}")


def result(side: Side) -> dict[str, float]:
    """The RESULT figures over the whole run of ``side`` (see the module docstring)."""
    traffic = side.traffic
    samples = list(traffic.samples) if traffic else []
    answers = [s for s in samples if s.kind in ("infer", "burst")]
    five_xx = sum(1 for s in answers if s.status >= 500 and s.status != 503)
    five_xx += sum(1 for c in side.cases if c.answer.status >= 500 and c.answer.status != 503)
    recoveries = [r.recovery_s for r in side.reports if r.returned is not None]
    return {
        "non_503_5xx": five_xx,
        "max_stall_ms": max((r.max_stall_ms for r in side.reports), default=0.0),
        "live_timeouts": sum(1 for s in samples if s.kind == "live" and s.status != 200),
        "recovery_s": max((math.inf if r is None else r for r in recoveries), default=0.0),
        "blind_scores": sum(r.blind_scores for r in side.reports),
    }


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Feast's chatter goes to stderr: stdout holds the table."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=DEFAULT_BEFORE, help="Commit of the 'before' side.")
    parser.add_argument("--skip-before", action="store_true", help="Run only this tree.")
    parser.add_argument("--quick", action="store_true", help="Shorter faults.")
    args = parser.parse_args()

    import logging

    logging.disable(logging.WARNING)
    from getit_ml.settings import load_settings

    dsn = load_settings().postgres_dsn
    durations = Durations.of(args.quick)
    print(f"start: {describe_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="getit-faults-bench-") as tmp:
        root = Path(tmp)
        began = time.monotonic()
        with quiet_stdout():
            fixture = build_fixture(root / "fixture")
        print(f"fixture in {time.monotonic() - began:.0f} s (customer {fixture.customer})")
        before: Side | None = None
        if not args.skip_before:
            path = Path(tempfile.gettempdir()) / f"getit-faults-before-{uuid.uuid4().hex[:8]}"
            with worktree(args.before, path) as tree:
                before = run_side(tree, fixture, root / "before", durations, dsn)
        after = run_side(SourceTree(REPO, "after"), fixture, root / "after", durations, dsn)
    print_table(before, after)
    figures = result(after)
    verdicts = [
        f"{name} {'met' if figures[name] <= goal else 'NOT met'} (goal <= {goal})"
        for name, goal in GOALS.items()
    ]
    print()
    print("after: " + "; ".join(verdicts))
    print(f"end: {describe_load()}")
    print(
        f"RESULT non_503_5xx={figures['non_503_5xx']:.0f} "
        f"max_stall_ms={figures['max_stall_ms']:.0f} "
        f"live_timeouts={figures['live_timeouts']:.0f} "
        f"recovery_s={figures['recovery_s']:.2f} blind_scores={figures['blind_scores']:.0f}"
    )


if __name__ == "__main__":
    main()
