"""Child processes of the platform: spawn, wait until ready, stop (SIGTERM, then SIGKILL).

The model servers, the monitoring sidecars, the benchmarks' peers and the tests' servers are
processes of their own, as containers are on Kubernetes. :class:`ManagedProcess` is the one way
to run one: it starts the command, waits until its readiness URL answers 200 (or a readiness
function says so), reports a process that died while starting with the tail of its log, and
always stops it — SIGTERM first (the servers drain in-flight requests), SIGKILL after a grace
period. :class:`Supervisor` keeps a set of them running: a child that dies is started again after
an exponential backoff (:class:`Backoff`), each restart logged with the exit status, while the
others keep running. Standard library only: the monitoring environment uses it too.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from getit_ml.errors import UserError

logger = logging.getLogger(__name__)

#: Characters of a failed process's log quoted in the error.
LOG_TAIL: Final = 1_500
_POLL_S: Final = 0.2


def repository_root() -> Path:
    """The checkout that holds ``inference_services/`` (getit_ml is installed editable): the
    servers' entry points run from there."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "inference_services").is_dir():
        raise UserError(
            f"no inference_services/ next to {root / 'src'}: the model servers and sidecars "
            "run from a getit-ml checkout (pip install -e .)"
        )
    return root


def module_command(
    module: str, arguments: Sequence[str], python: Path | str | None = None
) -> list[str]:
    """``python -m module arguments...`` (this interpreter unless ``python`` is given)."""
    return [str(python or sys.executable), "-m", module, *arguments]


def url_ready(url: str, timeout_s: float = 2.0) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class ManagedProcess:
    """One child process, started by :meth:`start` (or ``with``) and always stopped.

    ``ready_url``: an HTTP URL that answers 200 once the process serves (``/v2/health/ready``);
    ``ready``: a function that says so instead. With ``log``, the process's stdout and stderr go
    to that file (its tail is quoted when it fails); without, they are this process's.
    ``in_repository``: run in the checkout's root with it on ``PYTHONPATH`` (for
    ``python -m inference_services.<server>``).
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        name: str,
        ready_url: str | None = None,
        ready: Callable[[], bool] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log: Path | None = None,
        in_repository: bool = False,
        start_timeout_s: float = 120.0,
        stop_timeout_s: float = 40.0,
    ) -> None:
        self.command = list(command)
        self.name = name
        self.ready_url = ready_url
        self._ready = ready
        self.environment = {**os.environ, **(env or {})}
        self.cwd = cwd
        if in_repository:
            root = repository_root()
            self.cwd = cwd or root
            paths = [str(root), self.environment.get("PYTHONPATH", "")]
            self.environment["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        self.log = log
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self._sink: IO[bytes] | None = None

    # ---------------------------------------------------------------------------- starting
    def spawn(self) -> ManagedProcess:
        """Start the process without waiting for it to be ready."""
        if self.process is not None:
            raise RuntimeError(f"the {self.name} was started already")
        return self._launch("wb")

    def respawn(self) -> ManagedProcess:
        """Start the command again after the process exited (its log is appended to, so the
        crash stays readable); a :class:`RuntimeError` while it still runs."""
        process = self._started()
        if process.poll() is None:
            raise RuntimeError(f"the {self.name} is still running")
        self._close_log()
        return self._launch("ab")

    def _launch(self, log_mode: str) -> ManagedProcess:
        output: IO[bytes] | None = None
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self._sink = output = self.log.open(log_mode)
        logger.info("starting the %s: %s", self.name, " ".join(self.command))
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.environment,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
        )
        return self

    def is_ready(self) -> bool:
        if self._ready is not None:
            return self._ready()
        if self.ready_url is not None:
            return url_ready(self.ready_url)
        return True

    def wait_ready(self) -> ManagedProcess:
        """Block until ready; a :class:`UserError` (the process stopped) if it exits first or
        is not ready within ``start_timeout_s``."""
        process = self._started()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            code = process.poll()
            if code is not None:
                self._close_log()
                raise UserError(
                    f"the {self.name} exited with status {code} while starting{self._tail()}"
                )
            if self.is_ready():
                logger.info("%s ready", self.name)
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise UserError(
                    f"the {self.name} was not ready within {self.start_timeout_s:g} s{self._tail()}"
                )
            time.sleep(_POLL_S)

    def start(self) -> ManagedProcess:
        """Spawn, then wait until ready (stopping the process if that fails)."""
        self.spawn()
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    # ---------------------------------------------------------------------------- stopping
    def stop(self, timeout_s: float | None = None, sig: int = signal.SIGTERM) -> int | None:
        """Send ``sig`` (SIGTERM: drain and exit), wait up to ``timeout_s``, then SIGKILL; the
        exit status (None if the process was never started)."""
        process = self.process
        if process is None:
            return None
        wait_s = self.stop_timeout_s if timeout_s is None else timeout_s
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                logger.error("the %s did not stop in %gs: killing it", self.name, wait_s)
                process.kill()
                process.wait()
        self._close_log()
        return process.returncode

    def wait(self, timeout_s: float | None = None) -> int:
        """Block until the process exits on its own; its exit status."""
        return self._started().wait(timeout=timeout_s)

    def poll(self) -> int | None:
        return self._started().poll()

    @property
    def pid(self) -> int:
        return self._started().pid

    # ---------------------------------------------------------------------------- helpers
    def _started(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError(f"the {self.name} has not been started")
        return self.process

    def _close_log(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _tail(self) -> str:
        if self.log is None or not self.log.is_file():
            return ""
        text = self.log.read_text(encoding="utf-8", errors="replace").strip()
        return f": {text[-LOG_TAIL:]}" if text else ""

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# ---------------------------------------------------------------------------------- supervision
@dataclass(frozen=True)
class Backoff:
    """How long a supervisor waits before starting a dead child again: ``initial_s``, doubling
    (``factor``) with each death up to ``max_s``; a child that ran ``stable_s`` or longer before
    it died starts again from ``initial_s`` (a crash a day is not a crash loop)."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    stable_s: float = 60.0

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s) or self.factor < 1 or self.stable_s <= 0:
            raise ValueError(f"inconsistent backoff: {self}")

    def delay_s(self, deaths: int) -> float:
        """The wait before the restart that follows the ``deaths``-th death in a row (1, 2...)."""
        return min(self.max_s, self.initial_s * self.factor ** max(0, deaths - 1))


