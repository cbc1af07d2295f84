"""Run the v2 REST app and the v2 gRPC service together in one event loop.

``V2Server.serve()`` binds both ports, serves until asked to stop, then drains: it stops accepting
connections, lets in-flight REST requests and gRPC calls finish (up to ``grace_period_s``; their
answers say ``Connection: close``), serves a request already on its way over an idle keep-alive
connection (for ``drain_linger_s``), closes the rest and returns. The REST connections are
:class:`~getit_ml.serving.http_protocol.GuardedHttpProtocol`'s: JSON errors from the HTTP layer
too, a read timeout, a connection cap. In a process of its own (:func:`run_forever`) SIGTERM and
SIGINT ask it to stop — the Kubernetes pod lifecycle. :class:`ServerThread` runs one in a
background thread (tests, the benchmark and the demo), always stopped by its context manager.

Each :class:`V2Server` has its own :class:`~getit_ml.serving.metrics.InferenceMetrics` (its own
Prometheus registry), shared by its REST app (which exposes it at ``GET /metrics``) and its gRPC
service, so several servers in one process (tests, the demo) never count into each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import uvicorn

from getit_ml.serving.app import V2App
from getit_ml.serving.http_protocol import (
    DEFAULT_DRAIN_LINGER_S,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT_S,
    guarded_protocol,
)
from getit_ml.serving.metrics import InferenceMetrics
from getit_ml.serving.protocol import DEFAULT_MAX_BODY_BYTES
from getit_ml.serving.repository import ModelRepository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerOptions:
    http_port: int = 8080
    #: ``None``: no gRPC service.
    grpc_port: int | None = 8081
    host: str = "0.0.0.0"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: How long a stop waits for in-flight requests before cancelling them.
    grace_period_s: int = 30
    #: An idle keep-alive connection is closed after this long. Clients that pool connections
    #: must drop theirs sooner (:class:`~getit_ml.serving.http_client.KeepAliveClient`: 30 s).
    timeout_keep_alive_s: int = 65
    #: A request's head and body must arrive within this long of its first byte (408 after).
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    #: Open REST connections at most (one more: 503 + ``Retry-After``); the same number caps
    #: concurrent gRPC calls (HTTP/2 multiplexes calls over few connections). ``None``: no cap.
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS
    #: On a stop, how long an idle keep-alive connection stays open for a request already on its
    #: way (served with ``Connection: close``) before it is closed.
    drain_linger_s: float = DEFAULT_DRAIN_LINGER_S
    access_log: bool = False
    #: Per-model inference metrics at ``GET /metrics``; off: nothing counted, 404 there.
    metrics: bool = True


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: :class:`V2Server` owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class V2Server:
    """The REST app and the gRPC service for one :class:`ModelRepository`."""

    def __init__(self, repository: ModelRepository, options: ServerOptions = ServerOptions()):
        self.repository = repository
        self.options = options
        self.metrics = InferenceMetrics() if options.metrics else None
        if self.metrics is not None:
            # A model may bring series of its own (the transformer: its dependencies' health,
            # the online store's watermarks): they are scraped with the server's.
            for model in repository.models():
                collector = getattr(model, "metrics_collector", None)
                if collector is not None:
                    self.metrics.registry.register(collector)
        self.app = V2App(repository, max_body_bytes=options.max_body_bytes, metrics=self.metrics)
        self.http_port: int | None = None
        self.grpc_port: int | None = None
        self.started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    async def serve(self, *, handle_signals: bool = False) -> None:
        options = self.options
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        sock = _listen(options.host, options.http_port)
        self.http_port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            http=guarded_protocol(
                read_timeout_s=options.read_timeout_s,
                max_connections=options.max_connections,
                drain_linger_s=options.drain_linger_s,
            ),
            ws="none",
            log_config=None,
            access_log=options.access_log,
            timeout_keep_alive=options.timeout_keep_alive_s,
            timeout_graceful_shutdown=options.grace_period_s,
            server_header=False,
        )
        rest = _Uvicorn(config)
        grpc_server: Any = None
        if options.grpc_port is not None:
            from getit_ml.serving.grpc_server import grpc_server as make_grpc_server

            grpc_server = make_grpc_server(
                self.repository,
                options.grpc_port,
                max_message_bytes=options.max_body_bytes,
                max_concurrent_rpcs=options.max_connections,
                host=options.host,
                metrics=self.metrics,
            )
            self.grpc_port = int(grpc_server.getit_port)
            if self.grpc_port == 0:
                sock.close()
                raise OSError(f"cannot listen for gRPC on port {options.grpc_port}")
            await grpc_server.start()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self.request_stop)
            # Everything loaded so far (the model, XGBoost, Feast, MLflow's modules) lives as
            # long as the process: out of the collector's sight, a full collection no longer
            # walks a million objects in the middle of a request (tens of ms of p99).
            gc.collect()
            gc.freeze()
        rest_task = asyncio.create_task(rest.serve(sockets=[sock]))
        while not rest.started and not rest_task.done():
            await asyncio.sleep(0.01)
        logger.info(
            "serving %s: REST on %s:%s, gRPC on %s",
            ", ".join(m.name for m in self.repository.models()),
            options.host, self.http_port, self.grpc_port or "-",
        )  # fmt: skip
        self.started.set()
        stop_task = asyncio.create_task(self._stop.wait())
        await asyncio.wait({rest_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        logger.info("stopping: draining in-flight requests (up to %ss)", options.grace_period_s)
        rest.should_exit = True
        if grpc_server is not None:
            await grpc_server.stop(options.grace_period_s)
        await rest_task
        stop_task.cancel()
        for model in self.repository.models():
            close = getattr(model, "aclose", None)
            if close is not None:
                await close()
        sock.close()
        logger.info("stopped")

    def request_stop(self) -> None:
        """Ask a running server to drain and stop (safe from any thread)."""
        loop, stop = self._loop, self._stop
        if loop is None or stop is None or loop.is_closed():
            return
        if threading.current_thread() is threading.main_thread() and _running_loop() is loop:
            stop.set()
        else:
            loop.call_soon_threadsafe(stop.set)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (faster sockets), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with kserve's dependencies
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_forever(repository: ModelRepository, options: ServerOptions = ServerOptions()) -> None:
    """Serve in this process until SIGTERM/SIGINT, then drain and return."""
    server = V2Server(repository, options)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(server.serve(handle_signals=True))


class ServerThread:
    """A :class:`V2Server` in a background thread: ``with ServerThread(repo, opts) as s: ...``."""

    def __init__(
        self,
        repository: ModelRepository,
        options: ServerOptions = ServerOptions(http_port=0, grpc_port=0, host="127.0.0.1"),
        *,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.server = V2Server(repository, options)
        self._timeout = start_timeout_s
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="v2-server", daemon=True)

    def _run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(self.server.serve())
        except BaseException as error:  # reported by start()
            self._error = error
            self.server.started.set()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    def start(self) -> ServerThread:
        self._thread.start()
        if not self.server.started.wait(self._timeout):
            self.stop()
            raise TimeoutError("the v2 server did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the v2 server failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        self.server.request_stop()
        self._thread.join(timeout=self.server.options.grace_period_s + 10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
