"""Calls to a dependency that cannot hang a server: deadlines, a bounded pool, a circuit breaker.

The transformer's feature read is a network call to the online store on every request. Left
alone, a frozen store holds every request (and, read on the event loop, the liveness probe too)
and a dead one costs each request the client's timeouts and retries. Three pieces bound it:

* a **deadline** per call (``asyncio.timeout``): past it the caller gets 503 with
  ``Retry-After`` and the server moves on;
* a **bounded thread pool** (:class:`BoundedThreads`) for blocking clients: a fixed number of
  threads and of calls in flight (running or queued); a call stuck behind the deadline keeps its
  thread only until the client's own socket timeout, and when every slot is taken the next call
  is shed at once (503) instead of queueing behind a store that does not answer;
* a **circuit breaker** (:class:`CircuitBreaker`): after ``failures`` consecutive failed calls
  it opens, and calls fail in microseconds for ``reset_s``; then one probe call is let through
  (half-open) and its success closes the breaker, so a store that comes back is used again
  within about ``reset_s``.

:class:`GuardedDependency` puts them together for one dependency and counts what went wrong per
reason (the ``getit_ml_dependency_failures_total`` series of the transformer's collector).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, NoReturn, TypeVar

from getit_ml.serving.protocol import ProtocolError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: ``reason`` labels of ``getit_ml_dependency_failures_total``.
TIMEOUT: Final = "timeout"
ERROR: Final = "error"
CIRCUIT_OPEN: Final = "circuit_open"
SATURATED: Final = "saturated"


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive failures open it; after ``reset_s`` one probe may pass; its result decides.

    Thread-safe (a lock around a few assignments): calls are admitted on the event loop, and
    the monitor thread reads the state for the ``getit_ml_circuit_open`` gauge."""

    def __init__(
        self, failures: int = 5, reset_s: float = 0.5, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1 or reset_s <= 0:
            raise ValueError("a circuit breaker needs failures >= 1 and reset_s > 0")
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_s:
                return BreakerState.HALF_OPEN
            return self._state

    @property
    def is_open(self) -> bool:
        """True while calls are refused (open, or half-open with its probe in flight)."""
        return self.state is not BreakerState.CLOSED

    def admit(self) -> float | None:
        """``None`` if a call may go ahead (it must then report :meth:`success` or
        :meth:`failure`), else the seconds until the breaker lets a probe through."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return None
            waited = self._clock() - self._opened_at
            if waited < self.reset_s:
                return self.reset_s - waited
            if self._probing:
                return self.reset_s  # one probe at a time; the others wait for its verdict
            self._state = BreakerState.HALF_OPEN
            self._probing = True
            return None

    def success(self) -> None:
        with self._lock:
            if self._state is not BreakerState.CLOSED:
                logger.info("circuit breaker closed: the dependency answers again")
            self._state = BreakerState.CLOSED
            self._consecutive = 0
            self._probing = False

    def abstain(self) -> None:
        """An admitted call ended without a verdict (cancelled, shed): let another probe try."""
        with self._lock:
            self._probing = False

    def failure(self) -> None:
        with self._lock:
            self._consecutive += 1
            self._probing = False
            if self._state is BreakerState.HALF_OPEN or self._consecutive >= self.failures:
                if self._state is BreakerState.CLOSED:
                    logger.warning(
                        "circuit breaker open after %d consecutive failures", self._consecutive
                    )
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()


class Saturated(Exception):
    """Every slot of a :class:`BoundedThreads` is taken."""


class BoundedThreads:
    """A thread pool that never queues more than ``max_pending`` calls (running included).

    The slot of a call is given back when the call *finishes*, not when its caller stops
    waiting, so calls stuck in a frozen dependency count until their socket timeout frees them:
    the number of threads and of queued calls is bounded whatever the dependency does. A call
    still queued when its caller gives up is cancelled and never runs."""

    def __init__(self, workers: int, max_pending: int | None = None, name: str = "calls") -> None:
        if workers < 1:
            raise ValueError("a thread pool needs at least one worker")
        self.workers = workers
        self.max_pending = max_pending if max_pending is not None else 4 * workers
        self._slots = threading.BoundedSemaphore(self.max_pending)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def run(self, function: Callable[[], T]) -> T:
        """``function()`` in a pool thread; raises :class:`Saturated` when no slot is free."""
        if not self._slots.acquire(blocking=False):
            raise Saturated(f"{self.max_pending} calls in flight")
        try:
            future = self._pool.submit(function)
        except RuntimeError:  # the pool is shut down
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class GuardedDependency:
    """One dependency's calls under a deadline and a circuit breaker, failures counted.

    ``failure_types``: the exceptions that mean "the dependency failed" (a 503 that counts
    against the breaker); anything else is a bug and propagates unchanged."""

    def __init__(
        self,
        name: str,
        *,
        deadline_s: float,
        breaker: CircuitBreaker,
        failure_types: tuple[type[BaseException], ...],
        retry_after_s: float = 1.0,
    ) -> None:
        self.name = name
        self.deadline_s = deadline_s
        self.breaker = breaker
        self.failure_types = failure_types
        self.retry_after_s = retry_after_s
        #: Failures by reason (:data:`TIMEOUT`, :data:`ERROR`, :data:`CIRCUIT_OPEN`,
        #: :data:`SATURATED`), read by the metrics collector.
        self.failures: Counter[str] = Counter()

    def _refuse(self, reason: str, message: str, retry_after_s: float | None = None) -> NoReturn:
        self.failures[reason] += 1
        raise ProtocolError(
            503,
            f"the {self.name} is unavailable: {message}",
            retry_after_s=retry_after_s if retry_after_s is not None else self.retry_after_s,
        )

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """``await make()`` within the deadline; 503 with ``Retry-After`` when the breaker is
        open, the pool is full, the deadline passes or the call fails."""
        wait = self.breaker.admit()
        if wait is not None:
            self._refuse(CIRCUIT_OPEN, "circuit open after repeated failures", max(wait, 0.1))
        try:
            async with asyncio.timeout(self.deadline_s):
                result = await make()
        except Saturated as error:
            # Load, not a failure of the dependency: no verdict for the breaker.
            self.breaker.abstain()
            self._refuse(SATURATED, f"too many reads in flight ({error})")
        except TimeoutError:
            self.breaker.failure()
            self._refuse(TIMEOUT, f"no answer within {self.deadline_s * 1000:.0f} ms")
        except self.failure_types as error:
            self.breaker.failure()
            self._refuse(ERROR, f"{type(error).__name__}: {error}")
        except BaseException:
            # Cancelled (the client went away), or a bug: no verdict on the dependency.
            self.breaker.abstain()
            raise
        self.breaker.success()
        return result
