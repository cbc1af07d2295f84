"""Deadlines, the bounded pool and the circuit breaker on their own (fake clock, real threads)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from getit_ml.serving.protocol import ProtocolError
from getit_ml.serving.resilience import (
    CIRCUIT_OPEN,
    ERROR,
    SATURATED,
    TIMEOUT,
    BoundedThreads,
    BreakerState,
    CircuitBreaker,
    GuardedDependency,
    Saturated,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class StoreDown(Exception):
    """What a dependency's client raises when the dependency fails."""


def test_the_breaker_opens_after_consecutive_failures_and_a_probe_closes_it() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=3, reset_s=0.5, clock=clock)
    for _ in range(2):
        assert breaker.admit() is None
        breaker.failure()
    assert breaker.state is BreakerState.CLOSED  # two in a row: not yet
    assert breaker.admit() is None
    breaker.success()  # a success resets the count
    for _ in range(3):
        assert breaker.admit() is None
        breaker.failure()
    assert breaker.state is BreakerState.OPEN
    wait = breaker.admit()
    assert wait == pytest.approx(0.5)
    clock.now += 0.3
    assert breaker.admit() == pytest.approx(0.2)
    clock.now += 0.2
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.admit() is None  # the one probe
    assert breaker.admit() is not None  # others wait for its verdict
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.admit() is None


def test_a_failed_probe_opens_the_breaker_again_and_an_abstained_one_lets_another_try() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=1, reset_s=1.0, clock=clock)
    breaker.admit()
    breaker.failure()
    clock.now += 1.0
    assert breaker.admit() is None
    breaker.failure()  # the probe failed: open for another reset_s
    assert breaker.admit() == pytest.approx(1.0)
    clock.now += 1.0
    assert breaker.admit() is None
    breaker.abstain()  # cancelled: no verdict
    assert breaker.admit() is None  # so the next call may probe
    breaker.success()
    assert not breaker.is_open


def _guard(deadline_s: float = 0.05, failures: int = 2) -> GuardedDependency:
    return GuardedDependency(
        "test store",
        deadline_s=deadline_s,
        breaker=CircuitBreaker(failures, reset_s=0.2),
        failure_types=(StoreDown, OSError),
    )


def test_a_slow_call_is_a_503_at_its_deadline_and_a_dead_one_then_costs_microseconds() -> None:
    guard = _guard(deadline_s=0.05, failures=2)

    async def hang() -> int:
        await asyncio.sleep(10)
        return 1

    async def scenario() -> list[tuple[ProtocolError, float]]:
        answers = []
        for _ in range(3):
            started = time.perf_counter()
            with pytest.raises(ProtocolError) as caught:
                await guard.call(hang)
            answers.append((caught.value, time.perf_counter() - started))
        return answers

    answers = asyncio.run(scenario())
    for error, seconds in answers[:2]:
        assert error.status == 503
        assert error.retry_after_s is not None
        assert "no answer within 50 ms" in error.message
        assert 0.04 < seconds < 0.5
    open_error, open_seconds = answers[2]
    assert open_error.status == 503
    assert "circuit open" in open_error.message
    assert open_seconds < 0.02  # no waiting at all: far under the 50 ms deadline
    assert guard.failures == {TIMEOUT: 2, CIRCUIT_OPEN: 1}


def test_the_dependency_recovers_through_the_half_open_probe() -> None:
    guard = _guard(failures=1)
    down = True

    async def call() -> str:
        if down:
            raise StoreDown("connection refused")
        return "value"

    async def scenario() -> str:
        nonlocal down
        with pytest.raises(ProtocolError, match="StoreDown: connection refused"):
            await guard.call(call)
        with pytest.raises(ProtocolError, match="circuit open"):
            await guard.call(call)
        down = False
        await asyncio.sleep(0.25)  # past reset_s: the next call is the probe
        return await guard.call(call)

    assert asyncio.run(scenario()) == "value"
    assert not guard.breaker.is_open
    assert guard.failures[ERROR] == 1


def test_an_unexpected_exception_is_a_bug_not_a_503() -> None:
    guard = _guard()

    async def broken() -> None:
        raise KeyError("our bug")

    with pytest.raises(KeyError):
        asyncio.run(guard.call(broken))
    assert guard.breaker.state is BreakerState.CLOSED
    assert not guard.failures


def test_the_pool_sheds_instead_of_queueing_and_frees_slots_when_calls_finish() -> None:
    threads = BoundedThreads(workers=2, max_pending=2, name="test")
    release = threading.Event()
    guard = _guard(deadline_s=0.05, failures=100)

    def blocked() -> str:
        release.wait(5)
        return "done"

    async def scenario() -> tuple[list[str], str]:
        reasons = []
        # Two calls stuck in the dependency hold both slots past their deadlines (their threads
        # wait on it); the third finds no slot and is shed at once.
        for _ in range(3):
            with pytest.raises(ProtocolError) as caught:
                await guard.call(lambda: threads.run(blocked))
            reasons.append(caught.value.message)
        release.set()
        for _ in range(100):  # the stuck calls finish and give their slots back
            await asyncio.sleep(0.01)
            try:
                return reasons, await threads.run(lambda: "again")
            except Saturated:
                continue
        raise AssertionError("the pool never gave its slots back")

    try:
        reasons, after = asyncio.run(scenario())
    finally:
        release.set()
        threads.shutdown()
    assert "no answer within" in reasons[0]
    assert "no answer within" in reasons[1]
    assert "too many reads in flight" in reasons[2]
    assert after == "again"
    assert guard.failures[SATURATED] == 1
    assert guard.failures[TIMEOUT] == 2


def test_breaker_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="failures >= 1"):
        CircuitBreaker(failures=0)
    with pytest.raises(ValueError, match="at least one worker"):
        BoundedThreads(0)


def test_a_queued_call_whose_caller_gave_up_never_runs() -> None:
    threads = BoundedThreads(workers=1, max_pending=4, name="test")
    release = threading.Event()
    ran: list[str] = []
    guard = _guard(deadline_s=0.05, failures=100)

    def first() -> None:
        release.wait(5)

    def second() -> None:
        ran.append("second")

    async def scenario() -> None:
        for function in (first, second):  # the second waits behind the first, then times out
            with pytest.raises(ProtocolError, match="no answer within"):
                await guard.call(lambda f=function: threads.run(f))  # type: ignore[misc]
        release.set()
        await asyncio.sleep(0.1)

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        threads.shutdown()
    assert ran == []
