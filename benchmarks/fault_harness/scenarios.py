"""The faults, what each one did to the traffic, and the invalid business values."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .servers import Stack, checkout_with
from .traffic import (
    FAMILY,
    REQUEST_TIMEOUT_S,
    RawAnswer,
    Sample,
    Traffic,
    infer_bytes,
    raw_exchange,
    read_http,
)

#: Consecutive normal answers that count as "recovered".
RECOVERED_AFTER = 5


# ---------------------------------------------------------------------------------- reports
@dataclass
class FaultReport:
    """One fault's figures. ``injected``: when the fault began; ``returned``: when the
    dependency was back (None: it never left, e.g. an idle pool); ``ended``: end of the
    observation. ``blind_window``: where an unflagged 200 is a blind score."""

    name: str
    injected: float
    returned: float | None
    ended: float
    samples: list[Sample]
    blind_window: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def of(self, kind: str, start: float | None = None, end: float | None = None) -> list[Sample]:
        low = self.injected if start is None else start
        high = self.ended if end is None else end
        return [s for s in self.samples if s.kind == kind and low <= s.start < high]

    @property
    def requests(self) -> list[Sample]:
        return [s for s in self.samples if s.kind in ("infer", "burst")
                and self.injected <= s.start < self.ended]  # fmt: skip

    @property
    def during(self) -> list[Sample]:
        """Requests that began while the dependency was away (or, without one, all)."""
        until = self.returned if self.returned is not None else self.ended
        return [s for s in self.requests if s.start < until]

    @property
    def codes(self) -> Counter[int]:
        return Counter(s.status for s in self.requests)

    @property
    def non_503_5xx(self) -> int:
        return sum(1 for s in self.requests if s.status >= 500 and s.status != 503)

    @property
    def p99_ms(self) -> float:
        return percentile([s.latency_s for s in self.during], 0.99) * 1000

    @property
    def max_ms(self) -> float:
        return max((s.latency_s for s in self.during), default=float("nan")) * 1000

    @property
    def max_stall_ms(self) -> float:
        """The longest any request or liveness probe of the fault waited (a probe that timed
        out waited its timeout)."""
        waits = [s.latency_s for s in self.requests]
        waits += [s.latency_s for s in self.of("live")]
        return max(waits, default=0.0) * 1000

    @property
    def live_timeouts(self) -> int:
        return sum(1 for s in self.of("live") if s.status != 200)

    @property
    def lost(self) -> int:
        return sum(1 for s in self.requests if s.status == 0)

    @property
    def blind_scores(self) -> int:
        if self.blind_window is None:
            return 0
        low, high = self.blind_window
        return sum(1 for s in self.requests if low <= s.start < high and s.scored)

    @property
    def flagged(self) -> int:
        return sum(1 for s in self.requests if s.status == 200 and s.flagged)

    @property
    def ready_false(self) -> int:
        """Readiness probes that did not answer 200 while the dependency was away."""
        until = self.returned if self.returned is not None else self.ended
        return sum(1 for s in self.of("ready", self.injected, until) if s.status != 200)

    @property
    def recovery_s(self) -> float | None:
        """From the dependency's return to the answer that began :data:`RECOVERED_AFTER`
        consecutive normal answers (in the order they came back); None: no recovery seen."""
        if self.returned is None:
            return None
        after = sorted((s for s in self.requests if s.end >= self.returned), key=lambda s: s.end)
        run = 0
        for index, sample in enumerate(after):
            run = run + 1 if sample.scored else 0
            if run == RECOVERED_AFTER:
                return max(0.0, after[index - RECOVERED_AFTER + 1].end - self.returned)
        return None

    @property
    def retry_after_missing(self) -> int:
        return sum(1 for s in self.requests if s.status == 503 and not s.retry_after)

    @property
    def slowest(self) -> str:
        """The request or liveness probe that waited longest: kind, status, when (seconds
        after the injection) and how long."""
        waits = [*self.requests, *self.of("live")]
        if not waits:
            return "-"
        worst = max(waits, key=lambda s: s.latency_s)
        return (f"{worst.kind} {worst.status or worst.error} at +{worst.start - self.injected:.2f}"
                f" s waited {worst.latency_s * 1000:.0f} ms")  # fmt: skip

    def summary(self) -> str:
        codes = " ".join(f"{k}:{v}" for k, v in sorted(self.codes.items()))
        recovery = self.recovery_s
        return (
            f"{self.name}: codes {codes}; p99 {self.p99_ms:.0f} ms, max {self.max_ms:.0f} ms; "
            f"stall {self.max_stall_ms:.0f} ms; live timeouts {self.live_timeouts}; ready false "
            f"{self.ready_false}; recovery {'-' if recovery is None else f'{recovery:.2f} s'}; "
            f"lost {self.lost}; blind {self.blind_scores}; flagged {self.flagged}; slowest: "
            f"{self.slowest}" + (f"; {'; '.join(self.notes)}" if self.notes else "")
        )


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_until(condition: Callable[[], bool], timeout_s: float, period_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(period_s)
    return condition()


def recovered(traffic: Traffic, since: float) -> bool:
    """:data:`RECOVERED_AFTER` consecutive normal answers came back after ``since``."""
    answers = [s for s in list(traffic.samples) if s.kind in ("infer", "burst")]
    after = sorted((s for s in answers if s.end >= since), key=lambda s: s.end)
    return len(after) >= RECOVERED_AFTER and all(s.scored for s in after[-RECOVERED_AFTER:])


def _finish(
    traffic: Traffic, name: str, injected: float, returned: float | None,
    recover_timeout_s: float, **kwargs: Any,
) -> FaultReport:  # fmt: skip
    """Observe until recovery (or the timeout), let in-flight requests answer, report."""
    if returned is not None:
        wait_until(lambda: recovered(traffic, returned), recover_timeout_s)
    time.sleep(0.3)
    ended = time.monotonic()
    traffic.settle(ended)
    samples = [s for s in list(traffic.samples) if s.start >= injected - 0.001]
    return FaultReport(name, injected, returned, ended, samples, **kwargs)


# ----------------------------------------------------------------------------------- faults
def freeze_redis(
    stack: Stack, traffic: Traffic, seconds: float = 8.0, recover_timeout_s: float = 30.0
) -> FaultReport:
    """a. Redis frozen (SIGSTOP) for ``seconds``, then SIGCONT."""
    injected = time.monotonic()
    stack.redis.freeze()
    try:
        time.sleep(seconds)
    finally:
        stack.redis.thaw()
    returned = time.monotonic()
    return _finish(traffic, "a. Redis frozen", injected, returned, recover_timeout_s,
                   extra={"seconds": seconds})  # fmt: skip


def kill_redis(
    stack: Stack, traffic: Traffic, down_s: float = 4.0, recover_timeout_s: float = 30.0
) -> FaultReport:
    """b. Redis killed (SIGKILL), down ``down_s``, restarted from the RDB saved just before."""
    stack.redis.save()
    injected = time.monotonic()
    stack.redis.kill()
    time.sleep(down_s)
    stack.redis.start(empty=False)
    returned = stack.redis.started_at
    # The circuit's cost: requests that began a second after the kill until the restart.
    return _finish(traffic, "b. Redis killed", injected, returned, recover_timeout_s,
                   extra={"down_s": down_s, "open_from": injected + 1.0})  # fmt: skip


def restart_redis_empty(
    stack: Stack, traffic: Traffic, empty_s: float = 6.0, recover_timeout_s: float = 30.0
) -> FaultReport:
    """c. Redis restarted empty and left so for ``empty_s`` (nothing re-materializes), then
    ``features materialize``: every 200 in between must be flagged."""
    injected = time.monotonic()
    stack.redis.kill()
    stack.redis.start(empty=True)
    empty_from = stack.redis.started_at
    time.sleep(empty_s)
    materializing = time.monotonic()
    stack.materialize()
    returned = time.monotonic()
    report = _finish(traffic, "c. Redis restarted empty", injected, returned,
                     recover_timeout_s, blind_window=(empty_from, materializing),
                     extra={"empty_from": empty_from, "materializing": materializing})  # fmt: skip
    report.notes.append(f"materialize {stack.materialize_s:.1f} s")
    return report


def kill_scorer(
    stack: Stack, traffic: Traffic, down_s: float = 3.0, recover_timeout_s: float = 30.0
) -> FaultReport:
    """d. The scorer killed (SIGKILL), restarted after ``down_s``; the transformer stays."""
    if stack.scorer is None:
        raise RuntimeError("no scorer")
    injected = time.monotonic()
    stack.scorer.stop(timeout_s=5, sig=signal.SIGKILL)
    time.sleep(down_s)
    stack.start_scorer()
    returned = stack.scorer_started_at
    return _finish(traffic, "d. scorer killed", injected, returned, recover_timeout_s,
                   extra={"down_s": down_s})  # fmt: skip


def terminate_scorer(
    stack: Stack, traffic: Traffic, in_flight: int = 16, recover_timeout_s: float = 30.0
) -> FaultReport:
    """e. A rolling restart of the scorer: SIGTERM while ``in_flight`` extra connections keep
    requests going through the transformer; the failures among the requests in flight at the
    SIGTERM are counted; then a new scorer starts on the same port."""
    if stack.scorer is None:
        raise RuntimeError("no scorer")
    flood = traffic.flood(in_flight, seconds=2.0)
    time.sleep(1.0)
    injected = time.monotonic()
    old = stack.scorer
    assert old.process is not None
    old.process.send_signal(signal.SIGTERM)
    flood.result(timeout=REQUEST_TIMEOUT_S + 10)
    try:
        old.process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        old.stop(timeout_s=1)
    stack.start_scorer()
    returned = stack.scorer_started_at
    report = _finish(traffic, "e. scorer SIGTERM", injected - 1.0, returned, recover_timeout_s)
    caught = [s for s in report.samples
              if s.kind in ("infer", "burst") and s.start < injected <= s.end]  # fmt: skip
    report.extra["in_flight"] = len(caught)
    report.extra["in_flight_failed"] = sum(1 for s in caught if s.status != 200)
    report.notes.append(
        f"{report.extra['in_flight_failed']} of {len(caught)} in flight at SIGTERM failed"
    )
    return report


def idle_pool(stack: Stack, traffic: Traffic, idle_s: float, connections: int = 16) -> FaultReport:
    """f. A burst of ``connections`` at once (the transformer's pool then holds that many
    connections to the scorer), ``idle_s`` of silence (longer than the scorer's keep-alive, which
    closes them all), then ``connections`` requests one after the other, then the burst again.

    The sequential requests are the sharp test: a concurrent burst at least as large as the pool
    passes even with a client that retries on another pooled connection (every request takes a
    stale one, and the retries find the pool empty and connect afresh), while one request at a
    time meets two stale connections in a row."""
    traffic.pause()
    try:
        traffic.burst(connections)
        time.sleep(idle_s)
        injected = time.monotonic()
        samples = traffic.sequence(connections)
        samples += traffic.burst(connections)
    finally:
        traffic.resume()
    report = _finish(traffic, "f. idle pool", injected, None, 0)
    report.extra["after_idle"] = samples
    report.extra["idle_s"] = idle_s
    return report


# ------------------------------------------------------------------------ business values
@dataclass(frozen=True)
class Case:
    """One invalid business value or protocol abuse, and what came back."""

    name: str
    answer: RawAnswer
    bound_s: float | None = None

    @property
    def ok(self) -> bool:
        """A JSON 4xx; for a half-sent body, the connection closed (or a JSON 4xx) within the
        bound."""
        answer = self.answer
        if self.bound_s is not None:
            in_time = answer.elapsed_s <= self.bound_s and (answer.closed or answer.status != 0)
            return in_time and (answer.status == 0 or _json_4xx(answer))
        return _json_4xx(answer)

    def describe(self) -> str:
        answer = self.answer
        if answer.status == 0:
            what = "closed" if answer.closed else answer.error or "no answer"
            return f"{what} after {answer.elapsed_s:.1f} s"
        kind = "json" if answer.is_json else answer.content_type or "no content-type"
        return f"{answer.status} {kind}"


def _json_4xx(answer: RawAnswer) -> bool:
    return 400 <= answer.status < 500 and answer.is_json


def half_sent(port: int, bound_s: float) -> RawAnswer:
    """Headers promising 1,000 bytes, 100 sent, then silence: when does the server give up?"""
    began = time.monotonic()
    body = b'{"inputs": [' + b" " * 88
    head = (f"POST /v2/models/{FAMILY}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n").encode()  # fmt: skip
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(head + body)
            try:
                status, headers, data = read_http(sock, began + bound_s + 1.0)
            except ConnectionError:
                return RawAnswer(0, {}, b"", time.monotonic() - began, closed=True)
            return RawAnswer(status, headers, data, time.monotonic() - began)
    except TimeoutError:
        return RawAnswer(0, {}, b"", time.monotonic() - began, error="still open")
    except OSError as error:
        return RawAnswer(0, {}, b"", time.monotonic() - began, closed=True,
                         error=type(error).__name__)  # fmt: skip


def business_cases(port: int, checkout: dict[str, Any], half_sent_bound_s: float) -> list[Case]:
    """The values the SRE found scored with 200, and the protocol abuse; each should get a
    JSON 4xx (the half-sent body: closed within ``half_sent_bound_s``)."""
    documents: list[tuple[str, dict[str, Any]]] = [
        ("amount -5000", checkout_with(checkout, amount_bdt=-5000.0)),
        ("amount 0", checkout_with(checkout, amount_bdt=0.0)),
        ("amount 1e308", checkout_with(checkout, amount_bdt=1e308)),
        ("payment_method paypal", checkout_with(checkout, payment_method="paypal")),
        ("payment_method ''", checkout_with(checkout, payment_method="")),
        ("payment_method 1 MB", checkout_with(checkout, payment_method="x" * 1_000_000)),
        ("request_ts_us 2**62", checkout_with(checkout, request_ts_us=2**62)),
    ]
    body = json.dumps(checkout).encode()
    bad_length = (
        f"POST /v2/models/{FAMILY}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: abc\r\n\r\n"
    ).encode()
    requests = [(name, infer_bytes(doc)) for name, doc in documents]
    requests.append(("text/plain body", infer_bytes(body, "text/plain")))
    requests.append(("bad Content-Length", bad_length + body))
    # The half-sent body waits for the server's read timeout: in a thread, beside the others.
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(half_sent, port, half_sent_bound_s)
        cases = [Case(name, raw_exchange(port, data, timeout_s=10)) for name, data in requests]
        cases.append(Case("half-sent body", slow.result(), half_sent_bound_s))
    return cases