#: What ``getit-ml serve`` restarts its servers with.
DEFAULT_BACKOFF: Final = Backoff()


@dataclass
class _Watched:
    process: ManagedProcess
    started_at: float
    #: Deaths in a row (since the last stable run).
    deaths: int = 0
    #: When it may start again (``None``: it is running).
    restart_at: float | None = None


class Supervisor:
    """Keeps started :class:`ManagedProcess` es running: :meth:`check` (or :meth:`run`, which
    calls it every ``poll_s``) notices a child that exited, logs its status, and starts it again
    once its :class:`Backoff` delay has passed; the others are never touched. What the CLI's
    foreground ``serve`` runs until Ctrl-C; stopping the children is the caller's job (after
    :meth:`run` returns), so a restart never races a stop.
    """

    def __init__(
        self,
        processes: Sequence[ManagedProcess],
        backoff: Backoff = DEFAULT_BACKOFF,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff = backoff
        self._clock = clock
        now = clock()
        self._watched = [_Watched(p, now) for p in processes]
        #: Restarts so far, per child name.
        self.restarts: dict[str, int] = {p.name: 0 for p in processes}

    def check(self) -> None:
        """One look at every child: note the dead, restart those whose delay has passed."""
        now = self._clock()
        for child in self._watched:
            process = child.process
            if child.restart_at is None:
                code = process.poll()
                if code is None:
                    continue
                ran_s = now - child.started_at
                child.deaths = 1 if ran_s >= self.backoff.stable_s else child.deaths + 1
                delay = self.backoff.delay_s(child.deaths)
                child.restart_at = now + delay
                logger.error(
                    "the %s exited with status %s after %.1f s: restarting it in %.1f s "
                    "(death %d in a row)",
                    process.name, code, ran_s, delay, child.deaths,
                )  # fmt: skip
            if child.restart_at is not None and now >= child.restart_at:
                process.respawn()
                child.started_at, child.restart_at = self._clock(), None
                self.restarts[process.name] += 1
                logger.warning(
                    "restarted the %s (restart %d, pid %d)",
                    process.name, self.restarts[process.name], process.pid,
                )  # fmt: skip

    def run(self, stop: threading.Event | None = None, poll_s: float = 0.5) -> None:
        """Supervise until ``stop`` is set (for ever without one: until an exception such as
        KeyboardInterrupt)."""
        event = stop or threading.Event()
        while not event.wait(poll_s):
            self.check()
